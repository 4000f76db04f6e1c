/**
 * What the README promises replicas share through Redis (`state: { redis }`), tested with two gateways on
 * one real Redis: a key's cooldown after a 429 seen by one is honoured by the other, a budget spent through
 * one is spent for the other, and a `concurrent` throttle counts requests in flight on both. Rule ids and
 * keys are fresh per run, so earlier runs' counters in the same Redis do not matter.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import { Redis } from 'ioredis';
import { request } from 'undici';
import type { Gateway } from '../src/server/serve.js';
import { startFakeUpstream, type FakeUpstream } from './fake-upstream.js';
import { startTestGateway, until } from './helpers.js';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

let fake: FakeUpstream;
let redis: Redis;
before(async () => {
  fake = await startFakeUpstream();
  redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await redis.connect();
});
after(async () => {
  await fake.close();
  redis.disconnect();
});

const run = () => randomBytes(4).toString('hex');
const send = (gw: Gateway, headers: Record<string, string> = {}, stream = false) =>
  request(gw.url + '/v1/messages', {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ model: 'claude-sonnet-4-6', max_tokens: 5, stream, messages: [{ role: 'user', content: 'hi' }] }),
  });

/** Two gateways with the same providers, rules and Redis. */
async function pair(opts: { providers?: string; rules: Record<string, string> }): Promise<[Gateway, Gateway]> {
  const extraConfig = `state: { redis: "${REDIS_URL}" }\n`;
  const a = await startTestGateway({ upstream: fake.url, extraConfig, ...opts });
  const b = await startTestGateway({ upstream: fake.url, extraConfig, ...opts });
  return [a.gw, b.gw];
}

test('a key cooling down after a 429 on one gateway is skipped by the other', async () => {
  const id = run();
  const limited = `k-status-429-${id}`;
  const healthy = `k-ok-${id}`;
  const providers = `  main:\n    type: anthropic\n    base_url: ${fake.url}\n    keys: ["${limited}", "${healthy}"]\n    retries: { max: 2, base_delay_ms: 5, max_delay_ms: 20 }\n`;
  const [a, b] = await pair({ providers, rules: { '50.yaml': 'version: 1\nrules:\n  - id: r\n    actions: [ { route_to: { provider: main } } ]\n' } });
  try {
    let start = fake.received.length;
    const first = await send(a, { 'x-claude-code-session-id': `s-${id}` });
    assert.equal(first.statusCode, 200);
    await first.body.dump();
    assert.deepEqual(
      fake.received.slice(start).map((r) => r.headers['x-api-key']),
      [limited, healthy],
      'gateway A met the 429 and moved on',
    );
    // Gateway B has never used either key: its round robin starts at the limited one, unless it knows.
    start = fake.received.length;
    const second = await send(b, { 'x-claude-code-session-id': `other-${id}` });
    assert.equal(second.statusCode, 200);
    await second.body.dump();
    assert.deepEqual(
      fake.received.slice(start).map((r) => r.headers['x-api-key']),
      [healthy],
      'gateway B skips the key cooling in Redis',
    );
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
});

test('a budget spent through one gateway refuses on the other', async () => {
  const rule = `budget-${run()}`;
  // Each answer costs $0.00018 (25 input + 7 output tokens of claude-sonnet-4-6); three spend $0.00054.
  const rules = { '10.yaml': `version: 1\nrules:\n  - id: ${rule}\n    actions: [ { budget: { scope: global, usd: 0.0005, per: day } } ]\n` };
  const [a, b] = await pair({ rules });
  try {
    for (let i = 0; i < 3; i++) {
      const r = await send(a);
      assert.equal(r.statusCode, 200);
      await r.body.dump();
    }
    // The spend is added when each request finishes; wait until Redis holds all of it.
    const spent = async () => {
      const keys = await redis.keys(`*budget:${rule}:*`);
      return keys.length === 1 ? Number(await redis.get(keys[0]!)) : 0;
    };
    await until(async () => (await spent()) >= 0.0005, 5000, 'the spend in Redis');
    assert.ok(Math.abs((await spent()) - 0.00054) < 1e-9);
    const r = await send(b);
    assert.equal(r.statusCode, 429);
    assert.equal(r.headers['x-should-retry'], 'false');
    const json = (await r.body.json()) as { error: { message: string } };
    assert.match(json.error.message, new RegExp(`^budget "${rule}" of \\$0\\.0005 per day for global "\\*" is spent`));
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
});

test('a concurrent throttle counts the requests in flight on both gateways', async () => {
  const rule = `one-at-a-time-${run()}`;
  const rules = {
    '10.yaml': `version: 1\nrules:\n  - id: ${rule}\n    actions: [ { throttle: { scope: global, concurrent: 1 } } ]\n  - id: r\n    actions: [ { route_to: { provider: anthropic } } ]\n`,
  };
  const [a, b] = await pair({ rules });
  try {
    const held = await send(a, { 'x-fake': 'gated-sse' }, true);
    assert.equal(held.statusCode, 200);
    const refused = await send(b);
    assert.equal(refused.statusCode, 429);
    const json = (await refused.body.json()) as { error: { message: string } };
    assert.match(json.error.message, new RegExp(`throttled by rule "${rule}": concurrent 1 for global "\\*"`));
    fake.release();
    await held.body.text();
    // The slot is given back when the stream ends; B is admitted once it is.
    await until(
      async () => {
        const r = await send(b);
        await r.body.dump();
        return r.statusCode === 200;
      },
      5000,
      'gateway B admitted after the stream on A ended',
    );
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
});
