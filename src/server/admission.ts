/**
 * Throttle admission (DESIGN §3 stage 4): every throttle of the decision must admit the request. Slots
 * and tokens are taken in the state store under `throttle:<rule>:<scope>:<value>:<limit>`, so counters
 * survive rule reloads and are shared by replicas on Redis. A refusal is 429 `rate_limit_error` with
 * `retry-after` and a message naming the rule and the limit; a shadow throttle only logs. The returned
 * ticket charges output tokens and frees concurrency slots when the answer is over.
 */
import { BudgetSpentError, ThrottledError } from '../errors.js';
import type { Logger } from '../log.js';
import type { RequestContext } from '../rules/context.js';
import type { BudgetSpec } from '../actions/budget.js';
import type { Throttle } from '../actions/throttle.js';
import type { Decision } from '../rules/decision.js';
import type { BucketSpec, Slot, StateStore } from '../state/store.js';

/** What admission hands back: call `done` or `refund` once when the request is over (later calls do nothing). */
export interface Ticket {
  /** The answer is over: frees slots and charges the output tokens the upstream reported (0 when unknown). */
  done(outputTokens: number): Promise<void>;
  /**
   * The request did no work (a later stage refused it, or the upstream refused it before the first byte:
   * 429/529): frees slots and gives back the request and input tokens taken, so a refusal elsewhere does
   * not spend this throttle.
   */
  refund(): Promise<void>;
}

const MINUTE_MS = 60_000;

/** What a scope can count a request by: its client id, session, model, user, project and billing tags. */
export interface ScopeFacts {
  client: string;
  session: string | null;
  model: string;
  user: string;
  project: string | null;
  tags: Record<string, string>;
}

/**
 * The value a throttle or budget `scope` counts under, from a request's facts — the one definition admission
 * (a live request) and the dashboard (a usage record) share: `*` for global, `client:<id>` for a session-less
 * request's session, `(no project)` and `(untagged)` for what is missing.
 */
export function scopeValueOf(scope: string, f: ScopeFacts): string {
  if (scope === 'global') return '*';
  if (scope === 'key' || scope === 'client') return f.client;
  if (scope === 'session') return f.session ?? `client:${f.client}`;
  if (scope === 'model') return f.model;
  if (scope === 'user') return f.user;
  if (scope === 'project') return f.project ?? '(no project)';
  return f.tags[scope.slice(4)] ?? '(untagged)';
}

/** The value a throttle or budget `scope` counts this request under. */
export function scopeValue(scope: string, rc: RequestContext, d: Decision): string {
  return scopeValueOf(scope, { client: rc.client.id, session: rc.session.id, model: d.route.model, user: rc.user.id, project: rc.project, tags: d.tags });
}

const bucket = (perMinute: number, burst: number): BucketSpec => ({ capacity: Math.max(1, perMinute * burst), refillPerMs: perMinute / MINUTE_MS });

/** The state-store key prefix of a throttle's counters for one scope value (`:rpm`, `:itpm`, `:otpm`, `:concurrent` follow). */
const throttleBase = (t: Throttle, value: string) => `throttle:${t.rule}:${t.scope}:${value}`;

/**
 * Puts a throttle's counters for `value` where `used` says, as if those requests (input tokens, requests in
 * flight) had been admitted this minute: what `switchyard test` cases state before their request.
 */
export async function useThrottle(store: StateStore, t: Throttle, value: string, used: { requests?: number; input_tokens?: number; concurrent?: number }): Promise<void> {
  const base = throttleBase(t, value);
  if (used.requests && t.requests_per_minute !== undefined) await store.charge(`${base}:rpm`, used.requests, bucket(t.requests_per_minute, t.burst));
  if (used.input_tokens && t.input_tokens_per_minute !== undefined) await store.charge(`${base}:itpm`, used.input_tokens, bucket(t.input_tokens_per_minute, t.burst));
  for (let i = 0; i < (used.concurrent ?? 0) && t.concurrent !== undefined; i++) await store.acquire(`${base}:concurrent`, t.concurrent);
}

/**
 * Admits the request or throws. Takes concurrency slots first, then request and input-token tokens, and
 * checks the output-token bucket is out of debt; on a refusal the slots and tokens taken are given back.
 * @throws ThrottledError (429) naming the rule and limit, with retry-after in seconds.
 * @throws whatever the state store throws (e.g. Redis down): the caller answers 503.
 */
export async function admit(decision: Decision, rc: RequestContext, store: StateStore, log: Logger, requestId: string): Promise<Ticket> {
  const throttles = decision.throttles;
  const slots: Slot[] = [];
  const taken: Array<{ key: string; cost: number; spec: BucketSpec }> = [];
  const output: Array<{ key: string; spec: BucketSpec }> = [];
  const giveBack = () => Promise.all([...slots.map((s) => s.release()), ...taken.map((t) => store.charge(t.key, -t.cost, t.spec))]);
  try {
    for (const t of throttles) {
      const value = scopeValue(t.scope, rc, decision);
      const base = throttleBase(t, value);
      const refuse = (limit: string, amount: number, retryAfterMs: number) => {
        const retryS = Math.max(1, Math.ceil(retryAfterMs / 1000));
        const message = `throttled by rule "${t.rule}": ${limit} ${amount} for ${t.scope} "${value}" is exhausted; retry after ${retryS} s`;
        if (t.shadow) {
          log.warn({ request_id: requestId, rule: t.rule, scope: t.scope, limit }, `shadow throttle would refuse: ${message}`);
          return;
        }
        throw new ThrottledError(t.rule, message, retryS);
      };
      const take = async (suffix: string, cost: number, spec: BucketSpec, limit: string, amount: number) => {
        const key = `${base}:${suffix}`;
        const r = await store.take(key, cost, spec);
        if (r.ok) {
          if (cost > 0) taken.push({ key, cost, spec });
        } else refuse(limit, amount, r.retryAfterMs);
      };
      if (t.concurrent !== undefined) {
        const slot = await store.acquire(`${base}:concurrent`, t.concurrent);
        if (slot) slots.push(slot);
        else refuse('concurrent', t.concurrent, 1000);
      }
      if (t.requests_per_minute !== undefined) await take('rpm', 1, bucket(t.requests_per_minute, t.burst), 'requests_per_minute', t.requests_per_minute);
      if (t.input_tokens_per_minute !== undefined) await take('itpm', rc.estimate.input_tokens, bucket(t.input_tokens_per_minute, t.burst), 'input_tokens_per_minute', t.input_tokens_per_minute);
      if (t.output_tokens_per_minute !== undefined) {
        const spec = bucket(t.output_tokens_per_minute, t.burst);
        await take('otpm', 0, spec, 'output_tokens_per_minute', t.output_tokens_per_minute);
        output.push({ key: `${base}:otpm`, spec });
      }
    }
  } catch (err) {
    // A later limit refused: what the earlier ones took is given back.
    await giveBack().catch(() => {});
    throw err;
  }
  let finished = false;
  return {
    async done(outputTokens) {
      if (finished) return;
      finished = true;
      await Promise.all([...slots.map((s) => s.release()), ...(outputTokens > 0 ? output.map((o) => store.charge(o.key, outputTokens, o.spec)) : [])]);
    },
    async refund() {
      if (finished) return;
      finished = true;
      await giveBack();
    },
  };
}

/** The calendar period (UTC) containing `now`: a day, a week from Monday, or a month. */
export function periodOf(per: BudgetSpec['per'], now: Date): { start: Date; end: Date } {
  const y = now.getUTCFullYear();
  const m = now.getUTCMonth();
  const d = now.getUTCDate();
  if (per === 'month') return { start: new Date(Date.UTC(y, m, 1)), end: new Date(Date.UTC(y, m + 1, 1)) };
  if (per === 'week') {
    const sinceMonday = (now.getUTCDay() + 6) % 7;
    return { start: new Date(Date.UTC(y, m, d - sinceMonday)), end: new Date(Date.UTC(y, m, d - sinceMonday + 7)) };
  }
  return { start: new Date(Date.UTC(y, m, d)), end: new Date(Date.UTC(y, m, d + 1)) };
}

/** The state-store key of a budget's running total for one scope value and the period starting at `start`. */
export function budgetKey(b: Pick<BudgetSpec, 'rule' | 'scope'>, value: string, start: Date): string {
  return `budget:${b.rule}:${b.scope}:${value}:${start.toISOString().slice(0, 10)}`;
}

/** When a budget total for the period ending at `end` may be forgotten: a day after the period, epoch ms. */
export function budgetExpiry(end: Date): number {
  return end.getTime() + 86_400_000;
}

/** Running-total keys a request's cost is added to when it finishes, with what notifying needs. */
export interface BudgetCharge {
  key: string;
  expiresAtMs: number;
  budget: BudgetSpec;
  /** The scope value it counts under, and its current period. */
  value: string;
  period: { start: Date; end: Date };
}

const usd = (n: number) => `$${n.toFixed(n < 1 ? 4 : 2)}`;

/**
 * Checks every budget of the decision against its running total.
 * @returns the keys to charge when the request finishes, warnings for budgets past `warn_at`, and the first
 * budget past its `shape.at` (the model to send the request to instead), if any.
 * @throws BudgetSpentError (429, x-should-retry: false) naming the budget, the amount spent and the reset time.
 */
export async function checkBudgets(
  decision: Decision,
  rc: RequestContext,
  store: StateStore,
  now = new Date(),
): Promise<{ charges: BudgetCharge[]; warnings: Array<{ key: string; message: string }>; shape: { rule: string; model: string; message: string } | null }> {
  const charges: BudgetCharge[] = [];
  const warnings: Array<{ key: string; message: string }> = [];
  let shape: { rule: string; model: string; message: string } | null = null;
  for (const b of decision.budgets) {
    const value = scopeValue(b.scope, rc, decision);
    const { start, end } = periodOf(b.per, now);
    const key = budgetKey(b, value, start);
    const spent = await store.spend(key);
    if (spent >= b.usd && b.block !== false) {
      throw new BudgetSpentError(
        b.rule,
        `budget "${b.rule}" of ${usd(b.usd)} per ${b.per} for ${b.scope} "${value}" is spent (${usd(spent)}); it resets at ${end.toISOString()}`,
        Math.max(1, Math.ceil((end.getTime() - now.getTime()) / 1000)),
      );
    }
    if (b.warn_at !== undefined && spent >= b.warn_at * b.usd) {
      warnings.push({ key, message: `budget "${b.rule}": ${usd(spent)} of ${usd(b.usd)} per ${b.per} spent for ${b.scope} "${value}" (${Math.round((spent / b.usd) * 100)}%)` });
    }
    if (b.shape && !shape && spent >= b.shape.at * b.usd) {
      shape = { rule: b.rule, model: b.shape.model, message: `budget "${b.rule}" at ${Math.round((spent / b.usd) * 100)}% for ${b.scope} "${value}": sent to ${b.shape.model}` };
    }
    charges.push({ key, expiresAtMs: budgetExpiry(end), budget: b, value, period: { start, end } });
  }
  return { charges, warnings, shape };
}
