/**
 * Fault isolation, dependencies (issue 12): a TCP proxy the test controls sits between the gateway and
 * the real Redis and PostgreSQL (refuse, reset, black-hole). Asserted: what clients see (no failed
 * request, bounded latency), what /readyz says, and that no usage record is lost (count and distinct
 * request ids) — across an outage, and across a shutdown during one.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { request } from 'undici';
import { startFakeUpstream, type FakeUpstream } from './fake-upstream.js';
import { startFaultProxy, type FaultProxy } from './fault-proxy.js';
import { startTestGateway, until, type LogCapture } from './helpers.js';

const REDIS_URL = new URL(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
const DATABASE_URL = new URL(process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test');

let fake: FakeUpstream;
before(async () => {
  fake = await startFakeUpstream();
});
after(() => fake.close());

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const body = (stream = false) => JSON.stringify({ model: 'claude-sonnet-4-6', max_tokens: 5, stream, messages: [{ role: 'user', content: 'hi' }] });
const send = (url: string, headers: Record<string, string> = {}, stream = false) =>
  request(url + '/v1/messages', { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': 'client-key-1', ...headers }, body: body(stream) });

/** Sends requests from `workers` loops (each ~1 every `gapMs`) until stopped; returns statuses and latencies. */
function load(url: string, workers = 2, gapMs = 80) {
  const results: Array<{ status: number; ms: number; at: number }> = [];
  let stop = false;
  const loops = Array.from({ length: workers }, async () => {
    while (!stop) {
      const t0 = performance.now();
      try {
        const r = await send(url);
        await r.body.dump();
        results.push({ status: r.statusCode, ms: performance.now() - t0, at: Date.now() });
      } catch {
        results.push({ status: 0, ms: performance.now() - t0, at: Date.now() });
      }
      await sleep(gapMs);
    }
  });
  return {
    results,
    async stop() {
      stop = true;
      await Promise.all(loops);
      return results;
    },
  };
}

const readyz = async (url: string) =>
  (await (await request(url + '/readyz')).body.json()) as { state: { status: string; fallbacks: Record<string, number> }; ledger: { status: string; spooled: number; queued: number } };

describe('Redis outage', () => {
  let redisProxy: FaultProxy;
  before(async () => {
    redisProxy = await startFaultProxy(Number(REDIS_URL.port || 6379), REDIS_URL.hostname);
  });
  after(() => redisProxy.close());

  const stateConfig = (extra = '') => `state: { redis: "redis://127.0.0.1:${redisProxy.port}", command_timeout_ms: 50, retry_ms: 500${extra} }\nledger: off\n`;
  const providers = `  anthropic:\n    type: anthropic\n    base_url: ${'${UP}'}\n    keys: [ "k-ok-a", "k-ok-b" ]\n    retries: { max: 0 }\n`;
  const throttled = (id: string) => ({
    '10.yaml': `version: 1\nrules:\n  - id: ${id}\n    actions:\n      - throttle: { scope: key, requests_per_minute: 100000, concurrent: 50 }\n      - route_to: { provider: anthropic }\n`,
  });

  test('refused, then black-holed for 10 s under load: no request fails, none waits on Redis; /readyz and metrics show it; shared state resumes', async () => {
    await redisProxy.set('pass');
    const { gw, logs } = await startTestGateway({
      upstream: fake.url,
      providers: providers.replace('${UP}', fake.url),
      extraConfig: stateConfig(),
      rules: throttled(`redis-out-${randomBytes(3).toString('hex')}`),
    });
    try {
      const l = load(gw.url);
      await sleep(500);
      await redisProxy.set('refuse');
      await sleep(5000);
      const during = await readyz(gw.url);
      await redisProxy.set('blackhole');
      await sleep(5000);
      await redisProxy.set('pass');
      await until(async () => (await readyz(gw.url)).state.status === 'ok', 10_000, 'state store recovery');
      await sleep(300);
      const results = await l.stop();
      assert.ok(results.length > 100, `${results.length} requests sent`);
      const failed = results.filter((r) => r.status !== 200);
      assert.equal(failed.length, 0, `failed: ${JSON.stringify(failed.slice(0, 5))}`);
      // A frozen Redis costs at most its command timeout, then nothing while the circuit is open.
      const worst = Math.max(...results.map((r) => r.ms));
      assert.ok(worst < 1500, `slowest request ${worst.toFixed(0)} ms`);
      assert.equal(during.state.status, 'degraded');
      assert.ok(during.state.fallbacks.throttles! > 0 && during.state.fallbacks.cooldowns! > 0, JSON.stringify(during.state));
      assert.ok(logs.lines.some((x) => String(x.msg).startsWith('state store (redis) is unavailable: throttles count per replica')));
      assert.ok(logs.lines.some((x) => String(x.msg).startsWith('state store (redis) is back')));
      const metrics = await (await request(gw.url + '/metrics')).body.text();
      assert.match(metrics, /switchyard_state_fallbacks_total\{use="throttles",mode="local"\} [1-9]/);
      assert.match(metrics, /switchyard_state_degraded 0/);
    } finally {
      await redisProxy.set('pass');
      await gw.close();
    }
  });

  test('on_failure: deny refuses with 503 naming Redis while it is down', async () => {
    await redisProxy.set('pass');
    const { gw } = await startTestGateway({
      upstream: fake.url,
      providers: providers.replace('${UP}', fake.url),
      extraConfig: stateConfig(', on_failure: { throttles: deny }'),
      rules: throttled(`redis-deny-${randomBytes(3).toString('hex')}`),
    });
    try {
      const ok = await send(gw.url);
      assert.equal(ok.statusCode, 200);
      await ok.body.dump();
      await redisProxy.set('refuse');
      const r = await send(gw.url);
      assert.equal(r.statusCode, 503);
      const err = (await r.body.json()) as { error: { type: string; message: string } };
      assert.equal(err.error.type, 'overloaded_error');
      assert.match(err.error.message, /shared state store \(redis\) is unavailable and state\.on_failure\.throttles is "deny"/);
      assert.equal(r.headers['retry-after'], '1');
    } finally {
      await redisProxy.set('pass');
      await gw.close();
    }
  });

  test('a concurrency slot whose release was lost to a network blip frees itself when its lease runs out', async () => {
    await redisProxy.set('pass');
    const rule = `lease-${randomBytes(3).toString('hex')}`;
    const rules = { '10.yaml': `version: 1\nrules:\n  - id: ${rule}\n    actions:\n      - throttle: { scope: key, concurrent: 1 }\n      - route_to: { provider: anthropic }\n` };
    const { gw } = await startTestGateway({ upstream: fake.url, providers: providers.replace('${UP}', fake.url), extraConfig: stateConfig(', slot_lease_ms: 1500'), rules });
    try {
      const stream = await send(gw.url, { 'x-fake': 'gated-sse' }, true);
      assert.equal(stream.statusCode, 200);
      const held = await send(gw.url);
      assert.equal(held.statusCode, 429, 'the one slot is taken');
      await held.body.dump();
      await redisProxy.set('reset');
      fake.release(); // the stream ends while Redis is unreachable: its release is lost
      await stream.body.text();
      await sleep(200);
      await redisProxy.set('pass');
      await until(
        async () =>
          (await readyz(gw.url)).state.status === 'ok' ||
          (await send(gw.url).then(async (r) => {
            await r.body.dump();
            return r.statusCode === 200;
          })),
        10_000,
        'redis back',
      );
      // Without leases the slot stayed taken for 15 minutes; with them, at most one lease.
      const t0 = Date.now();
      await until(
        async () => {
          const r = await send(gw.url);
          await r.body.dump();
          return r.statusCode === 200;
        },
        6000,
        'slot freed',
      );
      assert.ok(Date.now() - t0 < 6000);
    } finally {
      await redisProxy.set('pass');
      await gw.close();
    }
  });
});

describe('PostgreSQL ledger outage', () => {
  let pgProxy: FaultProxy;
  let admin: pg.Client;
  let db: string;
  before(async () => {
    pgProxy = await startFaultProxy(Number(DATABASE_URL.port || 5432), DATABASE_URL.hostname);
    admin = new pg.Client({ connectionString: DATABASE_URL.toString() });
    await admin.connect();
    db = `switchyard_faults_${randomBytes(4).toString('hex')}`;
    await admin.query(`CREATE DATABASE ${db}`);
  });
  after(async () => {
    await pgProxy.close();
    await admin.query(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`).catch(() => {});
    await admin.end();
  });

  const viaProxy = () => `postgres://${DATABASE_URL.username || 'postgres'}@127.0.0.1:${pgProxy.port}/${db}`;
  const direct = () => {
    const u = new URL(DATABASE_URL.toString());
    u.pathname = `/${db}`;
    return u.toString();
  };
  const ledgerConfig = (spoolDir: string, extra = '') => `ledger: { postgres: "${viaProxy()}", flush_interval_ms: 100, write_timeout_ms: 800${extra}, spool: { dir: "${spoolDir}" } }\n`;

  async function recordsFor(ids: string[]): Promise<{ count: number; distinct: number }> {
    const c = new pg.Client({ connectionString: direct() });
    await c.connect();
    try {
      const { rows } = await c.query<{ n: string; d: string }>('SELECT count(*) AS n, count(DISTINCT request_id) AS d FROM usage_records WHERE request_id = ANY($1)', [ids]);
      return { count: Number(rows[0]!.n), distinct: Number(rows[0]!.d) };
    } finally {
      await c.end();
    }
  }
  const requestIds = (logs: LogCapture) => logs.lines.filter((l) => l.msg === 'request').map((l) => String(l.request_id));

  test('black-holed for 10 s under load: requests unaffected, every usage record written once after recovery', async () => {
    await pgProxy.set('pass');
    const spool = `/tmp/switchyard-spool-${randomBytes(4).toString('hex')}`;
    const { gw, logs } = await startTestGateway({ upstream: fake.url, extraConfig: ledgerConfig(spool, ', max_queue: 50') });
    try {
      const l = load(gw.url);
      await sleep(500);
      await pgProxy.set('blackhole');
      await sleep(10_000);
      const during = await readyz(gw.url);
      await pgProxy.set('pass');
      await sleep(300);
      const results = await l.stop();
      assert.equal(results.filter((r) => r.status !== 200).length, 0);
      const worst = Math.max(...results.map((r) => r.ms));
      assert.ok(worst < 1500, `slowest request ${worst.toFixed(0)} ms`);
      assert.equal(during.ledger.status, 'degraded');
      assert.ok(during.ledger.spooled > 0, 'the queue (max 50) overflowed to the spool during the outage');
      const ids = requestIds(logs);
      await until(async () => (await recordsFor(ids)).count === ids.length, 60_000, 'every record written').catch(async (e) => {
        console.log(JSON.stringify(await recordsFor(ids)), ids.length, JSON.stringify(await readyz(gw.url)));
        console.log(
          logs.lines
            .filter((x) => x.msg !== 'request')
            .map((x) => JSON.stringify(x))
            .join('\n')
            .slice(0, 6000),
        );
        throw e;
      });
      assert.deepEqual(await recordsFor(ids), { count: ids.length, distinct: ids.length });
    } finally {
      await pgProxy.set('pass');
      await gw.close();
    }
  });

  test('SIGTERM during a black-holed PostgreSQL: shutdown ends within its grace, the records are spooled and written by the next start', async () => {
    await pgProxy.set('pass');
    const spool = `/tmp/switchyard-spool-${randomBytes(4).toString('hex')}`;
    const first = await startTestGateway({ upstream: fake.url, extraConfig: ledgerConfig(spool) });
    const ids: string[] = [];
    try {
      await pgProxy.set('blackhole');
      for (let i = 0; i < 30; i++) {
        const r = await send(first.gw.url);
        await r.body.dump();
      }
      ids.push(...requestIds(first.logs));
      const t0 = performance.now();
      await first.gw.close(); // grace_ms: 2000 in the test config
      const took = performance.now() - t0;
      assert.ok(took < 6000, `shutdown took ${took.toFixed(0)} ms`);
      assert.ok(
        first.logs.lines.some((l) => l.why === 'shutdown' && Number(l.records) > 0),
        'the queued records went to the spool',
      );
    } finally {
      await pgProxy.set('pass');
    }
    const second = await startTestGateway({ upstream: fake.url, extraConfig: ledgerConfig(spool) });
    try {
      await until(async () => (await recordsFor(ids)).count === ids.length, 30_000, 'spool replayed');
      assert.deepEqual(await recordsFor(ids), { count: 30, distinct: 30 });
    } finally {
      await second.gw.close();
    }
  });
});
