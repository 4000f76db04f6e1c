/**
 * Admission as functions, against the in-memory store and a real Redis: every throttle admits or the
 * request is refused with what the earlier ones took given back; tickets settle once; scope values;
 * budgets and their calendar keys; and the bucket arithmetic both stores share, as properties.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { pino } from 'pino';
import { budgetExpiry, budgetKey, checkBudgets, periodOf } from '../src/actions/budget/enforce.js';
import { scopeValue } from '../src/actions/scope.js';
import { admit } from '../src/actions/throttle/enforce.js';
import { BudgetSpentError, ThrottledError } from '../src/errors.js';
import { buildContext, type RequestContext } from '../src/rules/context.js';
import type { Decision } from '../src/rules/decision.js';
import { evaluate } from '../src/rules/evaluate.js';
import { compileRuleSources } from '../src/rules/load.js';
import { RedisStore } from '../src/state/redis.js';
import { decideTake, MemoryStore, refill, type StateStore } from '../src/state/store.js';

// `npm run mutate` runs this file once per mutant: fewer generated cases there, the full count in npm test.
if (process.env.MUTATION_RUN) fc.configureGlobal({ numRuns: 25 });

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const silent = pino({ level: 'silent' });

/** The decision and context of a request with `headers` under the rules in `yaml`. */
async function decide(yaml: string, headers: Record<string, string> = {}, clientId?: string): Promise<{ d: Decision; rc: RequestContext }> {
  const rs = compileRuleSources([{ file: '10.yaml', text: `version: 1\nrules:\n${yaml}` }], ['anthropic']);
  const body = { model: 'claude-sonnet-4-6', max_tokens: 100, messages: [{ role: 'user', content: 'x'.repeat(400) }] };
  const rc = buildContext({ path: '/v1/messages', body, headers, bodyBytes: JSON.stringify(body).length, clientId });
  return { d: await evaluate(rs, rc, 'anthropic'), rc };
}

const stores: Array<[string, () => Promise<StateStore>]> = [
  ['memory', async () => new MemoryStore()],
  [
    'redis',
    async () => {
      const s = new RedisStore(REDIS_URL, { prefix: `sy-test-${randomBytes(4).toString('hex')}:` });
      assert.ok(await s.ready(5000), `Redis at ${REDIS_URL}`);
      return s;
    },
  ],
];

for (const [kind, make] of stores) {
  describe(`admission (${kind} store)`, () => {
    let store: StateStore;
    before(async () => {
      store = await make();
    });
    after(() => store.close());

    test('a later limit refusing gives back the slot and tokens the earlier ones took', async () => {
      // slots: one global slot, then one request a minute per client
      const { d, rc } = await decide(
        '  - id: slots\n    actions: [ { throttle: { scope: global, concurrent: 1 } } ]\n  - id: rpm\n    actions: [ { throttle: { scope: client, requests_per_minute: 1, burst: 1 } } ]\n',
        {},
        'alice',
      );
      const first = await admit(d, rc, store, silent, 'r1');
      await first.done(0);
      await assert.rejects(admit(d, rc, store, silent, 'r2'), (err: unknown) => err instanceof ThrottledError && /rule "rpm": requests_per_minute 1 for client "alice"/.test(err.message));
      // bob is within his own rpm; the global slot must be free again
      const bob = await decide(
        '  - id: slots\n    actions: [ { throttle: { scope: global, concurrent: 1 } } ]\n  - id: rpm\n    actions: [ { throttle: { scope: client, requests_per_minute: 1, burst: 1 } } ]\n',
        {},
        'bob',
      );
      const t = await admit(bob.d, bob.rc, store, silent, 'r3');
      await assert.rejects(admit(bob.d, bob.rc, store, silent, 'r4'), ThrottledError, 'the slot is held while bob is in flight');
      await t.done(0);
    });

    test('refund gives back requests and input tokens; done charges output tokens; each settles once', async () => {
      const rule = `t${randomBytes(3).toString('hex')}`;
      const { d, rc } = await decide(`  - id: ${rule}\n    actions: [ { throttle: { scope: global, requests_per_minute: 2, burst: 1, concurrent: 1 } } ]\n`);
      const a = await admit(d, rc, store, silent, 'a');
      await a.refund();
      await a.refund(); // nothing more
      await a.done(0); // nothing: already settled
      const b = await admit(d, rc, store, silent, 'b');
      await b.done(0);
      const c = await admit(d, rc, store, silent, 'c');
      await c.done(0);
      // two admitted and one refunded: the third request of the minute is refused
      await assert.rejects(admit(d, rc, store, silent, 'd'), (err: unknown) => err instanceof ThrottledError && err.status === 429);
    });

    test('output tokens are charged at done and refuse later requests until paid back', async () => {
      const rule = `o${randomBytes(3).toString('hex')}`;
      const { d, rc } = await decide(`  - id: ${rule}\n    actions: [ { throttle: { scope: global, output_tokens_per_minute: 1000, burst: 1 } } ]\n`);
      const a = await admit(d, rc, store, silent, 'a');
      await a.done(999);
      const b = await admit(d, rc, store, silent, 'b'); // 1 token left: not in debt
      await b.done(5);
      await assert.rejects(admit(d, rc, store, silent, 'c'), (err: unknown) => err instanceof ThrottledError && /output_tokens_per_minute 1000/.test(err.message));
    });

    test('input tokens are taken from the estimate; a shadow throttle only logs', async () => {
      const rule = `i${randomBytes(3).toString('hex')}`;
      // the body's estimate is ~100+ input tokens; a 150-token bucket admits one
      const { d, rc } = await decide(`  - id: ${rule}\n    actions: [ { throttle: { scope: global, input_tokens_per_minute: 150, burst: 1 } } ]\n`);
      assert.ok(rc.estimate.input_tokens > 75 && rc.estimate.input_tokens <= 150, `estimate ${rc.estimate.input_tokens}`);
      await (await admit(d, rc, store, silent, 'a')).done(0);
      await assert.rejects(admit(d, rc, store, silent, 'b'), (err: unknown) => err instanceof ThrottledError && /input_tokens_per_minute 150/.test(err.message));
      const shadow = await decide(`  - id: ${rule}\n    actions: [ { throttle: { scope: global, input_tokens_per_minute: 150, burst: 1, shadow: true } } ]\n`);
      const warned: string[] = [];
      const log = pino({ level: 'warn' }, { write: (line: string) => warned.push(JSON.parse(line).msg) });
      await (await admit(shadow.d, shadow.rc, store, log, 'c')).done(0);
      assert.equal(warned.length, 1);
      assert.match(warned[0]!, new RegExp(`^shadow throttle would refuse: throttled by rule "${rule}"`));
    });
  });
}

describe('scopes and budgets', () => {
  test('each scope counts under its own value', async () => {
    const { d, rc } = await decide('  - id: t\n    actions: [ { tag_billing: { team: search } } ]\n', { 'x-claude-code-session-id': 'sess-9' }, 'alice');
    assert.equal(scopeValue('global', rc, d), '*');
    assert.equal(scopeValue('client', rc, d), 'alice');
    assert.equal(scopeValue('key', rc, d), 'alice');
    assert.equal(scopeValue('session', rc, d), 'sess-9');
    assert.equal(scopeValue('model', rc, d), 'claude-sonnet-4-6');
    assert.equal(scopeValue('tag:team', rc, d), 'search');
    assert.equal(scopeValue('tag:other', rc, d), '(untagged)');
    const noSession = await decide('  - id: t\n    actions: [ { tag_billing: { team: search } } ]\n', {}, 'bob');
    assert.equal(scopeValue('session', noSession.rc, noSession.d), 'client:bob');
  });

  test('calendar periods at their edges, keys per period, expiry a day after', () => {
    const monday = new Date('2026-11-23T00:00:00Z');
    assert.equal(periodOf('week', monday).start.toISOString(), '2026-11-23T00:00:00.000Z');
    const sunday = new Date('2026-11-29T23:59:59.999Z');
    assert.equal(periodOf('week', sunday).start.toISOString(), '2026-11-23T00:00:00.000Z');
    assert.equal(periodOf('week', sunday).end.toISOString(), '2026-11-30T00:00:00.000Z');
    assert.equal(periodOf('month', new Date('2026-12-31T23:00:00Z')).end.toISOString(), '2027-01-01T00:00:00.000Z');
    assert.equal(periodOf('day', new Date('2026-02-28T12:00:00Z')).end.toISOString(), '2026-03-01T00:00:00.000Z');
    assert.equal(budgetKey({ rule: 'b', scope: 'tag:team' }, 'search', new Date('2026-11-23T00:00:00Z')), 'budget:b:tag:team:search:2026-11-23');
    assert.equal(budgetExpiry(new Date('2026-11-24T00:00:00Z')), Date.parse('2026-11-25T00:00:00Z'));
  });

  test('user and project scopes: the key names the user (client, else the account in metadata) and the project header', async () => {
    const store = new MemoryStore();
    const now = new Date('2026-11-26T15:30:00Z');
    const yaml = '  - id: per-user\n    actions: [ { budget: { scope: user, usd: 1, per: day } } ]\n  - id: per-project\n    actions: [ { budget: { scope: project, usd: 1, per: day } } ]\n';
    const { d, rc } = await decide(yaml, { 'x-project': 'search' }, 'alice');
    assert.deepEqual(
      (await checkBudgets(d, rc, store, now)).charges.map((c) => c.key),
      ['budget:per-user:user:alice:2026-11-26', 'budget:per-project:project:search:2026-11-26'],
    );
    const anon = await decide(yaml, {});
    assert.equal(scopeValue('project', anon.rc, anon.d), '(no project)');
    assert.equal(scopeValue('user', anon.rc, anon.d), anon.rc.client.id, 'without a client key or metadata, the user is the client');
  });

  test('block: false never refuses; shape names the first budget past its threshold, from exactly that share on', async () => {
    const store = new MemoryStore();
    const now = new Date('2026-11-26T15:30:00Z');
    const yaml =
      '  - id: soft\n    actions: [ { budget: { scope: client, usd: 10, per: day, block: false, shape: { at: 0.5, model: claude-haiku-4-5 } } } ]\n' +
      '  - id: softer\n    actions: [ { budget: { scope: client, usd: 10, per: day, block: false, shape: { at: 0.1, model: cheap-model } } } ]\n';
    const { d, rc } = await decide(yaml, {}, 'alice');
    const key = (rule: string) => `budget:${rule}:client:alice:2026-11-26`;
    assert.equal((await checkBudgets(d, rc, store, now)).shape, null, 'nothing spent');
    await store.addSpend(key('soft'), 4.99, Date.now() + 60_000);
    await store.addSpend(key('softer'), 0.99, Date.now() + 60_000);
    assert.equal((await checkBudgets(d, rc, store, now)).shape, null, 'just below both thresholds');
    await store.addSpend(key('softer'), 0.01, Date.now() + 60_000);
    assert.deepEqual((await checkBudgets(d, rc, store, now)).shape, { rule: 'softer', model: 'cheap-model', message: 'budget "softer" at 10% for client "alice": sent to cheap-model' });
    await store.addSpend(key('soft'), 0.01, Date.now() + 60_000);
    assert.deepEqual(
      (await checkBudgets(d, rc, store, now)).shape,
      { rule: 'soft', model: 'claude-haiku-4-5', message: 'budget "soft" at 50% for client "alice": sent to claude-haiku-4-5' },
      'the first budget wins',
    );
    await store.addSpend(key('soft'), 100, Date.now() + 60_000);
    await store.addSpend(key('softer'), 100, Date.now() + 60_000);
    const over = await checkBudgets(d, rc, store, now);
    assert.equal(over.charges.length, 2, 'over its amount, a budget that does not block still charges');
    assert.equal(over.shape?.rule, 'soft');
  });

  test('a blocking budget refuses at exactly its amount', async () => {
    const store = new MemoryStore();
    const now = new Date('2026-11-26T15:30:00Z');
    const { d, rc } = await decide('  - id: cap\n    actions: [ { budget: { scope: client, usd: 2, per: month } } ]\n', {}, 'alice');
    await store.addSpend('budget:cap:client:alice:2026-11-01', 1.99, Date.now() + 60_000);
    assert.equal((await checkBudgets(d, rc, store, now)).charges.length, 1);
    await store.addSpend('budget:cap:client:alice:2026-11-01', 0.01, Date.now() + 60_000);
    await assert.rejects(checkBudgets(d, rc, store, now), BudgetSpentError);
  });

  test('a budget refuses at its amount, warns at warn_at, and charges the period key', async () => {
    const store = new MemoryStore();
    const now = new Date('2026-11-26T15:30:00Z');
    const { d, rc } = await decide('  - id: cap\n    actions: [ { budget: { scope: client, usd: 1, per: day, warn_at: 0.8 } } ]\n', {}, 'alice');
    const key = 'budget:cap:client:alice:2026-11-26';
    const fresh = await checkBudgets(d, rc, store, now);
    assert.deepEqual(fresh, {
      charges: [
        {
          key,
          expiresAtMs: Date.parse('2026-11-28T00:00:00Z'),
          budget: d.budgets[0],
          value: 'alice',
          period: { start: new Date('2026-11-26T00:00:00Z'), end: new Date('2026-11-27T00:00:00Z') },
        },
      ],
      warnings: [],
      shape: null,
    });
    await store.addSpend(key, 0.75, Date.now() + 60_000);
    assert.deepEqual((await checkBudgets(d, rc, store, now)).warnings, []);
    await store.addSpend(key, 0.05, Date.now() + 60_000);
    assert.deepEqual((await checkBudgets(d, rc, store, now)).warnings, [{ key, message: 'budget "cap": $0.8000 of $1.00 per day spent for client "alice" (80%)' }]);
    await store.addSpend(key, 0.25, Date.now() + 60_000);
    await assert.rejects(checkBudgets(d, rc, store, now), (err: unknown) => {
      assert.ok(err instanceof BudgetSpentError);
      assert.equal(err.message, 'budget "cap" of $1.00 per day for client "alice" is spent ($1.05); it resets at 2026-11-27T00:00:00.000Z');
      assert.equal(err.headers['retry-after'], String(8.5 * 3600));
      return true;
    });
  });
});

describe('bucket arithmetic (both stores use it)', () => {
  const spec = fc.record({ capacity: fc.integer({ min: 1, max: 10_000 }), refillPerMs: fc.double({ min: 1e-6, max: 10, noNaN: true }) });

  test('refill never exceeds capacity, never drains, and is linear below capacity', () => {
    fc.assert(
      fc.property(spec, fc.double({ min: -1e6, max: 1e4, noNaN: true }), fc.integer({ min: -1000, max: 1e7 }), (s, tokens, elapsed) => {
        const t = Math.min(tokens, s.capacity);
        const r = refill(t, elapsed, s);
        assert.ok(r <= s.capacity);
        assert.ok(r >= t, 'a negative elapsed time never takes tokens');
        const linear = t + Math.max(0, elapsed) * s.refillPerMs;
        assert.ok(Math.abs(r - Math.min(s.capacity, linear)) < 1e-6);
      }),
    );
  });

  test('a take is admitted exactly when enough tokens are there, and its retry-after refills just enough', () => {
    fc.assert(
      fc.property(spec, fc.double({ min: -1e5, max: 1e4, noNaN: true }), fc.integer({ min: 0, max: 20_000 }), (s, tokens, cost) => {
        const t = Math.min(tokens, s.capacity);
        const r = decideTake(t, cost, s);
        const need = cost === 0 ? Number.EPSILON : Math.min(cost, s.capacity);
        assert.equal(r.ok, cost === 0 ? t > 0 : t >= need);
        if (r.ok) {
          assert.equal(r.retryAfterMs, 0);
          assert.equal(r.remaining, t - cost);
        } else {
          assert.equal(r.remaining, t);
          assert.ok(r.retryAfterMs >= 1);
          assert.ok(refill(t, r.retryAfterMs, s) >= Math.min(need, s.capacity) - 1e-9, 'after retry-after there is enough');
          assert.ok(r.retryAfterMs - 1 <= 0 || refill(t, r.retryAfterMs - 1, s) < need, 'and not 1 ms earlier');
        }
      }),
    );
  });
});

describe('the memory store: cooldowns and spend', () => {
  test('a cooldown holds until its end and only grows; other keys are not cooling', async () => {
    let now = 1000;
    const store = new MemoryStore(() => now);
    await store.setCooldown('a', 5000);
    await store.setCooldown('a', 3000); // an earlier end never shortens it
    assert.deepEqual(await store.cooldowns(['a', 'b']), [5000, 0]);
    now = 4999;
    assert.deepEqual(await store.cooldowns(['a']), [5000]);
    now = 5000;
    assert.deepEqual(await store.cooldowns(['a']), [0], 'over at its end');
  });

  test('spend adds up until it expires; seeding raises a total, never lowers it', async () => {
    let now = 0;
    const store = new MemoryStore(() => now);
    assert.equal(await store.spend('k'), 0);
    await store.addSpend('k', 0.25, 100);
    await store.addSpend('k', 0.5, 100);
    assert.equal(await store.spend('k'), 0.75);
    await store.seedSpend('k', 0.5, 100);
    assert.equal(await store.spend('k'), 0.75, 'a lower seed changes nothing');
    await store.seedSpend('k', 2, 200);
    assert.equal(await store.spend('k'), 2);
    now = 199;
    assert.equal(await store.spend('k'), 2);
    now = 200;
    assert.equal(await store.spend('k'), 0, 'expired at its time');
    await store.addSpend('k', 0.1, 300);
    assert.equal(await store.spend('k'), 0.1, 'an expired total starts again from zero');
    assert.equal(store.kind, 'memory');
  });
});

for (const [kind, make] of stores) {
  test(`a bucket idle longer than it takes to fill holds its capacity, not more (${kind} store)`, async () => {
    const store = await make();
    try {
      // 3 tokens, refilling at 50 a second: after 200 ms idle an uncapped bucket would hold ~10.
      const spec = { capacity: 3, refillPerMs: 0.05 };
      for (let i = 0; i < 3; i++) assert.equal((await store.take('cap', 1, spec)).ok, true);
      await new Promise((r) => setTimeout(r, 200));
      const after = [];
      for (let i = 0; i < 4; i++) after.push(await store.take('cap', 1, spec));
      assert.deepEqual(
        after.map((t) => t.ok),
        [true, true, true, false],
        `remaining: ${after.map((t) => t.remaining)}`,
      );
      assert.ok(after[0]!.remaining <= 2, `the first take after the idle time leaves at most capacity − 1: ${after[0]!.remaining}`);
    } finally {
      await store.close();
    }
  });
}
