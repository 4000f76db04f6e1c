/**
 * Prometheus metrics (`usage/metrics.ts`), function-level: one finished request's record counted in every series with
 * the values of the record (tokens by kind, cost, latency and time to first token in seconds, retries), the ledger
 * gauges and the rules version read at scrape time, and model labels bounded (configured names, then at most 200
 * priced ones, then `other`).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MAX_PRICED_MODEL_LABELS, Metrics, modelLabeller } from '../src/usage/metrics.js';
import type { UsageRecord } from '../src/usage/record.js';
import { usageRecord } from './helpers.js';

const value = async (m: Metrics, name: string, labels: Record<string, string> = {}) => {
  const metric = (await m.registry.getMetricsAsJSON()).find((x) => x.name === name);
  const v = metric?.values.find((x) => Object.entries(labels).every(([k, want]) => String((x.labels as Record<string, unknown>)[k]) === want));
  return v?.value;
};

test("a record's figures land in every series: requests, tokens by kind, cost, latency and ttft in seconds, retries", async () => {
  const m = new Metrics(null);
  const r: UsageRecord = usageRecord({
    time: 't',
    request_id: 'r1',
    provider: 'anthropic',
    model: 'claude-sonnet-4-6',
    status: 200,
    outcome: 'ok',
    input_tokens: 10,
    output_tokens: 20,
    cache_creation_5m_input_tokens: 30,
    cache_creation_1h_input_tokens: 0,
    cache_read_input_tokens: 40,
    cost_usd: 0.5,
    latency_ms: 1500,
    ttft_ms: 200,
    retries: 2,
  } as never);
  m.observe(r);
  m.observe({ ...r, request_id: 'r2', cost_usd: null, ttft_ms: null, retries: 0, status: 429, outcome: 'refused', provider: null, model: null });
  assert.equal(await value(m, 'switchyard_requests_total', { provider: 'anthropic', model: 'claude-sonnet-4-6', status: '200', outcome: 'ok' }), 1);
  assert.equal(await value(m, 'switchyard_requests_total', { provider: 'none', model: 'none', status: '429', outcome: 'refused' }), 1);
  for (const [kind, n] of [
    ['input_tokens', 10],
    ['output_tokens', 20],
    ['cache_creation_5m_input_tokens', 30],
    ['cache_read_input_tokens', 40],
  ] as const)
    assert.equal(await value(m, 'switchyard_tokens_total', { provider: 'anthropic', kind }), n, kind);
  assert.equal(await value(m, 'switchyard_tokens_total', { kind: 'cache_creation_1h_input_tokens' }), undefined, 'a kind with 0 tokens is not counted');
  assert.equal(await value(m, 'switchyard_cost_usd_total', { provider: 'anthropic' }), 0.5);
  assert.equal(await value(m, 'switchyard_retries_total', { provider: 'anthropic' }), 2);
  const text = await m.registry.metrics();
  assert.match(text, /^switchyard_request_duration_seconds_sum\{provider="anthropic"\} 1\.5$/m);
  assert.match(text, /^switchyard_request_duration_seconds_bucket\{le="1",provider="anthropic"\} 0$/m);
  assert.match(text, /^switchyard_request_duration_seconds_bucket\{le="2\.5",provider="anthropic"\} 1$/m);
  assert.match(text, /^switchyard_time_to_first_token_seconds_sum\{provider="anthropic"\} 0\.2$/m);
  assert.doesNotMatch(text, /switchyard_time_to_first_token_seconds_count\{provider="none"\} [1-9]/, 'no ttft, no observation');
  assert.match(text, /^switchyard_time_to_first_token_seconds_count\{provider="anthropic"\} 1$/m);
  assert.match(text, /^switchyard_request_duration_seconds_count\{provider="none"\} 1$/m);
});

test('the ledger gauges and the rules version are read at scrape time; one registry per gateway', async () => {
  const ledger = { queued: 3, dropped: 7 };
  let version = 'v1';
  const m = new Metrics(ledger as never, () => version);
  assert.equal(await value(m, 'switchyard_ledger_queue_depth'), 3);
  assert.equal(await value(m, 'switchyard_ledger_dropped_records'), 7);
  assert.equal(await value(m, 'switchyard_rules_info', { version: 'v1' }), 1);
  ledger.queued = 0;
  version = 'v2';
  assert.equal(await value(m, 'switchyard_ledger_queue_depth'), 0);
  const info = (await m.registry.getMetricsAsJSON()).find((x) => x.name === 'switchyard_rules_info')!;
  assert.deepEqual(
    info.values.map((v) => [v.labels.version, v.value]),
    [['v2', 1]],
    'only the version served now',
  );
  const off = new Metrics(null);
  assert.equal(await value(off, 'switchyard_ledger_queue_depth'), 0);
  assert.equal(await value(off, 'switchyard_rules_info', { version: '' }), 1);
  m.throttled.inc({ rule: 'rpm' });
  assert.equal(await value(off, 'switchyard_throttled_total', { rule: 'rpm' }), undefined, 'registries are separate');
});

test('model labels: configured names always; priced names until 200 have a label; everything else is other', () => {
  let configured = new Set(['claude-sonnet-4-6']);
  const label = modelLabeller(
    () => configured,
    (model) => model.startsWith('claude-'),
  );
  assert.equal(label('claude-sonnet-4-6', 'anthropic'), 'claude-sonnet-4-6');
  assert.equal(label('my-random-model', null), 'other');
  for (let i = 0; i < MAX_PRICED_MODEL_LABELS; i++) assert.equal(label(`claude-x-${i}`, null), `claude-x-${i}`);
  assert.equal(label('claude-x-200', null), 'other', 'the 201st priced name gets no label of its own');
  assert.equal(label('claude-x-5', null), 'claude-x-5', 'a name labelled before keeps its label');
  configured = new Set(['claude-new-configured', 'zz-local']);
  assert.equal(label('zz-local', null), 'zz-local', 'a reload that names a model gives it its label');
  assert.equal(MAX_PRICED_MODEL_LABELS, 200);
  const m = new Metrics(null, () => '', label);
  m.observe(usageRecord({ time: 't', request_id: 'x', provider: 'p', model: 'weird', status: 200, outcome: 'ok', latency_ms: 1, ttft_ms: null } as never));
  return m.registry.getMetricsAsJSON().then((all) => {
    const req = all.find((x) => x.name === 'switchyard_requests_total')!;
    assert.deepEqual(
      req.values.map((v) => v.labels.model),
      ['other'],
    );
  });
});
