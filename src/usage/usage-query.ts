/**
 * One usage-report query, run by both `switchyard usage` and `GET /admin/usage`: which view (usage totals
 * grouped `by`, or cache analytics), the range (`since`, `until`: ISO times or relative like `7d`; default the
 * last 30 days) and `where` filters; checked in one place, rendered as a table, CSV or JSON. A usage report grouped by
 * at most one dimension is summed by the database (the hourly rollup for whole hours: milliseconds at a million
 * records a day); two or more dimensions, and the cache view, read the records.
 */
import { buildCacheReport, CACHE_GROUPS, type CacheGroupBy, type CacheReport, renderCacheReport } from './cache.js';
import type { PriceTable } from './prices.js';
import type { UsageRecord } from './record.js';
import { buildReport, filterRecords, GROUP_BY_HELP, isGroupBy, parseFilter, parseWhen, type GroupBy, type Report, renderReport, reportOrder } from './report.js';
import { asReportRow, noneKey, type SummaryQuery, type SummaryRow } from './summary.js';

/** Where a report's data comes from: the records of a range, and (a ledger store) sums the database computes. */
export interface UsageSource {
  query(since: string, until: string): Promise<UsageRecord[]>;
  summarize?(q: SummaryQuery): Promise<SummaryRow[]>;
}

/** A report from a summary's rows: the same rows, keys and totals {@link buildReport} makes from the records. */
export function reportFromSummary(rows: SummaryRow[], by: GroupBy | null, since: string, until: string): Report {
  const present = rows.filter((r) => r.requests > 0);
  const total = { requests: 0, input_tokens: 0, output_tokens: 0, cache_write_tokens: 0, cache_read_tokens: 0, cost_usd: 0, unpriced: 0, errors: 0, refused: 0 };
  for (const r of present) for (const k of Object.keys(total) as Array<keyof typeof total>) total[k] += r[k];
  return {
    since,
    until,
    by: by ? [by] : [],
    rows: by ? present.map((r) => asReportRow(r, { [by]: r.key ?? (by === 'day' ? '(none)' : noneKey(by)) })).sort(reportOrder) : present.length ? [asReportRow(total, {})] : [],
    totals: asReportRow(total, {}),
  };
}

/** What is asked, as the CLI's options and the API's query parameters both say it. */
export interface UsageQuery {
  view: 'usage' | 'cache';
  by: string[];
  since?: string;
  until?: string;
  where: string[];
}

/** The answer: a usage report or a cache report, over `since <= time < until`. */
export type UsageAnswer = { view: 'usage'; report: Report } | { view: 'cache'; report: CacheReport };

/** A query that cannot be run, with a message naming the parameter (the API answers it with 400). */
export class UsageQueryError extends Error {}

const DAY_MS = 86_400_000;

/**
 * Checks `q` and runs it over the records `read` returns for its range.
 * @throws UsageQueryError naming the parameter that is wrong.
 */
export async function runUsageQuery(q: UsageQuery, source: UsageSource, prices: PriceTable, now = Date.now()): Promise<UsageAnswer> {
  if (q.view === 'cache') {
    if (q.by.length > 1 || (q.by[0] && !(CACHE_GROUPS as readonly string[]).includes(q.by[0]))) throw new UsageQueryError(`the cache view groups by one of ${CACHE_GROUPS.join(', ')}`);
  } else for (const b of q.by) if (!isGroupBy(b)) throw new UsageQueryError(`by ${b}: expected ${GROUP_BY_HELP}`);
  let since: string;
  let until: string;
  try {
    since = q.since ? parseWhen(q.since, now) : new Date(now - 30 * DAY_MS).toISOString();
    until = q.until ? parseWhen(q.until, now) : new Date(now + 1000).toISOString();
  } catch (err) {
    throw new UsageQueryError((err as Error).message);
  }
  let filters: ReturnType<typeof parseFilter>[];
  try {
    filters = q.where.map(parseFilter);
  } catch (err) {
    throw new UsageQueryError((err as Error).message);
  }
  // The rollup has no secret-detection rules: reports by or filtered on `rule` read the records.
  const byRule = q.by.includes('rule') || filters.some((f) => f.by === 'rule');
  if (q.view === 'usage' && q.by.length <= 1 && !byRule && source.summarize) {
    const by = (q.by[0] ?? null) as GroupBy | null;
    return { view: 'usage', report: reportFromSummary(await source.summarize({ since, until, filters, group: by ?? 'none' }), by, since, until) };
  }
  const records = filterRecords(await source.query(since, until), filters);
  if (q.view === 'cache') return { view: 'cache', report: buildCacheReport(records, (q.by[0] ?? 'session') as CacheGroupBy, prices, since, until) };
  return { view: 'usage', report: buildReport(records, q.by as GroupBy[], since, until) };
}

/** The answer as text: a table, CSV or JSON. */
export function renderUsageAnswer(a: UsageAnswer, format: 'table' | 'csv' | 'json'): string {
  return a.view === 'cache' ? renderCacheReport(a.report, format) : renderReport(a.report, format);
}
