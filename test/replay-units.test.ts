/**
 * `switchyard replay` (`rules/replay.ts`), function-level: recorded requests decided again from their facts under the
 * live rules and a candidate — what changes (route, model, tags, denial, failure, throttles, budgets) grouped with
 * counts and examples, what cannot be replayed and why, and the cost on both sides with the bundled price table.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { loadConfig } from '../src/config.js';
import { compileRuleSources } from '../src/rules/load.js';
import { formatReplay, replay } from '../src/rules/replay.js';
import { costUsd, loadPrices } from '../src/usage/prices.js';
import type { UsageRecord } from '../src/usage/record.js';
import { usageRecord, writeConfig } from './helpers.js';

const config = loadConfig(
  writeConfig({
    upstream: '',
    providers:
      '  anthropic:\n    type: anthropic\n    base_url: http://127.0.0.1:9\n  cheap:\n    type: anthropic\n    base_url: http://127.0.0.1:9\n    models: { claude-sonnet-4-6: claude-haiku-4-5 }\n',
  }).configFile,
);
const prices = loadPrices(path.join(import.meta.dirname, '..', 'prices.yaml'));
const rules = (text: string) => compileRuleSources([{ file: '10.yaml', text: `version: 1\nrules:\n${text}` }], ['anthropic', 'cheap']);
const facts = (over: Record<string, unknown> = {}) => ({
  path: '/v1/messages',
  stream: false,
  body_bytes: 100,
  messages: 1,
  tools: 0,
  max_tokens: 100,
  metadata: null,
  headers: {},
  headers_named: [],
  ...over,
});
const rec = (i: number, model: string, over: Partial<UsageRecord> = {}): UsageRecord =>
  usageRecord({
    time: '2026-12-07T10:00:00.000Z',
    request_id: `r${i}`,
    client_id: 'alice',
    requested_model: model,
    model,
    input_tokens: 1_000_000,
    output_tokens: 0,
    facts: facts() as never,
    ...over,
  });

const live = rules(`  - id: default
    actions: [ { route_to: { provider: anthropic } }, { tag_billing: { team: core } } ]
`);

test('a candidate moving Sonnet to a cheaper provider: the route and model change for exactly those requests, and the cost falls', async () => {
  const candidate = rules(`  - id: sonnet-cheap
    match: { model: claude-sonnet-4-6 }
    actions: [ { route_to: { provider: cheap } } ]
  - id: default
    actions: [ { route_to: { provider: anthropic } }, { tag_billing: { team: core } } ]
`);
  const records = [rec(1, 'claude-sonnet-4-6'), rec(2, 'claude-sonnet-4-6'), rec(3, 'claude-opus-4-1'), rec(4, 'claude-sonnet-4-6'), rec(5, 'claude-sonnet-4-6')];
  const r = await replay(config, live, candidate, prices, records, 'S', 'U');
  assert.deepEqual([r.records, r.replayed, r.changed, r.unchanged, r.would_fail, r.not_replayable.total], [5, 5, 4, 1, 0, 0]);
  assert.deepEqual([r.since, r.until, r.live_version, r.candidate_version], ['S', 'U', live.version, candidate.version]);
  assert.deepEqual(r.changes, [
    { kind: 'model', from: 'claude-sonnet-4-6', to: 'claude-haiku-4-5', count: 4, examples: ['r1', 'r2', 'r4'] },
    { kind: 'route', from: 'anthropic', to: 'cheap', count: 4, examples: ['r1', 'r2', 'r4'] },
  ]);
  const cost = (model: string, provider: string) => costUsd(records[0]!, prices.priceOf(model, provider))!;
  const sonnet = cost('claude-sonnet-4-6', 'anthropic');
  const haiku = cost('claude-haiku-4-5', 'cheap');
  const opus = cost('claude-opus-4-1', 'anthropic');
  assert.equal(r.cost.live_usd, Math.round((4 * sonnet + opus) * 1e6) / 1e6);
  assert.equal(r.cost.candidate_usd, Math.round((4 * haiku + opus) * 1e6) / 1e6);
  assert.equal(r.cost.delta_usd, Math.round((r.cost.candidate_usd - r.cost.live_usd) * 1e6) / 1e6);
  assert.ok(r.cost.delta_usd < 0);
  const text = formatReplay(r).split('\n');
  assert.deepEqual(text.slice(0, 3), ['replay of 5 recorded requests from S to U', `rules: live ${live.version} -> candidate ${candidate.version}`, 'changed 4, unchanged 1, not replayable 0']);
  assert.deepEqual(text.slice(3, 7), [
    '',
    'what would change:',
    '  model claude-sonnet-4-6 -> claude-haiku-4-5       4  e.g. r1, r2, r4',
    '  route anthropic -> cheap                          4  e.g. r1, r2, r4',
  ]);
  const pct = ((100 * Math.abs(r.cost.delta_usd)) / r.cost.live_usd).toFixed(1);
  assert.equal(text.at(-1), `cost of the replayed requests: $${r.cost.live_usd.toFixed(2)} -> $${r.cost.candidate_usd.toFixed(2)}, −$${Math.abs(r.cost.delta_usd).toFixed(2)} (−${pct}%)`);
});

test('tags, denials, failures, throttles and budgets are changes too; a tag only the candidate sets is from (unset)', async () => {
  const candidate = rules(`  - id: no-opus
    match: { model: claude-opus-4-1 }
    actions: [ { deny: { message: "no" } } ]
  - id: broken
    match: { model: claude-haiku-4-5 }
    actions: [ { tag_billing: { team: { expr: "$string($count([1..200000]))" } } } ]
  - id: limits
    actions: [ { throttle: { scope: client, requests_per_minute: 10 } }, { budget: { scope: client, usd: 5, per: day } } ]
  - id: default
    actions: [ { route_to: { provider: anthropic } }, { tag_billing: { team: platform, env: prod } } ]
`);
  const r = await replay(config, live, candidate, prices, [rec(1, 'claude-opus-4-1'), rec(2, 'claude-haiku-4-5'), rec(3, 'claude-sonnet-4-6')], 'S', 'U');
  const kinds = Object.fromEntries(r.changes.map((c) => [`${c.kind} ${c.from} -> ${c.to}`, c.count]));
  assert.deepEqual(kinds, {
    'tag:team core -> platform': 1,
    'tag:team core -> (unset)': 2,
    'tag:env (unset) -> prod': 1,
    'throttles - -> limits': 1,
    'budgets - -> limits': 1,
    'denied no -> by no-opus': 1,
    'fails no -> in broken': 1,
  });
  assert.equal(r.would_fail, 1);
  assert.equal(r.changed, 3);
  assert.equal(r.cost.candidate_usd, Math.round(costUsd(rec(3, 'claude-sonnet-4-6'), prices.priceOf('claude-sonnet-4-6', 'anthropic'))! * 1e6) / 1e6, 'refused and failed requests cost nothing');
  const text = formatReplay(r);
  assert.match(text, /^would fail: 1 \(a candidate rule fails on them; each would be answered 500\)$/m);
  assert.deepEqual(
    r.changes.map((c) => c.count),
    [...r.changes.map((c) => c.count)].sort((a, b) => b - a),
    'most frequent first',
  );
  const back = await replay(config, candidate, live, prices, [rec(1, 'claude-opus-4-1')], 'S', 'U');
  assert.ok(back.changes.some((c) => c.kind === 'denied' && c.from === 'by no-opus' && c.to === 'no'));
});

test('not replayable: no facts, a rule reading message content, a header the rules of the time did not record; no price counted apart', async () => {
  const candidate = rules(`  - id: reads-text
    match: { model: claude-opus-4-1, when: "$contains($string(messages), 'deploy')" }
    actions: [ { route_to: { provider: cheap } } ]
  - id: by-team
    match: { header: { x-team: infra } }
    actions: [ { route_to: { provider: cheap } } ]
  - id: default
    actions: [ { route_to: { provider: anthropic } }, { tag_billing: { team: core } } ]
`);
  const records = [
    rec(1, 'claude-sonnet-4-6', { facts: null }),
    rec(2, 'claude-opus-4-1'),
    rec(3, 'claude-sonnet-4-6'),
    rec(4, 'claude-sonnet-4-6', { facts: facts({ headers: { 'x-team': 'infra' }, headers_named: ['x-team'] }) as never }),
    rec(5, 'some-unpriced-model', { facts: facts({ headers_named: ['x-team'] }) as never }),
  ];
  const r = await replay(config, live, candidate, prices, records, 'S', 'U');
  assert.deepEqual(r.not_replayable, {
    total: 3,
    reasons: {
      'no request facts (recorded before ledger schema v3, or refused before the rules ran)': 1,
      'rule "reads-text" reads message content': 1,
      'header x-team was not recorded (the rules of the time did not read it)': 1,
    },
  });
  assert.deepEqual([r.replayed, r.changed, r.unchanged], [2, 1, 1]);
  assert.equal(r.cost.unpriced, 1);
  const text = formatReplay({ ...r, records: 1 });
  assert.match(text, /^replay of 1 recorded request from S to U$/m);
  assert.match(text, /^ {2}not replayable: 1 — rule "reads-text" reads message content$/m);
  assert.match(text, /; 1 request\(s\) without a price left out$/);
});

test('nothing changed and nothing priced: no change list, no percentage', async () => {
  const r = await replay(config, live, live, prices, [], 'S', 'U');
  assert.deepEqual([r.records, r.replayed, r.changes, r.cost], [0, 0, [], { live_usd: 0, candidate_usd: 0, delta_usd: 0, unpriced: 0 }]);
  assert.equal(
    formatReplay(r),
    'replay of 0 recorded requests from S to U\n' +
      `rules: live ${live.version} -> candidate ${live.version}\n` +
      'changed 0, unchanged 0, not replayable 0\n\ncost of the replayed requests: $0.0000 -> $0.0000, +$0.0000',
  );
});
