/**
 * `GET /v1/me/usage`: the calling client's own spend — today (UTC) and this month, each budget that applies to
 * it with its limit, what is spent (the same running total admission checks) and what is left, and its cache
 * hit share this month — so a developer's Claude Code status line can show it (examples/status-line/).
 * Answers are kept 5 s per client: a status line asks on every update (at most every 300 ms,
 * https://code.claude.com/docs/en/statusline).
 */
import type { IncomingHttpHeaders } from 'node:http';
import { LRUCache } from 'lru-cache';
import { budgetKey, periodOf } from '../actions/budget/enforce.js';
import { scopeValue } from '../actions/scope.js';
import type { Snapshot } from '../runtime.js';
import { buildContext } from '../rules/context.js';
import { evaluate } from '../rules/evaluate.js';
import type { StateStore } from '../state/store.js';
import type { RecordStore } from './ledger.js';
import type { SpendLimits } from './spend-limits.js';

/** What `/v1/me/usage` answers. USD; tokens. */
export interface MeUsage {
  client: string;
  today: { since: string; usd: number; requests: number };
  month: { since: string; usd: number; requests: number; cache_hit_share: number };
  budgets: Array<{ rule: string; scope: string; value: string; per: string; limit_usd: number; spent_usd: number; remaining_usd: number; resets_at: string }>;
}

const round = (n: number) => Math.round(n * 1e6) / 1e6;

/** Computes and caches the usage of one client. */
export class MeUsageService {
  private readonly cache = new LRUCache<string, MeUsage>({ max: 10_000, ttl: 5000 });

  constructor(
    private readonly ledger: Pick<RecordStore, 'query'> | null,
    private readonly state: StateStore,
    private readonly limits: SpendLimits | null = null,
  ) {}

  /**
   * @param clientId the configured client id, or the fingerprint of the caller's credential (as usage records name it).
   * @param headers the caller's request headers (rules that scope budgets by header see them).
   */
  async usage(snapshot: Snapshot, clientId: string, clientTags: Record<string, string> | undefined, headers: IncomingHttpHeaders, now = new Date()): Promise<MeUsage> {
    const hit = this.cache.get(clientId);
    if (hit) return hit;
    const day = periodOf('day', now).start.toISOString();
    const month = periodOf('month', now).start.toISOString();
    const records = this.ledger ? (await this.ledger.query(month, new Date(now.getTime() + 1000).toISOString())).filter((r) => r.client_id === clientId) : [];
    const sum = (rs: typeof records) => round(rs.reduce((a, r) => a + (r.cost_usd ?? 0), 0));
    const todays = records.filter((r) => r.time >= day);
    const reads = records.reduce((a, r) => a + r.cache_read_input_tokens, 0);
    const all = records.reduce((a, r) => a + r.input_tokens + r.cache_creation_input_tokens + r.cache_read_input_tokens, 0);
    // The budgets that apply to this client: the rules decide for a request from it, as admission would.
    const rc = buildContext({ path: '/v1/messages', body: {}, headers, bodyBytes: 0, clientId, clientTags, now });
    const d = await evaluate(snapshot.rules, rc, snapshot.config.default_provider);
    const applying = this.limits ? this.limits.apply(d.budgets, rc, now) : d.budgets;
    const budgets = await Promise.all(
      applying.map(async (b) => {
        const value = scopeValue(b.scope, rc, d);
        const { start, end } = periodOf(b.per, now);
        const spent = round(await this.state.spend(budgetKey(b, value, start)));
        return { rule: b.rule, scope: b.scope, value, per: b.per, limit_usd: b.usd, spent_usd: spent, remaining_usd: round(Math.max(0, b.usd - spent)), resets_at: end.toISOString() };
      }),
    );
    const out: MeUsage = {
      client: clientId,
      today: { since: day, usd: sum(todays), requests: todays.length },
      month: { since: month, usd: sum(records), requests: records.length, cache_hit_share: all ? Math.round((reads / all) * 10_000) / 10_000 : 0 },
      budgets,
    };
    this.cache.set(clientId, out);
    return out;
  }
}
