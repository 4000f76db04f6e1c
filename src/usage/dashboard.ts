/**
 * The dashboard's figures (GET /admin/ui/api/*), computed on the server from the ledger's records with the same
 * functions as `switchyard usage` (buildReport, buildCacheReport, filterRecords), so a figure on a page equals the
 * CLI's for the same range and filters. Pure: records in, plain JSON out.
 */
import { recordScopeValue } from '../actions/scope.js';
import type { BudgetSpec } from '../actions/budget/index.js';
import type { UsageRecord } from './record.js';
import { cacheBreaks } from './cache.js';
import { costPer } from './activity.js';
import type { LedgerStore, SessionActivity } from './ledger.js';
import { buildReport, type RecordFilter, type ReportRow, reportOrder } from './report.js';
import { asReportRow, type SummaryGroup, type SummaryRow } from './summary.js';

/** One time bucket of the overview series (hours for ranges up to two days, else UTC days). */
export interface SeriesPoint {
  /** Bucket start, epoch seconds. */
  t: number;
  requests: number;
  cost_usd: number;
  input_tokens: number;
  output_tokens: number;
  cache_read_tokens: number;
  cache_write_tokens: number;
  /** Requests that ended `failed` or `error`. */
  errors: number;
  /** Requests refused by a rule, a throttle or a budget. */
  refused: number;
}

/** The overview of a range: totals (as `switchyard usage`), a series, error and refusal rates, top spenders. */
export interface Overview {
  since: string;
  until: string;
  totals: ReportRow;
  bucket: 'hour' | 'day';
  series: SeriesPoint[];
  error_rate: number;
  refusal_rate: number;
  top_users: ReportRow[];
  top_projects: ReportRow[];
  top_models: ReportRow[];
  /**
   * Spend apart by what it was for: `message` (interactive Messages calls), `batch` (Message Batch items at the batch
   * rate), `resource` and `other` (calls without tokens); every kind the range has, most spend first.
   */
  by_kind: ReportRow[];
}

const round6 = (x: number) => Math.round(x * 1e6) / 1e6;
const ratio = (a: number, b: number) => (b ? Math.round((a / b) * 10_000) / 10_000 : 0);

/** A {@link SummaryRow} as a report row (`group` by `by`; a missing value is `(none)`). */
const reportRow = (s: SummaryRow, by: string | null): ReportRow => asReportRow(s, by ? { [by]: s.key ?? '(none)' } : {});

/**
 * The overview computed by the ledger's database (GROUP BY): five aggregate queries — totals per time bucket, the
 * top users, projects and models, and spend by kind (interactive vs batch) — instead of reading every record. The same figures as `switchyard usage`
 * over the records (test/overview-sql.test.ts holds that computation and compares).
 */
export async function overviewFromStore(store: Pick<LedgerStore, 'summarize'>, since: string, until: string, filters: RecordFilter[]): Promise<Overview> {
  const span = Date.parse(until) - Date.parse(since);
  const bucket: Overview['bucket'] = span <= 2 * 86_400_000 ? 'hour' : 'day';
  const q = (group: SummaryGroup) => store.summarize({ since, until, filters, group });
  const [buckets, users, projects, models, kinds] = await Promise.all([q(bucket), q('user'), q('project'), q('model'), q('kind')]);
  const total: SummaryRow = { key: null, requests: 0, input_tokens: 0, output_tokens: 0, cache_write_tokens: 0, cache_read_tokens: 0, cost_usd: 0, unpriced: 0, errors: 0, refused: 0 };
  for (const b of buckets)
    for (const k of ['requests', 'input_tokens', 'output_tokens', 'cache_write_tokens', 'cache_read_tokens', 'cost_usd', 'unpriced', 'errors', 'refused'] as const) total[k] += b[k];
  const series = buckets
    .map((b) => ({
      t: Date.parse(bucket === 'hour' ? `${b.key}:00:00Z` : `${b.key}T00:00:00Z`) / 1000,
      requests: b.requests,
      cost_usd: round6(b.cost_usd),
      input_tokens: b.input_tokens,
      output_tokens: b.output_tokens,
      cache_read_tokens: b.cache_read_tokens,
      cache_write_tokens: b.cache_write_tokens,
      errors: b.errors,
      refused: b.refused,
    }))
    .sort((a, b) => a.t - b.t);
  const top = (rows: SummaryRow[], by: string) =>
    rows
      .map((r) => reportRow(r, by))
      .sort(reportOrder)
      .slice(0, 10);
  return {
    since,
    until,
    totals: reportRow(total, null),
    bucket,
    series,
    error_rate: ratio(total.errors, total.requests),
    refusal_rate: ratio(total.refused, total.requests),
    top_users: top(users, 'user'),
    top_projects: top(projects, 'project'),
    top_models: top(models, 'model'),
    by_kind: kinds.map((r) => reportRow(r, 'kind')).sort(reportOrder),
  };
}

/** One Claude Code session of a range. */
export interface SessionRow {
  session: string;
  user: string;
  project: string;
  /** Requests in the session (each a turn or a background call). */
  turns: number;
  cost_usd: number;
  cache_hit_ratio: number;
  /** Requests that found the session's warm prompt cache cold (usage/cache.ts `cacheBreaks`, as `switchyard usage --cache`). */
  cache_breaks: number;
  first: string;
  last: string;
  /** What the session reported producing (Claude Code's telemetry through login:), or null when it reported nothing. */
  activity: { commits: number; pull_requests: number; lines_added: number; lines_removed: number; usd_per_commit: number | null; usd_per_pull_request: number | null } | null;
}

/** A session's reported activity with its cost per commit and per pull request (USD; null where the count is 0). */
function activityOf(a: SessionActivity | undefined, cost: number): SessionRow['activity'] {
  if (!a) return null;
  return {
    commits: a.commits,
    pull_requests: a.pull_requests,
    lines_added: a.lines_added,
    lines_removed: a.lines_removed,
    usd_per_commit: costPer(cost, a.commits),
    usd_per_pull_request: costPer(cost, a.pull_requests),
  };
}

/** The row that stands for a user's requests without a session id: one per user, not one for everyone. */
export function noSessionKey(user: string | null): string {
  return `(no session: ${user ?? '(none)'})`;
}

/** The user of a {@link noSessionKey} row (null: not one). */
export function noSessionUser(key: string): string | null {
  const m = /^\(no session: (.*)\)$/.exec(key);
  return m ? m[1]! : null;
}

/** Sessions of a range, most expensive first; requests without a session id are one row per user ({@link noSessionKey}). */
export function sessions(all: UsageRecord[], since: string, until: string, activity: readonly SessionActivity[] = []): SessionRow[] {
  const produced = new Map(activity.map((a) => [a.session_id, a]));
  const records = all.map((r) => (r.session_id ? r : { ...r, session_id: noSessionKey(r.user_id) }));
  const rows = buildReport(records, ['session'], since, until).rows;
  const breaks = new Map<string, number>();
  for (const b of cacheBreaks(records)) breaks.set(b.session, (breaks.get(b.session) ?? 0) + 1);
  const meta = new Map<string, { user: string; project: string; first: string; last: string }>();
  for (const r of records) {
    const s = r.session_id ?? '(none)';
    const m = meta.get(s);
    if (!m) meta.set(s, { user: r.user_id ?? '(none)', project: r.project ?? '(none)', first: r.time, last: r.time });
    else {
      if (r.time < m.first) m.first = r.time;
      if (r.time > m.last) m.last = r.time;
    }
  }
  return rows.map((row) => {
    const s = row.group.session!;
    const m = meta.get(s)!;
    return {
      session: s,
      user: m.user,
      project: m.project,
      turns: row.requests,
      cost_usd: row.cost_usd,
      cache_hit_ratio: row.cache_hit_ratio,
      cache_breaks: breaks.get(s) ?? 0,
      first: m.first,
      last: m.last,
      activity: activityOf(produced.get(s), row.cost_usd),
    };
  });
}

/** What the ledger says about one rule over a range. */
export interface RuleStats {
  hits: number;
  last_match: string | null;
  /** Requests this rule refused, by the action that did: its `deny`, its `throttle`, its `budget`. */
  denied: number;
  throttled: number;
  budget_refused: number;
}

/** A rule's stats before anything matched it. */
export const emptyRuleStats = (): RuleStats => ({ hits: 0, last_match: null, denied: 0, throttled: 0, budget_refused: 0 });

/** Hit counts and last match per rule id (the matched rules each record keeps), and the refusals each rule caused (`refused_by`). */
export function ruleStats(records: UsageRecord[]): Record<string, RuleStats> {
  const out: Record<string, RuleStats> = {};
  for (const r of records) {
    for (const id of r.rules) {
      const s = (out[id] ??= emptyRuleStats());
      s.hits++;
      if (!s.last_match || r.time > s.last_match) s.last_match = r.time;
    }
    // Who refused it (records from before `refused_by` name no one).
    const by = r.refused_by ? /^(deny|throttle|budget):(.+)$/.exec(r.refused_by) : null;
    if (by) {
      const s = (out[by[2]!] ??= emptyRuleStats());
      if (by[1] === 'deny') s.denied++;
      else if (by[1] === 'throttle') s.throttled++;
      else s.budget_refused++;
    }
  }
  return out;
}

/** Secret findings of one user's session (`scan_secrets`): counts by gitleaks rule id, never a value. */
export interface SecretFindingsRow {
  user: string;
  session: string;
  /** Findings by gitleaks rule id, summed over the session's requests. */
  findings: Record<string, number>;
  /** Requests of the session with at least one finding. */
  requests: number;
  /** Time of the last request with a finding (ISO). */
  last_seen: string;
}

/**
 * The records' secret findings per user and session, most findings first. A secret a conversation holds is found
 * again on every later turn (Claude Code resends the history), so the counts are per request, not per secret.
 */
export function secretFindings(records: UsageRecord[]): SecretFindingsRow[] {
  const rows = new Map<string, SecretFindingsRow>();
  for (const r of records) {
    if (!r.secret_findings || Object.keys(r.secret_findings).length === 0) continue;
    const user = r.user_id ?? '(none)';
    const session = r.session_id ?? '(none)';
    const key = JSON.stringify([user, session]);
    let row = rows.get(key);
    if (!row) rows.set(key, (row = { user, session, findings: {}, requests: 0, last_seen: r.time }));
    row.requests++;
    if (r.time > row.last_seen) row.last_seen = r.time;
    for (const [rule, n] of Object.entries(r.secret_findings)) row.findings[rule] = (row.findings[rule] ?? 0) + n;
  }
  const total = (x: SecretFindingsRow) => Object.values(x.findings).reduce((a, b) => a + b, 0);
  return [...rows.values()].sort((a, b) => total(b) - total(a) || (a.last_seen < b.last_seen ? 1 : -1));
}

/** Latency, time to first token and errors of one provider over a range, ms. */
export interface ProviderStats {
  requests: number;
  latency_p50_ms: number | null;
  latency_p95_ms: number | null;
  ttft_p50_ms: number | null;
  error_rate: number;
}

const pct = (sorted: number[], p: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))]! : null);

/** Per provider: requests, latency p50/p95, time to first byte p50, share of failed requests. */
export function providerStats(records: UsageRecord[]): Record<string, ProviderStats> {
  const by = new Map<string, UsageRecord[]>();
  for (const r of records) {
    if (!r.provider) continue;
    let list = by.get(r.provider);
    if (!list) by.set(r.provider, (list = []));
    list.push(r);
  }
  const out: Record<string, ProviderStats> = {};
  for (const [name, list] of by) {
    const latency = list.map((r) => r.latency_ms).sort((a, b) => a - b);
    const ttft = list.flatMap((r) => (r.ttft_ms === null ? [] : [r.ttft_ms])).sort((a, b) => a - b);
    const failed = list.filter((r) => r.outcome === 'failed' || r.outcome === 'error').length;
    out[name] = { requests: list.length, latency_p50_ms: pct(latency, 50), latency_p95_ms: pct(latency, 95), ttft_p50_ms: pct(ttft, 50), error_rate: ratio(failed, list.length) };
  }
  return out;
}

/** The scope values of `budget` that records of its rule were counted under. */
export function budgetScopeValues(budget: Pick<BudgetSpec, 'rule' | 'scope'>, records: UsageRecord[]): string[] {
  const values = new Set<string>();
  for (const r of records) if (r.rules.includes(budget.rule)) values.add(recordScopeValue(budget.scope, r));
  return [...values];
}

/** One budget and one scope value in the current period: its burn-down and where it is heading. */
export interface BudgetBurn {
  rule: string;
  scope: string;
  value: string;
  per: BudgetSpec['per'];
  limit_usd: number;
  spent_usd: number;
  /** Cumulative spend at the end of each UTC day of the period so far (from the ledger). */
  burn: Array<{ day: string; spent_usd: number }>;
  /** When the budget runs out at the period's average rate so far (ISO), null if not before the period ends. */
  projected_exhaustion: string | null;
  period_start: string;
  period_end: string;
}

/**
 * Burn-down of `budget` for each scope value in the period [start, end): cumulative spend per day from the
 * records its rule matched, `spent` from the state store where the gateway enforces it (null: use the ledger's
 * sum), and the date the period's average rate would reach the limit.
 * @param spent USD spent per scope value in this period as the state store has it (see {@link budgetScopeValues}).
 */
export function budgetBurn(budget: BudgetSpec, records: UsageRecord[], start: Date, end: Date, now: Date, spent: Map<string, number>): BudgetBurn[] {
  const byValue = new Map<string, Map<string, number>>();
  for (const r of records) {
    if (!r.rules.includes(budget.rule) || r.cost_usd === null) continue;
    const value = recordScopeValue(budget.scope, r);
    let days = byValue.get(value);
    if (!days) byValue.set(value, (days = new Map()));
    const day = r.time.slice(0, 10);
    days.set(day, (days.get(day) ?? 0) + r.cost_usd);
  }
  return [...byValue].map(([value, days]) => {
    let total = 0;
    const burn = [...days]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([day, usd]) => {
        total += usd;
        return { day, spent_usd: round6(total) };
      });
    const spentUsd = round6(spent.get(value) ?? total);
    const elapsed = Math.max(1, now.getTime() - start.getTime());
    const rate = spentUsd / elapsed; // USD per ms
    const exhaustAt = rate > 0 ? start.getTime() + budget.usd / rate : Infinity;
    return {
      rule: budget.rule,
      scope: budget.scope,
      value,
      per: budget.per,
      limit_usd: budget.usd,
      spent_usd: spentUsd,
      burn,
      projected_exhaustion: exhaustAt < end.getTime() ? new Date(Math.max(exhaustAt, now.getTime())).toISOString() : null,
      period_start: start.toISOString(),
      period_end: end.toISOString(),
    };
  });
}
