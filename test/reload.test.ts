/**
 * Hot reload end to end on a running gateway: a valid change takes effect within 1 s, an invalid one
 * keeps the last good rules serving (and shows in /admin/rules), a later valid change recovers, SIGHUP
 * forces a reload, and a client loop running throughout sees zero failed requests. Also `serve --dry-run`.
 */
import assert from 'node:assert/strict';
import { renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { request } from 'undici';
import type { Gateway } from '../src/server/serve.js';
import { startFakeUpstream, type FakeUpstream } from './fake-upstream.js';
import { startTestGateway, until, type LogCapture } from './helpers.js';

const ruleWith = (version: string) => `version: 1\nrules:\n  - id: stamp\n    actions:\n      - set_headers: { x-rules-generation: "${version}" }\n      - route_to: { provider: anthropic }\n`;

let fake: FakeUpstream;
let gw: Gateway;
let logs: LogCapture;
let rulesDir: string;

before(async () => {
  fake = await startFakeUpstream();
  ({ gw, logs, rulesDir } = await startTestGateway({ upstream: fake.url, rules: { '50-stamp.yaml': ruleWith('v1') }, watch: true }));
});
after(async () => {
  await gw.close();
  await fake.close();
});

async function send(url = gw.url): Promise<{ status: number; generation: string | undefined }> {
  const r = await request(url + '/v1/messages', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'claude-sonnet-4-6', max_tokens: 5, messages: [{ role: 'user', content: 'hi' }] }),
  });
  await r.body.dump();
  return { status: r.statusCode, generation: fake.received.at(-1)!.headers['x-rules-generation'] as string | undefined };
}

/** Time from `t0` until requests carry `generation`, ms; fails after `limitMs`. */
async function timeUntil(generation: string, t0: number, limitMs: number): Promise<number> {
  while (performance.now() - t0 < limitMs) {
    if ((await send()).generation === generation) return performance.now() - t0;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`rules generation ${generation} not live after ${limitMs} ms`);
}

test('valid change within 1 s; invalid change keeps serving; later valid change recovers; no failed request', async () => {
  const file = path.join(rulesDir, '50-stamp.yaml');
  assert.equal((await send()).generation, 'v1');

  // A client loop that runs through every change.
  let stop = false;
  const results: number[] = [];
  const loop = (async () => {
    while (!stop) {
      const r = await request(gw.url + '/v1/messages', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'claude-sonnet-4-6', max_tokens: 5, messages: [{ role: 'user', content: 'loop' }] }),
      });
      await r.body.dump();
      results.push(r.statusCode);
    }
  })();

  // 1. A valid in-place write.
  let t0 = performance.now();
  writeFileSync(file, ruleWith('v2'));
  const ms = await timeUntil('v2', t0, 1000);
  const versionV2 = ((await (await request(gw.url + '/admin/rules')).body.json()) as { version: string }).version;

  // 2. An invalid change: the last good set keeps serving, the error is visible with file:line:col.
  writeFileSync(file, 'version: 1\nrules:\n  - id: stamp\n    actions:\n      - route_to: { provider: does-not-exist }\n');
  await until(async () => ((await (await request(gw.url + '/admin/rules')).body.json()) as { last_error: unknown }).last_error !== null, 2000, 'the rejected reload');
  assert.equal((await send()).generation, 'v2');
  const admin = (await (await request(gw.url + '/admin/rules')).body.json()) as { version: string; rules: Array<{ id: string }>; last_error: { errors: string[] } | null };
  assert.equal(admin.version, versionV2);
  assert.ok(admin.last_error, 'last_error is reported');
  assert.match(admin.last_error.errors[0]!, /50-stamp\.yaml:5:\d+: rule "stamp": unknown provider "does-not-exist"/);
  assert.ok(logs.lines.some((l) => l.level === 50 && String(l.msg).includes('reload rejected')));

  // 3. A valid change written the way editors do (write elsewhere, rename over) recovers.
  t0 = performance.now();
  writeFileSync(file + '.tmp', ruleWith('v3'));
  renameSync(file + '.tmp', file);
  await timeUntil('v3', t0, 1000);
  const recovered = (await (await request(gw.url + '/admin/rules')).body.json()) as { last_error: unknown; rules: Array<{ id: string }> };
  assert.equal(recovered.last_error, null);
  assert.deepEqual(
    recovered.rules.map((r) => r.id),
    ['stamp'],
  );

  // 4. A new file is picked up too.
  t0 = performance.now();
  writeFileSync(path.join(rulesDir, '10-first.yaml'), ruleWith('v4').replace('id: stamp', 'id: first'));
  await timeUntil('v4', t0, 1000);

  stop = true;
  await loop;
  assert.ok(results.length > 10, `the client loop ran ${results.length} requests`);
  assert.deepEqual([...new Set(results)], [200], 'every request of the loop succeeded');
  console.log(`# reload took ${ms.toFixed(0)} ms; client loop: ${results.length} requests, 0 failed`);
});

test('Runtime.reload (what SIGHUP calls) swaps in a changed rule set', async () => {
  // Its own gateway, not watching: only the explicit reload can pick the change up.
  const own = await startTestGateway({ upstream: fake.url, rules: { '50-stamp.yaml': ruleWith('s1') }, watch: false });
  try {
    writeFileSync(path.join(own.rulesDir, '10-first.yaml'), ruleWith('s2').replace('id: stamp', 'id: first'));
    assert.equal((await send(own.gw.url)).generation, 's1');
    assert.equal(own.gw.runtime.reload('SIGHUP'), true);
    assert.equal((await send(own.gw.url)).generation, 's2');
  } finally {
    await own.gw.close();
  }
});

test('serve --dry-run answers with the decision instead of forwarding', async () => {
  const dry = await startTestGateway({ upstream: fake.url, dryRun: true, rules: { 'a.yaml': ruleWith('dry') } });
  try {
    const before = fake.received.length;
    const r = await request(dry.gw.url + '/v1/messages?beta=true', {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': 'sk-ant-PLANTED-SERVE-DRY' },
      body: JSON.stringify({ model: 'claude-haiku-4-5', max_tokens: 5, messages: [] }),
    });
    assert.equal(r.statusCode, 200);
    const text = await r.body.text();
    assert.ok(!text.includes('sk-ant-PLANTED-SERVE-DRY'));
    const report = JSON.parse(text) as { route: { provider: string; url: string }; headers: Record<string, string>; rules: Array<{ id: string; matched: boolean }> };
    assert.equal(report.route.provider, 'anthropic');
    assert.equal(report.route.url, `${fake.url}/v1/messages?beta=true`);
    assert.equal(report.headers['x-rules-generation'], 'dry');
    assert.deepEqual(
      report.rules.map((x) => [x.id, x.matched]),
      [['stamp', true]],
    );
    assert.equal(fake.received.length, before, 'dry-run forwarded a request');
  } finally {
    await dry.gw.close();
  }
});
