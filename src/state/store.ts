/**
 * Shared counters for throttles: token buckets and concurrency slots, behind one interface with two
 * implementations: in-memory (one process) and Redis (N replicas share one budget; `redis.ts`).
 * Keys are chosen by the caller (rule id + scope value), so they survive a rules reload.
 *
 * Token bucket: a bucket holds at most `capacity` tokens and refills at `refillPerMs`; taking `cost`
 * tokens succeeds when that many are there. A cost larger than the capacity is admitted from a full bucket
 * (leaving it in debt), so one huge request cannot be refused forever. `charge` takes tokens after the fact
 * (output tokens, known only at the end) and may leave a debt that later requests wait out.
 */

/** The shape of one bucket. */
export interface BucketSpec {
  /** Most tokens the bucket holds (the burst). */
  capacity: number;
  /** Refill rate, tokens per millisecond. */
  refillPerMs: number;
}

/** Outcome of a take: admitted, or how long until it would be. */
export interface TakeResult {
  ok: boolean;
  /** When not ok: ms until enough tokens are back. */
  retryAfterMs: number;
  /** Tokens left after the take (may be negative: debt). */
  remaining: number;
}

/** A concurrency slot held by one request; `release` gives it back (once; later calls do nothing). */
export interface Slot {
  release(): Promise<void>;
}

/** Counters shared by everything that throttles. All methods are atomic per key. */
export interface StateStore {
  /** Takes `cost` tokens if available (cost 0 asks "is the bucket out of debt?"). */
  take(key: string, cost: number, spec: BucketSpec): Promise<TakeResult>;
  /** Removes `cost` tokens unconditionally (may go into debt). */
  charge(key: string, cost: number, spec: BucketSpec): Promise<void>;
  /**
   * Takes one of `limit` concurrency slots; null when all are taken. In Redis a slot is a lease renewed
   * while its holder lives, so a replica that dies or a network blip never leaves a slot taken for good.
   */
  acquire(key: string, limit: number): Promise<Slot | null>;
  /** Puts `key` (an upstream key's id) on cooldown until `untilMs` (epoch ms). */
  setCooldown(key: string, untilMs: number): Promise<void>;
  /** For each key, the epoch ms its cooldown ends, or 0 when it is not cooling. */
  cooldowns(keys: string[]): Promise<number[]>;
  /** Adds `usd` to the running total `key` (kept until `expiresAtMs`, epoch ms), atomically; resolves to the new total. */
  addSpend(key: string, usd: number, expiresAtMs: number): Promise<number>;
  /** The running total of `key`, USD (0 when none). */
  spend(key: string): Promise<number>;
  /**
   * Raises the running total of `key` to at least `usd` (never lowers it): how totals recomputed from the
   * ledger at start-up are put back without double-counting what the store already holds.
   */
  seedSpend(key: string, usd: number, expiresAtMs: number): Promise<void>;
  /** Stores `value` under `key` for `ttlMs` (sign-in state: device codes, revocations), replacing what was there. */
  putRecord(key: string, value: string, ttlMs: number): Promise<void>;
  /** The value under `key`, or null when absent or expired. */
  getRecord(key: string): Promise<string | null>;
  /** The value under `key`, removed in the same step (null when absent): at most one caller ever gets it. */
  takeRecord(key: string): Promise<string | null>;
  /**
   * Stores `value` under `key` for `ttlMs` only when nothing live is there, in one step: true for the one
   * caller that claimed it, false for every later one (a refresh token used once, RFC 9700 §4.14.2).
   */
  claimRecord(key: string, value: string, ttlMs: number): Promise<boolean>;
  /** 'memory' or 'redis', for logs and /readyz. */
  readonly kind: string;
  close(): Promise<void>;
}

/** The refill step shared by both stores: tokens after `elapsedMs`, capped at capacity. */
export function refill(tokens: number, elapsedMs: number, spec: BucketSpec): number {
  return Math.min(spec.capacity, tokens + Math.max(0, elapsedMs) * spec.refillPerMs);
}

/** Decides a take on a refilled bucket (the same rule the Redis Lua script implements). */
export function decideTake(tokens: number, cost: number, spec: BucketSpec): TakeResult {
  const enough = cost === 0 ? tokens > 0 : tokens >= Math.min(cost, spec.capacity);
  if (enough) return { ok: true, retryAfterMs: 0, remaining: tokens - cost };
  const needed = (cost === 0 ? Number.EPSILON : Math.min(cost, spec.capacity)) - tokens;
  return { ok: false, retryAfterMs: Math.ceil(needed / spec.refillPerMs), remaining: tokens };
}

/** The in-memory store: one process, no persistence. */
export class MemoryStore implements StateStore {
  readonly kind = 'memory';
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  private readonly slots = new Map<string, number>();

  constructor(private readonly now: () => number = Date.now) {}

  private bucket(key: string, spec: BucketSpec): { tokens: number; at: number } {
    const t = this.now();
    const b = this.buckets.get(key);
    if (!b) {
      const fresh = { tokens: spec.capacity, at: t };
      this.buckets.set(key, fresh);
      return fresh;
    }
    b.tokens = refill(b.tokens, t - b.at, spec);
    b.at = t;
    return b;
  }

  async take(key: string, cost: number, spec: BucketSpec): Promise<TakeResult> {
    const b = this.bucket(key, spec);
    const r = decideTake(b.tokens, cost, spec);
    if (r.ok) b.tokens -= cost;
    return r;
  }

  async charge(key: string, cost: number, spec: BucketSpec): Promise<void> {
    this.bucket(key, spec).tokens -= cost;
  }

  async acquire(key: string, limit: number): Promise<Slot | null> {
    const n = this.slots.get(key) ?? 0;
    if (n >= limit) return null;
    this.slots.set(key, n + 1);
    let held = true;
    return {
      release: async () => {
        if (!held) return;
        held = false;
        const left = (this.slots.get(key) ?? 1) - 1;
        if (left <= 0) this.slots.delete(key);
        else this.slots.set(key, left);
      },
    };
  }

  private readonly cooling = new Map<string, number>();
  private readonly spent = new Map<string, { usd: number; expires: number }>();

  // Read and written with no await between (one step on the event loop), so concurrent adds all count.
  async addSpend(key: string, usd: number, expiresAtMs: number): Promise<number> {
    const total = this.spentNow(key) + usd;
    this.spent.set(key, { usd: total, expires: expiresAtMs });
    return total;
  }

  /** Raises the running total of `key` to at least `usd` (seeding from the ledger at start-up). */
  async seedSpend(key: string, usd: number, expiresAtMs: number): Promise<void> {
    if (usd > this.spentNow(key)) this.spent.set(key, { usd, expires: expiresAtMs });
  }

  async spend(key: string): Promise<number> {
    return this.spentNow(key);
  }

  private spentNow(key: string): number {
    const s = this.spent.get(key);
    if (!s || s.expires <= this.now()) return 0;
    return s.usd;
  }

  async setCooldown(key: string, untilMs: number): Promise<void> {
    this.cooling.set(key, Math.max(untilMs, this.cooling.get(key) ?? 0));
  }

  private readonly records = new Map<string, { value: string; expires: number }>();

  async putRecord(key: string, value: string, ttlMs: number): Promise<void> {
    const t = this.now();
    // Expired records are dropped as new ones arrive, so the map stays as small as what is live.
    if (this.records.size > 1024) for (const [k, r] of this.records) if (r.expires <= t) this.records.delete(k);
    this.records.set(key, { value, expires: t + ttlMs });
  }

  async getRecord(key: string): Promise<string | null> {
    return this.recordNow(key);
  }

  private recordNow(key: string): string | null {
    const r = this.records.get(key);
    return r && r.expires > this.now() ? r.value : null;
  }

  async takeRecord(key: string): Promise<string | null> {
    // Read and removed with no await between, so two takers never both get the value.
    const v = this.recordNow(key);
    this.records.delete(key);
    return v;
  }

  async claimRecord(key: string, value: string, ttlMs: number): Promise<boolean> {
    // Checked and set with no await between: one step on the event loop.
    const r = this.records.get(key);
    if (r && r.expires > this.now()) return false;
    this.records.set(key, { value, expires: this.now() + ttlMs });
    return true;
  }

  async cooldowns(keys: string[]): Promise<number[]> {
    const t = this.now();
    return keys.map((k) => {
      const until = this.cooling.get(k) ?? 0;
      return until > t ? until : 0;
    });
  }

  async close(): Promise<void> {}
}
