/**
 * Clients that speak Bedrock's or Vertex AI's format to the gateway (issue 18, item 4): Anthropic's own Bedrock
 * and Vertex SDKs pointed at switchyard, routed by the same rules to an Anthropic upstream or to Bedrock itself;
 * the Bedrock stream re-encoded as event-stream messages (the SDK decodes them with AWS's codec), errors
 * mid-stream as exceptions, Vertex count-tokens, model ids normalized for rules, and the real Claude Code CLI in
 * Bedrock mode completing a Bash tool round trip through the gateway.
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import AnthropicBedrock from '@anthropic-ai/bedrock-sdk';
import { AnthropicVertex } from '@anthropic-ai/vertex-sdk';
import { request } from 'undici';
import { anthropicModelName } from '../src/server/ingress.js';
import { assertBashRoundTrip, type ClaudeCodeUpstream, runClaudeBashRoundTrip, startClaudeCodeUpstream } from './claude-code-bin.js';
import { startFakeBedrock, type FakeBedrock } from './fake-bedrock.js';
import { startFakeUpstream, type FakeUpstream } from './fake-upstream.js';
import { startTestGateway } from './helpers.js';

const AWS = { accessKeyId: 'AKIDINGRESSTEST00001', secretAccessKey: 'ingress-test-secret' };
process.env.AWS_ACCESS_KEY_ID = AWS.accessKeyId;
process.env.AWS_SECRET_ACCESS_KEY = AWS.secretAccessKey;
delete process.env.AWS_SESSION_TOKEN;
process.env.AWS_EC2_METADATA_DISABLED = 'true';

let anthropic: FakeUpstream;
let bedrock: FakeBedrock;
let gw: Awaited<ReturnType<typeof startTestGateway>>;

before(async () => {
  anthropic = await startFakeUpstream();
  bedrock = await startFakeBedrock({ region: 'us-east-1', credentials: AWS });
  gw = await startTestGateway({
    upstream: anthropic.url,
    providers:
      `  anthropic:\n    type: anthropic\n    base_url: ${anthropic.url}\n    retries: { max: 0 }\n` +
      `  bedrock:\n    type: bedrock\n    region: us-east-1\n    base_url: ${bedrock.url}\n    retries: { max: 0 }\n    models: { claude-opus-4-5-20251101: "us.anthropic.claude-opus-4-5-20251101-v1:0" }\n`,
    rules: {
      '50.yaml': `version: 1
rules:
  - id: no-haiku-3
    match: { model: "claude-3-haiku-*" }
    actions: [ { deny: { status: 403, message: "Haiku 3 is retired here" } } ]
  - id: opus-to-bedrock
    match: { model: "claude-opus-*" }
    actions: [ { route_to: { provider: bedrock } } ]
  - id: tag
    actions: [ { tag_billing: { via: { expr: "path" } } }, { route_to: { provider: anthropic } } ]
`,
    },
  });
});
after(async () => {
  await gw.gw.close();
  await anthropic.close();
  await bedrock.close();
});

const BEDROCK_SONNET = 'us.anthropic.claude-sonnet-4-5-20250929-v1:0';
const bedrockClient = () => new AnthropicBedrock({ baseURL: gw.gw.url, awsRegion: 'us-east-1', skipAuth: true, maxRetries: 0 });
const lastAnthropic = () => anthropic.received.at(-1)!;

describe('model ids', () => {
  test('Bedrock ids, inference profiles and ARNs, and Vertex ids, name the Anthropic model', () => {
    assert.equal(anthropicModelName('bedrock', BEDROCK_SONNET), 'claude-sonnet-4-5-20250929');
    assert.equal(anthropicModelName('bedrock', 'anthropic.claude-3-haiku-20240307-v1:0'), 'claude-3-haiku-20240307');
    assert.equal(anthropicModelName('bedrock', 'global.anthropic.claude-opus-4-5-20251101-v1:0'), 'claude-opus-4-5-20251101');
    assert.equal(anthropicModelName('bedrock', 'arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-sonnet-4-5-20250929-v1:0'), 'claude-sonnet-4-5-20250929');
    assert.equal(
      anthropicModelName('bedrock', 'arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abc123'),
      'arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abc123',
    );
    assert.equal(anthropicModelName('vertex', 'claude-sonnet-4-5@20250929'), 'claude-sonnet-4-5-20250929');
    assert.equal(anthropicModelName('vertex', 'claude-opus-4-1'), 'claude-opus-4-1');
  });
});

describe('Bedrock format in', () => {
  test('InvokeModel through to an Anthropic upstream: /v1/messages, the Anthropic model name, version and betas as headers', async () => {
    const msg = await bedrockClient().messages.create(
      { model: BEDROCK_SONNET, max_tokens: 16, messages: [{ role: 'user', content: [{ type: 'text', text: 'hi', cache_control: { type: 'ephemeral' } }] }] },
      { headers: { 'anthropic-beta': 'context-1m-2025-08-07' } },
    );
    assert.equal((msg.content[0] as { text: string }).text, 'Hello from the fake upstream.');
    const got = lastAnthropic();
    assert.equal(got.url, '/v1/messages');
    const body = JSON.parse(got.body.toString()) as Record<string, unknown>;
    assert.equal(body.model, 'claude-sonnet-4-5-20250929');
    assert.equal(body.anthropic_version, undefined);
    assert.equal(body.anthropic_beta, undefined);
    assert.deepEqual(body.messages, [{ role: 'user', content: [{ type: 'text', text: 'hi', cache_control: { type: 'ephemeral' } }] }]);
    assert.equal(got.headers['anthropic-version'], '2026-10-21', "the SDK's API version, from the body");
    assert.equal(got.headers['anthropic-beta'], 'context-1m-2025-08-07');
  });

  test('InvokeModelWithResponseStream: the Anthropic stream comes back as Bedrock event-stream messages the SDK decodes', async () => {
    const r = await request(`${gw.gw.url}/model/${encodeURIComponent(BEDROCK_SONNET)}/invoke-with-response-stream`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ anthropic_version: 'bedrock-2023-05-31', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] }),
    });
    assert.equal(r.statusCode, 200);
    assert.equal(r.headers['content-type'], 'application/vnd.amazon.eventstream');
    await r.body.dump();
    const body = JSON.parse(lastAnthropic().body.toString()) as Record<string, unknown>;
    assert.equal(body.stream, true, 'the path says stream');
    assert.equal(lastAnthropic().headers['anthropic-version'], '2023-06-01', 'a platform version is not an Anthropic API date: the default');
    const final = await bedrockClient()
      .messages.stream({ model: BEDROCK_SONNET, max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] })
      .finalMessage();
    assert.equal((final.content[0] as { text: string }).text, 'Hello from the fake upstream.');
    assert.equal(final.stop_reason, 'end_turn');
  });

  test('rules see the Anthropic model name: a deny answers the Bedrock client', async () => {
    await assert.rejects(
      bedrockClient().messages.create({ model: 'anthropic.claude-3-haiku-20240307-v1:0', max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] }),
      (err: Error & { status?: number }) => {
        assert.equal(err.status, 403);
        assert.match(err.message, /denied by rule \\"no-haiku-3\\": Haiku 3 is retired here/);
        return true;
      },
    );
  });

  test('Bedrock in, Bedrock out: the route sends the request on to AWS, signed by the gateway', async () => {
    const final = await bedrockClient()
      .messages.stream({ model: 'global.anthropic.claude-opus-4-5-20251101-v1:0', max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] })
      .finalMessage();
    assert.equal((final.content[0] as { text: string }).text, 'Hello from Bedrock, streamed');
    const got = bedrock.received.at(-1)!;
    assert.equal(got.modelId, 'us.anthropic.claude-opus-4-5-20251101-v1:0', "the Bedrock provider's models: map");
    assert.equal(got.signatureValid, true);
  });

  test('an upstream stream cut short reaches the Bedrock client as an exception message', async () => {
    const r = await request(`${gw.gw.url}/model/${encodeURIComponent(BEDROCK_SONNET)}/invoke-with-response-stream`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-fake': 'cut-sse' },
      body: JSON.stringify({ max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] }),
    });
    const bytes = Buffer.from(await r.body.arrayBuffer());
    assert.ok(bytes.includes(Buffer.from(':exception-type')), 'an exception message');
    assert.ok(bytes.includes(Buffer.from('before message_stop')));
    await assert.rejects(
      bedrockClient()
        .messages.stream({ model: BEDROCK_SONNET, max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] }, { headers: { 'x-fake': 'cut-sse' } })
        .finalMessage(),
    );
  });

  test('a body that is not JSON: 400 in Anthropic shape, nothing sent upstream', async () => {
    const before = anthropic.received.length;
    const r = await request(`${gw.gw.url}/model/${encodeURIComponent(BEDROCK_SONNET)}/invoke`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"max_tokens": ' });
    assert.equal(r.statusCode, 400);
    const body = (await r.body.json()) as { error: { type: string; message: string } };
    assert.equal(body.error.type, 'invalid_request_error');
    assert.match(body.error.message, /Bedrock request body is not valid JSON/);
    assert.equal(anthropic.received.length, before);
  });
});

describe('Vertex AI format in', () => {
  // Claude Code with CLAUDE_CODE_SKIP_VERTEX_AUTH sends no Google token; this client sends none either.
  const vertexClient = () =>
    new AnthropicVertex({
      baseURL: `${gw.gw.url}/v1`,
      region: 'us-east5',
      projectId: 'acme',
      maxRetries: 0,
      authClient: { getRequestHeaders: async () => new Headers(), projectId: 'acme' } as never,
    });

  test('rawPredict and streamRawPredict through to an Anthropic upstream; count-tokens too', async () => {
    const msg = await vertexClient().messages.create({ model: 'claude-sonnet-4-5@20250929', max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] });
    assert.equal(msg.type, 'message');
    const body = JSON.parse(lastAnthropic().body.toString()) as Record<string, unknown>;
    assert.equal(lastAnthropic().url, '/v1/messages');
    assert.equal(body.model, 'claude-sonnet-4-5-20250929');
    assert.equal(body.anthropic_version, undefined);
    const final = await vertexClient()
      .messages.stream({ model: 'claude-sonnet-4-5@20250929', max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] })
      .finalMessage();
    assert.equal((final.content[0] as { text: string }).text, 'Hello from the fake upstream.');
    const counted = await vertexClient().messages.countTokens({ model: 'claude-sonnet-4-5@20250929', messages: [{ role: 'user', content: 'hi' }] });
    assert.equal(typeof counted.input_tokens, 'number');
    assert.equal(lastAnthropic().url, '/v1/messages/count_tokens');
    assert.equal((JSON.parse(lastAnthropic().body.toString()) as { model: string }).model, 'claude-sonnet-4-5-20250929');
  });

  test('an unknown Vertex method is 404 naming what is served', async () => {
    const r = await request(`${gw.gw.url}/v1/projects/acme/locations/us-east5/publishers/anthropic/models/claude-x:generateContent`, { method: 'POST', body: '{}' });
    assert.equal(r.statusCode, 404);
    assert.match(((await r.body.json()) as { error: { message: string } }).error.message, /:rawPredict\|:streamRawPredict/);
  });
});

describe('usage', () => {
  test('requests that came in Bedrock format are recorded under the Anthropic model and the provider that answered', async () => {
    const text = await (await request(gw.gw.url + '/metrics')).body.text();
    assert.match(text, /switchyard_requests_total\{provider="anthropic",model="claude-sonnet-4-5-20250929",status="200",outcome="ok"\} [1-9]/);
  });
});

describe('Claude Code in Bedrock mode', () => {
  const MARKER = 'switchyard-bedrock-round-trip-ok';
  let upstream: ClaudeCodeUpstream;
  let ccGw: Awaited<ReturnType<typeof startTestGateway>>;
  before(async () => {
    upstream = await startClaudeCodeUpstream(MARKER);
    ccGw = await startTestGateway({ upstream: upstream.url });
  });
  after(async () => {
    await ccGw.gw.close();
    await upstream.close();
  });

  test('claude -p with CLAUDE_CODE_USE_BEDROCK=1 completes a Bash tool round trip through switchyard to an Anthropic upstream', { timeout: 900_000 }, async () => {
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      HOME: mkdtempSync(path.join(tmpdir(), 'switchyard-cc-bedrock-home-')),
      CLAUDE_CODE_USE_BEDROCK: '1',
      ANTHROPIC_BEDROCK_BASE_URL: ccGw.gw.url,
      CLAUDE_CODE_SKIP_BEDROCK_AUTH: '1',
      AWS_REGION: 'us-east-1',
      CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
      DISABLE_AUTOUPDATER: '1',
      CI: '1',
    };
    const out = await runClaudeBashRoundTrip(env, mkdtempSync(path.join(tmpdir(), 'switchyard-cc-bedrock-work-')));
    assertBashRoundTrip(out, upstream.calls, MARKER);
    assert.ok(
      upstream.calls.every((c) => c.model.startsWith('claude-')),
      `the upstream got Anthropic model names: ${upstream.calls.map((c) => c.model).join(', ')}`,
    );
  });
});

test('stream or not is decided by the path where the cloud API says so, else by the body', async () => {
  const { messagesBody, vertexIngress } = await import('../src/server/ingress.js');
  const streamOf = (ingress: Parameters<typeof messagesBody>[0], body: Record<string, unknown>) =>
    (JSON.parse(messagesBody(ingress, Buffer.from(JSON.stringify({ anthropic_version: 'bedrock-2023-05-31', max_tokens: 8, messages: [], ...body })), {}).toString()) as { stream?: boolean }).stream;
  const bedrock = (stream: boolean) => ({ dialect: 'bedrock' as const, model: 'anthropic.claude-sonnet-4-6-v1:0', stream });
  // Bedrock: /invoke answers JSON and /invoke-with-response-stream streams, whatever the body says.
  assert.equal(streamOf(bedrock(false), { stream: true }), false);
  assert.equal(streamOf(bedrock(true), {}), true);
  // Vertex AI: :streamRawPredict streams; :rawPredict leaves it to the body (the SDK's own bodies say nothing there).
  assert.equal(streamOf(vertexIngress('claude-sonnet-4-6:streamRawPredict')!.ingress, {}), true);
  assert.equal(streamOf(vertexIngress('claude-sonnet-4-6:rawPredict')!.ingress, {}), undefined);
  assert.equal(streamOf(vertexIngress('claude-sonnet-4-6:rawPredict')!.ingress, { stream: false }), false);
  assert.equal(vertexIngress('claude-sonnet-4-6:predict'), null, 'other methods are not served');
  assert.deepEqual(vertexIngress('count-tokens:rawPredict'), { ingress: { dialect: 'vertex', model: null, stream: null }, endpoint: 'count_tokens' });
  assert.equal(vertexIngress('count-tokens:streamRawPredict'), null);
});
