/**
 * The state store contract, checked on both stores (the in-process one and Redis, real, on 127.0.0.1:6379):
 * what each method promises in `state/store.ts` — records with their TTL, claims and takes that one caller
 * wins, cooldowns, spend totals with their expiry and seeding, token buckets with debt and retry-after,
 * concurrency slots with their leases — and the Redis store's own connection behaviour (`ready` bounded in
 * time, keys under its prefix only, leases renewed while held and lapsing when the holder is gone).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { RedisStore } from '../src/state/redis.js';
import { MemoryStore, type StateStore } from '../src/state/store.js';
import { withClosing } from './helpers.js';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const raw = new Redis(REDIS_URL, { lazyConnect: false });
after(() => raw.quit());

async function redisStore(opts: { slotLeaseMs?: number } = {}): Promise<{ store: RedisStore; prefix: string }> {
  const prefix = `sy-contract-${randomBytes(4).toString('hex')}:`;
  const store = new RedisStore(REDIS_URL, { prefix, ...opts });
  assert.ok(await store.ready(5000), `Redis at ${REDIS_URL}`);
  return { store, prefix };
}

const kinds: Array<[string, () => Promise<StateStore>]> = [
  ['memory', async () => new MemoryStore()],
  ['redis', async () => (await redisStore()).store],
];

for (const [kind, make] of kinds) {
  describe(`state store contract (${kind})`, () => {
    test('records: a value until its TTL ends; a put replaces; a take hands it out once', async () => {
      await withClosing(make, async (s) => {
        assert.equal(await s.getRecord('r'), null, 'absent');
        await s.putRecord('r', 'one', 400);
        assert.equal(await s.getRecord('r'), 'one');
        await s.putRecord('r', 'two', 400);
        assert.equal(await s.getRecord('r'), 'two', 'a put replaces');
        await sleep(550);
        assert.equal(await s.getRecord('r'), null, 'expired after its TTL');
        await s.putRecord('t', 'code', 10_000);
        const [a, b] = await Promise.all([s.takeRecord('t'), s.takeRecord('t')]);
        assert.deepEqual([a, b].sort(), ['code', null].sort(), 'exactly one taker gets the value');
        assert.equal(await s.getRecord('t'), null, 'a take removes it');
        assert.equal(await s.takeRecord('never'), null);
        // A TTL below a millisecond still stores (rounded up), and lapses.
        await s.putRecord('tiny', 'x', 0.2);
        await sleep(20);
        assert.equal(await s.getRecord('tiny'), null);
      });
    });

    test('claims: the first claimer wins until the TTL ends, then the key can be claimed again', async () => {
      await withClosing(make, async (s) => {
        const wins = await Promise.all([s.claimRecord('c', 'a', 400), s.claimRecord('c', 'b', 400), s.claimRecord('c', 'c', 400)]);
        assert.equal(wins.filter(Boolean).length, 1, `one winner: ${wins}`);
        assert.equal(await s.getRecord('c'), ['a', 'b', 'c'][wins.indexOf(true)], 'the winner’s value is stored');
        await sleep(550);
        assert.equal(await s.claimRecord('c', 'd', 1000), true, 'claimable again once lapsed');
        assert.equal(await s.getRecord('c'), 'd');
      });
    });

    test('cooldowns: each key its own end; a past end is no cooldown; an empty list is empty', async () => {
      await withClosing(make, async (s) => {
        const until = Date.now() + 5_000;
        await s.setCooldown('k1', until);
        await s.setCooldown('k2', Date.now() - 10);
        assert.deepEqual(await s.cooldowns([]), []);
        const [c1, c2, c3] = await s.cooldowns(['k1', 'k2', 'k3']);
        assert.equal(c1, until, 'k1 cools until the end it was given');
        assert.equal(c2, 0, 'an end in the past sets nothing');
        assert.equal(c3, 0, 'a key never set is not cooling');
        await s.setCooldown('short', Date.now() + 200);
        await sleep(350);
        assert.deepEqual(await s.cooldowns(['short']), [0], 'a cooldown ends at its end');
      });
    });

    test('spend: totals add up atomically, expire at their period end; seeding fills only an empty total', async () => {
      await withClosing(make, async (s) => {
        const end = Date.now() + 60_000;
        assert.equal(await s.spend('b'), 0);
        const totals = await Promise.all([s.addSpend('b', 0.25, end), s.addSpend('b', 0.5, end), s.addSpend('b', 1.25, end)]);
        assert.equal(Math.max(...totals), 2, `the last add sees every other: ${totals}`);
        assert.equal(await s.spend('b'), 2);
        await s.seedSpend('fresh', 7.5, end);
        assert.equal(await s.spend('fresh'), 7.5, 'a seed fills an empty total');
        assert.equal(await s.addSpend('fresh', 0.5, end), 8, 'adds go on from the seed');
        await s.addSpend('short', 3, Date.now() + 200);
        await sleep(350);
        assert.equal(await s.spend('short'), 0, 'a total is gone after its period end');
      });
    });

    test('buckets: takes until empty, a retry-after that refills just enough, charges into debt, cost 0 asks about debt', async () => {
      await withClosing(make, async (s) => {
        const spec = { capacity: 2, refillPerMs: 0.001 }; // one token a second
        const first = await s.take('b', 1, spec);
        assert.deepEqual([first.ok, first.retryAfterMs], [true, 0]);
        assert.ok(Math.abs(first.remaining - 1) < 0.01, `1 left: ${first.remaining}`);
        assert.equal((await s.take('b', 1, spec)).ok, true);
        const refused = await s.take('b', 1, spec);
        assert.equal(refused.ok, false);
        assert.ok(refused.retryAfterMs > 900 && refused.retryAfterMs <= 1000, `about a second to one token: ${refused.retryAfterMs}`);
        assert.ok(refused.remaining < 0.1, 'a refused take takes nothing');
        // A take larger than the capacity waits for a full bucket, not forever.
        const big = await s.take('big', 5, spec);
        assert.equal(big.ok, true, 'a full bucket admits a cost above its capacity (into debt)');
        assert.ok(big.remaining < -2.9 && big.remaining > -3.1, `debt of 3: ${big.remaining}`);
        const zero = await s.take('big', 0, spec);
        assert.equal(zero.ok, false, 'cost 0 is refused while in debt');
        assert.ok(zero.retryAfterMs >= 2900, `retry once out of debt: ${zero.retryAfterMs}`);
        await s.charge('c', 3, spec);
        const afterCharge = await s.take('c', 0, spec);
        assert.equal(afterCharge.ok, false, 'a charge drives the bucket into debt');
        assert.ok(afterCharge.remaining < -0.9, `debt after a charge: ${afterCharge.remaining}`);
        assert.equal((await s.take('other', 0, spec)).ok, true, 'cost 0 on a bucket out of debt is admitted');
      });
    });

    test('slots: at most `limit` held at once; a release frees one, and releasing twice frees only one', async () => {
      await withClosing(make, async (s) => {
        const a = await s.acquire('slots', 2);
        const b = await s.acquire('slots', 2);
        assert.ok(a && b, 'two of two');
        assert.equal(await s.acquire('slots', 2), null, 'a third is refused');
        await a.release();
        await a.release();
        const c = await s.acquire('slots', 2);
        assert.ok(c, 'a released slot is free again');
        assert.equal(await s.acquire('slots', 2), null, 'a second release of the same slot freed nothing');
        assert.ok(await s.acquire('other', 1), 'another key has its own slots');
        await b.release();
        await c.release();
      });
    });
  });
}

describe('the Redis store', () => {
  test('every key it writes is under its prefix', async () => {
    const { store, prefix } = await redisStore();
    try {
      await store.putRecord('rec', 'v', 10_000);
      await store.addSpend('spend', 1, Date.now() + 10_000);
      await store.take('bucket', 1, { capacity: 1, refillPerMs: 0.001 });
      await store.setCooldown('cool', Date.now() + 10_000);
      const slot = await store.acquire('slot', 1);
      const keys = (await raw.keys(`${prefix}*`)).map((k) => k.slice(prefix.length)).sort();
      assert.deepEqual(keys, ['bucket', 'cool', 'rec', 'slot', 'spend']);
      assert.ok((await raw.pttl(`${prefix}spend`)) > 9_000, 'a spend total expires at its period end');
      const bucketTtl = await raw.pttl(`${prefix}bucket`);
      assert.ok(bucketTtl > 1000 && bucketTtl <= 2000, `a bucket is kept until it has refilled, plus a second: ${bucketTtl}`);
      await slot!.release();
      assert.equal(await raw.zcard(`${prefix}slot`), 0, 'a release removes the lease from Redis');
    } finally {
      await store.close();
    }
  });

  test('a held slot is renewed past its lease; a slot whose holder is gone lapses', async () => {
    const { store, prefix } = await redisStore({ slotLeaseMs: 600 });
    try {
      const held = await store.acquire('renewed', 1);
      assert.ok(held);
      await sleep(1400); // over two leases; renewed every 200 ms
      assert.equal(await store.acquire('renewed', 1), null, 'still held after two leases: it was renewed');
      assert.ok((await raw.pttl(`${prefix}renewed`)) > 0);
      await held.release();
      assert.ok(await store.acquire('renewed', 1), 'free once released');
    } finally {
      await store.close();
    }
    // A lease written by a holder that is gone (no renewal) lapses by itself.
    const { store: other } = await redisStore({ slotLeaseMs: 200 });
    const { store: gone, prefix: p2 } = await redisStore({ slotLeaseMs: 200 });
    await gone.close();
    try {
      await raw.zadd(`${p2}orphan`, Date.now() + 200, 'someone');
      const again = new RedisStore(REDIS_URL, { prefix: p2, slotLeaseMs: 200 });
      assert.ok(await again.ready(5000));
      assert.equal(await again.acquire('orphan', 1), null, 'held while the lease runs');
      await sleep(300);
      assert.ok(await again.acquire('orphan', 1), 'free once the lease ran out');
      await again.close();
    } finally {
      await other.close();
    }
  });

  test('ready() answers false within its bound when Redis is not there, and the store kind is "redis"', async () => {
    const store = new RedisStore('redis://127.0.0.1:1', { commandTimeoutMs: 50 });
    try {
      const t0 = Date.now();
      assert.equal(await store.ready(300), false);
      const took = Date.now() - t0;
      assert.ok(took >= 290 && took < 2000, `bounded by its ms: ${took}`);
      assert.equal(store.kind, 'redis');
      await assert.rejects(store.getRecord('x'), 'a command fails instead of queueing');
    } finally {
      await store.close();
    }
    const { store: up } = await redisStore();
    assert.equal(await up.ready(10), true, 'a connected store is ready at once');
    await up.close();
  });
});
