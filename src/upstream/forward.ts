/**
 * Forwarding with key pools, retries, circuit breakers and the fallback chain — all before the first byte
 * reaches the client. Retries are few (Claude Code retries up to 10 times itself) and prefer another key:
 * a 429 puts the key on cooldown and moves on at once; a 401/403 takes the key out of the pool (logged
 * loudly, by fingerprint); connection errors, 408, 5xx and 529 back off with full jitter within the
 * provider's retry budget; then the route's fallback providers are tried in order. `x-should-retry: false`
 * from the upstream is final. When every attempt failed with an answer, the last answer is passed through
 * unchanged (its status and body are what Claude Code's recovery reads).
 */
import { Readable } from 'node:stream';
import { BrokenCircuitError, CircuitState, ConsecutiveBreaker, circuitBreaker, handleWhen, type CircuitBreakerPolicy } from 'cockatiel';
import type { ProviderConfig } from './providers/provider-config.js';
import { KeysCoolingError, NoUpstreamError, UpstreamCredentialsError, UpstreamError } from '../errors.js';
import type { Logger } from '../log.js';
import type { StateStore } from '../state/store.js';
import type { RequestTrace } from '../telemetry.js';
import { type ClientPresence, MAX_ERROR_BODY_BYTES, type UpstreamAnswer, type UpstreamClient, type UpstreamResponse, upstreamUrl } from './client.js';
import { credentialFor } from './headers.js';
import type { OutgoingRequest } from './providers/types.js';
import { cooldownMs, KeyPool, type PooledKey } from './pool.js';

/** Everything forwarding needs that outlives one request. */
export interface Upstreams {
  client: UpstreamClient;
  pools: PoolRegistry;
  breakers: BreakerRegistry;
  state: StateStore;
  log: Logger;
  /** Called when a key goes on cooldown (metrics). */
  onCooldown?: (provider: string) => void;
}

/** One request to forward. */
export interface ForwardPlan {
  /** The route's provider, then its fallbacks. */
  chain: ProviderConfig[];
  /** The request for a provider, built by its adapter (called once per provider tried). */
  requestFor(provider: ProviderConfig): OutgoingRequest;
  /** Whether `clients:` is configured (then a client's own key is never forwarded). */
  clientsConfigured: boolean;
  /** Sticky-session key: the Claude Code session, else the client id. */
  session: string;
  /** The client: forwarding stops when it goes away (its reason is thrown) and the call in flight is aborted. */
  client: ClientPresence;
  requestId: string;
  /** performance.now() when the request arrived (for the retry budget). */
  started: number;
  /** A streaming request (`stream: true`): its headers wait at most `timeouts.first_byte_ms`. */
  stream: boolean;
  /** Counts every attempt made, also when forwarding ends in an error (the usage record's `retries`). */
  stats: { attempts: number };
  /** Called as each attempt starts: progress, for the watchdog (each attempt is bounded by the provider's timeouts). */
  onAttempt?: () => void;
  /** The request's span: each attempt gets a child span and sends its `traceparent` (null when telemetry is off). */
  trace?: RequestTrace | null;
  /**
   * Resource affinity (affinity.ts): every attempt uses this key (its fingerprint) and no other, because only it
   * finds `what` (e.g. `file "file_011…"`); null: the pool chooses.
   */
  pin?: { key: string; what: string } | null;
}

/** What was forwarded where. */
export interface Forwarded {
  answer: UpstreamAnswer;
  provider: string;
  /** Fingerprint of the upstream key used, or null in transparent mode. */
  key: string | null;
  /** Call when the answer is over (frees the key's in-flight slot). */
  release(): void;
}

/** Pools by provider; a changed key list (config reload) gets a fresh pool. */
export class PoolRegistry {
  private readonly pools = new Map<string, KeyPool>();

  for(p: ProviderConfig): KeyPool {
    const id = `${p.name}\0${p.key_strategy}\0${p.keys.join('\0')}`;
    let pool = this.pools.get(id);
    if (!pool) {
      pool = new KeyPool(p.name, p.keys, p.key_strategy);
      for (const [other, old] of this.pools) if (old.provider === p.name) this.pools.delete(other);
      this.pools.set(id, pool);
    }
    return pool;
  }

  /** All pools, for /admin/providers. */
  all(): KeyPool[] {
    return [...this.pools.values()];
  }
}

/** One cockatiel circuit breaker per provider (ConsecutiveBreaker + half-open probe). */
export class BreakerRegistry {
  private readonly breakers = new Map<string, { spec: string; policy: CircuitBreakerPolicy }>();

  for(p: ProviderConfig): CircuitBreakerPolicy {
    const spec = `${p.breaker.failures}/${p.breaker.cooldown_ms}/${p.breaker.statuses?.join(',') ?? '5xx'}`;
    const existing = this.breakers.get(p.name);
    if (existing && existing.spec === spec) return existing.policy;
    const policy = circuitBreaker(
      handleWhen((err) => isUpstreamFault(err, p)),
      { halfOpenAfter: p.breaker.cooldown_ms, breaker: new ConsecutiveBreaker(p.breaker.failures) },
    );
    this.breakers.set(p.name, { spec, policy });
    return policy;
  }

  /** Provider name to `closed` / `open` / `half_open` / `isolated`. */
  states(): Record<string, string> {
    const names: Record<number, string> = { [CircuitState.Closed]: 'closed', [CircuitState.Open]: 'open', [CircuitState.HalfOpen]: 'half_open', [CircuitState.Isolated]: 'isolated' };
    return Object.fromEntries([...this.breakers].map(([name, b]) => [name, names[b.policy.state] ?? 'unknown']));
  }
}

/**
 * Frees a key's in-flight slot, once. Built outside `forward` on purpose: the returned function lives as long
 * as the answer streams, and a closure inside `forward` would keep the whole request (its body, the plan)
 * reachable for that long.
 */
function releaser(key: PooledKey | null): () => void {
  let done = false;
  return () => {
    if (key && !done) key.inFlight--;
    done = true;
  };
}

/** Thrown inside the breaker for answers that count as failures, carrying the answer. */
class FailedAnswer extends Error {
  constructor(readonly answer: UpstreamResponse) {
    super(`upstream answered ${answer.statusCode}`);
  }
}

/**
 * Whether an error thrown inside the breaker is a fault of the upstream: a transport failure (refused,
 * reset, DNS, TLS, timeout: an {@link UpstreamError}) or an answer with a 5xx status (`breaker.statuses`
 * narrows which). A client hang-up (the abort signal's reason), a 4xx answer or anything the gateway
 * itself threw never counts: one impatient client must not open the circuit for everyone.
 */
export function isUpstreamFault(err: unknown, p: ProviderConfig): boolean {
  if (err instanceof FailedAnswer) return p.breaker.statuses ? p.breaker.statuses.includes(err.answer.statusCode) : err.answer.statusCode >= 500;
  return err instanceof UpstreamError;
}

/**
 * Reads a (small, error) answer so it can be passed through after the retries, up to
 * {@link MAX_ERROR_BODY_BYTES}: a larger body is dropped unread and replaced by an Anthropic-shaped error
 * that says so, so a misbehaving upstream cannot make the gateway hold hundreds of MB.
 */
async function buffer(answer: UpstreamResponse, provider: string): Promise<UpstreamAnswer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of answer.body as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_ERROR_BODY_BYTES) {
      answer.body.destroy();
      const status = answer.statusCode;
      const type = status === 429 ? 'rate_limit_error' : status === 529 ? 'overloaded_error' : status >= 500 ? 'api_error' : 'invalid_request_error';
      const body = JSON.stringify({
        type: 'error',
        error: { type, message: `provider "${provider}" answered ${status} with an error body over ${MAX_ERROR_BODY_BYTES} bytes; switchyard did not keep it` },
      });
      const headers: UpstreamResponse['headers'] = { ...answer.headers, 'content-type': 'application/json' };
      delete headers['content-length'];
      delete headers['content-encoding'];
      return { statusCode: status, headers, body: Readable.from([Buffer.from(body)]) };
    }
    chunks.push(chunk);
  }
  return { statusCode: answer.statusCode, headers: answer.headers, body: Readable.from([Buffer.concat(chunks, size)]) };
}

/** Waits `ms`, or rejects with the client's reason as soon as it goes away. */
function pause(ms: number, client: ClientPresence): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      unwatch();
      resolve();
    }, ms);
    const unwatch = client.onGone((reason) => {
      clearTimeout(timer);
      reject(reason);
    });
  });
}

const shouldNotRetry = (a: UpstreamResponse) => String(a.headers['x-should-retry'] ?? '').toLowerCase() === 'false';

/**
 * Forwards with retries and failover.
 * @throws GatewayError: 429 when every key is cooling (with the earliest retry-after), 503 when circuits
 * are open, else the last transport error (502/504) naming provider and URL; the signal's reason on abort.
 */
export async function forward(u: Upstreams, plan: ForwardPlan): Promise<Forwarded> {
  let attempts = 0;
  let lastAnswer: UpstreamAnswer | null = null;
  let lastError: unknown = null;
  let earliestCooling = Infinity;
  const coolingProviders: string[] = [];
  const deadline = (p: ProviderConfig) => plan.started + p.retries.budget_ms;

  for (const provider of plan.chain) {
    const pool = u.pools.for(provider);
    const breaker = u.breakers.for(provider);
    const tried = new Set<number>();
    const outgoing = plan.requestFor(provider);
    let backoff = false;
    for (let attempt = 0; attempt <= provider.retries.max; attempt++) {
      if (plan.client.goneReason) throw plan.client.goneReason;
      if (backoff) {
        const cap = Math.min(provider.retries.max_delay_ms, provider.retries.base_delay_ms * 2 ** attempt);
        const delay = Math.random() * cap; // full jitter
        if (performance.now() + delay > deadline(provider)) break;
        await pause(delay, plan.client);
      }
      let key: PooledKey | null = null;
      if (plan.pin && pool.keys.length) {
        const pinned = pool.keys.find((k) => k.fingerprint === plan.pin!.key);
        if (!pinned || pinned.failed) {
          const why = pinned ? 'was refused (401/403)' : 'is no longer in its keys';
          lastError ??= new NoUpstreamError('SY_NO_KEYS', `provider "${provider.name}": the key ${plan.pin.key} that holds ${plan.pin.what} ${why}; only that key can reach it`);
          break;
        }
        const [until] = await u.state.cooldowns([pool.cooldownId(pinned)]);
        if (until! > Date.now()) {
          earliestCooling = Math.min(earliestCooling, until!);
          coolingProviders.push(provider.name);
          break;
        }
        key = pinned;
      } else if (pool.keys.length) {
        const cooling = await u.state.cooldowns(pool.keys.map((k) => pool.cooldownId(k)));
        let choice = pool.choose(plan.session, cooling, Date.now(), tried);
        if (choice.kind === 'none' && pool.keys.some((k) => !k.failed)) {
          tried.clear(); // every usable key was tried once: the same ones again
          choice = pool.choose(plan.session, cooling, Date.now(), tried);
        }
        if (choice.kind === 'cooling') {
          earliestCooling = Math.min(earliestCooling, choice.until);
          coolingProviders.push(provider.name);
          break;
        }
        if (choice.kind === 'none') {
          lastError ??= new NoUpstreamError('SY_NO_KEYS', `provider "${provider.name}": every upstream key was refused (401/403); check the keys in the config`);
          break;
        }
        key = choice.key;
        tried.add(key.index);
      }
      const credential = credentialFor(key?.key, plan.clientsConfigured);
      attempts++;
      plan.stats.attempts = attempts;
      plan.onAttempt?.();
      if (key) key.inFlight++;
      const release = releaser(key);
      let answer: UpstreamResponse;
      try {
        answer = await breaker.execute(async () => {
          let headers = outgoing.headers(credential);
          const span = plan.trace ? plan.trace.attempt(provider, upstreamUrl(provider, outgoing.pathAndQuery)) : null;
          if (span) headers = { ...headers, traceparent: span.traceparent };
          let a: UpstreamResponse;
          try {
            a = await u.client.send(provider, {
              method: outgoing.method,
              pathAndQuery: outgoing.pathAndQuery,
              headers: outgoing.sign ? await outgoing.sign(headers, credential) : headers,
              body: outgoing.body,
              client: plan.client,
              stream: plan.stream,
            });
          } catch (err) {
            span?.end(null, (err as Error).message);
            throw err;
          }
          span?.end(a.statusCode);
          if (a.statusCode >= 500) throw new FailedAnswer(a);
          return a;
        });
      } catch (err) {
        release();
        if (plan.client.goneReason) throw plan.client.goneReason;
        if (err instanceof UpstreamCredentialsError) {
          lastError = err; // no attempt at this provider can succeed: on to the fallbacks
          u.log.error({ request_id: plan.requestId, provider: provider.name, error: err.message }, 'provider credentials unavailable');
          break;
        }
        if (err instanceof BrokenCircuitError) {
          lastError = new NoUpstreamError(
            'SY_CIRCUIT_OPEN',
            `provider "${provider.name}": circuit open after ${provider.breaker.failures} consecutive failures; the next probe goes through ${Math.round(provider.breaker.cooldown_ms / 1000)} s after it opened`,
          );
          u.log.warn({ request_id: plan.requestId, provider: provider.name }, 'circuit open: skipping provider');
          break;
        }
        if (err instanceof FailedAnswer) {
          if (shouldNotRetry(err.answer)) return { answer: err.answer, provider: provider.name, key: key?.fingerprint ?? null, release: () => {} };
          lastAnswer = await buffer(err.answer, provider.name);
        } else {
          lastError = err;
        }
        u.log.warn(
          {
            request_id: plan.requestId,
            provider: provider.name,
            key_fingerprint: key?.fingerprint,
            attempt: attempts,
            error: err instanceof FailedAnswer ? `status ${err.answer.statusCode}` : (err as Error).message,
          },
          'upstream attempt failed',
        );
        backoff = true;
        continue;
      }
      const remaining = Number(answer.headers['anthropic-ratelimit-requests-remaining']);
      if (key && Number.isFinite(remaining)) key.remaining = remaining;
      const status = answer.statusCode;
      if ((status === 429 || status === 408) && !shouldNotRetry(answer)) {
        release();
        if (status === 429 && key) {
          await u.state.setCooldown(pool.cooldownId(key), Date.now() + cooldownMs(answer.headers, Date.now()));
          u.onCooldown?.(provider.name);
        }
        lastAnswer = await buffer(answer, provider.name);
        u.log.warn(
          { request_id: plan.requestId, provider: provider.name, key_fingerprint: key?.fingerprint, attempt: attempts, status },
          status === 429 ? 'upstream key rate-limited: cooling down, trying the next key' : 'upstream timeout (408): retrying',
        );
        backoff = status === 408 || !key;
        if (status === 429 && !key) break; // transparent mode: the client's own key is rate-limited; pass it on
        continue;
      }
      if ((status === 401 || status === 403) && key) {
        release();
        key.failed = true;
        u.log.error(
          { provider: provider.name, key_fingerprint: key.fingerprint, status },
          `upstream key ${key.fingerprint} of provider "${provider.name}" was refused (${status}); it is out of the pool until the config changes`,
        );
        lastAnswer = await buffer(answer, provider.name);
        continue;
      }
      return { answer, provider: provider.name, key: key?.fingerprint ?? null, release };
    }
  }
  if (earliestCooling < Infinity && (lastAnswer === null || lastAnswer.statusCode === 429)) {
    const s = Math.max(1, Math.ceil((earliestCooling - Date.now()) / 1000));
    throw new KeysCoolingError(`every upstream key of ${coolingProviders.map((p) => `"${p}"`).join(', ')} is cooling down after rate limits; retry after ${s} s`, s);
  }
  if (lastAnswer) return { answer: lastAnswer, provider: plan.chain.at(-1)!.name, key: null, release: () => {} };
  throw lastError ?? new NoUpstreamError('SY_NO_UPSTREAM', 'no upstream could be tried for this request');
}
