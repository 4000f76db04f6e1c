/**
 * Cache analytics from the usage ledger: was the prompt cache working, what did it save, and when did a
 * session's cache break. Shared by `switchyard usage --cache` and `GET /admin/usage?view=cache`.
 *
 * - Hit share = cache_read / (input + cache_creation + cache_read) tokens.
 * - Saved, USD = what the cache reads would have cost as plain input, minus what they cost, minus the premium
 *   paid to write the cache (5-minute and 1-hour writes priced apart): with Anthropic's multipliers from
 *   `prices.yaml` (reads 0.1×, 5m writes 1.25×, 1h writes 2× the input price;
 *   https://platform.claude.com/docs/en/about-claude/pricing), `reads × input × (1 − 0.1) − writes_5m × input ×
 *   0.25 − writes_1h × input × 1`. Negative when a cache is written and never read back.
 * - A cache break: within a session, a request that reads (almost) nothing from the cache right after one that
 *   read a warm prefix, and writes it again. The likely cause the gateway can see: an idle gap longer than the
 *   cache's lifetime (5 minutes, or 1 hour when the prefix was written with the 1h TTL), a model switch, a
 *   change in the number of tools, else a change in the prefix itself (system prompt or tools edited, a
 *   compaction).
 */
import type { PriceTable } from './prices.js';
import type { UsageRecord } from './record.js';

/** Dimensions of the cache report. */
export type CacheGroupBy = 'session' | 'user' | 'model' | 'day';

export const CACHE_GROUPS: readonly CacheGroupBy[] = ['session', 'user', 'model', 'day'];

/** Cache totals of one group. Tokens; USD. */
export interface CacheRow {
  group: string;
  requests: number;
  input_tokens: number;
  cache_write_5m_tokens: number;
  cache_write_1h_tokens: number;
  cache_read_tokens: number;
  /** 0–1. */
  hit_share: number;
  /** Net of the write premium; requests of unpriced models are left out. */
  saved_usd: number;
  breaks: number;
}

/** One detected cache break. */
export interface CacheBreak {
  session: string;
  user: string | null;
  /** ISO time of the request that found the cache cold, and its id. */
  time: string;
  request_id: string;
  /** Cache reads of the request before it, and of this one. */
  read_before: number;
  read_after: number;
  cause: string;
}

export interface CacheReport {
  since: string;
  until: string;
  by: CacheGroupBy;
  rows: CacheRow[];
  totals: CacheRow;
  breaks: CacheBreak[];
}

/** Reads below this many tokens count as a warm prefix no longer. */
const WARM_MIN_TOKENS = 1024;
/** A read below this share of the previous read is "near zero". */
const COLD_SHARE = 0.1;
const TTL_5M_MS = 5 * 60_000;
const TTL_1H_MS = 60 * 60_000;

function groupOf(r: UsageRecord, by: CacheGroupBy): string {
  if (by === 'session') return r.session_id ?? '(none)';
  if (by === 'user') return r.user_id ?? '(none)';
  if (by === 'model') return r.model ?? '(none)';
  return r.time.slice(0, 10);
}

/** USD the cache saved on one request (negative when it only wrote), or null without a price. */
export function cacheSavedUsd(r: UsageRecord, prices: PriceTable): number | null {
  const p = r.model ? prices.priceOf(r.model, r.provider) : null;
  if (!p) return null;
  const perToken = p.input / 1e6;
  return (
    r.cache_read_input_tokens * perToken * (1 - p.cache_read) -
    r.cache_creation_5m_input_tokens * perToken * (p.cache_write_5m - 1) -
    r.cache_creation_1h_input_tokens * perToken * (p.cache_write_1h - 1)
  );
}

/** The cache breaks of the records (any order), per session in time order. */
export function cacheBreaks(records: UsageRecord[]): CacheBreak[] {
  const bySession = new Map<string, UsageRecord[]>();
  for (const r of records) if (r.session_id && r.outcome === 'ok') bySession.set(r.session_id, [...(bySession.get(r.session_id) ?? []), r]);
  const out: CacheBreak[] = [];
  for (const [session, rs] of bySession) {
    rs.sort((a, b) => a.time.localeCompare(b.time));
    // The last request of the main conversation that read a warm prefix (subagents have their own caches), and the
    // lifetime its cache was last written with: a read refreshes an entry, it does not change its TTL.
    const warm = new Map<string, UsageRecord>();
    const ttlOf = new Map<string, number>();
    for (const r of rs) {
      const lane = r.agent_id ?? '';
      const prev = warm.get(lane);
      if (prev && r.cache_read_input_tokens < prev.cache_read_input_tokens * COLD_SHARE && r.cache_creation_input_tokens > 0) {
        out.push({
          session,
          user: r.user_id,
          time: r.time,
          request_id: r.request_id,
          read_before: prev.cache_read_input_tokens,
          read_after: r.cache_read_input_tokens,
          cause: likelyCause(prev, r, ttlOf.get(lane) ?? TTL_5M_MS),
        });
      }
      if (r.cache_creation_1h_input_tokens > 0) ttlOf.set(lane, TTL_1H_MS);
      else if (r.cache_creation_input_tokens > 0) ttlOf.set(lane, TTL_5M_MS);
      if (r.cache_read_input_tokens >= WARM_MIN_TOKENS) warm.set(lane, r);
      else if (prev && r.cache_creation_input_tokens > 0) warm.delete(lane); // rewritten: the next read counts as warm again
    }
  }
  return out.sort((a, b) => a.time.localeCompare(b.time));
}

/** Why `r` found `prev`'s warm prefix cold; `ttl`: the lifetime that prefix was written with, ms. */
function likelyCause(prev: UsageRecord, r: UsageRecord, ttl: number): string {
  const gapMs = Date.parse(r.time) - (Date.parse(prev.time) + prev.latency_ms);
  if (gapMs > ttl) return `idle for ${Math.round(gapMs / 60_000)} min, longer than the ${ttl === TTL_1H_MS ? '1-hour' : '5-minute'} cache lifetime`;
  if (prev.model !== r.model) return `model switched from ${prev.model} to ${r.model} (each model has its own cache)`;
  if (prev.facts && r.facts && prev.facts.tools !== r.facts.tools) return `tools changed (${prev.facts.tools} -> ${r.facts.tools} definitions)`;
  return 'the prompt prefix changed (system prompt or tools edited, or the conversation compacted)';
}

const empty = (group: string): CacheRow => ({ group, requests: 0, input_tokens: 0, cache_write_5m_tokens: 0, cache_write_1h_tokens: 0, cache_read_tokens: 0, hit_share: 0, saved_usd: 0, breaks: 0 });

/** Groups `records` by `by` with hit share, savings and breaks; rows sorted by saved USD, descending. */
export function buildCacheReport(records: UsageRecord[], by: CacheGroupBy, prices: PriceTable, since: string, until: string): CacheReport {
  const rows = new Map<string, CacheRow>();
  const totals = empty('TOTAL');
  const breaks = cacheBreaks(records);
  const breakIds = new Set(breaks.map((b) => b.request_id));
  for (const r of records) {
    const g = groupOf(r, by);
    const row = rows.get(g) ?? empty(g);
    rows.set(g, row);
    const saved = cacheSavedUsd(r, prices) ?? 0;
    for (const x of [row, totals]) {
      x.requests++;
      x.input_tokens += r.input_tokens;
      x.cache_write_5m_tokens += r.cache_creation_5m_input_tokens;
      x.cache_write_1h_tokens += r.cache_creation_1h_input_tokens;
      x.cache_read_tokens += r.cache_read_input_tokens;
      x.saved_usd += saved;
      if (breakIds.has(r.request_id)) x.breaks++;
    }
  }
  const close = (x: CacheRow): CacheRow => {
    const all = x.input_tokens + x.cache_write_5m_tokens + x.cache_write_1h_tokens + x.cache_read_tokens;
    x.hit_share = all ? Math.round((x.cache_read_tokens / all) * 10_000) / 10_000 : 0;
    x.saved_usd = Math.round(x.saved_usd * 1e6) / 1e6;
    return x;
  };
  return { since, until, by, rows: [...rows.values()].map(close).sort((a, b) => b.saved_usd - a.saved_usd), totals: close(totals), breaks };
}

/** The report as a table followed by the breaks, or as JSON. */
export function renderCacheReport(r: CacheReport, format: 'table' | 'json' | 'csv'): string {
  if (format === 'json') return JSON.stringify(r, null, 2);
  const cols = ['requests', 'input_tokens', 'cache_write_5m_tokens', 'cache_write_1h_tokens', 'cache_read_tokens', 'hit_share', 'saved_usd', 'breaks'] as const;
  const cells = [[r.by, ...cols], ...[...r.rows, r.totals].map((x) => [x.group, ...cols.map((c) => String(x[c]))])];
  if (format === 'csv') return cells.map((row) => row.map((c) => (/[",\n]/.test(c) ? `"${c.replace(/"/g, '""')}"` : c)).join(',')).join('\n');
  const widths = cells[0]!.map((_, i) => Math.max(...cells.map((row) => row[i]!.length)));
  const lines = [`cache ${r.since} .. ${r.until}`, ...cells.map((row) => row.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  '))];
  lines.push('', r.breaks.length ? `cache breaks (${r.breaks.length}):` : 'cache breaks: none');
  for (const b of r.breaks) lines.push(`  ${b.time}  session ${b.session}${b.user ? ` (${b.user})` : ''}  read ${b.read_before} -> ${b.read_after} tokens  ${b.request_id}: ${b.cause}`);
  return lines.join('\n');
}
