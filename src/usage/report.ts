/**
 * Usage reports: records grouped by any of tag:NAME, model, client, session, user, project, agent, day (UTC), provider and
 * rule (the secret-detection rules whose findings a request had: `scan_secrets`), with
 * totals per group — requests, tokens of each kind, cost (USD) and cache hit ratio (cache reads over all
 * input tokens) — as a table, CSV (the file finance imports) or JSON. Shared by `switchyard usage` and
 * `GET /admin/usage`.
 */
import type { UsageRecord } from './record.js';

/** A grouping dimension. */
export type GroupBy = 'model' | 'client' | 'session' | 'user' | 'project' | 'agent' | 'day' | 'provider' | 'rule' | 'kind' | `tag:${string}`;

/** The accepted `--by` values, for messages. */
export const GROUP_BY_HELP = 'tag:NAME, model, client, session, user, project, agent, day, provider, rule or kind';

/** True for a valid `--by` value. */
export function isGroupBy(v: string): v is GroupBy {
  return ['model', 'client', 'session', 'user', 'project', 'agent', 'day', 'provider', 'rule', 'kind'].includes(v) || /^tag:[a-z][a-z0-9_]*$/.test(v);
}

/** Totals of one group. */
export interface ReportRow {
  group: Record<string, string>;
  requests: number;
  input_tokens: number;
  output_tokens: number;
  cache_write_tokens: number;
  cache_read_tokens: number;
  /** USD; requests whose model has no price count in `unpriced_requests`, not here. */
  cost_usd: number;
  unpriced_requests: number;
  /** cache reads / (input + cache writes + cache reads), 0–1. */
  cache_hit_ratio: number;
}

export interface Report {
  since: string;
  until: string;
  by: GroupBy[];
  rows: ReportRow[];
  totals: ReportRow;
}

/** One record filter: a dimension (as `--by` names them, `day` excepted) and the value it must have. */
export interface RecordFilter {
  by: Exclude<GroupBy, 'day'>;
  value: string;
}

/**
 * Parses `user=alice`, `tag:team=search`, `model=claude-sonnet-4-6` (the value as reports show it, `(none)` for a
 * missing one).
 * @throws Error naming the accepted dimensions when the text is not such a filter.
 */
export function parseFilter(text: string): RecordFilter {
  const eq = text.indexOf('=');
  const by = text.slice(0, eq);
  if (eq < 1 || by === 'day' || !isGroupBy(by)) throw new Error(`filter "${text}": expected DIMENSION=VALUE with DIMENSION one of ${GROUP_BY_HELP.replace(', day', '')}`);
  return { by: by as RecordFilter['by'], value: text.slice(eq + 1) };
}

/** The records that pass every filter (all of them when there is none). */
export function filterRecords(records: UsageRecord[], filters: RecordFilter[]): UsageRecord[] {
  return filters.length ? records.filter((r) => filters.every((f) => keysOf(r, f.by).includes(f.value))) : records;
}

/**
 * The values a record has for a dimension: one, except for `rule`, where a request counts under each rule that found
 * a secret in it (`(none)` when none did).
 */
export function keysOf(r: UsageRecord, by: GroupBy): string[] {
  if (by !== 'rule') return [keyOf(r, by)];
  const rules = Object.keys(r.secret_findings ?? {});
  return rules.length ? rules.sort() : ['(none)'];
}

/** The value a record has for a dimension, as reports show it. */
export function keyOf(r: UsageRecord, by: GroupBy): string {
  if (by === 'model') return r.model ?? '(none)';
  if (by === 'client') return r.client_id ?? '(none)';
  if (by === 'session') return r.session_id ?? '(none)';
  if (by === 'user') return r.user_id ?? '(none)';
  if (by === 'project') return r.project ?? '(none)';
  if (by === 'agent') return r.agent_id ?? '(main)';
  if (by === 'provider') return r.provider ?? '(none)';
  if (by === 'day') return r.time.slice(0, 10);
  if (by === 'rule') return keysOf(r, by).join(', ');
  // What the record is of: interactive Messages calls (`message`; records from before kinds too), batch items, resource calls.
  if (by === 'kind') return r.kind ?? 'message';
  return r.tags[by.slice(4)] ?? '(untagged)';
}

const emptyRow = (group: Record<string, string>): ReportRow => ({
  group,
  requests: 0,
  input_tokens: 0,
  output_tokens: 0,
  cache_write_tokens: 0,
  cache_read_tokens: 0,
  cost_usd: 0,
  unpriced_requests: 0,
  cache_hit_ratio: 0,
});

function add(row: ReportRow, r: UsageRecord): void {
  row.requests++;
  row.input_tokens += r.input_tokens;
  row.output_tokens += r.output_tokens;
  row.cache_write_tokens += r.cache_creation_input_tokens;
  row.cache_read_tokens += r.cache_read_input_tokens;
  if (r.cost_usd === null) row.unpriced_requests++;
  else row.cost_usd += r.cost_usd;
}

function close(row: ReportRow): ReportRow {
  const allInput = row.input_tokens + row.cache_write_tokens + row.cache_read_tokens;
  row.cache_hit_ratio = allInput ? Math.round((row.cache_read_tokens / allInput) * 10_000) / 10_000 : 0;
  row.cost_usd = Math.round(row.cost_usd * 1e6) / 1e6;
  return row;
}

/** Report rows' order: most cost first, then most requests, then by group (so ties come out the same everywhere). */
export function reportOrder(a: ReportRow, b: ReportRow): number {
  if (b.cost_usd !== a.cost_usd) return b.cost_usd - a.cost_usd;
  if (b.requests !== a.requests) return b.requests - a.requests;
  const ka = JSON.stringify(a.group);
  const kb = JSON.stringify(b.group);
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}

/** Groups `records` by `by` (in that order); rows in {@link reportOrder}. */
export function buildReport(records: UsageRecord[], by: GroupBy[], since: string, until: string): Report {
  const groups = new Map<string, ReportRow>();
  const totals = emptyRow({});
  for (const r of records) {
    // Every combination of the record's values (more than one only with `rule`).
    let combos: Array<Record<string, string>> = [{}];
    for (const b of by) combos = combos.flatMap((c) => keysOf(r, b).map((k) => ({ ...c, [b]: k })));
    for (const group of combos) {
      const id = JSON.stringify(group);
      let row = groups.get(id);
      if (!row) groups.set(id, (row = emptyRow(group)));
      add(row, r);
    }
    add(totals, r);
  }
  const rows = [...groups.values()].map(close).sort(reportOrder);
  return { since, until, by, rows, totals: close(totals) };
}

const METRICS = ['requests', 'input_tokens', 'output_tokens', 'cache_write_tokens', 'cache_read_tokens', 'cost_usd', 'unpriced_requests', 'cache_hit_ratio'] as const;

/** One CSV cell: quoted (inner quotes doubled) when it holds a comma, a quote or a newline (RFC 4180). */
export function csvCell(v: string | number): string {
  const s = String(v);
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** Renders a report as `table`, `csv` or `json`. */
export function renderReport(report: Report, format: 'table' | 'csv' | 'json'): string {
  if (format === 'json') return JSON.stringify(report, null, 2);
  const header = [...report.by, ...METRICS];
  const line = (row: ReportRow, label?: string) => [...report.by.map((b, i) => (label && i === 0 ? label : label ? '' : row.group[b]!)), ...METRICS.map((m) => row[m])];
  const body = report.rows.map((r) => line(r));
  if (format === 'csv') return [header, ...body].map((cells) => cells.map(csvCell).join(',')).join('\n');
  // Without --by there is one group, everything: one labelled row, not the group and a total that repeat it.
  const labels = report.by.length ? report.by.length : 1;
  const all = (
    report.by.length
      ? [header, ...body, line(report.totals, 'TOTAL')]
      : [
          ['', ...METRICS],
          ['TOTAL', ...METRICS.map((m) => report.totals[m])],
        ]
  ).map((cells) => cells.map(String));
  const widths = all[0]!.map((_, i) => Math.max(...all.map((c) => c[i]!.length)));
  return [`usage ${report.since} .. ${report.until}`, ...all.map((cells) => cells.map((c, i) => (i < labels ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  '))].join('\n');
}

/**
 * Parses a `--since/--until` value: an ISO date or time (a bare date is midnight UTC), or a span back from `now`
 * (`7d`, `24h`, `30m`). @throws Error naming the accepted forms.
 */
export function parseWhen(v: string, now = Date.now()): string {
  const rel = /^(\d+)([dhm])$/.exec(v);
  if (rel) return new Date(now - Number(rel[1]) * { d: 86_400_000, h: 3_600_000, m: 60_000 }[rel[2] as 'd' | 'h' | 'm']).toISOString();
  const d = new Date(/^\d{4}-\d{2}-\d{2}$/.test(v) ? `${v}T00:00:00Z` : v);
  if (Number.isNaN(d.getTime())) throw new Error(`not a date: ${v} (use YYYY-MM-DD, an ISO time, or a span back from now such as 7d, 24h, 30m)`);
  return d.toISOString();
}
