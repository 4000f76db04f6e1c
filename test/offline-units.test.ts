/**
 * A request decided without a network, function-level: the route chain (`upstream/prepare.ts`: each provider with
 * the model it gets, a rule's model never leaking to a fallback, `models:` renaming last), the prepared upstream
 * request dry-run shows (URL, headers with the first attempt's credential, local answers), `decideOffline`
 * (`rules/offline.ts`: path and query, count_tokens, a configured client's tags), and the request facts a usage
 * record keeps for replay (`usage/facts.ts`: no credentials, no text).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { loadConfig } from '../src/config.js';
import { InternalError } from '../src/errors.js';
import { buildContext } from '../src/rules/context.js';
import { compileRuleSources } from '../src/rules/load.js';
import { decideOffline } from '../src/rules/offline.js';
import { prepareUpstream, routeChain } from '../src/upstream/prepare.js';
import { ALWAYS_KEPT, factsBody, requestFacts } from '../src/usage/facts.js';
import { writeConfig } from './helpers.js';

const providers = `  anthropic:
    type: anthropic
    base_url: http://127.0.0.1:9/anthropic
    keys: [ sk-ant-pool-0001 ]
    models: { claude-opus-4-1: opus-at-anthropic }
  vendor:
    type: openai
    base_url: http://127.0.0.1:9/v1
    models: { claude-sonnet-4-6: vendor-sonnet }
  passthrough:
    type: anthropic
    base_url: http://127.0.0.1:9/pt
`;
const config = (extra = '', p = providers) => loadConfig(writeConfig({ upstream: '', providers: p, extraConfig: extra }).configFile);
const rules = compileRuleSources(
  [
    {
      file: '10.yaml',
      text: `version: 1
rules:
  - id: to-vendor
    match: { header: { x-route: vendor } }
    actions: [ { route_to: { provider: vendor, fallback: [ anthropic ] } } ]
  - id: opus-with-fallback
    match: { model: claude-opus-4-1 }
    actions: [ { route_to: { provider: anthropic, model: claude-opus-4-1, fallback: [ { provider: vendor }, { provider: passthrough, model: claude-haiku-4-5 } ] } } ]
  - id: tagged
    match: { header: { x-team: "*" } }
    actions: [ { tag_billing: { team: { expr: "headers.'x-team'" } } } ]
`,
    },
  ],
  ['anthropic', 'vendor', 'passthrough'],
);
const body = { model: 'claude-sonnet-4-6', max_tokens: 64, messages: [{ role: 'user', content: 'hello' }] };

describe('the route chain', () => {
  test("each provider gets its model: the route's own, a fallback's own, else the client's; models: renames last", () => {
    const cfg = config();
    const chain = routeChain(cfg, {
      provider: 'anthropic',
      model: 'claude-opus-4-1',
      requested_model: 'claude-sonnet-4-6',
      fallback: [{ provider: 'vendor' }, { provider: 'passthrough', model: 'claude-haiku-4-5' }],
      rule: 'r',
    });
    assert.deepEqual(
      chain.map((l) => [l.provider.name, l.model]),
      [
        ['anthropic', 'opus-at-anthropic'],
        ['vendor', 'vendor-sonnet'],
        ['passthrough', 'claude-haiku-4-5'],
      ],
    );
    const noRequested = routeChain(cfg, { provider: 'passthrough', model: 'm1', requested_model: '', fallback: [{ provider: 'passthrough' }], rule: null });
    assert.deepEqual(
      noRequested.map((l) => l.model),
      ['m1', 'm1'],
      "with no requested model a fallback gets the route's",
    );
    assert.throws(
      () => routeChain(cfg, { provider: 'gone', model: 'm', requested_model: 'm', fallback: [], rule: null }),
      (e: unknown) => e instanceof InternalError && /provider "gone" is not in the config/.test(e.message),
    );
  });
});

describe('decided offline', () => {
  test("the default route: the client's bytes to the provider's URL with the pool's first key; no local answer", async () => {
    const cfg = config();
    const raw = Buffer.from(JSON.stringify(body));
    const { decision, prepared, rc } = await decideOffline(cfg, rules, { body, raw, headers: { 'x-api-key': 'sk-client' }, path: '/v1/messages?beta=true' });
    assert.equal(decision.route.provider, 'anthropic');
    assert.equal(rc.path, '/v1/messages', 'rules see the path without its query');
    assert.equal(prepared.url, 'http://127.0.0.1:9/anthropic/v1/messages?beta=true');
    assert.equal(prepared.method, 'POST');
    assert.equal(prepared.body, raw);
    assert.equal(prepared.headers['x-api-key'], 'sk-ant-pool-0001');
    assert.equal(prepared.local, null);
    assert.equal(prepared.signedWhenSent, null);
    assert.deepEqual(prepared.dropped, []);
    assert.deepEqual(
      prepared.chain.map((l) => l.provider.name),
      ['anthropic'],
    );
  });

  test('an OpenAI-compatible route: translated body to /chat/completions; count_tokens is answered locally', async () => {
    const cfg = config();
    const { prepared } = await decideOffline(cfg, rules, { body, headers: { 'x-route': 'vendor' }, path: '/v1/messages' });
    assert.equal(prepared.url, 'http://127.0.0.1:9/v1/chat/completions');
    assert.equal(JSON.parse(prepared.body!.toString()).model, 'vendor-sonnet');
    assert.equal(prepared.headers.authorization, undefined, 'no key and no clients: the Anthropic credential is not sent to the vendor');
    const counted = await decideOffline(cfg, rules, { body, headers: { 'x-route': 'vendor' }, path: '/v1/messages/count_tokens?beta=true' });
    assert.equal(counted.prepared.local?.status, 200);
    assert.ok(JSON.parse(String(counted.prepared.local?.body)).input_tokens > 0);
  });

  test('a configured client decides with its tags, and its gateway key never goes to a provider without keys', async () => {
    const noKeys = providers.replace(/(type: openai\n)/, '$1    auth: none\n').replace(/(base_url: http:\/\/127.0.0.1:9\/pt\n)/, '$1    auth: none\n');
    const cfg = config('clients:\n  ci-bot: { key_sha256: "0000000000000000000000000000000000000000000000000000000000000000", tags: { team: bots } }\n', noKeys);
    const { rc } = await decideOffline(cfg, rules, { body, headers: {}, path: '/v1/messages', clientId: 'ci-bot' });
    assert.equal(rc.client.id, 'ci-bot');
    assert.deepEqual(rc.client.tags, { team: 'bots' });
    const viaPassthrough = await decideOffline(cfg, rules, {
      body: { ...body, model: 'claude-opus-4-1' },
      headers: { 'x-api-key': 'sk-gateway-key-of-ci-bot' },
      path: '/v1/messages',
      clientId: 'ci-bot',
    });
    assert.equal(viaPassthrough.prepared.headers['x-api-key'], 'sk-ant-pool-0001');
    const pt = prepareUpstream(
      cfg,
      {
        endpoint: 'messages',
        pathAndQuery: '/v1/messages',
        headers: { 'x-api-key': 'sk-gateway-key-of-ci-bot', authorization: 'Bearer sk-gateway-key-of-ci-bot' },
        raw: Buffer.from('{}'),
        body: {},
        decision: { ...viaPassthrough.decision, route: { ...viaPassthrough.decision.route, provider: 'passthrough', fallback: [] } },
        stream: false,
      },
      1,
    );
    assert.equal(JSON.stringify(pt.headers).includes('sk-gateway-key-of-ci-bot'), false, `no client key upstream: ${JSON.stringify(pt.headers)}`);
    const unconfigured = await decideOffline(config(), rules, { body, headers: {}, path: '/v1/messages', clientId: 'someone' });
    assert.deepEqual([unconfigured.rc.client.id, unconfigured.rc.client.tags], ['someone', {}], 'a client id without clients: configured has no tags');
    const now = new Date('2026-12-07T03:00:00Z');
    const at = await decideOffline(config(), rules, { body, headers: { 'x-team': 'infra' }, path: '/v1/messages', now, groups: ['eng'] });
    assert.deepEqual(at.decision.tags, { team: 'infra' });
    assert.equal(at.rc.time.hour, 3);
    assert.deepEqual(at.rc.client.groups, ['eng']);
  });
});

describe('request facts', () => {
  test('sizes, counts, max_tokens, metadata and the named headers: never a credential, never text', () => {
    const rc = buildContext({
      path: '/v1/messages',
      body: { model: 'm', stream: true, max_tokens: 100, metadata: { user_id: 'u-1' }, tools: [{ name: 'a' }, { name: 'b' }], messages: [{ role: 'user', content: 'secret prompt' }] },
      headers: { 'x-team': 'infra', 'x-api-key': 'sk-never', authorization: 'Bearer never', 'user-agent': 'claude-cli/2.1', 'x-other': 'not named' },
      bodyBytes: 321,
    });
    const f = requestFacts(rc, 321, ['x-team', 'x-api-key', 'authorization', 'x-absent']);
    assert.deepEqual(f, {
      path: '/v1/messages',
      stream: true,
      body_bytes: 321,
      messages: 1,
      tools: 2,
      max_tokens: 100,
      metadata: { user_id: 'u-1' },
      headers: { 'user-agent': 'claude-cli/2.1', 'x-team': 'infra' },
      headers_named: ['x-team', 'x-api-key', 'authorization', 'x-absent'],
    });
    assert.equal(JSON.stringify(f).includes('secret prompt'), false);
    assert.deepEqual(ALWAYS_KEPT, ['anthropic-beta', 'anthropic-version', 'user-agent', 'x-app', 'x-claude-code-session-id']);
    const bare = requestFacts(buildContext({ path: '/v1/messages', body: { model: 'm', max_tokens: '5', metadata: ['x'] }, headers: {}, bodyBytes: 2 }), 2, []);
    assert.deepEqual([bare.max_tokens, bare.metadata, bare.messages, bare.tools, bare.stream], [null, null, 0, 0, false]);
  });

  test('a facts body has the same facts: model, stream, max_tokens, metadata, and as many messages and tools', () => {
    const f = { path: '/v1/messages', stream: true, body_bytes: 9, messages: 2, tools: 1, max_tokens: 7, metadata: { user_id: 'u' }, headers: {}, headers_named: [] };
    assert.deepEqual(factsBody('claude-x', f), {
      model: 'claude-x',
      messages: [
        { role: 'user', content: '' },
        { role: 'user', content: '' },
      ],
      stream: true,
      max_tokens: 7,
      metadata: { user_id: 'u' },
      tools: [{ name: 'tool_0', input_schema: { type: 'object' } }],
    });
    assert.deepEqual(factsBody(null, { ...f, stream: false, messages: 0, tools: 0, max_tokens: null, metadata: null }), { model: '', messages: [] });
  });
});
