/**
 * The model catalogue behind `GET /v1/models` (`rules/catalogue.ts`), function-level: the names the configuration
 * mentions, which of them a given client can reach (denied ones and those a sign-in policy refuses left out), and
 * Anthropic's paging (`limit` 1–1000, default 20; `after_id`; `before_id`;
 * https://platform.claude.com/docs/en/api/models/list).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { loadConfig } from '../src/config.js';
import { InvalidRequestError, UnknownModelError } from '../src/errors.js';
import { catalogueCandidates, listPage, type ModelInfo, modelsAnswer, reachableModels } from '../src/rules/catalogue.js';
import { compileRuleSources } from '../src/rules/load.js';
import { writeConfig } from './helpers.js';

const config = loadConfig(
  writeConfig({
    upstream: '',
    providers: '  anthropic:\n    type: anthropic\n    base_url: http://127.0.0.1:9\n    models: { claude-haiku-4-5: haiku-renamed, claude-sonnet-4-6: sonnet-renamed }\n',
  }).configFile,
);
const rules = compileRuleSources(
  [
    {
      file: '10.yaml',
      text: `version: 1
rules:
  - id: no-opus-for-interns
    match: { model: claude-opus-4-1, header: { x-team: interns } }
    actions: [ { deny: { message: "no Opus for interns" } } ]
  - id: opus
    match: { model: [ claude-opus-4-1, claude-sonnet-4-6 ] }
    actions: [ { route_to: { provider: anthropic } } ]
`,
    },
  ],
  ['anthropic'],
);
const ids = (ms: ModelInfo[] | null) => ms?.map((m) => m.id) ?? null;

describe('which models', () => {
  test('candidates: exact ids in rules, then names in providers’ models maps, each once, in that order', () => {
    assert.deepEqual(catalogueCandidates(rules, config), ['claude-opus-4-1', 'claude-sonnet-4-6', 'claude-haiku-4-5']);
    assert.deepEqual(catalogueCandidates(compileRuleSources([], ['anthropic']), { providers: {} }), []);
  });

  test('reachable: routed and not denied for this client; a policy filters and adds its own names; none named → null', async () => {
    const all = await reachableModels(rules, config, { headers: {} });
    assert.deepEqual(ids(all), ['claude-opus-4-1', 'claude-sonnet-4-6', 'claude-haiku-4-5']);
    assert.deepEqual(all![0], { type: 'model', id: 'claude-opus-4-1', display_name: 'Claude Opus 4.1', created_at: rules.loadedAt });
    assert.deepEqual(ids(await reachableModels(rules, config, { headers: { 'x-team': 'interns' } })), ['claude-sonnet-4-6', 'claude-haiku-4-5']);
    const policy = { allows: (m: string) => m !== 'claude-sonnet-4-6', listed: ['claude-haiku-4-5', 'claude-fable-5'] };
    assert.deepEqual(ids(await reachableModels(rules, config, { headers: {}, policy })), ['claude-opus-4-1', 'claude-haiku-4-5', 'claude-fable-5']);
    assert.equal(await reachableModels(compileRuleSources([], ['anthropic']), { ...config, providers: { anthropic: { ...config.providers.anthropic!, models: {} } } }, { headers: {} }), null);
  });

  test('/v1/models/{id}: the model when reachable, else 404 naming it; nothing named → null (ask the upstream)', async () => {
    assert.deepEqual(await modelsAnswer(rules, config, { headers: {} }, '/v1/models/claude-haiku-4-5'), {
      type: 'model',
      id: 'claude-haiku-4-5',
      display_name: 'Claude Haiku 4.5',
      created_at: rules.loadedAt,
    });
    await assert.rejects(
      modelsAnswer(rules, config, { headers: { 'x-team': 'interns' } }, '/v1/models/claude-opus-4-1'),
      (e: unknown) => e instanceof UnknownModelError && /claude-opus-4-1/.test(e.message),
    );
    const page = (await modelsAnswer(rules, config, { headers: {} }, '/v1/models?limit=2')) as { data: ModelInfo[]; has_more: boolean };
    assert.deepEqual([ids(page.data), page.has_more], [['claude-opus-4-1', 'claude-sonnet-4-6'], true]);
    assert.equal(
      await modelsAnswer(compileRuleSources([], ['anthropic']), { ...config, providers: { anthropic: { ...config.providers.anthropic!, models: {} } } }, { headers: {} }, '/v1/models'),
      null,
    );
  });
});

describe('paging', () => {
  const models = Array.from({ length: 25 }, (_, i) => ({ type: 'model', id: `m${i}`, display_name: `m${i}`, created_at: 'x' }) as ModelInfo);
  const page = (q: string) => {
    const p = listPage(models, new URLSearchParams(q));
    return [ids(p.data)!.join(','), p.has_more, p.first_id, p.last_id];
  };

  test('20 by default; limit; after_id and before_id; ids not in the list; the last page says so', () => {
    const first = listPage(models, new URLSearchParams(''));
    assert.deepEqual([first.data.length, first.has_more, first.first_id, first.last_id], [20, true, 'm0', 'm19']);
    assert.deepEqual(page('limit=3'), ['m0,m1,m2', true, 'm0', 'm2']);
    assert.deepEqual(page('limit=25'), [models.map((m) => m.id).join(','), false, 'm0', 'm24']);
    assert.deepEqual(page('limit=1000'), [models.map((m) => m.id).join(','), false, 'm0', 'm24']);
    assert.deepEqual(page('limit=2&after_id=m3'), ['m4,m5', true, 'm4', 'm5']);
    assert.deepEqual(page('limit=2&after_id=m22'), ['m23,m24', false, 'm23', 'm24']);
    assert.deepEqual(page('after_id=m24'), ['', false, null, null]);
    assert.deepEqual(page('after_id=unknown'), ['', false, null, null], 'after an id not listed: nothing');
    assert.deepEqual(page('limit=2&before_id=m5'), ['m3,m4', true, 'm3', 'm4']);
    assert.deepEqual(page('limit=2&before_id=m2'), ['m0,m1', false, 'm0', 'm1']);
    assert.deepEqual(page('limit=5&before_id=m2'), ['m0,m1', false, 'm0', 'm1']);
    assert.deepEqual(page('before_id=unknown'), ['', false, null, null]);
    assert.deepEqual(page('limit=1'), ['m0', true, 'm0', 'm0']);
  });

  test('a limit outside 1–1000 or not an integer, and both ids at once, are 400s that say so', () => {
    for (const bad of ['0', '1001', '2.5', 'ten', '']) {
      assert.throws(
        () => listPage(models, new URLSearchParams(`limit=${bad}`)),
        (e: unknown) => e instanceof InvalidRequestError && e.message === `limit must be an integer from 1 to 1000, got "${bad}"`,
        bad,
      );
    }
    assert.throws(
      () => listPage(models, new URLSearchParams('after_id=m1&before_id=m3')),
      (e: unknown) => e instanceof InvalidRequestError && e.message === 'give after_id or before_id, not both',
    );
  });
});
