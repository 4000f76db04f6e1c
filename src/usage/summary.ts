/**
 * Aggregates computed by the ledger's database (GROUP BY in SQLite or PostgreSQL) instead of over every record in
 * Node: what the dashboard's overview reads. Same sums as `buildReport` (usage/report.ts) for the same range and
 * filters; a missing dimension value is the `(none)` / `(main)` / `(untagged)` report key, as there.
 */
import { createHash } from 'node:crypto';
import type { UsageRecord } from './record.js';
import type { GroupBy, RecordFilter, ReportRow } from './report.js';

/**
 * What a summary is grouped by: nothing, an hour or a UTC day of `time`, or any report dimension (`usage --by`'s:
 * a session reads the records, everything else the rollup for whole hours).
 */
export type SummaryGroup = 'none' | 'hour' | GroupBy;

/** One group of a summary. `key`: the hour (`YYYY-MM-DDTHH`), the day, or the dimension's value (null: none). */
export interface SummaryRow {
  key: string | null;
  requests: number;
  input_tokens: number;
  output_tokens: number;
  cache_write_tokens: number;
  cache_read_tokens: number;
  /** USD, requests without a price left out (they count in `unpriced`). */
  cost_usd: number;
  unpriced: number;
  /** Requests that ended `failed` or `error`, and `refused`. */
  errors: number;
  refused: number;
}

/** A summary request: `since <= time < until`, the filters all holding. */
export interface SummaryQuery {
  since: string;
  until: string;
  filters: RecordFilter[];
  group: SummaryGroup;
}

/** The columns of the report dimensions a filter or a group can name (tags are JSON, handled by each store). */
const DIMENSION_COLUMNS: Record<Exclude<RecordFilter['by'], `tag:${string}` | 'rule'>, string> = {
  model: 'model',
  client: 'client_id',
  session: 'session_id',
  user: 'user_id',
  project: 'project',
  agent: 'agent_id',
  provider: 'provider',
  // Records from before kinds (null) are interactive Messages calls, as reports show them.
  kind: "coalesce(kind, 'message')",
};

/** The report key that stands for a missing value of a dimension (see keyOf in report.ts). */
export function noneKey(by: RecordFilter['by']): string {
  return by === 'agent' ? '(main)' : by.startsWith('tag:') ? '(untagged)' : '(none)';
}

/** What SQLite and PostgreSQL write differently in a summary query. */
export interface SummaryDialect {
  /** Adds a parameter's value and returns its placeholder (`?`, `$3`). */
  param(value: string): string;
  /** A billing tag's value in the JSON `tags` column (the name is a validated `[a-z][a-z0-9_]*`). */
  tag(name: string): string;
  /** `time` as its hour (`YYYY-MM-DDTHH`) and as its UTC day (`YYYY-MM-DD`). */
  hour: string;
  day: string;
  /** A condition as 1 or 0, to sum. */
  bool(cond: string): string;
}

/**
 * The hourly rollup (`usage_rollup`): one row per UTC hour and combination of every report dimension but the
 * session (client, user, project, agent, provider, model, tags), with the sums a summary reads. Kept by the
 * stores as records are inserted (in the same transaction), so a summary over a month reads thousands of
 * rollup rows instead of millions of records. Sessions are too many to roll up: a session filter reads the
 * records (by the session index).
 */
export const ROLLUP_DIMENSIONS = ['client_id', 'user_id', 'project', 'agent_id', 'provider', 'model', 'kind'] as const;
/** The summed columns of a rollup row, in table order. */
export const ROLLUP_SUMS = ['requests', 'input_tokens', 'output_tokens', 'cache_write_tokens', 'cache_read_tokens', 'cost_usd', 'unpriced', 'errors', 'refused'] as const;

/** One rollup row, or the change one batch of records makes to it. `hour`: `YYYY-MM-DDTHH` (UTC). */
export type RollupRow = { rkey: string; hour: string; tags: string } & Record<(typeof ROLLUP_DIMENSIONS)[number], string | null> & Record<(typeof ROLLUP_SUMS)[number], number>;

/** Tags as canonical JSON (keys sorted), so equal tags make one rollup key whatever order they were set in. */
export function canonicalTags(tags: Record<string, string> | null | undefined): string {
  const t = tags ?? {};
  return JSON.stringify(
    Object.fromEntries(
      Object.keys(t)
        .sort()
        .map((k) => [k, t[k]]),
    ),
  );
}

/** The rollup key: a digest of the hour, the dimensions and the canonical tags. */
export function rollupKey(hour: string, dims: Record<(typeof ROLLUP_DIMENSIONS)[number], string | null>, tags: string): string {
  return createHash('sha1')
    .update(JSON.stringify([hour, ...ROLLUP_DIMENSIONS.map((d) => dims[d]), tags]))
    .digest('base64url');
}

/** A rollup row with every sum 0. */
function emptyRollupRow(rkey: string, hour: string, dims: Record<(typeof ROLLUP_DIMENSIONS)[number], string | null>, tags: string): RollupRow {
  return { rkey, hour, tags, ...dims, ...(Object.fromEntries(ROLLUP_SUMS.map((c) => [c, 0])) as Record<(typeof ROLLUP_SUMS)[number], number>) };
}

/**
 * The SQL that rolls up a ledger from before the rollup: the sums of {@link summaryColumns} per hour, dimension
 * values and stored tags (rows that {@link rollupFromGroups} then keys).
 */
export function rollupBackfillSql(d: Pick<SummaryDialect, 'hour' | 'bool'>): string {
  const dims = ROLLUP_DIMENSIONS.join(', ');
  return `SELECT ${d.hour} AS hour, ${dims}, tags, ${summaryColumns(d.bool)} FROM usage_records GROUP BY 1, ${dims}, tags`;
}

/** What `records` add to the rollup, one row per key (records of one hour and combination summed). */
export function rollupDeltas(records: readonly UsageRecord[]): RollupRow[] {
  const out = new Map<string, RollupRow>();
  for (const r of records) {
    const hour = r.time.slice(0, 13);
    const dims = { client_id: r.client_id, user_id: r.user_id ?? null, project: r.project ?? null, agent_id: r.agent_id ?? null, provider: r.provider, model: r.model, kind: r.kind ?? null };
    const tags = canonicalTags(r.tags);
    const rkey = rollupKey(hour, dims, tags);
    let row = out.get(rkey);
    if (!row) out.set(rkey, (row = emptyRollupRow(rkey, hour, dims, tags)));
    row.requests++;
    row.input_tokens += r.input_tokens ?? 0;
    row.output_tokens += r.output_tokens ?? 0;
    row.cache_write_tokens += r.cache_creation_input_tokens ?? 0;
    row.cache_read_tokens += r.cache_read_input_tokens ?? 0;
    if (r.cost_usd === null || r.cost_usd === undefined) row.unpriced++;
    else row.cost_usd += r.cost_usd;
    if (r.outcome === 'failed' || r.outcome === 'error') row.errors++;
    if (r.outcome === 'refused') row.refused++;
  }
  return [...out.values()];
}

/**
 * Rollup rows from a backfill's GROUP BY rows (hour, the dimensions, the stored tags, the sums): keyed here, so
 * that tags stored in different key orders land in one row.
 * @param tagsOf the stored tags as an object (SQLite holds JSON text, PostgreSQL returns jsonb parsed).
 */
export function rollupFromGroups(rows: readonly Record<string, unknown>[], tagsOf: (stored: unknown) => Record<string, string>): RollupRow[] {
  const merged = new Map<string, RollupRow>();
  for (const r of rows) {
    const dims = Object.fromEntries(ROLLUP_DIMENSIONS.map((c) => [c, (r[c] as string | null) ?? null])) as Record<(typeof ROLLUP_DIMENSIONS)[number], string | null>;
    const tags = canonicalTags(tagsOf(r.tags));
    const rkey = rollupKey(String(r.hour), dims, tags);
    const row = merged.get(rkey) ?? emptyRollupRow(rkey, String(r.hour), dims, tags);
    for (const c of ROLLUP_SUMS) row[c] += Number(r[c] ?? 0);
    merged.set(rkey, row);
  }
  return [...merged.values()];
}

/** The first whole hour at or after `since`, and the start of the hour `until` falls in, as ISO times. */
function hourBounds(since: string, until: string): { from: string; to: string } {
  const H = 3_600_000;
  const s = Date.parse(since);
  const u = Date.parse(until);
  return { from: new Date(Math.ceil(s / H) * H).toISOString(), to: new Date(Math.floor(u / H) * H).toISOString() };
}

/**
 * The SQL of a summary: the range and the filters as parameters (a filter on the `(none)` key is `IS NULL`),
 * grouped by the query's group. Values go through `d.param` in the order they appear in the text.
 */
export function summarySql(q: SummaryQuery, d: SummaryDialect): string {
  const column = (by: RecordFilter['by']) => {
    // Findings are counts in a JSON column, several rules per record: reports by rule read the records (usage-query).
    if (by === 'rule') throw new Error('a summary cannot group or filter by rule; read the records');
    return by.startsWith('tag:') ? d.tag(by.slice(4)) : DIMENSION_COLUMNS[by as keyof typeof DIMENSION_COLUMNS];
  };
  const filters = () =>
    q.filters.map((f) => {
      const col = column(f.by);
      return f.value === noneKey(f.by) ? `${col} IS NULL` : `${col} = ${d.param(f.value)}`;
    });
  /** The records of `[since, until)`. */
  const records = (since: string, until: string, grouped: boolean) => {
    const key = q.group === 'none' ? 'NULL' : q.group === 'hour' ? d.hour : q.group === 'day' ? d.day : column(q.group);
    const where = [`time >= ${d.param(since)}`, `time < ${d.param(until)}`, ...filters()];
    return `SELECT ${key} AS key, ${summaryColumns(d.bool)} FROM usage_records WHERE ${where.join(' AND ')}${grouped ? ' GROUP BY 1' : ''}`;
  };
  const { from, to } = hourBounds(q.since, q.until);
  // A session filter or group (sessions are not rolled up), or a range without one whole hour: the records alone.
  if (q.group === 'session' || q.filters.some((f) => f.by === 'session') || from >= to) return records(q.since, q.until, q.group !== 'none');
  // Whole hours from the rollup, the partial hours at either end from the records; summed again outside.
  const key = q.group === 'none' ? 'NULL' : q.group === 'hour' ? 'hour' : q.group === 'day' ? 'substr(hour, 1, 10)' : column(q.group);
  const rollupWhere = [`hour >= ${d.param(from.slice(0, 13))}`, `hour < ${d.param(to.slice(0, 13))}`, ...filters()];
  const parts = [`SELECT ${key} AS key, ${ROLLUP_SUMS.map((c) => `sum(${c}) AS ${c}`).join(', ')} FROM usage_rollup WHERE ${rollupWhere.join(' AND ')} GROUP BY 1`];
  if (q.since < from) parts.push(records(q.since, from, true));
  if (to < q.until) parts.push(records(to, q.until, true));
  const sums = ROLLUP_SUMS.map((c) => `coalesce(sum(${c}), 0) AS ${c}`).join(', ');
  return `SELECT ${q.group === 'none' ? 'NULL' : 'key'} AS key, ${sums} FROM (${parts.join(' UNION ALL ')}) parts${q.group === 'none' ? '' : ' GROUP BY key'}`;
}

/** The SELECT list of a summary, shared by both dialects (they differ in the key expression and booleans). */
function summaryColumns(bool: (cond: string) => string): string {
  return [
    'count(*) AS requests',
    'coalesce(sum(input_tokens), 0) AS input_tokens',
    'coalesce(sum(output_tokens), 0) AS output_tokens',
    'coalesce(sum(cache_creation_input_tokens), 0) AS cache_write_tokens',
    'coalesce(sum(cache_read_input_tokens), 0) AS cache_read_tokens',
    'coalesce(sum(cost_usd), 0) AS cost_usd',
    `sum(${bool('cost_usd IS NULL')}) AS unpriced`,
    `sum(${bool("outcome IN ('failed', 'error')")}) AS errors`,
    `sum(${bool("outcome = 'refused'")}) AS refused`,
  ].join(', ');
}

/**
 * A summary's sums as a report row of `group`, closed as buildReport closes one: cost rounded to the micro-dollar, the
 * cache hit ratio (cache reads over all input tokens) to four places.
 */
export function asReportRow(s: Omit<SummaryRow, 'key'>, group: Record<string, string>): ReportRow {
  const allInput = s.input_tokens + s.cache_write_tokens + s.cache_read_tokens;
  return {
    group,
    requests: s.requests,
    input_tokens: s.input_tokens,
    output_tokens: s.output_tokens,
    cache_write_tokens: s.cache_write_tokens,
    cache_read_tokens: s.cache_read_tokens,
    cost_usd: Math.round(s.cost_usd * 1e6) / 1e6,
    unpriced_requests: s.unpriced,
    cache_hit_ratio: allInput ? Math.round((s.cache_read_tokens / allInput) * 10_000) / 10_000 : 0,
  };
}

/** A database row as a {@link SummaryRow} (PostgreSQL returns sums as strings). */
export function summaryRow(r: Record<string, unknown>): SummaryRow {
  const n = (k: string) => Number(r[k] ?? 0);
  return {
    key: r.key === null || r.key === undefined ? null : String(r.key),
    requests: n('requests'),
    input_tokens: n('input_tokens'),
    output_tokens: n('output_tokens'),
    cache_write_tokens: n('cache_write_tokens'),
    cache_read_tokens: n('cache_read_tokens'),
    cost_usd: n('cost_usd'),
    unpriced: n('unpriced'),
    errors: n('errors'),
    refused: n('refused'),
  };
}
