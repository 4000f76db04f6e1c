/**
 * `GET /v1/models` from the route table (issue 15): the models each client key can reach — names in rules'
 * `match.model` and providers' `models` maps, put through the rules as that client — in Anthropic's list
 * shape with pagination, read by the real @anthropic-ai/sdk, without an upstream call; the default
 * provider's own list when the configuration names no model.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import Anthropic from '@anthropic-ai/sdk';
import { request } from 'undici';
import { displayName } from '../src/rules/catalogue.js';
import type { Gateway } from '../src/server/serve.js';
import { startFakeUpstream, type FakeUpstream } from './fake-upstream.js';
import { startTestGateway } from './helpers.js';

const ALICE = 'sk-sy-models-alice-0001';
const CI = 'sk-sy-models-ci-0002';
const sha = (s: string) => createHash('sha256').update(s).digest('hex');

let fake: FakeUpstream;
let gw: Gateway;
before(async () => {
  fake = await startFakeUpstream();
  ({ gw } = await startTestGateway({
    upstream: fake.url,
    providers:
      `  anthropic:\n    type: anthropic\n    base_url: ${fake.url}\n    keys: ["sk-ant-upstream"]\n` +
      `  local:\n    type: openai\n    base_url: ${fake.url}/v1\n    auth: none\n    models: { claude-haiku-4-5: qwen3-coder }\n`,
    extraConfig: `clients:\n  alice: { key_sha256: "${sha(ALICE)}", tags: { team: platform } }\n  ci-bot: { key_sha256: "${sha(CI)}" }\n`,
    rules: {
      '10.yaml': `version: 1
rules:
  - id: no-opus-for-ci
    match: { model: claude-opus-4-1, key: "ci-*" }
    actions: [ { deny: { status: 403, message: "CI may not use Opus" } } ]
  - id: background-local
    match: { model: claude-haiku-4-5 }
    actions: [ { route_to: { provider: local } } ]
  - id: tag-big
    match: { model: [claude-sonnet-4-6, "claude-3-*"] }
    actions: [ { tag_billing: { tier: big } } ]
`,
    },
  }));
});
after(async () => {
  await gw.close();
  await fake.close();
});

const list = async (key: string, query = '') => {
  const r = await request(`${gw.url}/v1/models${query}`, { headers: { 'x-api-key': key, 'anthropic-version': '2023-06-01' } });
  return { status: r.statusCode, headers: r.headers, json: (await r.body.json()) as Record<string, any> };
};

describe('GET /v1/models from the route table', () => {
  test("each client gets the models its routes reach, in Anthropic's shape, without an upstream call", async () => {
    const before = fake.received.length;
    const alice = await list(ALICE);
    assert.equal(alice.status, 200);
    assert.ok(String(alice.headers['request-id']).length > 0, 'a request-id');
    assert.deepEqual(
      alice.json.data.map((m: { id: string }) => m.id),
      ['claude-opus-4-1', 'claude-haiku-4-5', 'claude-sonnet-4-6'],
      'exact names from rules and provider maps; globs are not listed',
    );
    const sonnet = alice.json.data[2];
    assert.equal(sonnet.type, 'model');
    assert.equal(sonnet.display_name, 'Claude Sonnet 4.6');
    assert.ok(!Number.isNaN(Date.parse(sonnet.created_at)), 'created_at is a time');
    assert.equal(alice.json.has_more, false);
    assert.equal(alice.json.first_id, 'claude-opus-4-1');
    assert.equal(alice.json.last_id, 'claude-sonnet-4-6');
    const ci = await list(CI);
    assert.deepEqual(
      ci.json.data.map((m: { id: string }) => m.id),
      ['claude-haiku-4-5', 'claude-sonnet-4-6'],
      'a model a rule denies to this client is not listed for it',
    );
    assert.equal(fake.received.length, before, 'no upstream call');
  });

  test('pages: limit, after_id, before_id; a bad limit is 400', async () => {
    const first = await list(ALICE, '?limit=1');
    assert.deepEqual([first.json.data.map((m: { id: string }) => m.id), first.json.has_more], [['claude-opus-4-1'], true]);
    const next = await list(ALICE, `?limit=1&after_id=${first.json.last_id}`);
    assert.deepEqual([next.json.data.map((m: { id: string }) => m.id), next.json.has_more], [['claude-haiku-4-5'], true]);
    const last = await list(ALICE, '?limit=5&after_id=claude-haiku-4-5');
    assert.deepEqual([last.json.data.map((m: { id: string }) => m.id), last.json.has_more], [['claude-sonnet-4-6'], false]);
    const back = await list(ALICE, '?limit=1&before_id=claude-sonnet-4-6');
    assert.deepEqual([back.json.data.map((m: { id: string }) => m.id), back.json.has_more], [['claude-haiku-4-5'], true]);
    for (const q of ['?limit=0', '?limit=1001', '?limit=two', '?after_id=a&before_id=b']) {
      const bad = await list(ALICE, q);
      assert.equal(bad.status, 400, q);
      assert.equal(bad.json.error.type, 'invalid_request_error');
    }
  });

  test('one model by id; one this client cannot reach is 404 not_found_error', async () => {
    const r = await request(`${gw.url}/v1/models/claude-haiku-4-5`, { headers: { 'x-api-key': CI } });
    assert.equal(r.statusCode, 200);
    assert.deepEqual(((await r.body.json()) as { id: string; display_name: string }).display_name, 'Claude Haiku 4.5');
    const denied = await request(`${gw.url}/v1/models/claude-opus-4-1`, { headers: { 'x-api-key': CI } });
    assert.equal(denied.statusCode, 404);
    const json = (await denied.body.json()) as { error: { type: string; message: string } };
    assert.equal(json.error.type, 'not_found_error');
    assert.match(json.error.message, /model "claude-opus-4-1" is not reachable/);
  });

  test('the Anthropic SDK lists them, page by page', async () => {
    const client = new Anthropic({ apiKey: ALICE, baseURL: gw.url, maxRetries: 0 });
    const ids: string[] = [];
    for await (const m of client.models.list({ limit: 2 })) ids.push(m.id);
    assert.deepEqual(ids, ['claude-opus-4-1', 'claude-haiku-4-5', 'claude-sonnet-4-6']);
  });
});

test("a configuration that names no model passes the default provider's list through", async () => {
  const plain = await startTestGateway({ upstream: fake.url });
  try {
    const before = fake.received.length;
    const r = await request(`${plain.gw.url}/v1/models`, { headers: { 'x-api-key': 'sk-ant-client' } });
    assert.equal(r.statusCode, 200);
    await r.body.dump();
    assert.equal(fake.received.length, before + 1);
    assert.equal(fake.received.at(-1)!.url, '/v1/models');
  } finally {
    await plain.gw.close();
  }
});

test('display names', () => {
  assert.equal(displayName('claude-sonnet-4-6'), 'Claude Sonnet 4.6');
  assert.equal(displayName('claude-haiku-4-5-20251001'), 'Claude Haiku 4.5');
  assert.equal(displayName('claude-opus-4-1'), 'Claude Opus 4.1');
  assert.equal(displayName('claude-3-5-haiku-20241022'), 'Claude 3.5 Haiku');
  assert.equal(displayName('qwen3-coder'), 'qwen3-coder');
});
