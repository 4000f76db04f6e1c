/**
 * Why a request went where it went, afterwards (issue 16): the opt-in `x-switchyard-decision` header (per
 * client and global), `GET /admin/requests/{id}` with the full trace from a bounded ring (every rule matched
 * or not and why, shadowed settings, how the request ended; no bodies or secrets), and the usage record's
 * rules version and request facts (headers the rules name, counts, no message text).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { after, before, test } from 'node:test';
import Database from 'better-sqlite3';
import { request } from 'undici';
import { startFakeUpstream, type FakeUpstream } from './fake-upstream.js';
import { startTestGateway } from './helpers.js';

let fake: FakeUpstream;
before(async () => {
  fake = await startFakeUpstream();
});
after(() => fake.close());

const RULES = {
  '10.yaml': `version: 1
rules:
  - id: team
    match: { header: { x-team: "*" } }
    actions: [ { tag_billing: { team: { expr: "headers.'x-team'" } } } ]
  - id: haiku-renamed
    match: { model: "claude-haiku-*" }
    actions: [ { route_to: { provider: anthropic, model: claude-haiku-4-5 } } ]
  - id: everything
    actions: [ { route_to: { provider: anthropic } } ]
  - id: no-opus
    match: { model: "claude-opus-*" }
    actions: [ { deny: { status: 403, message: "no Opus here" } } ]
  - id: big-requests
    match: { when: "$count(messages) > 2" }
    actions: [ { tag_billing: { size: big } } ]
`,
};

const SECRET = 'sk-ant-api03-test-secret-key-do-not-log';
const TEXT = 'the message text that must never be kept';

async function send(url: string, model: string, headers: Record<string, string> = {}) {
  const r = await request(url + '/v1/messages', {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': SECRET, ...headers },
    body: JSON.stringify({ model, max_tokens: 64, metadata: { user_id: 'user-1' }, messages: [{ role: 'user', content: TEXT }] }),
  });
  await r.body.text();
  return { status: r.statusCode, headers: r.headers };
}

test('x-switchyard-decision: off by default, on for every client with trace.decision_header, on for one client with clients.ID.decision_header', async () => {
  const off = await startTestGateway({ upstream: fake.url, rules: RULES });
  const on = await startTestGateway({ upstream: fake.url, rules: RULES, extraConfig: 'trace: { decision_header: true }\n' });
  const perClient = await startTestGateway({
    upstream: fake.url,
    rules: RULES,
    providers: `  anthropic:\n    type: anthropic\n    base_url: ${fake.url}\n    keys: [sk-upstream]\n    retries: { max: 0 }\n`,
    extraConfig: `clients:\n  alice: { key_sha256: "${sha256('sk-alice')}", decision_header: true }\n  bob: { key_sha256: "${sha256('sk-bob')}" }\n`,
  });
  try {
    assert.equal((await send(off.gw.url, 'claude-sonnet-4-6')).headers['x-switchyard-decision'], undefined);
    const version = off.gw.runtime.current.rules.version;
    const ok = await send(on.gw.url, 'claude-haiku-4-5-20251001', { 'x-team': 'search' });
    assert.equal(ok.headers['x-switchyard-decision'], `rules=team,haiku-renamed,everything; route=anthropic; model=claude-haiku-4-5; version=${version}`);
    const denied = await send(on.gw.url, 'claude-opus-4-6');
    assert.equal(denied.status, 403);
    assert.equal(denied.headers['x-switchyard-decision'], `rules=everything,no-opus; route=anthropic; model=claude-opus-4-6; version=${version}; denied=no-opus`, 'refusals carry it too');
    const alice = await send(perClient.gw.url, 'claude-sonnet-4-6', { 'x-api-key': 'sk-alice' });
    assert.equal(alice.status, 200);
    assert.match(String(alice.headers['x-switchyard-decision']), /^rules=everything; route=anthropic; model=claude-sonnet-4-6; version=/);
    const bob = await send(perClient.gw.url, 'claude-sonnet-4-6', { 'x-api-key': 'sk-bob' });
    assert.equal(bob.status, 200);
    assert.equal(bob.headers['x-switchyard-decision'], undefined);
  } finally {
    await Promise.all([off.gw.close(), on.gw.close(), perClient.gw.close()]);
  }
});

function sha256(s: string): string {
  return createHash('sha256').update(s).digest('hex');
}

test('GET /admin/requests/{id}: the full trace of a recent request, how it ended, nothing secret; the ring keeps the last N', async () => {
  const { gw } = await startTestGateway({ upstream: fake.url, rules: RULES, extraConfig: 'trace: { requests: 2 }\n' });
  try {
    const first = await send(gw.url, 'claude-sonnet-4-6');
    const haiku = await send(gw.url, 'claude-haiku-4-5', { 'x-team': 'search' });
    const id = String(haiku.headers['x-switchyard-request-id']);
    const r = await request(`${gw.url}/admin/requests/${id}`);
    assert.equal(r.statusCode, 200);
    const text = await r.body.text();
    assert.ok(!text.includes(SECRET) && !text.includes(TEXT), 'no credential and no message text in the trace');
    const t = JSON.parse(text) as {
      request_id: string;
      rules_version: string;
      route: { provider: string; model: string; rule: string };
      rules: Array<{ id: string; matched: boolean; reason?: string; actions: Array<{ action: string; applied: boolean; shadowed_by?: string }> }>;
      tags: Record<string, string>;
      status: number;
      outcome: string;
    };
    assert.equal(t.request_id, id);
    assert.equal(t.rules_version, gw.runtime.current.rules.version);
    assert.deepEqual(t.route, { provider: 'anthropic', model: 'claude-haiku-4-5', requested_model: 'claude-haiku-4-5', fallback: [], rule: 'haiku-renamed' });
    const byId = Object.fromEntries(t.rules.map((x) => [x.id, x]));
    assert.equal(byId.team!.matched, true);
    assert.deepEqual(
      byId.everything!.actions,
      [{ action: 'route_to', applied: false, shadowed_by: 'haiku-renamed', shadowed: [{ setting: 'route', by: 'haiku-renamed' }], detail: { provider: 'anthropic', fallback: [] } }],
      'what it lost, and to whom',
    );
    assert.equal(byId['no-opus']!.matched, false);
    assert.match(byId['no-opus']!.reason!, /model "claude-haiku-4-5" does not match/);
    assert.match(byId['big-requests']!.reason!, /when/);
    assert.deepEqual(t.tags, { team: 'search' });
    assert.equal(t.status, 200);
    assert.equal(t.outcome, 'ok');

    await send(gw.url, 'claude-sonnet-4-6'); // a third request pushes the first out of a ring of 2
    const gone = await request(`${gw.url}/admin/requests/${String(first.headers['x-switchyard-request-id'])}`);
    assert.equal(gone.statusCode, 404);
    const err = (await gone.body.json()) as { error: { type: string; message: string } };
    assert.equal(err.error.type, 'not_found_error');
    assert.match(err.error.message, /only the last 2 requests are kept \(trace\.requests\)/);
    assert.equal((await request(`${gw.url}/admin/requests/${id}`)).statusCode, 200, 'the newer ones are still there');
  } finally {
    await gw.close();
  }
});

test('the usage record keeps the rules version and the request facts: headers the rules name, counts, metadata — no text, no credentials', async () => {
  const { gw, configFile } = await startTestGateway({ upstream: fake.url, rules: RULES });
  const version = gw.runtime.current.rules.version;
  try {
    await send(gw.url, 'claude-sonnet-4-6', { 'x-team': 'search', 'x-unrelated': 'not named by any rule', 'anthropic-beta': 'context-management-2025-06-27' });
  } finally {
    await gw.close(); // flushes the ledger
  }
  const db = new Database(path.join(path.dirname(configFile), 'data/usage.db'), { readonly: true });
  const rows = db.prepare('SELECT rules_version, rules, facts FROM usage_records').all() as Array<{ rules_version: string; rules: string; facts: string }>;
  db.close();
  assert.equal(rows.length, 1);
  assert.equal(rows[0]!.rules_version, version);
  assert.deepEqual(JSON.parse(rows[0]!.rules), ['team', 'everything']);
  assert.ok(!rows[0]!.facts.includes(TEXT) && !rows[0]!.facts.includes(SECRET));
  assert.deepEqual(JSON.parse(rows[0]!.facts), {
    path: '/v1/messages',
    stream: false,
    body_bytes: Buffer.byteLength(JSON.stringify({ model: 'claude-sonnet-4-6', max_tokens: 64, metadata: { user_id: 'user-1' }, messages: [{ role: 'user', content: TEXT }] })),
    messages: 1,
    tools: 0,
    max_tokens: 64,
    metadata: { user_id: 'user-1' },
    headers: { 'anthropic-beta': 'context-management-2025-06-27', 'x-team': 'search' },
    headers_named: ['x-team'],
  });
});
