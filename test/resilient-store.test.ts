/**
 * The state store's failure modes (issue 35; docs/operations.md `state.on_failure`), use by use and mode by mode, with
 * a stand-in Redis that can be taken down: `local` counts on this replica, `allow` applies no limit (no throttle, no
 * budget, no key cooling), `deny` refuses (StateUnavailableError, answered 503) — and what a replica saw itself while
 * Redis answered is kept in its mirror. The circuit stops asking a dead Redis and probes again after `retry_ms`.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { StateUnavailableError } from '../src/errors.js';
import { createLogger } from '../src/log.js';
import type { RedisStore } from '../src/state/redis.js';
import { type FailureMode, type FailureModes, ResilientStore } from '../src/state/resilient.js';
import { MemoryStore } from '../src/state/store.js';

/** A Redis stand-in: a MemoryStore that fails every call while `down`, counting the calls it got. */
function standIn() {
  const inner = new MemoryStore();
  const state = { down: false, calls: 0 };
  const remote = new Proxy(inner, {
    get(target, name) {
      const v = Reflect.get(target, name, target) as unknown;
      if (typeof v !== 'function' || name === 'close') return v;
      return async (...args: unknown[]) => {
        state.calls++;
        if (state.down) throw new Error('connect ECONNREFUSED 127.0.0.1:6379');
        return (v as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  }) as unknown as RedisStore;
  return { remote, inner, state };
}

const quiet = createLogger({ level: 'silent' });
const all = (mode: FailureMode): FailureModes => ({ throttles: mode, cooldowns: mode, budgets: mode });
const bucket = { capacity: 2, refillPerMs: 0 };
const far = Date.now() + 3_600_000;

describe('throttles', () => {
  test('local: the bucket counts on this replica while Redis is down', async () => {
    const { remote, state } = standIn();
    const store = new ResilientStore(remote, all('local'), quiet);
    state.down = true;
    const takes = [await store.take('t', 1, bucket), await store.take('t', 1, bucket), await store.take('t', 1, bucket)];
    assert.deepEqual(
      takes.map((t) => t.ok),
      [true, true, false],
    );
    assert.equal(store.health().status, 'degraded');
    assert.equal(store.health().fallbacks.throttles, 3);
    const slot = await store.acquire('c', 1);
    assert.ok(slot);
    assert.equal(await store.acquire('c', 1), null, 'the local concurrency slot is held');
  });

  test('allow: every take is admitted and every slot given while Redis is down', async () => {
    const { remote, state } = standIn();
    const store = new ResilientStore(remote, all('allow'), quiet);
    state.down = true;
    for (let i = 0; i < 5; i++) assert.deepEqual(await store.take('t', 1, bucket), { ok: true, retryAfterMs: 0, remaining: 2 });
    assert.ok(await store.acquire('c', 1));
    assert.ok(await store.acquire('c', 1));
  });

  test('deny: a take throws StateUnavailableError naming the use', async () => {
    const { remote, state } = standIn();
    const store = new ResilientStore(remote, all('deny'), quiet);
    state.down = true;
    await assert.rejects(store.take('t', 1, bucket), (err: Error) => err instanceof StateUnavailableError && /throttles/.test(err.message));
    await assert.rejects(store.acquire('c', 1), StateUnavailableError);
  });
});

describe('key cooldowns', () => {
  test('local: a cooldown this replica set is kept while Redis is down; one set elsewhere is not known', async () => {
    const { remote, inner, state } = standIn();
    const store = new ResilientStore(remote, all('local'), quiet);
    await store.setCooldown('key-a', far);
    await inner.setCooldown('key-b', far); // another replica's, in Redis only
    assert.deepEqual(await store.cooldowns(['key-a', 'key-b']), [far, far], 'Redis up: both');
    state.down = true;
    assert.deepEqual(await store.cooldowns(['key-a', 'key-b']), [far, 0]);
  });

  test('allow: no key is cooling while Redis is down, not even one this replica cooled', async () => {
    const { remote, state } = standIn();
    const store = new ResilientStore(remote, all('allow'), quiet);
    await store.setCooldown('key-a', far);
    state.down = true;
    assert.deepEqual(await store.cooldowns(['key-a']), [0]);
  });

  test('deny: reading cooldowns throws; setting one never does', async () => {
    const { remote, state } = standIn();
    const store = new ResilientStore(remote, all('deny'), quiet);
    state.down = true;
    await store.setCooldown('key-a', far);
    await assert.rejects(store.cooldowns(['key-a']), StateUnavailableError);
  });
});

describe('budgets', () => {
  test('local: spend counts on this replica (its mirror) while Redis is down', async () => {
    const { remote, inner, state } = standIn();
    const store = new ResilientStore(remote, all('local'), quiet);
    assert.equal(await store.addSpend('b', 3, far), 3);
    await inner.addSpend('b', 10, far); // other replicas' spend, in Redis only
    assert.equal(await store.spend('b'), 13, 'Redis up: the shared total');
    state.down = true;
    assert.equal(await store.addSpend('b', 2, far), 5, 'down: what this replica has seen');
    assert.equal(await store.spend('b'), 5);
  });

  test('allow: a budget sees no spend while Redis is down', async () => {
    const { remote, state } = standIn();
    const store = new ResilientStore(remote, all('allow'), quiet);
    await store.addSpend('b', 3, far);
    state.down = true;
    assert.equal(await store.spend('b'), 0);
    assert.equal(await store.addSpend('b', 2, far), 0);
  });

  test('deny: reading spend throws (the request is refused); recording spend never does', async () => {
    const { remote, state } = standIn();
    const store = new ResilientStore(remote, all('deny'), quiet);
    state.down = true;
    assert.equal(await store.addSpend('b', 2, far), 2, 'what was spent is kept in the mirror');
    await assert.rejects(store.spend('b'), (err: Error) => err instanceof StateUnavailableError && /budgets/.test(err.message));
  });
});

describe('the circuit', () => {
  test('after 3 failures Redis is not asked until retry_ms has passed; then one probe, and it is back', async () => {
    const { remote, state } = standIn();
    const store = new ResilientStore(remote, all('local'), quiet, 100);
    state.down = true;
    for (let i = 0; i < 10; i++) await store.take('t', 1, { capacity: 100, refillPerMs: 0 });
    assert.equal(state.calls, 3, 'three failures open the circuit; the other seven go straight to the fallback');
    state.down = false;
    await store.take('t', 1, { capacity: 100, refillPerMs: 0 });
    assert.equal(state.calls, 3, 'still open before retry_ms');
    await new Promise((r) => setTimeout(r, 120));
    await store.take('t', 1, { capacity: 100, refillPerMs: 0 });
    assert.equal(state.calls, 4, 'one probe');
    assert.equal(store.health().status, 'ok');
    assert.equal(store.health().since, null);
  });
});

describe('what the operator sees', () => {
  test('one warn line per outage naming each use and its mode and the error; one info line when Redis is back; health and observer follow', async () => {
    const { LogCapture } = await import('./helpers.js');
    const logs = new LogCapture();
    const events: string[] = [];
    const { remote, state } = standIn();
    const store = new ResilientStore(remote, { throttles: 'local', cooldowns: 'allow', budgets: 'deny' }, createLogger({ level: 'info', destination: logs }), 50, {
      onStatus: (degraded) => events.push(degraded ? 'down' : 'up'),
      onFallback: (use, mode) => events.push(`${use}:${mode}`),
    });
    assert.deepEqual(store.health(), { kind: 'redis', status: 'ok', since: null, last_error: null, fallbacks: { throttles: 0, cooldowns: 0, budgets: 0 } });
    state.down = true;
    for (let i = 0; i < 5; i++) await store.take('t', 1, { capacity: 100, refillPerMs: 0 });
    await store.cooldowns(['k']);
    await assert.rejects(store.spend('b'));
    const warns = logs.lines.filter((l) => l.level === 40);
    assert.equal(warns.length, 1, 'one line per outage, not per request');
    assert.equal(warns[0]!.msg, 'state store (redis) is unavailable: throttles count per replica, key cooldowns are not applied, budgets refuse requests until it is back');
    assert.equal(warns[0]!.err, 'connect ECONNREFUSED 127.0.0.1:6379');
    const h = store.health();
    assert.equal(h.status, 'degraded');
    assert.ok(h.since && Date.parse(h.since) <= Date.now());
    assert.equal(h.last_error, 'connect ECONNREFUSED 127.0.0.1:6379', "the circuit's own error does not replace Redis's");
    assert.deepEqual(h.fallbacks, { throttles: 5, cooldowns: 1, budgets: 1 });
    assert.deepEqual(events, ['down', 'throttles:local', 'throttles:local', 'throttles:local', 'throttles:local', 'throttles:local', 'cooldowns:allow', 'budgets:deny']);
    state.down = false;
    await new Promise((r) => setTimeout(r, 70));
    await store.take('t', 1, { capacity: 100, refillPerMs: 0 });
    const back = logs.lines.filter((l) => l.level === 30 && String(l.msg).startsWith('state store (redis) is back'));
    assert.equal(back.length, 1);
    assert.ok(Number(back[0]!.outage_ms) >= 50, `outage_ms ${back[0]!.outage_ms}`);
    assert.equal(events.at(-1), 'up');
    assert.equal(store.health().status, 'ok');
  });
});

describe('the rest of the store', () => {
  test('Redis up: the shared figures win where they are larger, the mirror where it is', async () => {
    const { remote, inner } = standIn();
    const store = new ResilientStore(remote, all('local'), quiet);
    await inner.addSpend('b', 10, far); // another replica's
    assert.equal(await store.addSpend('b', 2, far), 12, 'the shared total after this replica adds');
    await store.setCooldown('k', far);
    await inner.setCooldown('k', 0);
    assert.deepEqual(await store.cooldowns(['k', 'unknown']), [far, 0], "this replica's own cooldown counts though Redis forgot it");
  });

  test('local: a charge lands in the local bucket; seeding spend never fails and reaches the mirror', async () => {
    const { remote, state } = standIn();
    const store = new ResilientStore(remote, all('local'), quiet);
    state.down = true;
    await store.charge('c', 3, { capacity: 3, refillPerMs: 0 });
    assert.equal((await store.take('c', 1, { capacity: 3, refillPerMs: 0 })).ok, false, 'the charge emptied the local bucket');
    await store.seedSpend('s', 4, far);
    assert.equal(await store.spend('s'), 4);
  });

  test('allow: a slot is given and can be released; a charge is dropped', async () => {
    const { remote, state } = standIn();
    const store = new ResilientStore(remote, all('allow'), quiet);
    state.down = true;
    const slot = (await store.acquire('c', 1))!;
    await slot.release();
    await store.charge('c', 100, { capacity: 1, refillPerMs: 0 });
    assert.equal((await store.take('c', 1, { capacity: 1, refillPerMs: 0 })).ok, true);
  });

  test('sign-in records go to Redis while it answers and to this replica while it does not', async () => {
    const { remote, inner, state } = standIn();
    const store = new ResilientStore(remote, all('deny'), quiet);
    await store.putRecord('r1', 'shared', 60_000);
    assert.equal(await inner.getRecord('r1'), 'shared', 'written to Redis');
    assert.equal(await store.claimRecord('c1', 'x', 60_000), true);
    assert.equal(await store.claimRecord('c1', 'x', 60_000), false, 'claimed once');
    state.down = true;
    await store.putRecord('r2', 'local', 60_000);
    assert.equal(await store.getRecord('r2'), 'local', 'kept by this replica, deny or not');
    assert.equal(await store.takeRecord('r2'), 'local');
    assert.equal(await store.takeRecord('r2'), null, 'taken once');
    assert.equal(await store.claimRecord('c2', 'x', 60_000), true);
    assert.equal(await inner.getRecord('r2'), null, 'Redis never saw it');
  });
});
