/**
 * Spend limits set through an admin API with the wire shape of Anthropic's Admin API spend-limits endpoints
 * (https://platform.claude.com/docs/en/api/beta/organization/spend_limits: `POST /v1/organizations/spend_limits`
 * upserts on scope and period, `GET` lists `{data, next_page}`, `GET …/{id}`, `DELETE …/{id}`; a limit is
 * `{type: "spend_limit", id: "spl_…", amount, currency, is_enabled, period, scope, created_at, updated_at}` with
 * `amount` a decimal string of cents, or null for an explicit "no limit"), so clients written for it — the
 * official SDK's `beta.organization.spendLimits` — work against Switchyard. Scopes: `{type: "user", user_id}`
 * (the user as usage records name it), `{type: "workspace", workspace_id}` (a project, the project header) and
 * `{type: "organization"}` (everything); periods daily, weekly, monthly (calendar-aligned, UTC). Switchyard
 * adds `expires_at`: a temporary limit (an override for a busy week) that stops applying at that time.
 *
 * Limits are stored in the ledger database (SQLite or PostgreSQL) and enforced as budgets that block: for a
 * request they apply to, a limit replaces the YAML budgets of the same scope kind and period (an amount of
 * null removes them), and adds itself when there are none.
 */
import { randomBytes } from 'node:crypto';
import type { BudgetSpec } from '../actions/budget/index.js';
import type { SpendLimitSource } from '../actions/types.js';
import { InvalidRequestError } from '../errors.js';
import type { RequestContext } from '../rules/context.js';
import type { SpendLimitStore, StoredSpendLimit } from './ledger.js';

/** A spend limit on the wire. */
export interface WireSpendLimit {
  type: 'spend_limit';
  id: string;
  amount: string | null;
  currency: 'USD';
  is_enabled: true;
  period: StoredSpendLimit['period'];
  scope: { type: 'user'; user_id: string } | { type: 'workspace'; workspace_id: string } | { type: 'organization' };
  created_at: string;
  updated_at: string;
  expires_at: string | null;
}

const PERIODS = { daily: 'day', weekly: 'week', monthly: 'month' } as const;
const SCOPES: Record<StoredSpendLimit['scope_type'], BudgetSpec['scope']> = { user: 'user', workspace: 'project', organization: 'global' };

/** True while a limit applies: it has no expiry, or its expiry is after `nowIso`. */
export const limitActive = (l: StoredSpendLimit, nowIso: string) => l.expires_at === null || l.expires_at > nowIso;

/** The budget a limit is enforced as (rule id = the limit's id), or null for an explicit "no limit". */
export function limitBudget(l: StoredSpendLimit): BudgetSpec | null {
  return l.amount === null ? null : { rule: l.id, scope: SCOPES[l.scope_type], usd: Number(l.amount) / 100, per: PERIODS[l.period] };
}

/** The wire form of a stored limit. */
export function toWire(l: StoredSpendLimit): WireSpendLimit {
  const scope: WireSpendLimit['scope'] =
    l.scope_type === 'user' ? { type: 'user', user_id: l.scope_id } : l.scope_type === 'workspace' ? { type: 'workspace', workspace_id: l.scope_id } : { type: 'organization' };
  return { type: 'spend_limit', id: l.id, amount: l.amount, currency: 'USD', is_enabled: true, period: l.period, scope, created_at: l.created_at, updated_at: l.updated_at, expires_at: l.expires_at };
}

/**
 * Checks a `POST /v1/organizations/spend_limits` body.
 * @throws InvalidRequestError (400) naming the field and what is accepted.
 */
export function parseSetBody(body: unknown, now = new Date()): Omit<StoredSpendLimit, 'id' | 'created_at' | 'updated_at'> {
  const b = body as { amount?: unknown; scope?: { type?: unknown; user_id?: unknown; workspace_id?: unknown }; period?: unknown; expires_at?: unknown } | null;
  if (!b || typeof b !== 'object') throw new InvalidRequestError('spend limit: the body must be a JSON object {amount, scope, period}');
  if (b.amount !== null && (typeof b.amount !== 'string' || !/^\d+$/.test(b.amount))) {
    throw new InvalidRequestError('spend limit: amount must be a non-negative integer string of cents ("50000" is $500.00), or null for no limit');
  }
  const period = b.period ?? 'monthly';
  if (typeof period !== 'string' || !(period in PERIODS)) throw new InvalidRequestError(`spend limit: unknown period ${JSON.stringify(period)}; expected daily, weekly or monthly`);
  const s = b.scope;
  let scope_type: StoredSpendLimit['scope_type'];
  let scope_id = '';
  if (s?.type === 'user' && typeof s.user_id === 'string' && s.user_id) [scope_type, scope_id] = ['user', s.user_id];
  else if (s?.type === 'workspace' && typeof s.workspace_id === 'string' && s.workspace_id) [scope_type, scope_id] = ['workspace', s.workspace_id];
  else if (s?.type === 'organization') scope_type = 'organization';
  else throw new InvalidRequestError(`spend limit: unknown scope ${JSON.stringify(s ?? null)}; expected {type: "user", user_id}, {type: "workspace", workspace_id} or {type: "organization"}`);
  let expires_at: string | null = null;
  if (b.expires_at !== undefined && b.expires_at !== null) {
    const t = typeof b.expires_at === 'string' ? new Date(b.expires_at) : new Date(Number.NaN);
    if (Number.isNaN(t.getTime()) || t <= now) throw new InvalidRequestError('spend limit: expires_at must be an ISO time in the future');
    expires_at = t.toISOString();
  }
  return { scope_type, scope_id, period: period as StoredSpendLimit['period'], amount: b.amount as string | null, expires_at };
}

/**
 * The limits of the ledger database, held in memory and applied to decisions without waiting on the ledger
 * (DESIGN §11.3): a request past `refreshMs` since the last read starts a read in the background
 * (stale-while-revalidate) and goes on with what is in memory; a read is given `readTimeoutMs` before it counts
 * as failed. While reads fail, the last good read keeps serving and {@link health} reports it.
 */
export class SpendLimits implements SpendLimitSource {
  private cached: StoredSpendLimit[] = [];
  /** Epoch ms of the last good read (0: never read). */
  private loadedAt = 0;
  private loading: Promise<void> | null = null;
  private lastError: string | null = null;
  private failingSince: number | null = null;

  /**
   * @param refreshMs how long a read of the table is used before it is read again (other replicas' writes show up within it).
   * @param readTimeoutMs how long one read may take before it counts as failed, ms.
   */
  constructor(
    private readonly store: SpendLimitStore,
    private readonly refreshMs = 10_000,
    private readonly readTimeoutMs = 2_000,
  ) {}

  /** All limits (read from the store, within `readTimeoutMs`). @throws when the store does not answer in time */
  async list(): Promise<StoredSpendLimit[]> {
    await this.refresh();
    return this.cached;
  }

  async set(body: unknown): Promise<StoredSpendLimit> {
    const now = new Date().toISOString();
    const stored = await this.store.putSpendLimit({ id: `spl_${randomBytes(12).toString('hex')}`, ...parseSetBody(body), created_at: now, updated_at: now });
    await this.refresh().catch(() => {});
    return stored;
  }

  async delete(id: string): Promise<boolean> {
    const gone = await this.store.deleteSpendLimit(id);
    await this.refresh().catch(() => {});
    return gone;
  }

  /**
   * Reads the table into memory, at most `readTimeoutMs`; one read at a time (a read still hanging past its
   * deadline is not started again until it settles).
   * @throws Error naming the timeout or the store's error.
   */
  refresh(): Promise<void> {
    this.loading ??= this.store
      .spendLimits()
      .then((rows) => {
        this.cached = rows;
        this.loadedAt = Date.now();
        this.lastError = null;
        this.failingSince = null;
      })
      .catch((err: Error) => this.fail(err.message))
      .finally(() => {
        this.loading = null;
      });
    const loading = this.loading;
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.fail(`no answer within ${this.readTimeoutMs} ms`);
        reject(new Error(this.lastError!));
      }, this.readTimeoutMs);
      timer.unref();
      void loading.then(() => {
        clearTimeout(timer);
        if (this.lastError && this.failingSince !== null) reject(new Error(this.lastError));
        else resolve();
      });
    });
  }

  private fail(message: string): void {
    this.lastError = message;
    this.failingSince ??= Date.now();
  }

  /** For /readyz: degraded while reads fail (the last good read, if any, keeps serving). */
  health(): { status: 'ok' | 'degraded'; last_read: string | null; last_error: string | null } {
    return {
      status: this.failingSince === null ? 'ok' : 'degraded',
      last_read: this.loadedAt ? new Date(this.loadedAt).toISOString() : null,
      last_error: this.lastError,
    };
  }

  /**
   * The budgets a request is held to: the rules' `budgets`, with the limits that apply to this request in
   * place of the rules' budgets of the same scope kind and period. Reads memory only; a stale read starts a
   * refresh in the background.
   * @throws Error when the table was never read (the caller decides to fail open or closed).
   */
  apply(budgets: BudgetSpec[], rc: RequestContext, now = new Date()): BudgetSpec[] {
    if (Date.now() - this.loadedAt >= this.refreshMs && !this.loading) this.refresh().catch(() => {});
    if (this.loadedAt === 0) throw new Error(this.lastError ?? 'the spend limits have not been read yet');
    const nowIso = now.toISOString();
    const applying = this.cached.filter(
      (l) => limitActive(l, nowIso) && (l.scope_type === 'organization' || (l.scope_type === 'user' && l.scope_id === rc.user.id) || (l.scope_type === 'workspace' && l.scope_id === rc.project)),
    );
    if (applying.length === 0) return budgets;
    const replaced = (b: BudgetSpec) => applying.some((l) => SCOPES[l.scope_type] === b.scope && PERIODS[l.period] === b.per);
    const fromApi = applying.map(limitBudget).filter((b): b is BudgetSpec => b !== null);
    return [...budgets.filter((b) => !replaced(b)), ...fromApi];
  }
}
