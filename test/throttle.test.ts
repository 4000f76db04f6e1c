/**
 * Throttles: the token bucket itself (fake clock), each limit kind refusing the request that exceeds it
 * and admitting again after refill, scopes, shadow mode, counters surviving a reload, and two gateway
 * processes sharing one Redis enforcing one combined budget.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { request } from 'undici';
import { RedisStore } from '../src/state/redis.js';
import { MemoryStore } from '../src/state/store.js';
import { startFakeUpstream, type FakeUpstream } from './fake-upstream.js';
import { startTestGateway, until, writeConfig } from './helpers.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

const rules = (throttle: string, extra = '') => ({
  '10-throttle.yaml': `version: 1\nrules:\n  - id: limit\n    actions:\n      - throttle: ${throttle}\n${extra}  - id: default\n    actions: [ { route_to: { provider: anthropic } } ]\n`,
});
const send = (url: string, headers: Record<string, string> = {}, extra: Record<string, unknown> = {}) =>
  request(url + '/v1/messages', {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': 'sk-client-1', ...headers },
    body: JSON.stringify({ model: 'claude-sonnet-4-6', max_tokens: 5, messages: [{ role: 'user', content: 'hi' }], ...extra }),
  });

let fake: FakeUpstream;
before(async () => {
  fake = await startFakeUpstream();
});
after(() => fake.close());

describe('token bucket', () => {
  test('capacity, refill, retry-after, debt, and a cost above capacity from a full bucket', async () => {
    let now = 0;
    const store = new MemoryStore(() => now);
    const spec = { capacity: 3, refillPerMs: 0.01 }; // 10 per second
    for (let i = 0; i < 3; i++) assert.equal((await store.take('b', 1, spec)).ok, true);
    const refused = await store.take('b', 1, spec);
    assert.equal(refused.ok, false);
    assert.equal(refused.retryAfterMs, 100);
    now += 100;
    assert.equal((await store.take('b', 1, spec)).ok, true);
    await store.charge('b', 5, spec); // output tokens after the fact: debt of 5
    assert.equal((await store.take('b', 0, spec)).ok, false);
    now += 600; // 6 tokens back: out of debt
    assert.equal((await store.take('b', 0, spec)).ok, true);
    now += 10_000;
    const big = await store.take('b', 50, spec);
    assert.equal(big.ok, true, 'a cost above capacity is admitted from a full bucket');
    assert.equal(big.remaining, -47);
    const slot = await store.acquire('c', 1);
    assert.ok(slot);
    assert.equal(await store.acquire('c', 1), null);
    await slot.release();
    await slot.release(); // a second release gives back nothing more
    assert.ok(await store.acquire('c', 1));
    assert.equal(await store.acquire('c', 1), null);
  });
});

describe('throttle through the gateway', () => {
  test('requests_per_minute: the request over the limit gets 429 naming rule and limit; admitted again after refill', async () => {
    const { gw } = await startTestGateway({ upstream: fake.url, rules: rules('{ scope: client, requests_per_minute: 60, burst: 0.05 }') });
    try {
      for (let i = 0; i < 3; i++) {
        const r = await send(gw.url);
        assert.equal(r.statusCode, 200, `request ${i + 1}`);
        await r.body.dump();
      }
      const before = fake.received.length;
      const r = await send(gw.url);
      assert.equal(r.statusCode, 429);
      assert.equal(r.headers['retry-after'], '1');
      const json = (await r.body.json()) as { error: { type: string; message: string } };
      assert.equal(json.error.type, 'rate_limit_error');
      assert.match(json.error.message, /^throttled by rule "limit": requests_per_minute 60 for client "fp-[0-9a-f]{10}" is exhausted; retry after 1 s$/);
      assert.equal(fake.received.length, before, 'a refused request is not forwarded');
      // One request a second refills; a refused request takes nothing, so polling does not delay it.
      await until(
        async () => {
          const again = await send(gw.url);
          await again.body.dump();
          return again.statusCode === 200;
        },
        3000,
        'admitted after the refill',
      );
    } finally {
      await gw.close();
    }
  });

  test('input_tokens_per_minute: charged from the estimate at admission', async () => {
    const { gw } = await startTestGateway({ upstream: fake.url, rules: rules('{ scope: global, input_tokens_per_minute: 6000 }') });
    try {
      const big = { system: 'x'.repeat(40_000) }; // ~10K tokens: more than the whole bucket
      const first = await send(gw.url, {}, big);
      assert.equal(first.statusCode, 200, 'admitted from a full bucket');
      await first.body.dump();
      const second = await send(gw.url);
      assert.equal(second.statusCode, 429);
      assert.match(((await second.body.json()) as { error: { message: string } }).error.message, /input_tokens_per_minute 6000 for global "\*"/);
    } finally {
      await gw.close();
    }
  });

  test('output_tokens_per_minute: charged from the usage the upstream reports, JSON and SSE', async () => {
    // capacity 12 output tokens; the fake reports 7 per answer.
    const { gw, logs } = await startTestGateway({ upstream: fake.url, rules: rules('{ scope: session, output_tokens_per_minute: 60, burst: 0.2 }') });
    try {
      for (const stream of [false, true]) {
        const session = { 'x-claude-code-session-id': `s-${stream}` };
        for (let i = 0; i < 2; i++) {
          const r = await send(gw.url, session, { stream });
          assert.equal(r.statusCode, 200);
          await r.body.dump();
        }
        // The output tokens are charged when the answer is over, before its log line is written.
        await until(() => logs.lines.filter((l) => l.msg === 'request' && l.session_id === `s-${stream}`).length === 2, 2000, 'both answers settled');
        const r = await send(gw.url, session, { stream });
        assert.equal(r.statusCode, 429, `third answer with stream=${stream}`);
        assert.match(((await r.body.json()) as { error: { message: string } }).error.message, new RegExp(`output_tokens_per_minute 60 for session "s-${stream}"`));
      }
    } finally {
      await gw.close();
    }
  });

  test('concurrent: a second request while one is in flight is refused; admitted once it ends', async () => {
    const { gw, logs } = await startTestGateway({ upstream: fake.url, rules: rules('{ scope: key, concurrent: 1 }') });
    try {
      const open = await send(gw.url, { 'x-fake': 'gated-sse' }, { stream: true });
      const r = await send(gw.url);
      assert.equal(r.statusCode, 429);
      assert.match(((await r.body.json()) as { error: { message: string } }).error.message, /concurrent 1 for key/);
      fake.release();
      await open.body.text();
      // The slot is freed when the stream ends, before its log line is written.
      await until(() => logs.lines.some((l) => l.msg === 'request' && l.status === 200), 2000, 'the stream settled');
      const again = await send(gw.url);
      assert.equal(again.statusCode, 200);
      await again.body.dump();
    } finally {
      await gw.close();
    }
  });

  test('scopes count separately; shadow throttles only log; counters survive a rules reload', async () => {
    const { gw, logs, rulesDir } = await startTestGateway({
      upstream: fake.url,
      rules: rules(
        '{ scope: "tag:team", requests_per_minute: 1, burst: 1 }',
        '  - id: shadowed\n    actions:\n      - throttle: { scope: global, requests_per_minute: 1, shadow: true }\n      - tag_billing: { team: { expr: "headers.\'x-team\'" } }\n',
      ),
    });
    try {
      for (const team of ['a', 'b']) {
        const r = await send(gw.url, { 'x-team': team });
        assert.equal(r.statusCode, 200, `team ${team}`);
        await r.body.dump();
      }
      assert.ok(logs.lines.some((l) => String(l.msg).startsWith('shadow throttle would refuse: throttled by rule "shadowed"')));
      // The tag is set by a later rule: the first throttle counts it from the final decision.
      const again = await send(gw.url, { 'x-team': 'a' });
      assert.equal(again.statusCode, 429);
      await again.body.dump();
      const { writeFileSync, readFileSync } = await import('node:fs');
      const file = path.join(rulesDir, '10-throttle.yaml');
      writeFileSync(file, readFileSync(file, 'utf8') + '# edited: a new rule-set version, the same rule ids\n');
      assert.equal(gw.runtime.reload('test'), true);
      const afterReload = await send(gw.url, { 'x-team': 'a' });
      assert.equal(afterReload.statusCode, 429, 'the bucket is keyed by rule id and scope value, not by rule-set version');
      await afterReload.body.dump();
    } finally {
      await gw.close();
    }
  });
});

describe('Redis state store', () => {
  test('the Lua bucket matches the in-memory one', async () => {
    const store = new RedisStore(REDIS_URL, { prefix: `switchyard-test-${randomBytes(4).toString('hex')}:` });
    try {
      assert.equal(await store.ready(5000), true, 'Redis answers');
      const spec = { capacity: 3, refillPerMs: 1 / 60_000 };
      const results = [];
      for (let i = 0; i < 4; i++) results.push(await store.take('b', 1, spec));
      assert.deepEqual(
        results.map((r) => r.ok),
        [true, true, true, false],
      );
      assert.ok(results[3]!.retryAfterMs > 50_000 && results[3]!.retryAfterMs <= 60_000, `retry after ${results[3]!.retryAfterMs}`);
      await store.charge('c', 5, spec);
      assert.equal((await store.take('c', 0, spec)).ok, false, 'a fresh bucket of 3 charged 5 is in debt');
    } finally {
      await store.close();
    }
  });

  test('two gateway processes sharing one Redis enforce one combined requests_per_minute', async () => {
    const ruleId = `shared-${randomBytes(4).toString('hex')}`;
    const { configFile } = writeConfig({
      upstream: fake.url,
      extraConfig: `state: { redis: "${REDIS_URL}" }\n`,
      rules: { 'a.yaml': `version: 1\nrules:\n  - id: ${ruleId}\n    actions:\n      - throttle: { scope: global, requests_per_minute: 1, burst: 5 }\n` },
    });
    const children: ChildProcess[] = [];
    try {
      const urls = await Promise.all(
        [0, 1].map(
          () =>
            new Promise<string>((resolve, reject) => {
              const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/cli.ts'), 'serve', '--config', configFile, '--port', '0'], { cwd: ROOT });
              children.push(child);
              let out = '';
              child.stdout!.on('data', (d: Buffer) => {
                out += d.toString();
                const m = /switchyard listening on (http:\/\/[^"\s]+)/.exec(out);
                if (m) resolve(m[1]!);
              });
              child.once('exit', (code) => reject(new Error(`gateway exited ${code}: ${out}`)));
              setTimeout(() => reject(new Error(`gateway did not start: ${out}`)), 15_000).unref();
            }),
        ),
      );
      const statuses: number[] = [];
      for (let i = 0; i < 12; i++) {
        const r = await send(urls[i % 2]!);
        statuses.push(r.statusCode);
        await r.body.dump();
      }
      assert.equal(statuses.filter((s) => s === 200).length, 5, `admitted across both: ${statuses.join(',')}`);
      assert.equal(statuses.filter((s) => s === 429).length, 7);
    } finally {
      for (const c of children) c.kill('SIGKILL');
    }
  });
});
