/**
 * The Redis state store (ioredis): token buckets and concurrency slots updated atomically by Lua scripts
 * that read the clock from Redis (`TIME`), so every replica sees one budget on one clock. Bucket keys
 * expire when the bucket would be full again. A concurrency slot is a lease (a member of a sorted set
 * scored by its expiry) renewed every third of its lease while its request runs: a replica that dies or a
 * network blip that loses the release leaves the slot taken for at most one lease, never for good.
 *
 * Commands are bounded (`commandTimeout`) and never queued while disconnected (`enableOfflineQueue:
 * false`): a Redis that is down or frozen fails each command within the timeout, and the caller
 * ({@link ResilientStore}) decides what happens then.
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import type { BucketSpec, Slot, StateStore, TakeResult } from './store.js';

// KEYS[1] bucket; ARGV: cost, capacity, refill per ms, mode ("take" | "charge").
// Mirrors refill() and decideTake() in store.ts.
const BUCKET = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local cost = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local rate = tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1])
local at = tonumber(state[2])
if tokens == nil then
  tokens = capacity
else
  tokens = math.min(capacity, tokens + math.max(0, now - at) * rate)
end
local ok = 1
local retry = 0
if ARGV[4] == 'take' then
  local need = math.min(cost, capacity)
  local enough
  if cost == 0 then enough = tokens > 0 else enough = tokens >= need end
  if enough then
    tokens = tokens - cost
  else
    ok = 0
    if cost == 0 then need = 0.000001 end
    retry = math.ceil((need - tokens) / rate)
  end
else
  tokens = tokens - cost
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', now)
redis.call('PEXPIRE', KEYS[1], math.ceil((capacity - tokens) / rate) + 1000)
return {ok, retry, tostring(tokens)}
`;

// KEYS[1] slot lease set; ARGV: limit, lease ms, member. Expired leases are dropped first.
const ACQUIRE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
return 1
`;

// KEYS[1] lease set; ARGV: lease ms, members... (extends each lease from now).
const RENEW = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for i = 2, #ARGV do redis.call('ZADD', KEYS[1], now + tonumber(ARGV[1]), ARGV[i]) end
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[1]))
return 1
`;

type Scripted = Redis & {
  syBucket(key: string, cost: number, capacity: number, rate: number, mode: string): Promise<[number, number, string]>;
  syAcquire(key: string, limit: number, leaseMs: number, member: string): Promise<number>;
  syRenew(key: string, leaseMs: number, ...members: string[]): Promise<number>;
};

/** Options of the Redis store. */
export interface RedisStoreOptions {
  /** Key prefix (default `switchyard:`). */
  prefix?: string;
  /** Longest a command may take before it fails, ms (default 100). */
  commandTimeoutMs?: number;
  /** Lifetime of a concurrency slot lease, ms, renewed every third of it (default 30000). */
  slotLeaseMs?: number;
}

/** Token buckets, slot leases, cooldowns and budget totals in Redis. */
export class RedisStore implements StateStore {
  readonly kind = 'redis';
  private readonly redis: Scripted;
  private readonly prefix: string;
  private readonly leaseMs: number;
  /** Live leases by set key: renewed until released. */
  private readonly leases = new Map<string, Set<string>>();
  private readonly renewTimer: NodeJS.Timeout;

  /** @param url e.g. `redis://127.0.0.1:6379`. Commands fail (and the caller decides) while Redis is down. */
  constructor(url: string, opts: RedisStoreOptions = {}) {
    this.prefix = opts.prefix ?? 'switchyard:';
    this.leaseMs = opts.slotLeaseMs ?? 30_000;
    const redis = new Redis(url, { maxRetriesPerRequest: 0, enableOfflineQueue: false, commandTimeout: opts.commandTimeoutMs ?? 100, connectTimeout: 2000, lazyConnect: false });
    redis.defineCommand('syBucket', { numberOfKeys: 1, lua: BUCKET });
    redis.defineCommand('syAcquire', { numberOfKeys: 1, lua: ACQUIRE });
    redis.defineCommand('syRenew', { numberOfKeys: 1, lua: RENEW });
    redis.on('error', () => {}); // surfaced by the failing command instead
    this.redis = redis as Scripted;
    this.renewTimer = setInterval(() => void this.renew(), Math.max(100, Math.floor(this.leaseMs / 3)));
    this.renewTimer.unref();
  }

  /** Resolves when connected, or after `ms` (false) — start-up does not wait longer for a Redis that is down. */
  ready(ms: number): Promise<boolean> {
    if (this.redis.status === 'ready') return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (ok: boolean) => {
        clearTimeout(timer);
        this.redis.off('ready', onReady);
        resolve(ok);
      };
      const onReady = () => done(true);
      const timer = setTimeout(() => done(false), ms);
      this.redis.once('ready', onReady);
    });
  }

  /** Extends every live lease; a failure (Redis down) is retried at the next tick, before the leases run out. */
  private async renew(): Promise<void> {
    for (const [key, members] of this.leases) {
      if (members.size === 0) continue;
      await this.redis.syRenew(key, this.leaseMs, ...members).catch(() => {});
    }
  }

  async take(key: string, cost: number, spec: BucketSpec): Promise<TakeResult> {
    const [ok, retry, remaining] = await this.redis.syBucket(this.prefix + key, cost, spec.capacity, spec.refillPerMs, 'take');
    return { ok: ok === 1, retryAfterMs: Number(retry), remaining: Number(remaining) };
  }

  async charge(key: string, cost: number, spec: BucketSpec): Promise<void> {
    await this.redis.syBucket(this.prefix + key, cost, spec.capacity, spec.refillPerMs, 'charge');
  }

  async acquire(key: string, limit: number): Promise<Slot | null> {
    const setKey = this.prefix + key;
    const member = randomBytes(8).toString('hex');
    if ((await this.redis.syAcquire(setKey, limit, this.leaseMs, member)) !== 1) return null;
    let live = this.leases.get(setKey);
    if (!live) this.leases.set(setKey, (live = new Set()));
    live.add(member);
    return {
      release: async () => {
        if (!live.delete(member)) return;
        if (live.size === 0 && this.leases.get(setKey) === live) this.leases.delete(setKey);
        // If this fails (Redis down), the lease is no longer renewed and expires on its own.
        await this.redis.zrem(setKey, member);
      },
    };
  }

  async addSpend(key: string, usd: number, expiresAtMs: number): Promise<number> {
    const r = await this.redis
      .multi()
      .incrbyfloat(this.prefix + key, usd)
      .pexpireat(this.prefix + key, Math.ceil(expiresAtMs))
      .exec();
    const [err, total] = r?.[0] ?? [new Error('the transaction was discarded'), null];
    if (err) throw err;
    return Number(total);
  }

  async spend(key: string): Promise<number> {
    return Number((await this.redis.get(this.prefix + key)) ?? 0);
  }

  async seedSpend(key: string, usd: number, expiresAtMs: number): Promise<void> {
    // Only where Redis holds nothing for the period: its own total already counts every replica.
    await this.redis.set(this.prefix + key, String(usd), 'PXAT', Math.ceil(expiresAtMs), 'NX');
  }

  async putRecord(key: string, value: string, ttlMs: number): Promise<void> {
    await this.redis.set(this.prefix + key, value, 'PX', Math.max(1, Math.ceil(ttlMs)));
  }

  getRecord(key: string): Promise<string | null> {
    return this.redis.get(this.prefix + key);
  }

  /** SET NX PX: one atomic step, so only one replica ever claims a key. */
  async claimRecord(key: string, value: string, ttlMs: number): Promise<boolean> {
    return (await this.redis.set(this.prefix + key, value, 'PX', Math.max(1, Math.ceil(ttlMs)), 'NX')) === 'OK';
  }

  /** GETDEL (Redis 6.2+): one atomic step, so a device code is handed out once across every replica. */
  takeRecord(key: string): Promise<string | null> {
    return this.redis.getdel(this.prefix + key);
  }

  async setCooldown(key: string, untilMs: number): Promise<void> {
    const ms = Math.ceil(untilMs - Date.now());
    if (ms > 0) await this.redis.set(this.prefix + key, String(untilMs), 'PX', ms);
  }

  async cooldowns(keys: string[]): Promise<number[]> {
    if (keys.length === 0) return [];
    const values = await this.redis.mget(...keys.map((k) => this.prefix + k));
    const now = Date.now();
    return values.map((v) => (v !== null && Number(v) > now ? Number(v) : 0));
  }

  async close(): Promise<void> {
    clearInterval(this.renewTimer);
    await this.redis.quit().catch(() => this.redis.disconnect());
  }
}
