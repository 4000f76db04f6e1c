/**
 * Aggregates computed by the ledger's database (GROUP BY in SQLite or PostgreSQL) instead of over every record in
 * Node: what the dashboard's overview reads. Same sums as `buildReport` (usage/report.ts) for the same range and
 * filters; a missing dimension value is the `(none)` / `(main)` / `(untagged)` report key, as there.
 */
import type { RecordFilter } from './report.js';

/** What a summary is grouped by: nothing, an hour or a UTC day of `time`, or a report dimension. */
export type SummaryGroup = 'none' | 'hour' | 'day' | 'user' | 'project' | 'model';

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
const DIMENSION_COLUMNS: Record<Exclude<RecordFilter['by'], `tag:${string}`>, string> = {
  model: 'model',
  client: 'client_id',
  session: 'session_id',
  user: 'user_id',
  project: 'project',
  agent: 'agent_id',
  provider: 'provider',
};

/** The report key that stands for a missing value of a dimension (see keyOf in report.ts). */
function noneKey(by: RecordFilter['by']): string {
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
 * The SQL of a summary: the range and the filters as parameters (a filter on the `(none)` key is `IS NULL`),
 * grouped by the query's group. Values go through `d.param` in the order they appear in the text.
 */
export function summarySql(q: SummaryQuery, d: SummaryDialect): string {
  const column = (by: RecordFilter['by']) => (by.startsWith('tag:') ? d.tag(by.slice(4)) : DIMENSION_COLUMNS[by as keyof typeof DIMENSION_COLUMNS]);
  const where = [`time >= ${d.param(q.since)}`, `time < ${d.param(q.until)}`];
  for (const f of q.filters) {
    const col = column(f.by);
    where.push(f.value === noneKey(f.by) ? `${col} IS NULL` : `${col} = ${d.param(f.value)}`);
  }
  const key = q.group === 'none' ? 'NULL' : q.group === 'hour' ? d.hour : q.group === 'day' ? d.day : column(q.group);
  return `SELECT ${key} AS key, ${summaryColumns(d.bool)} FROM usage_records WHERE ${where.join(' AND ')}${q.group === 'none' ? '' : ' GROUP BY 1'}`;
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
