/**
 * Every request ends exactly once (issue 30, DESIGN §11): each finding of the outside test as its own test,
 * over real loopback servers with Redis and PostgreSQL behind TCP fault proxies, plus the short chaos soak.
 *   0. a PostgreSQL connection reset while a ledger query is in flight does not end the process;
 *   1. clients that hang up while the gateway waits on a stalled Redis each end with one log line and one
 *      usage record, and give back the concurrency count, the key's in-flight count and the throttle slot;
 *   2. a black-holed PostgreSQL ledger does not hold requests (spend limits come from memory) and /readyz
 *      reports it degraded;
 *   the watchdog ends a request that makes no progress, and what it held is given back.
 */
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { request } from 'undici';
import { startFakeUpstream, type FakeUpstream } from './fake-upstream.js';
import { proxiedDatabase, startFaultProxy } from './fault-proxy.js';
import { startTestGateway, until } from './helpers.js';
import { describeRun, soak } from './soak.js';

const REDIS_URL = new URL(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let fake: FakeUpstream;
before(async () => {
  fake = await startFakeUpstream();
});
after(() => fake.close());

const body = (stream: boolean) => JSON.stringify({ model: 'claude-sonnet-4-6', max_tokens: 5, stream, messages: [{ role: 'user', content: 'hi' }] });
const pooled = (url: string) =>
  `  anthropic:\n    type: anthropic\n    base_url: ${url}\n    keys: [ "k-inv-a", "k-inv-b" ]\n    timeouts: { connect_ms: 2000, headers_ms: 5000, first_byte_ms: 5000, body_ms: 5000 }\n    retries: { max: 0 }\n    breaker: { failures: 1000 }\n`;

describe('a request ends exactly once', () => {
  test('0: a PostgreSQL connection reset while a ledger query is in flight does not end the process', async () => {
    const db = await proxiedDatabase('inv_pgreset');
    const { proxy } = db;
    const uncaught: Error[] = [];
    const onUncaught = (err: Error) => uncaught.push(err);
    // node:test turns an uncaught exception into a failure of the file; listening here makes it this test's failure.
    process.on('uncaughtException', onUncaught);
    const { gw } = await startTestGateway({ upstream: fake.url, extraConfig: `ledger: { postgres: "${db.url}", flush_interval_ms: 50, write_timeout_ms: 20000 }\n` });
    try {
      for (let i = 0; i < 2; i++) await (await request(`${gw.url}/v1/messages`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': 'k' }, body: body(false) })).body.dump();
      await until(() => gw.deps.ledger!.written >= 2, 5000, 'the first records written');
      // The database stops answering while two more requests are recorded: their write is in flight.
      await proxy.set('blackhole');
      for (let i = 0; i < 2; i++) await (await request(`${gw.url}/v1/messages`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': 'k' }, body: body(false) })).body.dump();
      await sleep(800);
      // Then the held connections are reset (a healed partition, a failover, a restarted pgbouncer).
      await proxy.set('reset');
      await sleep(300);
      await proxy.set('pass');
      assert.deepEqual(
        uncaught.map((e) => e.message),
        [],
        'no unhandled error event from a pg Client',
      );
      const r = await request(`${gw.url}/v1/messages`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': 'k' }, body: body(false) });
      await r.body.dump();
      assert.equal(r.statusCode, 200, 'the gateway still serves');
      await until(() => gw.deps.ledger!.written >= 5, 15000, 'every record written once the database answers again');
    } finally {
      process.off('uncaughtException', onUncaught);
      await gw.close();
      await db.drop();
    }
  });

  test('1: clients hanging up while Redis is stalled each end once and give back what they took', async () => {
    const proxy = await startFaultProxy(Number(REDIS_URL.port || 6379), REDIS_URL.hostname);
    const tag = Date.now().toString(36);
    const rules = {
      '10-throttle.yaml': `version: 1\nrules:\n  - id: inv-global-${tag}\n    actions:\n      - throttle: { scope: global, concurrent: 100, requests_per_minute: 100000 }\n`,
      '50-route.yaml': 'version: 1\nrules:\n  - id: default\n    actions:\n      - route_to: { provider: anthropic }\n',
    };
    const { gw, logs } = await startTestGateway({
      upstream: fake.url,
      providers: pooled(fake.url),
      rules,
      extraConfig: `state: { redis: "redis://127.0.0.1:${proxy.port}", command_timeout_ms: 100, retry_ms: 200, slot_lease_ms: 1500 }\nlimits: { stall_ms: 20000 }\n`,
    });
    try {
      await proxy.set('blackhole');
      const n = 24;
      const session = `inv-hangup-${tag}`;
      const hangUps = Array.from({ length: n }, async (_, i) => {
        const ac = new AbortController();
        setTimeout(() => ac.abort(), 50 + ((i * 37) % 150));
        try {
          const r = await request(`${gw.url}/v1/messages`, {
            method: 'POST',
            signal: ac.signal,
            headers: { 'content-type': 'application/json', 'x-api-key': 'k', 'x-claude-code-session-id': session, 'x-fake': 'slow-headers:1000' },
            body: body(true),
          });
          await r.body.dump();
        } catch {
          // hung up, as intended
        }
      });
      await Promise.all(hangUps);
      await sleep(400);
      await proxy.set('pass');
      const lines = () => logs.lines.filter((l) => l.msg === 'request' && l.session_id === session);
      await until(() => lines().length === n, 8000, `${n} log lines (have ${lines().length})`);
      assert.equal(new Set(lines().map((l) => l.request_id)).size, n, 'one log line per request');
      assert.ok(
        lines().every((l) => l.outcome === 'client_aborted'),
        JSON.stringify(lines().map((l) => l.outcome)),
      );
      const d = gw.deps;
      await until(() => d.exchanges.size === 0 && d.inFlight.count === 0, 3000, 'no request in flight');
      await until(() => d.upstreams.pools.all().every((p) => p.keys.every((k) => k.inFlight === 0)), 3000, 'every key of the pool back to 0 in flight');
      assert.equal(d.inflightBytes.total, 0, 'no body bytes reserved');
      // The throttle's slots: a concurrency of 100 admits 100 at once again.
      const again = await Promise.all(
        Array.from({ length: 4 }, () =>
          request(`${gw.url}/v1/messages`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': 'k' }, body: body(false) }).then(async (r) => {
            await r.body.dump();
            return r.statusCode;
          }),
        ),
      );
      assert.deepEqual(again, [200, 200, 200, 200]);
    } finally {
      await gw.close();
      await proxy.close();
    }
  });

  test('2: a black-holed PostgreSQL ledger holds no request (spend limits from memory) and /readyz says degraded', async () => {
    const db = await proxiedDatabase('inv_pghole');
    const { proxy } = db;
    const rules = {
      '10-budget.yaml': 'version: 1\nrules:\n  - id: inv-budget\n    actions:\n      - budget: { scope: user, usd: 1000, per: day }\n',
      '50-route.yaml': 'version: 1\nrules:\n  - id: default\n    actions:\n      - route_to: { provider: anthropic }\n',
    };
    const { gw } = await startTestGateway({ upstream: fake.url, rules, extraConfig: `ledger: { postgres: "${db.url}", flush_interval_ms: 100, write_timeout_ms: 10000 }\n` });
    try {
      const limits = gw.deps.spendLimits!;
      // Every read of the spend limits is stale from here on, so each request would re-read them.
      (limits as unknown as { refreshMs: number }).refreshMs = 0;
      await proxy.set('blackhole');
      const times: number[] = [];
      for (let i = 0; i < 12; i++) {
        const t0 = performance.now();
        const r = await request(`${gw.url}/v1/messages`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': 'k' }, body: body(i % 2 === 0) });
        await r.body.dump();
        times.push(performance.now() - t0);
        assert.equal(r.statusCode, 200);
        await sleep(250);
      }
      times.sort((a, b) => a - b);
      assert.ok(times.at(-1)! < 1000, `the slowest request took ${Math.round(times.at(-1)!)} ms with the ledger black-holed`);
      const ready = (await (await request(`${gw.url}/readyz`)).body.json()) as { ledger: { status: string }; spend_limits: { status: string } };
      assert.equal(ready.ledger.status, 'degraded', 'a write hanging for seconds is degraded');
      assert.equal(ready.spend_limits.status, 'degraded', 'spend-limit reads that time out are degraded');
      // A shutdown in that state ends within its grace period (2 s here), the records it could not write spooled.
      const t0 = performance.now();
      await gw.close();
      const took = performance.now() - t0;
      assert.ok(took < 2000 + 300, `the shutdown took ${Math.round(took)} ms with grace_ms 2000`);
      await proxy.set('pass');
    } finally {
      await gw.close();
      await db.drop();
    }
  });

  test('the watchdog ends a request that makes no progress, answers 504 naming the stage and gives back what it held', async () => {
    const { gw, logs } = await startTestGateway({ upstream: fake.url, providers: pooled(fake.url), extraConfig: 'limits: { stall_ms: 300 }\n' });
    try {
      // The upstream never answers and its timeout (5 s) is longer than the stall bound.
      const t0 = performance.now();
      const r = await request(`${gw.url}/v1/messages`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': 'k', 'x-fake': 'hang' }, body: body(false) });
      const answer = (await r.body.json()) as { error: { type: string; message: string } };
      assert.equal(r.statusCode, 504);
      assert.equal(answer.error.type, 'api_error');
      assert.match(answer.error.message, /without progress in stage "forward" \(limits\.stall_ms\)/);
      assert.ok(performance.now() - t0 < 2500, 'ended near its bound');
      const lines = logs.lines.filter((l) => l.msg === 'request');
      assert.equal(lines.length, 1, 'one log line');
      assert.equal(lines[0]!.outcome, 'gateway_error');
      const d = gw.deps;
      await until(() => d.upstreams.pools.all().every((p) => p.keys.every((k) => k.inFlight === 0)), 2000, 'the key given back (the upstream call aborted)');
      assert.equal(d.inFlight.count, 0);
      assert.equal(d.exchanges.size, 0);
      const metrics = await (await request(`${gw.url}/metrics`)).body.text();
      assert.match(metrics, /switchyard_watchdog_ended_total\{stage="forward"\} 1/);
      await sleep(300);
      assert.equal(logs.lines.filter((l) => l.msg === 'request').length, 1, 'still one log line after the stuck stage woke');
    } finally {
      await gw.close();
    }
  });
});

describe('chaos soak (short)', () => {
  test('mixed traffic under mixed faults keeps every invariant', async () => {
    const seed = Number(process.env.SOAK_SEED ?? 1 + (Date.now() % 1000));
    const r = await soak({ seed, seconds: Number(process.env.SOAK_SECONDS ?? 20) });
    assert.deepEqual(r.violations, [], describeRun(r));
    assert.ok(r.arrived > 100, describeRun(r));
    assert.ok(r.faults.length >= 3, describeRun(r));
  });
});

describe('bounded in bytes, whatever a client chooses', () => {
  test('3: model names outside the configuration are one `other` series; a 30 KB session id is kept bounded but unique', async () => {
    const { gw, logs } = await startTestGateway({ upstream: fake.url });
    try {
      for (let i = 0; i < 40; i++) {
        const r = await request(`${gw.url}/v1/messages`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-api-key': 'k' },
          body: JSON.stringify({ model: `made-up-model-${i}`, max_tokens: 5, messages: [{ role: 'user', content: 'hi' }] }),
        });
        await r.body.dump();
      }
      const metrics = await (await request(`${gw.url}/metrics`)).body.text();
      assert.doesNotMatch(metrics, /made-up-model-/);
      assert.match(metrics, /switchyard_requests_total\{provider="anthropic",model="other",status="200",outcome="ok"\} 40/);
      const long = (c: string) => c.repeat(30_000);
      for (const c of ['a', 'b']) {
        const r = await request(`${gw.url}/v1/messages`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': 'k', 'x-claude-code-session-id': long(c) }, body: body(false) });
        await r.body.dump();
      }
      const ids = logs.lines
        .filter((l) => l.msg === 'request')
        .slice(-2)
        .map((l) => String(l.session_id));
      assert.ok(
        ids.every((id) => id.length <= 128),
        `session ids of ${ids.map((i) => i.length)} characters`,
      );
      assert.notEqual(ids[0], ids[1], 'two long ids stay two sessions');
    } finally {
      await gw.close();
    }
  });

  test('a chunked body to an admin route past its bound is 413, read no further', async () => {
    const { gw } = await startTestGateway({ upstream: fake.url });
    try {
      async function* chunks() {
        for (let i = 0; i < 10; i++) yield Buffer.alloc(1024 * 1024, 0x20);
      }
      const r = await request(`${gw.url}/v1/organizations/spend_limits`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: Readable.from(chunks()) }).catch((err: Error) => err);
      if (r instanceof Error) return; // the gateway may close the connection while the client still writes: refused either way
      assert.equal(r.statusCode, 413);
      await r.body.dump();
      assert.equal(gw.deps.inflightBytes.total, 0);
    } finally {
      await gw.close();
    }
  });
});

describe('5: admin writes are not forgeable', () => {
  test('a form post, another origin or a cross-site fetch cannot write, also with no admin token; JSON from a non-browser can', async () => {
    const { gw } = await startTestGateway({ upstream: fake.url });
    const limit = JSON.stringify({ amount: '0', scope: { type: 'organization' }, period: 'daily' });
    try {
      const attempts: Array<[string, Record<string, string>, string]> = [
        ['a text/plain form', { 'content-type': 'text/plain' }, limit],
        ['a urlencoded form', { 'content-type': 'application/x-www-form-urlencoded' }, 'amount=0'],
        ['another origin', { 'content-type': 'application/json', origin: 'http://evil.example:8080' }, limit],
        ['a cross-site fetch', { 'content-type': 'application/json', 'sec-fetch-site': 'cross-site' }, limit],
      ];
      for (const [what, headers, payload] of attempts) {
        const r = await request(`${gw.url}/v1/organizations/spend_limits`, { method: 'POST', headers, body: payload });
        const json = (await r.body.json()) as { error: { type: string } };
        assert.equal(r.statusCode, 403, what);
        assert.equal(json.error.type, 'permission_error', what);
      }
      const list = (await (await request(`${gw.url}/v1/organizations/spend_limits`)).body.json()) as { data: unknown[] };
      assert.equal(list.data.length, 0, 'no spend limit was created');
      const ok = await request(`${gw.url}/v1/organizations/spend_limits`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ amount: '5000', scope: { type: 'organization' }, period: 'daily' }),
      });
      assert.equal(ok.statusCode, 200);
      await ok.body.dump();
    } finally {
      await gw.close();
    }
  });

  test('wrong admin tokens back off per address from the tenth on', async () => {
    const { gw } = await startTestGateway({ upstream: fake.url, extraConfig: 'admin: { token: "admin-right-token" }\n' });
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 11; i++) {
        const r = await request(`${gw.url}/admin/rules`, { headers: { authorization: `Bearer guess-${i}` } });
        statuses.push(r.statusCode);
        if (r.statusCode === 429) assert.ok(Number(r.headers['retry-after']) >= 1);
        await r.body.dump();
      }
      assert.deepEqual(statuses, [...Array(10).fill(401), 429]);
      const right = await request(`${gw.url}/admin/rules`, { headers: { authorization: 'Bearer admin-right-token' } });
      assert.equal(right.statusCode, 429, 'locked out even with the right token until the lockout ends');
      await right.body.dump();
    } finally {
      await gw.close();
    }
  });
});

describe('8: what the gateway says about itself', () => {
  test('the start-up mode names who authenticates and whose credential goes upstream', async () => {
    const { gatewayMode } = await import('../src/server/serve.js');
    const p = (keys: string[]) => ({ a: { keys } }) as never;
    assert.equal(gatewayMode({ clients: null, login: null, providers: p([]) }), "transparent: the client's own credential is forwarded");
    assert.equal(gatewayMode({ clients: null, login: null, providers: p(['k']) }), "no client authentication; upstream with providers' own keys");
    assert.equal(gatewayMode({ clients: [{}, {}] as never, login: null, providers: p(['k']) }), "clients authenticate with client keys (2); upstream with providers' own keys");
    assert.equal(gatewayMode({ clients: null, login: {} as never, providers: p([]) }), 'clients authenticate with sign-in; upstream with no credential (set keys on the providers)');
  });
});
