/**
 * The Redis state store (ioredis): token buckets and concurrency slots updated atomically by Lua scripts
 * that read the clock from Redis (`TIME`), so every replica sees one budget on one clock. Keys expire when
 * a bucket would be full again (or after 15 min for concurrency slots, in case a replica died holding one).
 */
import { Redis } from 'ioredis';
import type { BucketSpec, StateStore, TakeResult } from './store.js';

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

// KEYS[1] slot counter; ARGV: limit.
const ACQUIRE = `
local n = redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], 900000)
if n > tonumber(ARGV[1]) then
  redis.call('DECR', KEYS[1])
  return 0
end
return 1
`;

const RELEASE = `
local n = redis.call('DECR', KEYS[1])
if n <= 0 then redis.call('DEL', KEYS[1]) end
return n
`;

type Scripted = Redis & {
  syBucket(key: string, cost: number, capacity: number, rate: number, mode: string): Promise<[number, number, string]>;
  syAcquire(key: string, limit: number): Promise<number>;
  syRelease(key: string): Promise<number>;
};

/** Token buckets and slots in Redis; `prefix` namespaces the keys (default `switchyard:`). */
export class RedisStore implements StateStore {
  readonly kind = 'redis';
  private readonly redis: Scripted;

  /** @param url e.g. `redis://127.0.0.1:6379`. Commands fail (and the caller decides) while Redis is down. */
  constructor(url: string, private readonly prefix = 'switchyard:') {
    const redis = new Redis(url, { maxRetriesPerRequest: 1, enableOfflineQueue: true, lazyConnect: false });
    redis.defineCommand('syBucket', { numberOfKeys: 1, lua: BUCKET });
    redis.defineCommand('syAcquire', { numberOfKeys: 1, lua: ACQUIRE });
    redis.defineCommand('syRelease', { numberOfKeys: 1, lua: RELEASE });
    redis.on('error', () => {}); // surfaced by the failing command instead
    this.redis = redis as Scripted;
  }

  async take(key: string, cost: number, spec: BucketSpec): Promise<TakeResult> {
    const [ok, retry, remaining] = await this.redis.syBucket(this.prefix + key, cost, spec.capacity, spec.refillPerMs, 'take');
    return { ok: ok === 1, retryAfterMs: Number(retry), remaining: Number(remaining) };
  }

  async charge(key: string, cost: number, spec: BucketSpec): Promise<void> {
    await this.redis.syBucket(this.prefix + key, cost, spec.capacity, spec.refillPerMs, 'charge');
  }

  async acquire(key: string, limit: number): Promise<boolean> {
    return (await this.redis.syAcquire(this.prefix + key, limit)) === 1;
  }

  async release(key: string): Promise<void> {
    await this.redis.syRelease(this.prefix + key);
  }

  async addSpend(key: string, usd: number, expiresAtMs: number): Promise<void> {
    await this.redis.multi().incrbyfloat(this.prefix + key, usd).pexpireat(this.prefix + key, Math.ceil(expiresAtMs)).exec();
  }

  async spend(key: string): Promise<number> {
    return Number((await this.redis.get(this.prefix + key)) ?? 0);
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
    await this.redis.quit().catch(() => this.redis.disconnect());
  }
}
