/**
 * Throttle enforcement (DESIGN §3 stage 4): every throttle of the decision must admit the request. Slots
 * and tokens are taken in the state store under `throttle:<rule>:<scope>:<value>:<limit>`, so counters
 * survive rule reloads and are shared by replicas on Redis. A refusal is 429 `rate_limit_error` with
 * `retry-after` and a message naming the rule and the limit; a shadow throttle only logs. The hold settles
 * when the request ends: output tokens charged and slots freed when it did work, everything given back when
 * it did none (a later stage refused it, or the upstream refused it before the first byte: 429/529).
 */
import { ThrottledError } from '../../errors.js';
import type { Logger } from '../../log.js';
import type { RequestContext } from '../../rules/context.js';
import type { Decision } from '../../rules/decision.js';
import type { BucketSpec, Slot, StateStore } from '../../state/store.js';
import { scopeValue } from '../scope.js';
import type { EnforceDeps, Enforcer, Hold } from '../types.js';
import type { Throttle } from './spec.js';

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
 * @throws whatever the state store throws (Redis down with `on_failure.throttles: deny`: 503).
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

/** The throttle enforcer: admits with {@link admit}; the hold charges or refunds the ticket when the request ends. */
export function throttleEnforcer(deps: Pick<EnforceDeps, 'state' | 'log'>): Enforcer {
  return {
    async admit(a): Promise<Hold | null> {
      if (!a.decision.throttles.length) return null;
      const ticket = await admit(a.decision, a.rc, deps.state, deps.log, a.requestId);
      return {
        async settle(end) {
          try {
            await (end.worked ? ticket.done(end.outputTokens) : ticket.refund());
          } catch (err) {
            // A state store failure here is logged, never thrown at the client.
            deps.log.error({ request_id: a.requestId, err: (err as Error).message }, 'could not settle throttle counters');
          }
        },
      };
    },
  };
}
