/**
 * The shared state store with a declared failure mode (DESIGN §10): Redis when it answers, and when it does
 * not — a command error, a command past its timeout, a connection refused or frozen — what the config says
 * for each use of the state:
 *   local (default) — this replica's own in-memory state: throttles and budgets count per replica, key
 *                     cooldowns seen here are kept; traffic keeps flowing;
 *   allow           — admit as if the limit were not there (throttles, budgets) / no key cooling;
 *   deny            — refuse the request (503 overloaded_error naming Redis).
 * Redis sits behind a circuit of its own (cockatiel): after 3 consecutive failures the store stops asking
 * it for `retry_ms` and goes straight to the fallback, so a dead Redis costs no latency; then one probe.
 * Every transition is logged once (warn on degrade, info on recovery), counted in metrics and shown in
 * `/readyz`. Cooldowns and spend are mirrored locally on every write, so the local view is as fresh as
 * this replica can make it when Redis goes away.
 */
import { BrokenCircuitError, circuitBreaker, ConsecutiveBreaker, handleAll, type CircuitBreakerPolicy } from 'cockatiel';
import { StateUnavailableError } from '../errors.js';
import type { Logger } from '../log.js';
import type { RedisStore } from './redis.js';
import { MemoryStore, type BucketSpec, type Slot, type StateStore, type TakeResult } from './store.js';

/** What a use of the state does while Redis is unavailable. */
export type FailureMode = 'local' | 'allow' | 'deny';

/** The uses of the shared state, each with its own failure mode. */
export interface FailureModes {
  /** Throttle buckets and concurrency slots. */
  throttles: FailureMode;
  /** Upstream key cooldowns (429). */
  cooldowns: FailureMode;
  /** Budget running totals. */
  budgets: FailureMode;
}

/** What `/readyz` and metrics show about the store. */
export interface StateHealth {
  kind: string;
  status: 'ok' | 'degraded';
  /** ISO time the current outage began. */
  since: string | null;
  last_error: string | null;
  /** Requests served by a fallback since start, by use. */
  fallbacks: Record<keyof FailureModes, number>;
}

/** Hooks for metrics. */
export interface StateObserver {
  onFallback?(use: keyof FailureModes, mode: FailureMode): void;
  onStatus?(degraded: boolean): void;
}

export class ResilientStore implements StateStore {
  readonly kind = 'redis';
  private readonly local = new MemoryStore();
  private readonly circuit: CircuitBreakerPolicy;
  private degradedSince: number | null = null;
  private lastError: string | null = null;
  private readonly fallbacks: Record<keyof FailureModes, number> = { throttles: 0, cooldowns: 0, budgets: 0 };

  /**
   * @param retryMs how long the circuit stays open before one probe goes to Redis again, ms.
   */
  constructor(
    private readonly remote: RedisStore,
    private readonly modes: FailureModes,
    private readonly log: Logger,
    retryMs = 1000,
    private readonly observer: StateObserver = {},
  ) {
    this.circuit = circuitBreaker(handleAll, { halfOpenAfter: retryMs, breaker: new ConsecutiveBreaker(3) });
  }

  /** Health for `/readyz`. */
  health(): StateHealth {
    return {
      kind: this.kind,
      status: this.degradedSince === null ? 'ok' : 'degraded',
      since: this.degradedSince === null ? null : new Date(this.degradedSince).toISOString(),
      last_error: this.lastError,
      fallbacks: { ...this.fallbacks },
    };
  }

  /** Waits for the first connection, at most `ms`. */
  ready(ms: number): Promise<boolean> {
    return this.remote.ready(ms);
  }

  /**
   * Runs `op` on Redis through the circuit; on failure, `fallback` per the use's mode.
   * @throws StateUnavailableError when the use's mode is `deny`.
   */
  private async run<T>(use: keyof FailureModes, op: () => Promise<T>, fallback: { local: () => Promise<T>; allow: () => T }): Promise<T> {
    try {
      const v = await this.circuit.execute(op);
      if (this.degradedSince !== null) {
        this.log.info({ state: 'redis', outage_ms: Date.now() - this.degradedSince, fallbacks: this.fallbacks }, 'state store (redis) is back; shared state resumes');
        this.degradedSince = null;
        this.observer.onStatus?.(false);
      }
      return v;
    } catch (err) {
      const message = err instanceof BrokenCircuitError ? (this.lastError ?? 'circuit open') : (err as Error).message;
      if (!(err instanceof BrokenCircuitError)) this.lastError = message;
      if (this.degradedSince === null) {
        this.degradedSince = Date.now();
        this.log.warn(
          { state: 'redis', err: message, on_failure: this.modes },
          `state store (redis) is unavailable: throttles ${describe(this.modes.throttles)}, key cooldowns ${describe(this.modes.cooldowns)}, budgets ${describe(this.modes.budgets)} until it is back`,
        );
        this.observer.onStatus?.(true);
      }
      const mode = this.modes[use];
      this.fallbacks[use]++;
      this.observer.onFallback?.(use, mode);
      if (mode === 'deny') throw new StateUnavailableError(use, err);
      return mode === 'allow' ? fallback.allow() : fallback.local();
    }
  }

  take(key: string, cost: number, spec: BucketSpec): Promise<TakeResult> {
    return this.run('throttles', () => this.remote.take(key, cost, spec), { local: () => this.local.take(key, cost, spec), allow: () => ({ ok: true, retryAfterMs: 0, remaining: spec.capacity }) });
  }

  charge(key: string, cost: number, spec: BucketSpec): Promise<void> {
    return this.run('throttles', () => this.remote.charge(key, cost, spec), { local: () => this.local.charge(key, cost, spec), allow: () => undefined });
  }

  acquire(key: string, limit: number): Promise<Slot | null> {
    return this.run('throttles', () => this.remote.acquire(key, limit), { local: () => this.local.acquire(key, limit), allow: () => ({ release: async () => {} }) });
  }

  async setCooldown(key: string, untilMs: number): Promise<void> {
    await this.local.setCooldown(key, untilMs);
    await this.run('cooldowns', () => this.remote.setCooldown(key, untilMs), { local: async () => {}, allow: () => undefined }).catch(() => {});
  }

  /** Shared cooldowns, with this replica's own mirrored in; Redis down: `local` keeps the mirror, `allow` cools nothing. */
  async cooldowns(keys: string[]): Promise<number[]> {
    const local = await this.local.cooldowns(keys);
    return this.run('cooldowns', async () => (await this.remote.cooldowns(keys)).map((v, i) => Math.max(v, local[i] ?? 0)), {
      local: async () => local,
      allow: () => keys.map(() => 0),
    });
  }

  /**
   * Adds spend everywhere it is counted (this replica's mirror always); the total after it. Redis down: `local` answers
   * the mirror's total, `allow` 0 (budgets not applied), `deny` the mirror's (what was spent is never refused).
   */
  async addSpend(key: string, usd: number, expiresAtMs: number): Promise<number> {
    const local = await this.local.addSpend(key, usd, expiresAtMs);
    return this.run('budgets', async () => Math.max(await this.remote.addSpend(key, usd, expiresAtMs), local), { local: async () => local, allow: () => 0 }).catch(() => local);
  }

  /** The spend a budget checks; Redis down: `local` the mirror's, `allow` 0 (not applied), `deny` throws. */
  async spend(key: string): Promise<number> {
    const local = await this.local.spend(key);
    return this.run('budgets', async () => Math.max(await this.remote.spend(key), local), { local: async () => local, allow: () => 0 });
  }

  async seedSpend(key: string, usd: number, expiresAtMs: number): Promise<void> {
    await this.local.seedSpend(key, usd, expiresAtMs);
    await this.remote.seedSpend(key, usd, expiresAtMs).catch(() => {});
  }

  /**
   * Sign-in records go to Redis so that every replica sees them (a device code approved through one replica is
   * redeemed through another); while Redis is unavailable, to this replica's memory.
   */
  private async record<T>(remote: () => Promise<T>, local: () => Promise<T>): Promise<T> {
    try {
      return await this.circuit.execute(remote);
    } catch {
      return local();
    }
  }

  putRecord(key: string, value: string, ttlMs: number): Promise<void> {
    return this.record(
      () => this.remote.putRecord(key, value, ttlMs),
      () => this.local.putRecord(key, value, ttlMs),
    );
  }

  getRecord(key: string): Promise<string | null> {
    return this.record(
      () => this.remote.getRecord(key),
      () => this.local.getRecord(key),
    );
  }

  takeRecord(key: string): Promise<string | null> {
    return this.record(
      () => this.remote.takeRecord(key),
      () => this.local.takeRecord(key),
    );
  }

  claimRecord(key: string, value: string, ttlMs: number): Promise<boolean> {
    return this.record(
      () => this.remote.claimRecord(key, value, ttlMs),
      () => this.local.claimRecord(key, value, ttlMs),
    );
  }

  async close(): Promise<void> {
    await this.remote.close();
  }
}

function describe(mode: FailureMode): string {
  return mode === 'local' ? 'count per replica' : mode === 'allow' ? 'are not applied' : 'refuse requests';
}
