/**
 * The provider table and the `type: anthropic` adapter, function-level (`upstream/providers/index.ts`,
 * `anthropic/index.ts`, and the cloud hosts in `bedrock/urls.ts` and `vertex/urls.ts`): which adapter a type gets,
 * what the upstream request of an Anthropic provider is — the client's bytes when nothing changed, only the model's
 * bytes when the provider renames it, a new body when a rule edited it, `anthropic-beta` filtered by `betas:`, the
 * workspace of Claude Platform on AWS — and the default endpoints of the cloud providers.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { lazyBody, scanJsonObject } from '../src/body/json-scan.js';
import { acceptedBetas, anthropicAdapter, apiVersion } from '../src/upstream/providers/anthropic/index.js';
import { bedrockBaseUrl } from '../src/upstream/providers/bedrock/urls.js';
import { adapterFor, hasAdapter, missingProviderPackages, PROVIDER_TYPES } from '../src/upstream/providers/index.js';
import type { ProviderConfig } from '../src/upstream/providers/provider-config.js';
import type { ClientRequest } from '../src/upstream/providers/types.js';
import { vertexBaseUrl } from '../src/upstream/providers/vertex/urls.js';

describe('the provider table', () => {
  test('every type has its adapter, in table order; an unknown type is an error listing the known ones', () => {
    assert.deepEqual(PROVIDER_TYPES, ['anthropic', 'openai', 'bedrock', 'vertex', 'foundry']);
    for (const t of PROVIDER_TYPES) {
      assert.equal(hasAdapter(t), true);
      assert.equal(adapterFor({ type: t }).type, t);
    }
    assert.equal(hasAdapter('azure'), false);
    assert.throws(() => adapterFor({ type: 'azure' }), { message: 'no provider type "azure" (known: anthropic, openai, bedrock, vertex, foundry)' });
  });

  test('no optional package is missing for providers that need none', () => {
    assert.equal(
      missingProviderPackages([
        { name: 'a', type: 'anthropic' },
        { name: 'o', type: 'openai' },
      ]),
      null,
    );
  });

  test("cloud endpoints: Bedrock Runtime per region; Vertex AI's global, multi-regional and regional hosts", () => {
    assert.equal(bedrockBaseUrl('eu-west-3'), 'https://bedrock-runtime.eu-west-3.amazonaws.com');
    assert.equal(vertexBaseUrl('global'), 'https://aiplatform.googleapis.com');
    assert.equal(vertexBaseUrl('us'), 'https://aiplatform.us.rep.googleapis.com');
    assert.equal(vertexBaseUrl('eu'), 'https://aiplatform.eu.rep.googleapis.com');
    assert.equal(vertexBaseUrl('us-east5'), 'https://us-east5-aiplatform.googleapis.com');
  });
});

describe('type: anthropic', () => {
  test('anthropic-beta values: split on commas and repeats, trimmed, kept or dropped by the list', () => {
    assert.deepEqual(acceptedBetas(' a-1 , b-2,,c-3', ['a-1', 'c-3']), { kept: ['a-1', 'c-3'], dropped: ['b-2'] });
    assert.deepEqual(acceptedBetas(['a-1', 'd-4, a-1'], ['a-1']), { kept: ['a-1', 'a-1'], dropped: ['d-4'] });
    assert.deepEqual(acceptedBetas(undefined, ['a-1']), { kept: [], dropped: [] });
    assert.equal(apiVersion({ 'anthropic-version': '2023-06-01' }, 'x'), '2023-06-01');
    assert.equal(apiVersion({ 'anthropic-version': ['2023-01-01', '2024'] } as never, 'x'), '2023-01-01');
    assert.equal(apiVersion({}, 'bedrock-2023-05-31'), 'bedrock-2023-05-31');
    assert.equal(apiVersion({ 'anthropic-version': '' }, 'fallback'), 'fallback');
  });

  test('settle: base_url is required; attribution kept unless asked', () => {
    assert.throws(() => anthropicAdapter.settle('up', { type: 'anthropic' } as never, '.'), /provider "up": base_url is required for type: anthropic/);
    assert.deepEqual(anthropicAdapter.settle('up', { type: 'anthropic', base_url: 'http://x' } as never, '.'), { base_url: 'http://x', strip_attribution: false, bedrock: null, vertex: null });
    assert.equal(anthropicAdapter.settle('up', { type: 'anthropic', base_url: 'http://x', strip_attribution: true } as never, '.').strip_attribution, true);
    assert.equal(anthropicAdapter.local({} as never, 0), null, 'never answers locally');
  });

  const raw = Buffer.from('{ "model" : "claude-sonnet-4-6",\n  "max_tokens": 1e3, "messages": [{"role":"user","content":"caf\\u00e9"}] }');
  const provider = (over: Partial<ProviderConfig> = {}) => ({ name: 'up', betas: null, workspace_id: null, ...over }) as ProviderConfig;
  const clientRequest = (over: { body?: Record<string, unknown>; changed?: boolean; headers?: Record<string, string>; set?: Record<string, string>; endpoint?: string } = {}): ClientRequest => {
    const body = lazyBody(scanJsonObject(raw, 64));
    return {
      endpoint: (over.endpoint ?? 'messages') as never,
      pathAndQuery: '/v1/messages?beta=true',
      headers: { 'content-type': 'application/json', 'x-api-key': 'sk-client', 'anthropic-beta': 'claude-code-20250219,context-1m-2025-08-07', ...over.headers },
      raw: over.endpoint === 'models' ? null : raw,
      body,
      decision: { body: over.body ?? body, bodyChanged: over.changed ?? false, headers: { set: over.set ?? {}, remove: [] }, route: {} as never },
      stream: false,
    };
  };
  const key = { kind: 'key', key: 'sk-provider' } as never;

  test("nothing changed and the model is the client's: the client's bytes, path and query go as they came", () => {
    const out = anthropicAdapter.request(clientRequest(), provider(), 'claude-sonnet-4-6');
    assert.equal(out.method, 'POST');
    assert.equal(out.pathAndQuery, '/v1/messages?beta=true');
    assert.equal(out.body, raw, 'the very buffer the client sent');
    const h = out.headers(key);
    assert.equal(h['content-length'], String(raw.length));
    assert.equal(h['x-api-key'], 'sk-provider');
    assert.equal(h['anthropic-beta'], 'claude-code-20250219,context-1m-2025-08-07', 'no betas: list, every value goes');
    assert.deepEqual(out.dropped, []);
  });

  test('a provider that knows the model under another name: only the model bytes change', () => {
    const out = anthropicAdapter.request(clientRequest(), provider(), 'claude-sonnet-4-6@vendor');
    assert.equal(out.body!.toString(), raw.toString().replace('"claude-sonnet-4-6"', '"claude-sonnet-4-6@vendor"'));
    assert.equal(out.headers(key)['content-length'], String(out.body!.length));
  });

  test('a body a rule changed is serialized again, with the model the route sends', () => {
    const edited = { model: 'claude-sonnet-4-6', max_tokens: 10, messages: [] };
    const same = anthropicAdapter.request(clientRequest({ body: edited, changed: true }), provider(), 'claude-sonnet-4-6');
    assert.deepEqual(JSON.parse(same.body!.toString()), edited);
    const renamed = anthropicAdapter.request(clientRequest({ body: edited, changed: true }), provider(), 'other-model');
    assert.deepEqual(JSON.parse(renamed.body!.toString()), { ...edited, model: 'other-model' });
    assert.equal(edited.model, 'claude-sonnet-4-6', "the decision's body is not changed in place");
    const plain = { model: 'claude-sonnet-4-6', max_tokens: 5, messages: [] };
    const unscanned = anthropicAdapter.request(clientRequest({ body: plain }), provider(), 'renamed');
    assert.deepEqual(JSON.parse(unscanned.body!.toString()), { ...plain, model: 'renamed' }, 'a body without its scan is serialized');
    const keptPlain = anthropicAdapter.request(clientRequest({ body: plain }), provider(), 'claude-sonnet-4-6');
    assert.equal(keptPlain.body, raw, 'unchanged and the same model: the raw bytes');
  });

  test('betas: only the listed values go, the others are reported dropped; none left removes the header; a rule-set header wins', () => {
    const listed = anthropicAdapter.request(clientRequest(), provider({ betas: ['context-1m-2025-08-07'] }), 'claude-sonnet-4-6');
    assert.equal(listed.headers(key)['anthropic-beta'], 'context-1m-2025-08-07');
    assert.deepEqual(listed.dropped, ['anthropic-beta: claude-code-20250219']);
    const none = anthropicAdapter.request(clientRequest(), provider({ betas: [] }), 'claude-sonnet-4-6');
    assert.equal('anthropic-beta' in none.headers(key), false);
    assert.equal(none.dropped.length, 2);
    const ruled = anthropicAdapter.request(clientRequest({ set: { 'anthropic-beta': 'from-rule' } }), provider({ betas: [] }), 'claude-sonnet-4-6');
    assert.equal(ruled.headers(key)['anthropic-beta'], 'from-rule');
  });

  test('workspace_id goes as anthropic-workspace-id on every request; a model list is a GET without a body', () => {
    const ws = anthropicAdapter.request(clientRequest(), provider({ workspace_id: 'wrkspc_01' }), 'claude-sonnet-4-6');
    assert.equal(ws.headers(key)['anthropic-workspace-id'], 'wrkspc_01');
    assert.equal('anthropic-workspace-id' in anthropicAdapter.request(clientRequest(), provider(), 'claude-sonnet-4-6').headers(key), false);
    const list = anthropicAdapter.request(clientRequest({ endpoint: 'models' }), provider(), 'claude-sonnet-4-6');
    assert.equal(list.method, 'GET');
    assert.equal(list.body, null);
  });
});
