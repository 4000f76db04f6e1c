/**
 * `type: bedrock` (issue 18): the real @anthropic-ai/sdk → switchyard → a loopback fake Bedrock Runtime that
 * verifies every SigV4 signature with AWS's own signer and answers with AWS event-stream frames encoded by
 * AWS's own codec. Checks the wire request (path, model id, body rewritten as Bedrock wants it, betas moved
 * and filtered, cache_control kept), JSON and streamed answers (also split into 7-byte writes, and relayed
 * before the stream is over), Bedrock errors as Anthropic errors without account ids or ARNs, a stream
 * exception as an SSE error, count_tokens as 501, Bedrock API keys, missing AWS credentials naming the provider
 * and the source, and fallback from Bedrock to Anthropic.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import AnthropicBedrock from '@anthropic-ai/bedrock-sdk';
import Anthropic from '@anthropic-ai/sdk';
import { request } from 'undici';
import { chunkFrame, startFakeBedrock, textEventJsons, type FakeBedrock } from './fake-bedrock.js';
import { startFakeUpstream, type FakeUpstream } from './fake-upstream.js';
import { startTestGateway, until } from './helpers.js';
import { EventStreamToSSE } from '../src/upstream/providers/bedrock/stream.js';

const REGION = 'us-east-1';
const CREDENTIALS = { accessKeyId: 'AKIDSWITCHYARDTEST01', secretAccessKey: 'test-secret-access-key-do-not-log', sessionToken: 'test-session-token-value' };
// The gateway runs in this process and signs with the AWS default chain, which reads these first.
process.env.AWS_ACCESS_KEY_ID = CREDENTIALS.accessKeyId;
process.env.AWS_SECRET_ACCESS_KEY = CREDENTIALS.secretAccessKey;
process.env.AWS_SESSION_TOKEN = CREDENTIALS.sessionToken;
process.env.AWS_EC2_METADATA_DISABLED = 'true';
// A shared config without the profile the "missing credentials" provider asks for.
const awsDir = mkdtempSync(path.join(tmpdir(), 'sy-aws-'));
writeFileSync(path.join(awsDir, 'config'), '[default]\nregion = us-east-1\n');
writeFileSync(path.join(awsDir, 'credentials'), '[wrong]\naws_access_key_id = AKIDSWITCHYARDWRONG9\naws_secret_access_key = not-the-right-secret\n');
process.env.AWS_CONFIG_FILE = path.join(awsDir, 'config');
process.env.AWS_SHARED_CREDENTIALS_FILE = path.join(awsDir, 'credentials');

let bedrock: FakeBedrock;
let anthropic: FakeUpstream;

const MODEL_ID = 'us.anthropic.claude-sonnet-4-6-v1:0';
const providers = () =>
  `  anthropic:\n    type: anthropic\n    base_url: ${anthropic.url}\n    retries: { max: 0 }\n` +
  `  bedrock:\n    type: bedrock\n    region: ${REGION}\n    base_url: ${bedrock.url}\n    retries: { max: 0 }\n    breaker: { failures: 1000 }\n` +
  `    models: { claude-sonnet-4-6: "${MODEL_ID}", claude-haiku-4-5: haiku-scenario-split, claude-opus-4-1: opus-scenario-gated }\n` +
  `  bedrock-keyed:\n    type: bedrock\n    region: ${REGION}\n    base_url: ${bedrock.url}\n    keys: [ "bedrock-api-key-0001" ]\n    retries: { max: 0 }\n` +
  `  bedrock-nocreds:\n    type: bedrock\n    region: ${REGION}\n    base_url: ${bedrock.url}\n    aws_profile: nobody\n    retries: { max: 0 }\n` +
  `  bedrock-wrong:\n    type: bedrock\n    region: ${REGION}\n    base_url: ${bedrock.url}\n    aws_profile: wrong\n    retries: { max: 0 }\n`;
const rules = {
  '50.yaml': `version: 1
rules:
  - id: keyed
    match: { header: { x-route: keyed } }
    actions: [ { route_to: { provider: bedrock-keyed } } ]
  - id: nocreds
    match: { header: { x-route: nocreds } }
    actions: [ { route_to: { provider: bedrock-nocreds } } ]
  - id: wrongcreds
    match: { header: { x-route: wrongcreds } }
    actions: [ { route_to: { provider: bedrock-wrong } } ]
  - id: nocreds-fallback
    match: { header: { x-route: nocreds-fallback } }
    actions: [ { route_to: { provider: bedrock-nocreds, fallback: [ anthropic ] } } ]
  - id: bedrock
    actions: [ { route_to: { provider: bedrock } } ]
`,
};

let gw: Awaited<ReturnType<typeof startTestGateway>>;
before(async () => {
  bedrock = await startFakeBedrock({ region: REGION, credentials: CREDENTIALS });
  anthropic = await startFakeUpstream();
  gw = await startTestGateway({ upstream: anthropic.url, providers: providers(), rules });
});
after(async () => {
  await gw.gw.close();
  await bedrock.close();
  await anthropic.close();
});

const client = (headers: Record<string, string> = {}) => new Anthropic({ baseURL: gw.gw.url, apiKey: 'sk-ant-client-key-never-to-aws', maxRetries: 0, defaultHeaders: headers });
const lastBody = () => JSON.parse(bedrock.received.at(-1)!.body.toString()) as Record<string, unknown>;

describe('the fake speaks Bedrock', () => {
  test("Anthropic's own Bedrock SDK, signing with AWS's signer, gets its JSON and event-stream answers through", async () => {
    const sdk = new AnthropicBedrock({
      baseURL: bedrock.url,
      awsRegion: REGION,
      awsAccessKey: CREDENTIALS.accessKeyId,
      awsSecretKey: CREDENTIALS.secretAccessKey,
      awsSessionToken: CREDENTIALS.sessionToken,
      maxRetries: 0,
    });
    const msg = await sdk.messages.create({ model: MODEL_ID, max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] });
    assert.deepEqual(msg.content, [{ type: 'text', text: 'Hello from Bedrock' }]);
    assert.equal(bedrock.received.at(-1)!.signatureValid, true, "the fake's verifier accepts the SDK's own signature");
    const streamed = await sdk.messages.stream({ model: MODEL_ID, max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] }).finalMessage();
    assert.equal((streamed.content[0] as { text: string }).text, 'Hello from Bedrock, streamed');
    const wrong = new AnthropicBedrock({ baseURL: bedrock.url, awsRegion: REGION, awsAccessKey: CREDENTIALS.accessKeyId, awsSecretKey: 'not-the-secret', maxRetries: 0 });
    await assert.rejects(wrong.messages.create({ model: MODEL_ID, max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] }), /403/);
    assert.equal(bedrock.received.at(-1)!.signatureValid, false, 'a signature made with another secret is refused');
  });
});

describe('requests to Bedrock', () => {
  test('InvokeModel: the model in the path, the body as Bedrock wants it, a valid SigV4 signature, no client credential', async () => {
    const msg = await client({ 'anthropic-beta': 'claude-code-20250219,interleaved-thinking-2025-05-14' }).messages.create({
      model: 'claude-sonnet-4-6',
      max_tokens: 64,
      system: [{ type: 'text', text: 'You are terse.', cache_control: { type: 'ephemeral' } }],
      messages: [{ role: 'user', content: [{ type: 'text', text: 'hi', cache_control: { type: 'ephemeral' } }] }],
      metadata: { user_id: 'u-1' },
    });
    assert.deepEqual(msg.content, [{ type: 'text', text: 'Hello from Bedrock' }]);
    const got = bedrock.received.at(-1)!;
    assert.equal(got.url, `/model/${encodeURIComponent(MODEL_ID)}/invoke`);
    assert.equal(got.modelId, MODEL_ID);
    assert.equal(got.signatureValid, true, 'the fake verified the SigV4 signature with AWS signer');
    assert.equal(got.headers['x-amz-security-token'], CREDENTIALS.sessionToken);
    assert.equal(got.headers['x-api-key'], undefined, 'the client key never goes to AWS');
    assert.match(String(got.headers.authorization), /^AWS4-HMAC-SHA256 Credential=AKIDSWITCHYARDTEST01\/\d{8}\/us-east-1\/bedrock\/aws4_request, SignedHeaders=[^,]*host[^,]*, Signature=/);
    const body = lastBody();
    assert.equal(body.anthropic_version, '2026-10-21', "the client's anthropic-version, as Anthropic's Bedrock SDK sends it");
    assert.equal(got.headers['anthropic-version'], undefined);
    assert.equal(body.model, undefined);
    assert.equal(body.stream, undefined);
    assert.deepEqual(body.anthropic_beta, ['interleaved-thinking-2025-05-14'], 'only the betas Bedrock accepts, moved into the body');
    assert.deepEqual(body.system, [{ type: 'text', text: 'You are terse.', cache_control: { type: 'ephemeral' } }]);
    assert.deepEqual(body.messages, [{ role: 'user', content: [{ type: 'text', text: 'hi', cache_control: { type: 'ephemeral' } }] }]);
    assert.deepEqual(body.metadata, { user_id: 'u-1' });
    assert.equal(msg.usage.input_tokens, 25);
  });

  test('InvokeModelWithResponseStream: event-stream frames become Anthropic SSE the SDK reads; usage is recorded', async () => {
    const metricsText = await (await request(gw.gw.url + '/metrics')).body.text();
    const outputBefore = Number(/^switchyard_tokens_total\{provider="bedrock",model="claude-sonnet-4-6",kind="output_tokens"\} (\d+)$/m.exec(metricsText)?.[1] ?? 0);
    const stream = client().messages.stream({ model: 'claude-sonnet-4-6', max_tokens: 64, messages: [{ role: 'user', content: 'hi' }] });
    const events: string[] = [];
    stream.on('streamEvent', (e) => events.push(e.type));
    const final = await stream.finalMessage();
    assert.equal(final.content.length, 1);
    assert.equal((final.content[0] as { text: string }).text, 'Hello from Bedrock, streamed');
    assert.equal(final.stop_reason, 'end_turn');
    assert.deepEqual(events.slice(0, 2), ['message_start', 'content_block_start']);
    assert.equal(events.at(-1), 'message_stop');
    assert.equal(bedrock.received.at(-1)!.url, `/model/${encodeURIComponent(MODEL_ID)}/invoke-with-response-stream`);
    assert.equal(bedrock.received.at(-1)!.headers.accept, 'application/vnd.amazon.eventstream');
    // The usage of the Bedrock stream is tapped like Anthropic's: output tokens from message_delta.
    const line = /^switchyard_tokens_total\{provider="bedrock",model="claude-sonnet-4-6",kind="output_tokens"\} (\d+)$/m;
    const counted = async () => Number(line.exec(await (await request(gw.gw.url + '/metrics')).body.text())?.[1] ?? 0);
    await until(async () => (await counted()) === outputBefore + 7, 3000, '7 more output tokens counted for bedrock');
  });

  test('a recorded Bedrock stream (msg_bdrk_ id, invocation metrics in message_stop) reaches the SDK whole', async () => {
    const final = await client()
      .messages.stream({ model: 'm-scenario-recorded', max_tokens: 64, messages: [{ role: 'user', content: 'hi' }] })
      .finalMessage();
    assert.equal(final.id, 'msg_bdrk_01GARnYv14iBzB6TkRKGLWRz');
    assert.deepEqual(final.content, [{ type: 'text', text: 'Hello' }]);
    assert.equal(final.stop_reason, 'end_turn');
    assert.deepEqual([final.usage.input_tokens, final.usage.output_tokens], [288, 12]);
  });

  test('a streamed tool_use block arrives whole: its input from input_json_delta fragments', async () => {
    const final = await client()
      .messages.stream({ model: 'm-scenario-tool', max_tokens: 64, messages: [{ role: 'user', content: 'weather?' }] })
      .finalMessage();
    assert.equal(final.stop_reason, 'tool_use');
    assert.deepEqual(final.content, [{ type: 'tool_use', id: 'toolu_fake_01', name: 'get_weather', input: { city: 'Paris', unit: 'celsius' } }]);
  });

  test('a stream that arrives 7 bytes at a time is decoded the same', async () => {
    const final = await client()
      .messages.stream({ model: 'claude-haiku-4-5', max_tokens: 64, messages: [{ role: 'user', content: 'hi' }] })
      .finalMessage();
    assert.equal((final.content[0] as { text: string }).text, 'Hello from Bedrock, streamed');
  });

  test('events are relayed as they come: the first text reaches the client while Bedrock still holds the rest', async () => {
    const r = await request(gw.gw.url + '/v1/messages', {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'anthropic-version': '2023-06-01' },
      body: JSON.stringify({ model: 'claude-opus-4-1', max_tokens: 64, stream: true, messages: [{ role: 'user', content: 'hi' }] }),
    });
    assert.equal(r.statusCode, 200);
    assert.match(String(r.headers['content-type']), /^text\/event-stream/);
    let text = '';
    for await (const chunk of r.body) {
      text += chunk.toString();
      if (text.includes('event: content_block_start')) break;
    }
    assert.ok(!text.includes('message_stop'), 'the end is still held by the fake');
    bedrock.release();
  });

  test('count_tokens routed to Bedrock answers 501 not_supported_error; nothing is sent to AWS', async () => {
    const before = bedrock.received.length;
    const r = await request(gw.gw.url + '/v1/messages/count_tokens', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'claude-sonnet-4-6', messages: [{ role: 'user', content: 'hi' }] }),
    });
    assert.equal(r.statusCode, 501);
    const body = (await r.body.json()) as { type: string; error: { type: string; message: string } };
    assert.equal(body.error.type, 'not_supported_error');
    assert.match(body.error.message, /Amazon Bedrock, which has no token counting/);
    assert.equal(bedrock.received.length, before);
  });

  test('a Bedrock API key (keys:) goes as a bearer token, with no SigV4 signature', async () => {
    await client({ 'x-route': 'keyed' }).messages.create({ model: 'claude-sonnet-4-6', max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] });
    const got = bedrock.received.at(-1)!;
    assert.equal(got.headers.authorization, 'Bearer bedrock-api-key-0001');
    assert.equal(got.signatureValid, null);
    assert.equal(got.headers['x-amz-date'], undefined);
  });
});

describe('Bedrock errors', () => {
  const send = async (model: string) => {
    const r = await request(gw.gw.url + '/v1/messages', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model, max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] }),
    });
    return { status: r.statusCode, headers: r.headers, body: (await r.body.json()) as { type: string; error: { type: string; message: string } } };
  };
  // The route keeps the client's model when the provider has no rename: the fake reads the scenario from it.
  test('ThrottlingException → 429 rate_limit_error with retry-after; no account id to the client, all of it in the log', async () => {
    const r = await send('m-scenario-throttle');
    assert.equal((JSON.parse(bedrock.received.at(-1)!.body.toString()) as { anthropic_version: string }).anthropic_version, 'bedrock-2023-05-31', "no anthropic-version header: Bedrock's own");
    assert.equal(r.status, 429);
    assert.equal(r.body.error.type, 'rate_limit_error');
    assert.ok(Number(r.headers['retry-after']) > 0);
    assert.match(r.body.error.message, /^provider "bedrock" \(Amazon Bedrock\) answered 429 ThrottlingException; details are in the gateway log \(AWS request id aws-req-\d+\)$/);
    assert.ok(!JSON.stringify(r.body).includes('123456789012'));
    await until(() => gw.logs.raw.some((l) => l.includes('Too many requests, please wait') && l.includes('ThrottlingException')), 2000, 'the AWS message in the log');
  });

  test('AccessDeniedException → 403 permission_error; the ARN stays in the log', async () => {
    const r = await send('m-scenario-denied');
    assert.equal(r.status, 403);
    assert.equal(r.body.error.type, 'permission_error');
    assert.ok(!r.body.error.message.includes('arn:'), r.body.error.message);
    assert.ok(!r.body.error.message.includes('123456789012'));
  });

  test('ValidationException → 400 invalid_request_error with what was wrong, ARNs and account ids redacted', async () => {
    const r = await send('m-scenario-invalid');
    assert.equal(r.status, 400);
    assert.equal(r.body.error.type, 'invalid_request_error');
    assert.match(r.body.error.message, /ValidationException: messages\.0: roles must alternate; see \[arn\]/);
    assert.ok(!r.body.error.message.includes('123456789012'));
  });

  test('an exception inside the stream ends it with an Anthropic error event; the SDK raises it', async () => {
    const stream = client().messages.stream({ model: 'm-scenario-stream-exception', max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] });
    await assert.rejects(stream.finalMessage(), (err: Error) => {
      assert.match(err.message, /rate_limit_error|ThrottlingException/);
      assert.ok(!err.message.includes('123456789012'));
      return true;
    });
  });

  test('no AWS credentials: 502 naming the provider and where credentials were looked for', async () => {
    const r = await request(gw.gw.url + '/v1/messages', {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-route': 'nocreds' },
      body: JSON.stringify({ model: 'claude-sonnet-4-6', max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] }),
    });
    assert.equal(r.statusCode, 502);
    const body = (await r.body.json()) as { error: { type: string; message: string } };
    assert.match(body.error.message, /^provider "bedrock-nocreds": no usable credentials from aws profile "nobody": /);
    assert.ok(!JSON.stringify(body).includes(CREDENTIALS.secretAccessKey));
  });

  test('credentials AWS refuses: 401 authentication_error naming the provider and where its credentials came from', async () => {
    const r = await request(gw.gw.url + '/v1/messages', {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-route': 'wrongcreds' },
      body: JSON.stringify({ model: 'claude-sonnet-4-6', max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] }),
    });
    assert.equal(r.statusCode, 401);
    const body = (await r.body.json()) as { error: { type: string; message: string } };
    assert.equal(body.error.type, 'authentication_error');
    assert.match(
      body.error.message,
      /^provider "bedrock-wrong" \(Amazon Bedrock\) answered 403 InvalidSignatureException; AWS refused the gateway's credentials \(from aws profile "wrong", access key …ONG9\)/,
    );
    assert.ok(!body.error.message.includes('not-the-right-secret'));
  });

  test('/admin/providers: the credential source, the access key hint and no secret', async () => {
    const r = (await (await request(gw.gw.url + '/admin/providers')).body.json()) as { providers: Array<{ name: string; credentials?: Record<string, unknown> }> };
    assert.deepEqual(r.providers.find((p) => p.name === 'bedrock')!.credentials, { source: 'aws default chain', expires_at: null, access_key_hint: 'ST01' });
    assert.equal(r.providers.find((p) => p.name === 'bedrock-keyed')!.credentials, undefined, 'API keys are shown as key fingerprints, like any pool');
    assert.ok(!JSON.stringify(r).includes(CREDENTIALS.secretAccessKey));
  });

  test('a Bedrock provider without credentials falls back to the next provider of the route', async () => {
    const before = anthropic.received.length;
    const msg = await client({ 'x-route': 'nocreds-fallback' }).messages.create({ model: 'claude-sonnet-4-6', max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] });
    assert.equal(msg.type, 'message');
    assert.equal(anthropic.received.length, before + 1);
  });

  test('no secret in any log line', () => {
    const text = gw.logs.text();
    for (const secret of [CREDENTIALS.secretAccessKey, CREDENTIALS.sessionToken, 'bedrock-api-key-0001', 'sk-ant-client-key-never-to-aws']) assert.ok(!text.includes(secret), `log holds ${secret}`);
  });
});

describe('event-stream decoding', () => {
  test('any split of the bytes gives the same SSE as the whole', async () => {
    const bytes = Buffer.concat(textEventJsons('m', 'split me anywhere please').map((e) => Buffer.from(chunkFrame(e))));
    const run = async (cuts: number[]) => {
      const t = new EventStreamToSSE('p', () => {});
      const out: Buffer[] = [];
      t.on('data', (c: Buffer) => out.push(Buffer.from(c)));
      let at = 0;
      for (const cut of [...cuts, bytes.length]) {
        t.write(bytes.subarray(at, cut));
        at = cut;
      }
      t.end();
      await new Promise((r) => t.once('end', r));
      return Buffer.concat(out).toString();
    };
    const whole = await run([]);
    assert.match(whole, /^event: message_start\ndata: \{"type":"message_start"/);
    assert.equal((whole.match(/^event: /gm) ?? []).length, textEventJsons('m', 'split me anywhere please').length);
    for (let seed = 1; seed <= 40; seed++) {
      const cuts = [...new Set(Array.from({ length: 1 + (seed % 9) }, (_, i) => ((seed * 7919 + i * 104729) % bytes.length) + 1))].sort((a, b) => a - b).filter((c) => c < bytes.length);
      assert.equal(await run(cuts), whole, `cuts ${cuts.join(',')}`);
    }
  });

  test('a stream cut in the middle of a message ends with an error event', async () => {
    const bytes = Buffer.from(chunkFrame(textEventJsons('m', 'x')[0]!));
    const faults: string[] = [];
    const t = new EventStreamToSSE('p', (name) => faults.push(name));
    const out: string[] = [];
    t.on('data', (c: Buffer) => out.push(c.toString()));
    t.end(bytes.subarray(0, bytes.length - 3));
    await new Promise((r) => t.once('end', r));
    assert.match(out.join(''), /^event: error\ndata: \{"type":"error","error":\{"type":"api_error","message":"provider \\"p\\" \(Amazon Bedrock\) stream failed/);
    assert.deepEqual(faults, ['EventStreamDecodeError']);
  });

  test('a corrupted checksum is an error, not garbage relayed', async () => {
    const bytes = Buffer.from(chunkFrame(textEventJsons('m', 'x')[0]!));
    bytes.writeUInt8(bytes.readUInt8(bytes.length - 1) ^ 0xff, bytes.length - 1);
    const t = new EventStreamToSSE('p', () => {});
    const out: string[] = [];
    t.on('data', (c: Buffer) => out.push(c.toString()));
    t.end(bytes);
    await new Promise((r) => t.once('end', r));
    assert.match(out.join(''), /^event: error\n/);
  });
});

test('every exception AWS documents for InvokeModel and its response stream maps to an Anthropic error of the same meaning', async () => {
  const { BEDROCK_FAULTS, bedrockFaultName } = await import('../src/upstream/providers/bedrock/stream.js');
  // AWS's documented errors with their HTTP statuses: InvokeModel / InvokeModelWithResponseStream "Errors" and the
  // ResponseStream members (https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_InvokeModel.html,
  // .../API_runtime_ResponseStream.html), plus the common signature errors every AWS API answers.
  const documented: Record<string, number> = {
    AccessDeniedException: 403,
    InternalServerException: 500,
    ModelErrorException: 424,
    ModelNotReadyException: 429,
    ModelStreamErrorException: 424,
    ModelTimeoutException: 408,
    ResourceNotFoundException: 404,
    ServiceQuotaExceededException: 400,
    ServiceUnavailableException: 503,
    ThrottlingException: 429,
    ValidationException: 400,
    UnrecognizedClientException: 403,
    ExpiredTokenException: 403,
    InvalidSignatureException: 403,
  };
  for (const [name, awsStatus] of Object.entries(documented)) {
    const fault = BEDROCK_FAULTS[name];
    assert.ok(fault, `${name} has its own mapping`);
    // What a client must do is kept: fix the request (400/404), fix the credentials (401/403), wait and retry (429/529),
    // or retry a server fault (5xx) — Claude Code retries exactly 408, 409, 429 and 5xx.
    // ServiceQuotaExceededException is a 400 at AWS whose text says "you can resubmit your request later": a limit.
    const retryable = awsStatus === 429 || awsStatus >= 500 || awsStatus === 408 || awsStatus === 424 || name === 'ServiceQuotaExceededException';
    assert.equal(fault.status === 429 || fault.status >= 500, retryable, `${name} (AWS ${awsStatus}) -> ${fault.status} ${fault.type}`);
  }
  assert.deepEqual(BEDROCK_FAULTS.ThrottlingException, { status: 429, type: 'rate_limit_error' });
  assert.deepEqual(BEDROCK_FAULTS.ValidationException, { status: 400, type: 'invalid_request_error' });
  assert.deepEqual(BEDROCK_FAULTS.AccessDeniedException, { status: 403, type: 'permission_error' });
  assert.deepEqual(BEDROCK_FAULTS.ResourceNotFoundException, { status: 404, type: 'not_found_error' });
  assert.deepEqual(BEDROCK_FAULTS.ServiceUnavailableException, { status: 529, type: 'overloaded_error' });
  // Names as they arrive: `x-amzn-errortype: ThrottlingException:http://…`, or an event's camel-cased `throttlingException`.
  assert.equal(bedrockFaultName('ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/'), 'ThrottlingException');
  assert.equal(bedrockFaultName('modelStreamErrorException'), 'ModelStreamErrorException');
});
