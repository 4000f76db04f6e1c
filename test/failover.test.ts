/**
 * Key pools, retries, fallback and circuit breakers against fake upstreams that rate-limit one key, refuse
 * another, answer 529 once, refuse connections or hang: the request succeeds on the healthy key or the
 * fallback provider, with the retry count in the log; every key cooling gives 429 with the earliest
 * retry-after; the breaker opens, fails fast, and half-opens.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { request } from 'undici';
import { keyFingerprint } from '../src/upstream/pool.js';
import { startFakeUpstream, type FakeUpstream } from './fake-upstream.js';
import { startTestGateway, until, type LogCapture } from './helpers.js';

let fake: FakeUpstream;
let deadUrl: string;
before(async () => {
  fake = await startFakeUpstream();
  const port = await new Promise<number>((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
  deadUrl = `http://127.0.0.1:${port}`;
});
after(() => fake.close());

const provider = (name: string, url: string, keys: string[], extra = '') =>
  `  ${name}:\n    type: anthropic\n    base_url: ${url}\n    keys: [${keys.map((k) => `"${k}"`).join(', ')}]\n    timeouts: { connect_ms: 1000, headers_ms: 400, first_byte_ms: 400, body_ms: 2000 }\n    retries: { max: 2, base_delay_ms: 5, max_delay_ms: 20 }\n${extra}`;
const route = (fallback: string[] = []) => ({ '50.yaml': `version: 1\nrules:\n  - id: r\n    actions: [ { route_to: { provider: main, fallback: [${fallback.join(', ')}] } } ]\n` });
const send = (url: string, headers: Record<string, string> = {}) =>
  request(url + '/v1/messages', {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-claude-code-session-id': 'sess-1', ...headers },
    body: JSON.stringify({ model: 'claude-sonnet-4-6', max_tokens: 5, messages: [{ role: 'user', content: 'hi' }] }),
  });
const lastLine = (logs: LogCapture) => logs.lines.filter((l) => l.msg === 'request').at(-1)!;
const keysSeen = (since: number) => fake.received.slice(since).map((r) => r.headers['x-api-key']);

describe('key pools', () => {
  test('a key that answers 429 cools down and the request moves to the next key at once; the session sticks there', async () => {
    const { gw, logs } = await startTestGateway({ upstream: fake.url, providers: provider('main', fake.url, ['k-status-429-a', 'k-ok-b']), rules: route() });
    try {
      const start = fake.received.length;
      const r = await send(gw.url);
      assert.equal(r.statusCode, 200);
      await r.body.dump();
      assert.deepEqual(keysSeen(start), ['k-status-429-a', 'k-ok-b']);
      const line = lastLine(logs);
      assert.equal(line.retries, 1);
      assert.equal(line.upstream_key, keyFingerprint('k-ok-b'));
      const again = await send(gw.url);
      await again.body.dump();
      assert.deepEqual(keysSeen(start).slice(2), ['k-ok-b'], 'the session stays on its working key');
      const admin = (await (await request(gw.url + '/admin/providers')).body.json()) as { providers: Array<{ keys: Array<{ key: string; state: string }> }> };
      assert.deepEqual(
        admin.providers[0]!.keys.map((k) => k.state),
        ['cooling', 'ok'],
      );
      assert.ok(!JSON.stringify(admin).includes('k-status-429-a'), '/admin/providers shows fingerprints only');
    } finally {
      await gw.close();
    }
  });

  test('sessions stick to their key across interleaved requests; new sessions spread round robin', async () => {
    const { gw } = await startTestGateway({ upstream: fake.url, providers: provider('main', fake.url, ['k-ok-a', 'k-ok-b', 'k-ok-c']), rules: route() });
    try {
      const order = ['s1', 's2', 's1', 's1', 's3', 's2', 's1', 's3', 's4'];
      const start = fake.received.length;
      for (const session of order) {
        const r = await send(gw.url, { 'x-claude-code-session-id': session });
        assert.equal(r.statusCode, 200);
        await r.body.dump();
      }
      const keys = keysSeen(start);
      const bySession = new Map<string, Set<unknown>>();
      for (const [i, s] of order.entries()) bySession.set(s, (bySession.get(s) ?? new Set()).add(keys[i]));
      for (const [session, seen] of bySession) assert.equal(seen.size, 1, `session ${session} used ${[...seen].join(', ')}`);
      // Round robin would give s1 its second request on another key; the first sessions get a, b, c, a.
      assert.deepEqual(
        ['s1', 's2', 's3', 's4'].map((s) => [...bySession.get(s)!][0]),
        ['k-ok-a', 'k-ok-b', 'k-ok-c', 'k-ok-a'],
      );
    } finally {
      await gw.close();
    }
  });

  test("transparent mode (no provider keys): an upstream 429 on the client's own key is passed on, not retried", async () => {
    const { gw, logs } = await startTestGateway({
      upstream: fake.url,
      providers: `  main:\n    type: anthropic\n    base_url: ${fake.url}\n    retries: { max: 3, base_delay_ms: 5, max_delay_ms: 20 }\n`,
      rules: route(),
    });
    try {
      const start = fake.received.length;
      const r = await send(gw.url, { 'x-fake': 'status:429', 'x-api-key': 'sk-ant-client-own' });
      assert.equal(r.statusCode, 429);
      assert.equal(r.headers['retry-after'], '17', "the upstream's retry-after reaches the client");
      const body = (await r.body.json()) as { error: { type: string; message: string } };
      assert.deepEqual(body.error, { type: 'rate_limit_error', message: 'fake upstream says 429' });
      assert.equal(fake.received.length - start, 1, 'one upstream call');
      assert.equal(lastLine(logs).retries, 0);
    } finally {
      await gw.close();
    }
  });

  test('a key that answers 401 leaves the pool, logged loudly by fingerprint', async () => {
    const { gw, logs } = await startTestGateway({ upstream: fake.url, providers: provider('main', fake.url, ['k-status-401-x', 'k-ok-y']), rules: route() });
    try {
      const r = await send(gw.url, { 'x-claude-code-session-id': 'sess-401' });
      assert.equal(r.statusCode, 200);
      await r.body.dump();
      const loud = logs.lines.find((l) => l.level === 50 && String(l.msg).includes('was refused (401)'));
      assert.ok(loud, 'an error-level log line names the refused key');
      assert.equal(loud.key_fingerprint, keyFingerprint('k-status-401-x'));
      assert.ok(!logs.text().includes('k-status-401-x'), 'the key itself is never logged');
      const start = fake.received.length;
      for (const s of ['a', 'b', 'c']) await (await send(gw.url, { 'x-claude-code-session-id': `sess-${s}` })).body.dump();
      assert.deepEqual(keysSeen(start), ['k-ok-y', 'k-ok-y', 'k-ok-y'], 'the refused key is not used again');
    } finally {
      await gw.close();
    }
  });

  test('every key cooling: 429 rate_limit_error with the earliest retry-after, without calling the upstream again', async () => {
    const { gw } = await startTestGateway({ upstream: fake.url, providers: provider('main', fake.url, ['k-status-429-1', 'k-status-429-2']), rules: route() });
    try {
      const r = await send(gw.url);
      assert.equal(r.statusCode, 429);
      const json = (await r.body.json()) as { error: { type: string; message: string } };
      assert.equal(json.error.type, 'rate_limit_error');
      assert.match(json.error.message, /every upstream key of "main" is cooling down/);
      assert.ok(Number(r.headers['retry-after']) >= 15 && Number(r.headers['retry-after']) <= 17, `retry-after ${r.headers['retry-after']}`);
      const start = fake.received.length;
      const again = await send(gw.url);
      assert.equal(again.statusCode, 429);
      await again.body.dump();
      assert.equal(fake.received.length, start, 'no upstream call while every key cools');
    } finally {
      await gw.close();
    }
  });
});

describe('retries and fallback', () => {
  test('529 once: retried with backoff and answered; the log counts the retry', async () => {
    const { gw, logs } = await startTestGateway({ upstream: fake.url, providers: provider('main', fake.url, ['k-once-529-z']), rules: route() });
    try {
      const r = await send(gw.url);
      assert.equal(r.statusCode, 200);
      await r.body.dump();
      assert.equal(lastLine(logs).retries, 1);
      assert.ok(logs.lines.some((l) => l.msg === 'upstream attempt failed' && l.error === 'status 529'));
    } finally {
      await gw.close();
    }
  });

  test('x-should-retry: false is final: passed through unchanged without a retry', async () => {
    const { gw, logs } = await startTestGateway({ upstream: fake.url, providers: provider('main', fake.url, ['k-ok-1', 'k-ok-2']), rules: route() });
    try {
      const start = fake.received.length;
      const r = await send(gw.url, { 'x-fake': 'noretry:529' });
      assert.equal(r.statusCode, 529);
      assert.equal(r.headers['x-should-retry'], 'false');
      await r.body.dump();
      assert.equal(fake.received.length - start, 1);
      assert.equal(lastLine(logs).retries, 0);
    } finally {
      await gw.close();
    }
  });

  test('a provider that refuses connections or hangs: the fallback provider answers', async () => {
    for (const [name, primary] of [
      ['refused', provider('main', deadUrl, ['k-ok-dead'])],
      ['hangs', provider('main', fake.url, ['k-hang-1'], '    breaker: { failures: 1000 }\n')],
    ] as const) {
      const { gw, logs } = await startTestGateway({ upstream: fake.url, providers: primary + provider('backup', fake.url, ['k-ok-backup']), rules: route(['backup']) });
      try {
        const r = await send(gw.url);
        assert.equal(r.statusCode, 200, name);
        await r.body.dump();
        const line = lastLine(logs);
        assert.equal(line.upstream, 'backup', name);
        assert.equal(line.retries, 3, `${name}: 3 attempts on the primary, then the fallback`);
      } finally {
        await gw.close();
      }
    }
  });

  test('a fallback provider gets the model under its own name (providers.<name>.models)', async () => {
    const backup = provider('backup', fake.url, ['k-ok-mapped']) + '    models: { claude-sonnet-4-6: relay-sonnet }\n';
    const { gw, logs } = await startTestGateway({ upstream: fake.url, providers: provider('main', deadUrl, ['k-ok-dead2']) + backup, rules: route(['backup']) });
    try {
      const r = await send(gw.url);
      assert.equal(r.statusCode, 200);
      await r.body.dump();
      assert.equal(lastLine(logs).upstream, 'backup');
      assert.equal((JSON.parse(fake.received.at(-1)!.body.toString()) as { model: string }).model, 'relay-sonnet');
    } finally {
      await gw.close();
    }
  });

  test('upstream 5xx after every retry is passed through unchanged', async () => {
    const { gw } = await startTestGateway({ upstream: fake.url, providers: provider('main', fake.url, ['k-status-500-q']), rules: route() });
    try {
      const r = await send(gw.url);
      assert.equal(r.statusCode, 500);
      const json = (await r.body.json()) as { error: { message: string }; request_id: string };
      assert.equal(json.error.message, 'fake upstream says 500');
      assert.equal(json.request_id, 'req_fake_err');
    } finally {
      await gw.close();
    }
  });
});

test('circuit breaker: opens after N consecutive failures, fails fast with 503 naming the provider, half-opens after the cool-down', async () => {
  const breaker = '    breaker: { failures: 2, cooldown_ms: 1000 }\n';
  const { gw } = await startTestGateway({ upstream: fake.url, providers: provider('main', fake.url, ['k-ok-br'], breaker).replace('max: 2', 'max: 0'), rules: route() });
  try {
    for (let i = 0; i < 2; i++) {
      const r = await send(gw.url, { 'x-fake': 'status:500' });
      assert.equal(r.statusCode, 500);
      await r.body.dump();
    }
    const start = fake.received.length;
    const open = await send(gw.url);
    assert.equal(open.statusCode, 503);
    const json = (await open.body.json()) as { error: { type: string; message: string } };
    assert.equal(json.error.type, 'overloaded_error');
    assert.match(json.error.message, /provider "main": circuit open after 2 consecutive failures/);
    assert.equal(fake.received.length, start, 'an open circuit fails fast');
    const admin = (await (await request(gw.url + '/admin/providers')).body.json()) as { providers: Array<{ circuit: string }> };
    assert.equal(admin.providers[0]!.circuit, 'open');
    // Until the cool-down ends every request fails fast; then the half-open probe goes through and closes it.
    await until(
      async () => {
        const probe = await send(gw.url);
        await probe.body.dump();
        return probe.statusCode === 200;
      },
      5000,
      'the half-open probe answered',
    );
    const closed = (await (await request(gw.url + '/admin/providers')).body.json()) as { providers: Array<{ circuit: string }> };
    assert.equal(closed.providers[0]!.circuit, 'closed');
  } finally {
    await gw.close();
  }
});

test('key choice: round_robin spreads new sessions, least_loaded prefers fewest in flight then most remaining; sessions stick', async () => {
  const { KeyPool } = await import('../src/upstream/pool.js');
  const rr = new KeyPool('p', ['a', 'b', 'c'], 'round_robin');
  const pick = (pool: InstanceType<typeof KeyPool>, session: string, cooling: number[] = [0, 0, 0]) => {
    const c = pool.choose(session, cooling, 1000, new Set());
    assert.equal(c.kind, 'key');
    return (c as { key: { key: string } }).key.key;
  };
  assert.deepEqual(
    ['s1', 's2', 's3', 's4'].map((s) => pick(rr, s)),
    ['a', 'b', 'c', 'a'],
  );
  // The ring's next key is b: a session that did not stick would get b, c, a from here.
  assert.deepEqual(
    ['s1', 's3', 's1'].map((s) => pick(rr, s)),
    ['a', 'c', 'a'],
    'a known session keeps its key',
  );
  assert.equal(pick(rr, 's5'), 'b', 'a new session takes the next key of the ring');
  assert.equal(pick(rr, 's2', [0, 5000, 0]), 'c', 'and moves only when its key is cooling');
  const ll = new KeyPool('p', ['a', 'b', 'c'], 'least_loaded');
  ll.keys[0]!.inFlight = 3;
  ll.keys[1]!.inFlight = 1;
  ll.keys[2]!.inFlight = 1;
  ll.keys[1]!.remaining = 10;
  ll.keys[2]!.remaining = 900;
  assert.equal(pick(ll, 'new'), 'c');
  assert.deepEqual(ll.choose('x', [5000, 3000, 4000], 1000, new Set()), { kind: 'cooling', until: 3000 });
});
