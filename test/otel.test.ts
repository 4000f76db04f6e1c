/**
 * OpenTelemetry (issue 20, item 1): an in-process OTLP/HTTP receiver on loopback decodes what the gateway exports
 * (the SDK's JSON encoding). A request with the client's `traceparent` becomes a SERVER span in the client's trace
 * with the GenAI attributes and switchyard's own; its upstream attempt a CLIENT child span whose `traceparent`
 * reached the upstream; the GenAI metrics carry the request's tokens; no prompt and no key is exported; and
 * telemetry is off unless the environment or the config switches it on.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { request } from 'undici';
import { startTelemetry, telemetrySettings } from '../src/telemetry.js';
import { startFakeUpstream, type FakeUpstream } from './fake-upstream.js';
import { startTestGateway, until } from './helpers.js';

interface OtlpAttr {
  key: string;
  value: { stringValue?: string; intValue?: number | string; doubleValue?: number; boolValue?: boolean; arrayValue?: { values: Array<{ stringValue?: string }> } };
}
interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes: OtlpAttr[];
}

const received: { traces: string[]; metrics: string[] } = { traces: [], metrics: [] };
let receiver: Server;
let fake: FakeUpstream;
let gw: Awaited<ReturnType<typeof startTestGateway>>;

const attr = (attrs: OtlpAttr[], key: string) => {
  const v = attrs.find((a) => a.key === key)?.value;
  if (!v) return undefined;
  if (v.arrayValue) return v.arrayValue.values.map((x) => x.stringValue);
  return v.stringValue ?? (v.intValue !== undefined ? Number(v.intValue) : (v.doubleValue ?? v.boolValue));
};
const spans = (): OtlpSpan[] =>
  received.traces.flatMap((t) => (JSON.parse(t) as { resourceSpans: Array<{ scopeSpans: Array<{ spans: OtlpSpan[] }> }> }).resourceSpans.flatMap((r) => r.scopeSpans.flatMap((s) => s.spans)));

before(async () => {
  receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString();
      if (req.url === '/v1/traces') received.traces.push(body);
      else if (req.url === '/v1/metrics') received.metrics.push(body);
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  fake = await startFakeUpstream();
  process.env.OTEL_EXPORTER_OTLP_ENDPOINT = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
  process.env.OTEL_SERVICE_NAME = 'switchyard-under-test';
  process.env.OTEL_BSP_SCHEDULE_DELAY = '50';
  process.env.OTEL_METRIC_EXPORT_INTERVAL = '200';
  gw = await startTestGateway({ upstream: fake.url });
});
after(async () => {
  await gw.gw.close();
  await fake.close();
  await new Promise((r) => receiver.close(r));
});

describe('traces', () => {
  const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
  const CLIENT_SPAN = '00f067aa0ba902b7';
  let server: OtlpSpan;
  let client: OtlpSpan;

  before(async () => {
    const r = await request(gw.gw.url + '/v1/messages', {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': 'sk-ant-never-exported-0001', traceparent: `00-${TRACE}-${CLIENT_SPAN}-01`, 'x-claude-code-session-id': 'sess-otel' },
      body: JSON.stringify({ model: 'claude-sonnet-4-6', max_tokens: 8, messages: [{ role: 'user', content: 'SECRET-PROMPT-TEXT' }] }),
    });
    assert.equal(r.statusCode, 200);
    await r.body.dump();
    await until(() => spans().some((s) => s.kind === 2 && s.traceId === TRACE) && spans().some((s) => s.kind === 3 && s.traceId === TRACE), 5000, 'the server and client spans exported');
    server = spans().find((s) => s.kind === 2 && s.traceId === TRACE)!;
    client = spans().find((s) => s.kind === 3 && s.traceId === TRACE)!;
  });

  test("the request is a SERVER span in the client's trace, named for the operation and model", () => {
    assert.equal(server.parentSpanId, CLIENT_SPAN);
    assert.equal(server.name, 'chat claude-sonnet-4-6');
  });

  test('GenAI attributes: operation, provider, models, usage, conversation id', () => {
    const a = server.attributes;
    assert.equal(attr(a, 'gen_ai.operation.name'), 'chat');
    assert.equal(attr(a, 'gen_ai.provider.name'), 'anthropic');
    assert.equal(attr(a, 'gen_ai.request.model'), 'claude-sonnet-4-6');
    assert.equal(attr(a, 'gen_ai.response.model'), 'claude-sonnet-4-6');
    assert.equal(attr(a, 'gen_ai.usage.input_tokens'), 25);
    assert.equal(attr(a, 'gen_ai.usage.output_tokens'), 7);
    assert.equal(attr(a, 'gen_ai.usage.cache_read.input_tokens'), 0);
    assert.equal(attr(a, 'gen_ai.conversation.id'), 'sess-otel');
    assert.equal(attr(a, 'http.response.status_code'), 200);
  });

  test("switchyard's attributes: rules version, matched rules, route, attempts, outcome", () => {
    const a = server.attributes;
    assert.match(String(attr(a, 'switchyard.rules_version')), /^[0-9a-f]{12}$/);
    assert.deepEqual(attr(a, 'switchyard.rules'), ['default']);
    assert.equal(attr(a, 'switchyard.route.provider'), 'anthropic');
    assert.equal(attr(a, 'switchyard.attempts'), 1);
    assert.equal(attr(a, 'switchyard.outcome'), 'ok');
  });

  test("the upstream attempt is a CLIENT child span, and the upstream got that span's traceparent", () => {
    assert.equal(client.parentSpanId, server.spanId);
    assert.equal(attr(client.attributes, 'http.response.status_code'), 200);
    assert.equal(attr(client.attributes, 'gen_ai.provider.name'), 'anthropic');
    const sent = fake.received.at(-1)!.headers.traceparent;
    assert.equal(sent, `00-${TRACE}-${client.spanId}-01`);
  });

  test('no prompt, body or key is exported', () => {
    const all = received.traces.join('\n') + received.metrics.join('\n');
    assert.ok(!all.includes('SECRET-PROMPT-TEXT'));
    assert.ok(!all.includes('sk-ant-never-exported'));
    assert.match(received.traces.join(''), /"switchyard-under-test"/, 'service.name from OTEL_SERVICE_NAME');
  });
});

describe('metrics', () => {
  test('gen_ai.client.token.usage by token type, operation duration and time to first token', async () => {
    type Point = { attributes: OtlpAttr[]; count: number | string; sum: number };
    const histogram = (name: string): Point[] =>
      received.metrics.flatMap((m) =>
        (JSON.parse(m) as { resourceMetrics: Array<{ scopeMetrics: Array<{ metrics: Array<{ name: string; histogram?: { dataPoints: Point[] } }> }> }> }).resourceMetrics.flatMap((r) =>
          r.scopeMetrics.flatMap((s) => s.metrics.filter((x) => x.name === name).flatMap((x) => x.histogram?.dataPoints ?? [])),
        ),
      );
    await until(() => histogram('gen_ai.client.token.usage').length >= 2, 5000, 'token usage exported');
    const tokens = histogram('gen_ai.client.token.usage');
    const latest = (type: string) => tokens.filter((p) => attr(p.attributes, 'gen_ai.token.type') === type).at(-1)!;
    assert.ok(latest('input').sum >= 25);
    assert.ok(latest('output').sum >= 7);
    assert.equal(attr(latest('output').attributes, 'gen_ai.request.model'), 'claude-sonnet-4-6');
    assert.ok(Number(histogram('gen_ai.client.operation.duration').at(-1)!.count) >= 1);
    assert.ok(histogram('gen_ai.server.time_to_first_token').length >= 1);
  });
});

describe('switching it on', () => {
  test('off without an endpoint; off with OTEL_SDK_DISABLED or both exporters none; the config endpoint switches it on', async () => {
    const none = { endpoint: null, service_name: null };
    assert.equal(await startTelemetry(none, {}), null);
    assert.equal(await startTelemetry(none, { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:1', OTEL_SDK_DISABLED: 'true' }), null);
    assert.equal(await startTelemetry(none, { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:1', OTEL_TRACES_EXPORTER: 'none', OTEL_METRICS_EXPORTER: 'none' }), null);
    const on = await startTelemetry({ endpoint: 'http://127.0.0.1:1', service_name: 'x' }, {});
    assert.ok(on);
    await on.shutdown();
    assert.deepEqual(telemetrySettings({ endpoint: 'http://127.0.0.1:1/', service_name: 'x' }, {}), {
      traces: 'http://127.0.0.1:1/v1/traces',
      metrics: 'http://127.0.0.1:1/v1/metrics',
      serviceName: 'x',
      env: {},
    });
    const tracesOnly = await startTelemetry(none, { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://127.0.0.1:1/v1/traces' });
    assert.ok(tracesOnly);
    await tracesOnly.shutdown();
    assert.equal(telemetrySettings(none, { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://127.0.0.1:1/v1/traces' })?.metrics, null);
  });
});

describe("the same request's span, metrics and usage record agree", () => {
  test('requested and response model, every token kind (cache read and write in their attributes and in the input metric), cost', async () => {
    const g = await startTestGateway({
      upstream: fake.url,
      rules: {
        '50.yaml':
          'version: 1\nrules:\n  - id: pin\n    match: { model: claude-haiku-4-5 }\n    actions: [ { route_to: { provider: anthropic, model: claude-haiku-4-5-20251001 } } ]\n  - id: default\n    actions: [ { route_to: { provider: anthropic } } ]\n',
      },
    });
    try {
      const r = await request(g.gw.url + '/v1/messages', {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-api-key': 'sk-ant-otel-2', 'x-fake': 'cached', 'x-claude-code-session-id': 'sess-otel-record' },
        body: JSON.stringify({ model: 'claude-haiku-4-5', max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] }),
      });
      assert.equal(r.statusCode, 200);
      await r.body.dump();
      const id = String(r.headers['x-switchyard-request-id']);
      const ledger = g.gw.deps.ledger!;
      await until(async () => {
        await ledger.flush();
        return (await ledger.store.query(new Date(Date.now() - 60_000).toISOString(), new Date(Date.now() + 1000).toISOString())).some((x) => x.request_id === id);
      });
      const record = (await ledger.store.query(new Date(Date.now() - 60_000).toISOString(), new Date(Date.now() + 1000).toISOString())).find((x) => x.request_id === id)!;
      await until(() => spans().some((s) => s.kind === 2 && attr(s.attributes, 'gen_ai.conversation.id') === 'sess-otel-record'), 5000, 'the span exported');
      const a = spans().find((s) => s.kind === 2 && attr(s.attributes, 'gen_ai.conversation.id') === 'sess-otel-record')!.attributes;
      assert.equal(attr(a, 'gen_ai.request.model'), 'claude-haiku-4-5', 'what the client asked for');
      assert.equal(attr(a, 'gen_ai.response.model'), record.model);
      assert.equal(record.model, 'claude-haiku-4-5-20251001', 'the model the upstream was sent (the fake answers with it)');
      assert.equal(attr(a, 'gen_ai.usage.input_tokens'), record.input_tokens);
      assert.equal(attr(a, 'gen_ai.usage.output_tokens'), record.output_tokens);
      assert.equal(attr(a, 'gen_ai.usage.cache_read.input_tokens'), record.cache_read_input_tokens);
      assert.equal(attr(a, 'gen_ai.usage.cache_creation.input_tokens'), record.cache_creation_input_tokens);
      assert.deepEqual([record.input_tokens, record.output_tokens, record.cache_read_input_tokens, record.cache_creation_input_tokens], [25, 7, 300, 120]);
      assert.equal(attr(a, 'switchyard.cost_usd'), record.cost_usd);
      type Point = { attributes: OtlpAttr[]; sum: number };
      const inputPoints = (): Point[] =>
        received.metrics.flatMap((m) =>
          (JSON.parse(m) as { resourceMetrics: Array<{ scopeMetrics: Array<{ metrics: Array<{ name: string; histogram?: { dataPoints: Point[] } }> }> }> }).resourceMetrics.flatMap((rm) =>
            rm.scopeMetrics.flatMap((s) =>
              s.metrics
                .filter((x) => x.name === 'gen_ai.client.token.usage')
                .flatMap((x) => x.histogram?.dataPoints ?? [])
                .filter((p) => attr(p.attributes, 'gen_ai.token.type') === 'input' && attr(p.attributes, 'gen_ai.request.model') === 'claude-haiku-4-5'),
            ),
          ),
        );
      await until(() => inputPoints().length > 0, 5000, 'the input token metric exported');
      assert.equal(inputPoints().at(-1)!.sum, record.input_tokens + record.cache_read_input_tokens + record.cache_creation_input_tokens, 'input, cache reads and cache writes');
    } finally {
      await g.gw.close();
    }
  });
});
