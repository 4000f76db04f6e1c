/**
 * Throttle admission cost per request (µs, median and p99): one request passing a throttle with a
 * requests-per-minute, an input-token and a concurrency limit, then settling its ticket, against the
 * in-memory store and against Redis (REDIS_URL, default redis://127.0.0.1:6379).
 */
import type { Throttle } from '../src/actions/throttle/index.js';
import { createLogger } from '../src/log.js';
import type { RequestContext } from '../src/rules/context.js';
import type { Decision } from '../src/rules/decision.js';
import { admit } from '../src/actions/throttle/enforce.js';
import { RedisStore } from '../src/state/redis.js';
import { MemoryStore, type StateStore } from '../src/state/store.js';

const throttle: Throttle = { rule: 'bench', scope: 'client', requests_per_minute: 1e9, input_tokens_per_minute: 1e12, concurrent: 1e6, burst: 1, shadow: false };
const decision = { throttles: [throttle], route: { model: 'm' }, tags: {} } as unknown as Decision;
const rc = { client: { id: 'alice', tags: {} }, session: { id: 's' }, estimate: { input_tokens: 19_000 } } as unknown as RequestContext;
const log = createLogger({ level: 'silent' });

async function measure(store: StateStore, n: number): Promise<{ median_us: number; p99_us: number }> {
  for (let i = 0; i < 200; i++) await (await admit(decision, rc, store, log, 'w')).done(10);
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = process.hrtime.bigint();
    const ticket = await admit(decision, rc, store, log, 'b');
    await ticket.done(10);
    times.push(Number(process.hrtime.bigint() - t) / 1000);
  }
  times.sort((a, b) => a - b);
  return { median_us: Math.round(times[Math.floor(n / 2)]!), p99_us: Math.round(times[Math.floor(n * 0.99)]!) };
}

export async function benchThrottle(): Promise<Record<string, { median_us: number; p99_us: number }>> {
  const memory = new MemoryStore();
  const redis = new RedisStore(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', { prefix: `switchyard-bench-${process.pid}:` });
  try {
    await redis.ready(5000);
    return { memory: await measure(memory, 5000), redis: await measure(redis, 2000) };
  } finally {
    await redis.close();
  }
}
