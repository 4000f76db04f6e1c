/**
 * Cost beside what it bought: each Claude Code session's spend from the ledger joined with what the session
 * itself reported producing (login/telemetry.ts) — commits, pull requests, lines added and removed, active
 * time — and the cost per commit and per pull request. `switchyard usage --activity` and
 * `GET /admin/usage/activity` show it.
 */
import type { ActivityStore, RecordStore } from './ledger.js';

/** One session's row. USD; `active_time_s` seconds; the per-unit costs are null where the count is 0. */
export interface ActivityRow {
  session_id: string;
  user_id: string;
  requests: number;
  cost_usd: number;
  commits: number;
  pull_requests: number;
  lines_added: number;
  lines_removed: number;
  active_time_s: number;
  usd_per_commit: number | null;
  usd_per_pull_request: number | null;
}

const round = (x: number, digits = 6) => Math.round(x * 10 ** digits) / 10 ** digits;

/** USD per unit (a commit, a pull request), to the micro-dollar; null when there were none. */
export function costPer(usd: number, count: number): number | null {
  return count > 0 ? round(usd / count) : null;
}

/** Sessions with reported activity since `since` (ISO), most recently active first. */
export async function activityReport(store: ActivityStore & Pick<RecordStore, 'query'>, since: string): Promise<ActivityRow[]> {
  const activity = await store.activity(since);
  if (!activity.length) return [];
  const cost = new Map<string, { usd: number; requests: number }>();
  for (const r of await store.query(since, new Date(Date.now() + 1000).toISOString())) {
    if (!r.session_id) continue;
    const c = cost.get(r.session_id) ?? { usd: 0, requests: 0 };
    c.usd += r.cost_usd ?? 0;
    c.requests++;
    cost.set(r.session_id, c);
  }
  return activity.map((a) => {
    const c = cost.get(a.session_id) ?? { usd: 0, requests: 0 };
    return {
      session_id: a.session_id,
      user_id: a.user_id,
      requests: c.requests,
      cost_usd: round(c.usd),
      commits: a.commits,
      pull_requests: a.pull_requests,
      lines_added: a.lines_added,
      lines_removed: a.lines_removed,
      active_time_s: a.active_time_s,
      usd_per_commit: costPer(c.usd, a.commits),
      usd_per_pull_request: costPer(c.usd, a.pull_requests),
    };
  });
}

/** The report as a text table or CSV. */
export function renderActivity(rows: ActivityRow[], format: 'table' | 'csv' | 'json'): string {
  if (format === 'json') return JSON.stringify(rows, null, 2);
  const cols = ['session_id', 'user_id', 'requests', 'cost_usd', 'commits', 'pull_requests', 'lines_added', 'lines_removed', 'active_time_s', 'usd_per_commit', 'usd_per_pull_request'] as const;
  const cells = rows.map((r) => cols.map((c) => (r[c] === null ? '' : String(r[c]))));
  if (format === 'csv') return [cols.join(','), ...cells.map((row) => row.map((v) => (/[",\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v)).join(','))].join('\n');
  if (!rows.length) return 'no session has reported activity (Claude Code telemetry reaches the gateway through login:)';
  const widths = cols.map((c, i) => Math.max(c.length, ...cells.map((row) => row[i]!.length)));
  const line = (vals: readonly string[]) => vals.map((v, i) => v.padEnd(widths[i]!)).join('  ');
  return [line(cols), ...cells.map(line)].join('\n');
}
