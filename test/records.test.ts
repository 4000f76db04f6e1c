/**
 * Every request leaves one usage record with the outcome that describes it (issue 14: a record dropped for
 * error statuses, and a cut stream recorded as `ok`, both passed the suite before). Read back from the
 * SQLite ledger the gateway writes, after a clean shutdown: answered (`ok`), refused by a rule, by a
 * throttle or by bad input (`refused`), the upstream failing or refusing (`failed`), the upstream ending a
 * stream before `message_stop` (`failed`, and the client gets `event: error`), the client hanging up
 * mid-stream (`aborted`).
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, test } from 'node:test';
import Database from 'better-sqlite3';
import { request } from 'undici';
import type { UsageRecord } from '../src/usage/record.js';
import { startFakeUpstream, type FakeUpstream } from './fake-upstream.js';
import { startTestGateway, until } from './helpers.js';

let fake: FakeUpstream;
before(async () => {
  fake = await startFakeUpstream();
});
after(() => fake.close());

const RULES = {
  '10.yaml': `version: 1
rules:
  - id: no-opus
    match: { model: "claude-opus-*" }
    actions: [ { deny: { status: 403, message: "no Opus here" } } ]
  - id: one-per-minute
    match: { header: { x-case: throttled } }
    actions: [ { throttle: { scope: global, requests_per_minute: 1 } } ]
  - id: route
    actions: [ { route_to: { provider: anthropic } } ]
`,
};

test('each request, whatever its end, leaves one record with its status and outcome', async () => {
  const { gw, configFile, logs } = await startTestGateway({ upstream: fake.url, rules: RULES });
  const send = async (name: string, opts: { fake?: string; stream?: boolean; model?: string; raw?: string }) => {
    const r = await request(gw.url + '/v1/messages', {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-case': name, 'x-claude-code-session-id': `case-${name}`, ...(opts.fake ? { 'x-fake': opts.fake } : {}) },
      body: opts.raw ?? JSON.stringify({ model: opts.model ?? 'claude-sonnet-4-6', max_tokens: 5, stream: opts.stream ?? false, messages: [{ role: 'user', content: 'hi' }] }),
    });
    return { status: r.statusCode, text: await r.body.text() };
  };
  const expected: Record<string, { status: number; outcome: UsageRecord['outcome'] }> = {};
  try {
    expected.ok = { status: (await send('ok', {})).status, outcome: 'ok' };
    expected.denied = { status: (await send('denied', { model: 'claude-opus-4-1' })).status, outcome: 'refused' };
    await send('throttled', {}); // takes the one request of the minute
    expected.throttled = { status: (await send('throttled', {})).status, outcome: 'refused' };
    expected.malformed = { status: (await send('malformed', { raw: '{"model": ' })).status, outcome: 'refused' };
    expected.upstream500 = { status: (await send('upstream500', { fake: 'status:500' })).status, outcome: 'failed' };
    expected.upstream429 = { status: (await send('upstream429', { fake: 'status:429' })).status, outcome: 'failed' };
    const cut = await send('cut', { fake: 'cut-sse', stream: true });
    expected.cut = { status: cut.status, outcome: 'failed' };
    assert.match(cut.text, /event: error\ndata: \{"type":"error","error":\{"type":"api_error","message":"[^"]*before message_stop/, 'a stream the upstream ended early ends with event: error');

    // The client hangs up after the first event of a stream the upstream keeps open.
    const ac = new AbortController();
    const r = await request(gw.url + '/v1/messages', {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-case': 'hangup', 'x-claude-code-session-id': 'case-hangup', 'x-fake': 'slow-sse' },
      body: JSON.stringify({ model: 'claude-sonnet-4-6', max_tokens: 5, stream: true, messages: [{ role: 'user', content: 'hi' }] }),
      signal: ac.signal,
    });
    await new Promise<void>((resolve) => r.body.once('data', () => resolve()));
    r.body.on('error', () => {});
    ac.abort();
    expected.hangup = { status: 200, outcome: 'aborted' };
    await until(() => logs.lines.filter((l) => l.msg === 'request').length === 9, 5000, 'nine request log lines');
  } finally {
    await gw.close(); // flushes the ledger
  }
  assert.deepEqual(
    Object.fromEntries(Object.entries(expected).map(([k, v]) => [k, v.status])),
    { ok: 200, denied: 403, throttled: 429, malformed: 400, upstream500: 500, upstream429: 429, cut: 200, hangup: 200 },
    'the statuses the client saw',
  );
  const db = new Database(path.join(path.dirname(configFile), 'data/usage.db'), { readonly: true });
  const records = db.prepare('SELECT * FROM usage_records').all() as UsageRecord[];
  db.close();
  assert.equal(records.length, 9, 'one record per request');
  const bySession = new Map<string, UsageRecord[]>();
  for (const rec of records) bySession.set(String(rec.session_id), [...(bySession.get(String(rec.session_id)) ?? []), rec]);
  for (const [name, want] of Object.entries(expected)) {
    const recs = bySession.get(`case-${name}`) ?? [];
    const rec = recs.at(-1);
    assert.ok(rec, `a record for ${name}`);
    assert.equal(rec.outcome, want.outcome, `outcome of ${name}`);
    assert.equal(rec.status, want.status, `status of ${name}`);
  }
  assert.equal(bySession.get('case-throttled')!.length, 2, 'the admitted and the throttled request');
  assert.equal(bySession.get('case-throttled')![0]!.outcome, 'ok');
  assert.equal(bySession.get('case-denied')![0]!.error_type, 'permission_error');
  // Which rule action refused each refusal; nothing for the others.
  assert.equal(bySession.get('case-denied')![0]!.refused_by, 'deny:no-opus');
  assert.deepEqual(
    bySession.get('case-throttled')!.map((r) => r.refused_by),
    [null, 'throttle:one-per-minute'],
  );
  assert.equal(bySession.get('case-malformed')![0]!.refused_by, null, 'bad input is refused by no rule');
  assert.equal(bySession.get('case-ok')![0]!.refused_by, null);
  assert.equal(bySession.get('case-upstream500')![0]!.provider, 'anthropic');
  // Tokens the upstream reported before a cut are kept.
  assert.equal(bySession.get('case-cut')![0]!.input_tokens, 25);
});
