/**
 * inject_cache through the running gateway (the markers arrive upstream, the rest of the body untouched) and
 * in `switchyard dry-run --json`.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { request } from 'undici';
import { existingBreakpoints } from '../src/actions/inject_cache.js';
import { startFakeUpstream } from './fake-upstream.js';
import { claudeCodeBody, startTestGateway } from './helpers.js';

const ROOT = path.resolve(import.meta.dirname, '..');

test('through the running gateway the markers arrive upstream; dry-run --json lists them', async () => {
  const fake = await startFakeUpstream();
  const rules = { '10-cache.yaml': 'version: 1\nrules:\n  - id: cache\n    actions: [ { inject_cache: { at: [tools, system, last_user], ttl: 5m } } ]\n' };
  const { gw } = await startTestGateway({ upstream: fake.url, rules });
  try {
    const body = claudeCodeBody({ stream: false });
    const r = await request(gw.url + '/v1/messages?beta=true', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    assert.equal(r.statusCode, 200);
    await r.body.dump();
    const sent = JSON.parse(fake.received.at(-1)!.body.toString()) as Record<string, any>;
    assert.equal(existingBreakpoints(sent).length, 4);
    assert.deepEqual(sent.tools.at(-1).cache_control, { type: 'ephemeral' });
    assert.deepEqual(sent.system, body.system);
    assert.deepEqual(sent.an_unknown_future_field, body.an_unknown_future_field);
  } finally {
    await gw.close();
    await fake.close();
  }
  const file = path.join(tmpdir(), `cc-${process.pid}.json`);
  writeFileSync(file, JSON.stringify(claudeCodeBody()));
  const out = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'dry-run', '--json', '--request', file], { cwd: ROOT, encoding: 'utf8' });
  assert.equal(out.status, 0, out.stderr);
  const report = JSON.parse(out.stdout) as { cache_breakpoints: { existing: number; places: Array<{ place: string; status: string; reason?: string }> } };
  assert.equal(report.cache_breakpoints.existing, 3);
  assert.deepEqual(
    report.cache_breakpoints.places.map((p) => [p.place, p.status]),
    [
      ['tools', 'injected'],
      ['system', 'skipped'],
      ['last_user', 'skipped'],
    ],
  );
});
