/**
 * The forwarding loop (`upstream/forward.ts`), function-level, against a scripted upstream client: which key each
 * attempt uses and what happens after each kind of answer — a 429 cools the key and moves to the next at once, a
 * 401/403 takes the key out of the pool, 5xx, 408 and transport errors back off within the retry budget, then the
 * fallback providers; `x-should-retry: false` is final; every key cooling is a 429 with the earliest retry-after; an
 * open circuit, missing cloud credentials and a pinned key that is gone are named; a client that goes away stops it;
 * an oversized error body is not kept; each attempt is counted and its key's in-flight slot freed once.
 */
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { describe, test } from 'node:test';
import { createLogger } from '../src/log.js';
import { MemoryStore } from '../src/state/store.js';
import { KeysCoolingError, NoUpstreamError, UpstreamCredentialsError, UpstreamError } from '../src/errors.js';
import { MAX_ERROR_BODY_BYTES, type UpstreamResponse } from '../src/upstream/client.js';
import { BreakerRegistry, type ForwardPlan, forward, isUpstreamFault, PoolRegistry, type Upstreams } from '../src/upstream/forward.js';
import { keyFingerprint } from '../src/upstream/pool.js';
import type { ProviderConfig } from '../src/upstream/providers/provider-config.js';
import { LogCapture } from './helpers.js';

/** One scripted answer: a status (with headers and body), or an error to throw. */
type Step = { status: number; headers?: Record<string, string>; body?: string } | { error: Error };
interface Sent {
  provider: string;
  credential: string | undefined;
  headers: Record<string, unknown>;
}

function provider(name: string, over: Partial<ProviderConfig> = {}): ProviderConfig {
  return {
    name,
    type: 'anthropic',
    base_url: `http://${name}.invalid`,
    keys: [],
    key_strategy: 'round_robin',
    models: {},
    retries: { max: 2, base_delay_ms: 1, max_delay_ms: 2, budget_ms: 60_000 },
    breaker: { failures: 1000, cooldown_ms: 30_000 },
    ...over,
  } as ProviderConfig;
}

/** Upstreams whose client answers each provider from its script, recording what was sent. */
function upstreams(scripts: Record<string, Step[]>, over: Partial<Upstreams> = {}) {
  const sent: Sent[] = [];
  const logs = new LogCapture();
  const cooled: string[] = [];
  const client = {
    async send(p: ProviderConfig, req: { headers: Record<string, unknown> }): Promise<UpstreamResponse> {
      const h = req.headers;
      sent.push({ provider: p.name, credential: (h['x-api-key'] as string) ?? undefined, headers: h });
      const step = scripts[p.name]!.shift() ?? { status: 200 };
      if ('error' in step) throw step.error;
      return { statusCode: step.status, headers: { 'content-type': 'application/json', ...step.headers }, body: Readable.from([Buffer.from(step.body ?? `{"from":"${p.name}"}`)]) };
    },
  };
  const u: Upstreams = {
    client: client as never,
    pools: new PoolRegistry(),
    breakers: new BreakerRegistry(),
    state: new MemoryStore(),
    log: createLogger({ level: 'trace', destination: logs }),
    onCooldown: (name) => cooled.push(name),
    ...over,
  };
  return { u, sent, logs, cooled };
}

/** A client that stays (or goes when `gone` is called). */
function presence() {
  let reason: Error | null = null;
  const listeners = new Set<(r: Error) => void>();
  return {
    get goneReason() {
      return reason;
    },
    onGone(fn: (r: Error) => void) {
      listeners.add(fn);
      return () => listeners.delete(fn);
    },
    gone(r: Error) {
      reason = r;
      for (const fn of listeners) fn(r);
    },
  };
}

function plan(chain: ProviderConfig[], over: Partial<ForwardPlan> = {}): ForwardPlan {
  return {
    chain,
    requestFor: () => ({
      method: 'POST',
      pathAndQuery: '/v1/messages',
      body: Buffer.from('{}'),
      headers: (c): Record<string, string> => (c.kind === 'key' ? { 'x-api-key': c.key } : {}),
      dropped: [],
    }),
    clientsConfigured: false,
    session: 'sess-1',
    client: presence(),
    requestId: 'req-1',
    started: performance.now(),
    stream: false,
    stats: { attempts: 0 },
    ...over,
  };
}

describe('keys', () => {
  test('a 200 at once: the key used, its in-flight slot held until released (once)', async () => {
    const p = provider('a', { keys: ['key-a0', 'key-a1'] });
    const { u, sent } = upstreams({ a: [{ status: 200 }] });
    const pl = plan([p]);
    const f = await forward(u, pl);
    assert.deepEqual([f.provider, f.answer.statusCode, pl.stats.attempts, sent.length], ['a', 200, 1, 1]);
    const pooled = u.pools.for(p).keys.find((k) => k.key === sent[0]!.credential)!;
    assert.equal(f.key, pooled.fingerprint);
    assert.equal(pooled.inFlight, 1);
    f.release();
    f.release();
    assert.equal(pooled.inFlight, 0, 'released once');
    assert.equal(await text(f.answer.body), '{"from":"a"}');
  });

  test("a 429 cools its key for the upstream's retry-after and moves to the next key at once", async () => {
    const p = provider('a', { keys: ['key-a0', 'key-a1'] });
    const { u, sent, cooled, logs } = upstreams({ a: [{ status: 429, headers: { 'retry-after': '30' } }, { status: 200 }] });
    const pl = plan([p]);
    const t0 = Date.now();
    const f = await forward(u, pl);
    assert.equal(f.answer.statusCode, 200);
    assert.equal(sent.length, 2);
    assert.notEqual(sent[0]!.credential, sent[1]!.credential, 'the next key');
    assert.deepEqual(cooled, ['a']);
    const first = u.pools.for(p).keys.find((k) => k.key === sent[0]!.credential)!;
    const [until] = await u.state.cooldowns([u.pools.for(p).cooldownId(first)]);
    assert.ok(until! >= t0 + 30_000 && until! < Date.now() + 31_000, `cooling 30 s: ${until! - t0}`);
    assert.equal(first.inFlight, 0, 'the refused attempt gave its slot back');
    assert.ok(logs.lines.some((l) => l.msg === 'upstream key rate-limited: cooling down, trying the next key' && l.status === 429 && l.key_fingerprint === first.fingerprint));
    assert.equal(pl.stats.attempts, 2);
  });

  test('every key cooling: 429 with the earliest end as retry-after, naming the providers', async () => {
    const a = provider('a', { keys: ['key-a0'] });
    const b = provider('b', { keys: ['key-b0'] });
    const { u } = upstreams({ a: [], b: [] });
    const now = Date.now();
    await u.state.setCooldown(u.pools.for(a).cooldownId(u.pools.for(a).keys[0]!), now + 20_000);
    await u.state.setCooldown(u.pools.for(b).cooldownId(u.pools.for(b).keys[0]!), now + 7_500);
    await assert.rejects(forward(u, plan([a, b])), (e: unknown) => {
      assert.ok(e instanceof KeysCoolingError);
      assert.equal(e.message, 'every upstream key of "a", "b" is cooling down after rate limits; retry after 8 s');
      assert.equal(e.headers['retry-after'], '8');
      return true;
    });
  });

  test('a 401/403 takes the key out of the pool for good; when every key is refused, the last refusal is passed through', async () => {
    const p = provider('a', { keys: ['key-a0', 'key-a1'] });
    const { u, sent, logs } = upstreams({ a: [{ status: 401, body: '{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}' }, { status: 403 }] });
    const f = await forward(u, plan([p]));
    assert.equal(sent.length, 2);
    assert.deepEqual(
      u.pools.for(p).keys.map((k) => k.failed),
      [true, true],
    );
    assert.equal(f.answer.statusCode, 403, 'the last answer, as the upstream gave it');
    assert.equal(f.key, null);
    const refused = logs.lines.filter((l) => String(l.msg).includes('was refused'));
    assert.equal(refused.length, 2);
    assert.equal(refused[0]!.msg, `upstream key ${keyFingerprint(sent[0]!.credential!)} of provider "a" was refused (401); it is out of the pool until the config changes`);
    assert.deepEqual([refused[0]!.level, refused[1]!.status], [50, 403]);
    const { u: u2, sent: sent2 } = upstreams({ a: [{ status: 200 }] });
    for (const k of u2.pools.for(p).keys) k.failed = true;
    await assert.rejects(
      forward(u2, plan([p])),
      (e: unknown) => e instanceof NoUpstreamError && e.code === 'SY_NO_KEYS' && e.message === 'provider "a": every upstream key was refused (401/403); check the keys in the config',
    );
    assert.equal(sent2.length, 0);
  });
});

describe('retries and fallbacks', () => {
  test('5xx answers are retried with backoff, then the fallback serves; every attempt is counted', async () => {
    const a = provider('a', { retries: { max: 2, base_delay_ms: 1, max_delay_ms: 2, budget_ms: 60_000 } });
    const b = provider('b');
    const { u, sent, logs } = upstreams({ a: [{ status: 500 }, { status: 529 }, { status: 503 }], b: [{ status: 200 }] });
    const pl = plan([a, b]);
    const f = await forward(u, pl);
    assert.deepEqual(
      sent.map((s) => s.provider),
      ['a', 'a', 'a', 'b'],
    );
    assert.deepEqual([f.provider, f.answer.statusCode, pl.stats.attempts, f.key], ['b', 200, 4, null]);
    assert.deepEqual(
      logs.lines.filter((l) => l.msg === 'upstream attempt failed').map((l) => [l.provider, l.attempt, l.error]),
      [
        ['a', 1, 'status 500'],
        ['a', 2, 'status 529'],
        ['a', 3, 'status 503'],
      ],
    );
  });

  test('when every attempt failed with an answer, the last answer is passed through whole', async () => {
    const body = '{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}';
    const { u } = upstreams({
      a: [
        { status: 529, body },
        { status: 529, body },
      ],
      b: [{ status: 529, body: 'last' }],
    });
    const f = await forward(
      u,
      plan([
        provider('a', { retries: { max: 1, base_delay_ms: 1, max_delay_ms: 1, budget_ms: 60_000 } }),
        provider('b', { retries: { max: 0, base_delay_ms: 1, max_delay_ms: 1, budget_ms: 60_000 } }),
      ]),
    );
    assert.deepEqual([f.answer.statusCode, f.provider, f.key], [529, 'b', null]);
    assert.equal(await text(f.answer.body), 'last');
    f.release();
  });

  test('x-should-retry: false is final, even on a 5xx; a 4xx answer is the answer', async () => {
    const { u, sent } = upstreams({ a: [{ status: 500, headers: { 'x-should-retry': 'False' } }], b: [] });
    const f = await forward(u, plan([provider('a'), provider('b')]));
    assert.deepEqual([f.answer.statusCode, sent.length], [500, 1]);
    const { u: u2, sent: sent2 } = upstreams({ a: [{ status: 400 }] });
    assert.equal((await forward(u2, plan([provider('a')]))).answer.statusCode, 400);
    assert.equal(sent2.length, 1, 'a 400 is not retried');
    const { u: u3, sent: sent3 } = upstreams({ a: [{ status: 429, headers: { 'x-should-retry': 'false' } }] });
    assert.equal((await forward(u3, plan([provider('a', { keys: ['k'] })]))).answer.statusCode, 429);
    assert.equal(sent3.length, 1);
  });

  test('408 is retried with backoff; transparent mode passes a 429 on (the client’s own key is limited)', async () => {
    const { u, sent } = upstreams({ a: [{ status: 408 }, { status: 200 }] });
    assert.equal((await forward(u, plan([provider('a')]))).answer.statusCode, 200);
    assert.equal(sent.length, 2);
    const { u: u2, sent: sent2, cooled } = upstreams({ a: [{ status: 429 }], b: [{ status: 200 }] });
    const f = await forward(u2, plan([provider('a'), provider('b')]));
    assert.equal(sent2.length, 2, 'no retry at a, on to b');
    assert.deepEqual([f.provider, f.answer.statusCode, cooled], ['b', 200, []]);
    const { u: u3 } = upstreams({ a: [{ status: 429, body: 'limited' }] });
    const passed = await forward(u3, plan([provider('a')]));
    assert.deepEqual([passed.answer.statusCode, await text(passed.answer.body)], [429, 'limited']);
  });

  test('a transport error is retried; when nothing answers, the last error is thrown', async () => {
    const refused = new UpstreamError('SY_UPSTREAM_CONNECT', 502, 'provider "a": connection refused');
    const { u, logs } = upstreams({ a: [{ error: refused }, { error: refused }, { error: refused }] });
    const pl = plan([provider('a')]);
    await assert.rejects(forward(u, pl), (e: unknown) => e === refused);
    assert.equal(pl.stats.attempts, 3);
    assert.equal(logs.lines.filter((l) => l.msg === 'upstream attempt failed' && l.error === 'provider "a": connection refused').length, 3);
  });

  test('the retry budget stops retries that would end after it', async () => {
    const a = provider('a', { retries: { max: 5, base_delay_ms: 10_000, max_delay_ms: 10_000, budget_ms: 50 } });
    const { u, sent } = upstreams({ a: [{ status: 500 }, { status: 500 }, { status: 500 }, { status: 500 }] });
    const t0 = performance.now();
    const f = await forward(u, plan([a]));
    assert.equal(f.answer.statusCode, 500);
    assert.ok(sent.length < 4, `retries stopped by the 50 ms budget: ${sent.length} attempts`);
    assert.ok(performance.now() - t0 < 5_000, 'never waited out a 10 s backoff');
  });

  test('no provider could be tried: a 503 that says so', async () => {
    const { u } = upstreams({});
    await assert.rejects(forward(u, plan([])), (e: unknown) => e instanceof NoUpstreamError && e.code === 'SY_NO_UPSTREAM' && e.message === 'no upstream could be tried for this request');
  });
});

describe('breakers, credentials, pins and the client', () => {
  test('a circuit opens after its consecutive failures; then the provider is skipped with a message naming it', async () => {
    const a = provider('a', { retries: { max: 0, base_delay_ms: 1, max_delay_ms: 1, budget_ms: 60_000 }, breaker: { failures: 2, cooldown_ms: 30_000 } });
    const { u, sent, logs } = upstreams({ a: [{ status: 500 }, { status: 502 }, { status: 200 }] });
    await forward(u, plan([a]));
    await forward(u, plan([a]));
    assert.deepEqual(u.breakers.states(), { a: 'open' });
    await assert.rejects(
      forward(u, plan([a])),
      (e: unknown) =>
        e instanceof NoUpstreamError && e.code === 'SY_CIRCUIT_OPEN' && e.message === 'provider "a": circuit open after 2 consecutive failures; the next probe goes through 30 s after it opened',
    );
    assert.equal(sent.length, 2, 'no call while open');
    assert.ok(logs.lines.some((l) => l.msg === 'circuit open: skipping provider' && l.provider === 'a'));
    const only = provider('s', { retries: { max: 0, base_delay_ms: 1, max_delay_ms: 1, budget_ms: 60_000 }, breaker: { failures: 1, cooldown_ms: 30_000, statuses: [503] } });
    const { u: u2 } = upstreams({ s: [{ status: 500 }, { status: 500 }] });
    await forward(u2, plan([only]));
    assert.deepEqual(u2.breakers.states(), { s: 'closed' }, 'breaker.statuses: only a 503 counts');
  });

  test('what counts against a breaker: transport errors and 5xx (or the listed statuses); never a 4xx or a client hang-up', () => {
    const p = provider('a');
    assert.equal(isUpstreamFault(new UpstreamError('SY_UPSTREAM_CONNECT', 502, 'x'), p), true);
    assert.equal(isUpstreamFault(new Error('client went away'), p), false);
    assert.equal(isUpstreamFault(new NoUpstreamError('SY_NO_KEYS', 'x'), p), false);
  });

  test('cloud credentials that cannot be had: logged, on to the fallback at once; alone, the error is the answer', async () => {
    const creds = new UpstreamCredentialsError('bedrock', 'aws default chain', 'expired');
    const { u, sent, logs } = upstreams({ bedrock: [{ error: creds }], anthropic: [{ status: 200 }] });
    const f = await forward(u, plan([provider('bedrock'), provider('anthropic')]));
    assert.deepEqual([f.provider, sent.length], ['anthropic', 2]);
    assert.ok(logs.lines.some((l) => l.msg === 'provider credentials unavailable' && l.provider === 'bedrock' && l.level === 50));
    const { u: u2 } = upstreams({ bedrock: [{ error: creds }] });
    await assert.rejects(forward(u2, plan([provider('bedrock')])), (e: unknown) => e === creds);
  });

  test('a pinned key is the only key used; a pinned key gone or refused is a 503 naming what it holds; a cooling pin is a 429', async () => {
    const p = provider('a', { keys: ['key-a0', 'key-a1', 'key-a2'] });
    const pin = { key: keyFingerprint('key-a2'), what: 'file "file_011"' };
    const { u, sent } = upstreams({ a: [{ status: 500 }, { status: 200 }] });
    const f = await forward(u, plan([p], { pin }));
    assert.deepEqual(
      sent.map((s) => s.credential),
      ['key-a2', 'key-a2'],
      'retried with the same key',
    );
    assert.equal(f.key, pin.key);
    const { u: u2 } = upstreams({ a: [] });
    await assert.rejects(
      forward(u2, plan([p], { pin: { key: '…gone#000000', what: 'file "file_9"' } })),
      (e: unknown) => e instanceof NoUpstreamError && e.message === 'provider "a": the key …gone#000000 that holds file "file_9" is no longer in its keys; only that key can reach it',
    );
    u2.pools.for(p).keys[2]!.failed = true;
    await assert.rejects(
      forward(u2, plan([p], { pin })),
      (e: unknown) => e instanceof NoUpstreamError && /the key \S+ that holds file "file_011" was refused \(401\/403\); only that key can reach it/.test(e.message),
    );
    const { u: u3 } = upstreams({ a: [] });
    const pooled = u3.pools.for(p).keys[2]!;
    await u3.state.setCooldown(u3.pools.for(p).cooldownId(pooled), Date.now() + 3_000);
    await assert.rejects(forward(u3, plan([p], { pin })), (e: unknown) => e instanceof KeysCoolingError && e.headers['retry-after'] === '3');
  });

  test('a client that went away stops forwarding with its reason, also during a backoff', async () => {
    const gone = new Error('client closed the connection');
    const c = presence();
    c.gone(gone);
    const { u, sent } = upstreams({ a: [{ status: 200 }] });
    await assert.rejects(forward(u, plan([provider('a')], { client: c })), (e: unknown) => e === gone);
    assert.equal(sent.length, 0);
    const c2 = presence();
    const slow = provider('a', { retries: { max: 1, base_delay_ms: 60_000, max_delay_ms: 60_000, budget_ms: 600_000 } });
    const { u: u2 } = upstreams({ a: [{ status: 500 }] });
    const p = forward(u2, plan([slow], { client: c2 }));
    setTimeout(() => c2.gone(gone), 30);
    const t0 = Date.now();
    await assert.rejects(p, (e: unknown) => e === gone);
    assert.ok(Date.now() - t0 < 10_000, 'the backoff ended when the client left');
  });

  test("an error body over the bound is not kept: Anthropic's error shape, saying so, with the upstream's status", async () => {
    const big = 'x'.repeat(MAX_ERROR_BODY_BYTES + 1);
    const { u } = upstreams({ a: [{ status: 503, headers: { 'content-length': String(big.length), 'content-encoding': 'identity' }, body: big }] });
    const f = await forward(u, plan([provider('a', { retries: { max: 0, base_delay_ms: 1, max_delay_ms: 1, budget_ms: 1 } })]));
    assert.equal(f.answer.statusCode, 503);
    assert.equal(f.answer.headers['content-length'], undefined);
    assert.equal(f.answer.headers['content-encoding'], undefined);
    assert.deepEqual(JSON.parse(await text(f.answer.body)), {
      type: 'error',
      error: { type: 'api_error', message: `provider "a" answered 503 with an error body over ${MAX_ERROR_BODY_BYTES} bytes; switchyard did not keep it` },
    });
    for (const [status, type] of [
      [429, 'rate_limit_error'],
      [408, 'invalid_request_error'],
    ] as const) {
      const { u: u2 } = upstreams({ a: [{ status, body: big }] });
      const g = await forward(u2, plan([provider('a', { retries: { max: 0, base_delay_ms: 1, max_delay_ms: 1, budget_ms: 1 } })]));
      assert.equal(JSON.parse(await text(g.answer.body)).error.type, type);
    }
  });

  test('the rate-limit headroom an answer reports is kept on its key; each attempt carries its span’s traceparent', async () => {
    const p = provider('a', { keys: ['key-a0'] });
    const { u, sent } = upstreams({ a: [{ status: 200, headers: { 'anthropic-ratelimit-requests-remaining': '41' } }] });
    const spans: Array<[string, number | null]> = [];
    const trace = { attempt: (pr: ProviderConfig, url: string) => ({ traceparent: `00-${pr.name}-${url.length}-01`, end: (status: number | null) => void spans.push([pr.name, status]) }) };
    const f = await forward(u, plan([p], { trace: trace as never }));
    assert.equal(u.pools.for(p).keys[0]!.remaining, 41);
    assert.equal(sent[0]!.headers.traceparent, `00-a-${'http://a.invalid/v1/messages'.length}-01`);
    assert.deepEqual(spans, [['a', 200]]);
    f.release();
  });
});

describe('registries across a config reload', () => {
  test('a pool is kept while its keys and strategy stay; a changed key list or strategy gets a fresh pool, and the old one goes', () => {
    const pools = new PoolRegistry();
    const p = provider('a', { keys: ['k1', 'k2'] });
    const first = pools.for(p);
    first.keys[0]!.failed = true;
    assert.equal(pools.for({ ...p }), first, 'the same settings: the same pool, with what it learned');
    const rotated = pools.for({ ...p, keys: ['k1', 'k3'] });
    assert.notEqual(rotated, first);
    assert.equal(rotated.keys[0]!.failed, false, 'a new key list starts fresh');
    assert.deepEqual(
      pools.all().map((x) => x.keys.map((k) => k.key)),
      [['k1', 'k3']],
      "the provider's old pool is gone",
    );
    const other = pools.for(provider('b', { keys: ['k9'] }));
    assert.notEqual(pools.for({ ...p, keys: ['k1', 'k3'], key_strategy: 'least_loaded' }), rotated, 'a new strategy: a new pool');
    assert.deepEqual(
      pools
        .all()
        .map((x) => x.provider)
        .sort(),
      ['a', 'b'],
      "another provider's pool stays",
    );
    assert.equal(pools.for(provider('b', { keys: ['k9'] })), other);
  });

  test('a breaker is kept while its settings stay; new failures, cooldown or statuses get a fresh (closed) breaker', async () => {
    const breakers = new BreakerRegistry();
    const p = provider('a', { breaker: { failures: 1, cooldown_ms: 60_000 } });
    const b1 = breakers.for(p);
    assert.equal(breakers.for({ ...p }), b1);
    const { u } = upstreams({ a: [{ status: 500 }] }, { breakers });
    await forward(u, plan([{ ...p, retries: { max: 0, base_delay_ms: 1, max_delay_ms: 1, budget_ms: 1 } }]));
    assert.deepEqual(breakers.states(), { a: 'open' });
    for (const changed of [
      { failures: 2, cooldown_ms: 60_000 },
      { failures: 2, cooldown_ms: 1_000 },
      { failures: 2, cooldown_ms: 1_000, statuses: [503] },
    ]) {
      const before = breakers.for(p);
      const fresh = breakers.for({ ...p, breaker: changed });
      assert.notEqual(fresh, before, JSON.stringify(changed));
      assert.deepEqual(breakers.states(), { a: 'closed' }, 'a fresh breaker is closed');
      p.breaker = changed;
    }
    assert.equal(breakers.for({ ...p }), breakers.for({ ...p }), 'the same statuses: the same breaker');
  });
});
