/**
 * `type: vertex` (issue 18): the real @anthropic-ai/sdk → switchyard → a loopback fake Vertex AI, with Google
 * OAuth tokens from a fake GCE/GKE metadata server (the workload-identity path of Google's auth library,
 * reached through its own `GCE_METADATA_HOST` setting). Checks the rawPredict / streamRawPredict /
 * count-tokens paths and bodies, the bearer token (fetched, cached, fetched again when it expires), Google-shaped
 * errors as Anthropic errors, and no token in the log. The fake Vertex is checked against Anthropic's own Vertex
 * SDK first: what the SDK sends, the fake accepts.
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import Anthropic from '@anthropic-ai/sdk';
import { AnthropicVertex } from '@anthropic-ai/vertex-sdk';
import { request } from 'undici';
import { messageJson, sseTextEvents, startFakeUpstream, type FakeUpstream } from './fake-upstream.js';
import { startTestGateway } from './helpers.js';

const PROJECT = 'acme-claude';
const REGION = 'us-east5';

interface Got {
  url: string;
  headers: IncomingMessage['headers'];
  body: Record<string, unknown>;
}

/** A fake metadata server: each token request gets a new token, valid `expiresIn` seconds. */
async function startMetadata(expiresIn: number): Promise<{ host: string; issued: string[]; close(): Promise<void> }> {
  const issued: string[] = [];
  const server: Server = createServer((req, res) => {
    if (req.headers['metadata-flavor'] !== 'Google') {
      res.writeHead(403).end();
      return;
    }
    if ((req.url ?? '').startsWith('/computeMetadata/v1/instance/service-accounts/default/token')) {
      const token = `ya29.fake-token-${issued.length + 1}`;
      issued.push(token);
      res.writeHead(200, { 'content-type': 'application/json', 'metadata-flavor': 'Google' });
      res.end(JSON.stringify({ access_token: token, expires_in: expiresIn, token_type: 'Bearer' }));
      return;
    }
    if ((req.url ?? '').startsWith('/computeMetadata/v1/project/project-id')) {
      res.writeHead(200, { 'content-type': 'application/text', 'metadata-flavor': 'Google' }).end(PROJECT);
      return;
    }
    res.writeHead(200, { 'metadata-flavor': 'Google' }).end('');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { host: `127.0.0.1:${(server.address() as AddressInfo).port}`, issued, close: () => new Promise((r) => server.close(() => r())) };
}

/** A fake Vertex AI answering Anthropic's format on the publisher-model paths; only `valid` tokens pass. */
async function startFakeVertex(valid: (token: string) => boolean): Promise<{ url: string; received: Got[]; close(): Promise<void> }> {
  const received: Got[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString() || '{}') as Record<string, unknown>;
      received.push({ url: req.url!, headers: req.headers, body });
      const token = /^Bearer (.+)$/.exec(String(req.headers.authorization ?? ''))?.[1] ?? '';
      if (!valid(token)) {
        res.writeHead(401, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { code: 401, message: 'Request had invalid authentication credentials.', status: 'UNAUTHENTICATED' } }));
        return;
      }
      const m = /^\/v1\/projects\/([^/]+)\/locations\/([^/]+)\/publishers\/anthropic\/models\/([^/:]+):(rawPredict|streamRawPredict)$/.exec(req.url!);
      if (!m) {
        res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { code: 404, message: `no route ${req.url}`, status: 'NOT_FOUND' } }));
        return;
      }
      const model = decodeURIComponent(m[3]!);
      if (model === 'quota-exhausted') {
        res.writeHead(429, { 'content-type': 'application/json', 'retry-after': '7' });
        res.end(JSON.stringify([{ error: { code: 429, message: 'Quota exceeded for aiplatform.googleapis.com/online_prediction_requests_per_base_model.', status: 'RESOURCE_EXHAUSTED' } }]));
        return;
      }
      if (model === 'count-tokens') {
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ input_tokens: 42 }));
        return;
      }
      if (m[4] === 'streamRawPredict') {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.end(sseTextEvents(model, 'Hello from Vertex').join(''));
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(messageJson(model, [{ type: 'text', text: 'Hello from Vertex' }])));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, received, close: () => new Promise((r) => server.close(() => r())) };
}

let metadata: Awaited<ReturnType<typeof startMetadata>>;
let vertex: Awaited<ReturnType<typeof startFakeVertex>>;
let anthropic: FakeUpstream;
let gw: Awaited<ReturnType<typeof startTestGateway>>;

before(async () => {
  // Tokens valid 10 s: within the library's refresh window (it refreshes 5 min before expiry), so every request fetches a new one.
  metadata = await startMetadata(10);
  vertex = await startFakeVertex((t) => metadata.issued.includes(t));
  anthropic = await startFakeUpstream();
  // Application Default Credentials from the metadata server only: no key file, no gcloud login on this machine.
  delete process.env.GOOGLE_APPLICATION_CREDENTIALS;
  process.env.CLOUDSDK_CONFIG = mkdtempSync(path.join(tmpdir(), 'sy-gcloud-'));
  process.env.GCE_METADATA_HOST = metadata.host;
  process.env.METADATA_SERVER_DETECTION = 'assume-present';
  gw = await startTestGateway({
    upstream: anthropic.url,
    providers:
      `  anthropic:\n    type: anthropic\n    base_url: ${anthropic.url}\n    retries: { max: 0 }\n` +
      `  vertex:\n    type: vertex\n    region: ${REGION}\n    project: ${PROJECT}\n    base_url: ${vertex.url}\n    retries: { max: 0 }\n    models: { claude-sonnet-4-6: "claude-sonnet-4-6@20260101" }\n` +
      `  vertex-keyfile:\n    type: vertex\n    region: ${REGION}\n    project: ${PROJECT}\n    base_url: ${vertex.url}\n    credentials_file: ./no-such-key.json\n    retries: { max: 0 }\n`,
    rules: {
      '50.yaml':
        'version: 1\nrules:\n  - id: keyfile\n    match: { header: { x-route: keyfile } }\n    actions: [ { route_to: { provider: vertex-keyfile, fallback: [ anthropic ] } } ]\n  - id: vertex\n    actions: [ { route_to: { provider: vertex } } ]\n',
    },
  });
});
after(async () => {
  await gw.gw.close();
  await vertex.close();
  await metadata.close();
  await anthropic.close();
});

const client = (headers: Record<string, string> = {}) => new Anthropic({ baseURL: gw.gw.url, apiKey: 'sk-ant-client-key-never-to-google', maxRetries: 0, defaultHeaders: headers });

describe('the fake speaks Vertex AI', () => {
  test("Anthropic's own Vertex SDK, with a token from the same metadata server, gets its answers from the fake", async () => {
    const sdk = new AnthropicVertex({ baseURL: `${vertex.url}/v1`, region: REGION, projectId: PROJECT, maxRetries: 0 });
    const msg = await sdk.messages.create({ model: 'claude-sonnet-4-6@20260101', max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] });
    assert.deepEqual(msg.content, [{ type: 'text', text: 'Hello from Vertex' }]);
    const sdkSent = vertex.received.at(-1)!;
    assert.equal(sdkSent.url, `/v1/projects/${PROJECT}/locations/${REGION}/publishers/anthropic/models/claude-sonnet-4-6@20260101:rawPredict`);
    // Anthropic's Vertex SDK puts the client's anthropic-version into the body (and sends no header).
    assert.equal(sdkSent.body.anthropic_version, '2026-10-21');
    assert.equal(sdkSent.headers['anthropic-version'], undefined);
    const streamed = await sdk.messages.stream({ model: 'claude-sonnet-4-6@20260101', max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] }).finalMessage();
    assert.equal((streamed.content[0] as { text: string }).text, 'Hello from Vertex');
    const counted = await sdk.messages.countTokens({ model: 'claude-sonnet-4-6@20260101', messages: [{ role: 'user', content: 'hi' }] });
    assert.equal(counted.input_tokens, 42);
  });
});

describe('requests to Vertex AI', () => {
  test('rawPredict: project, location and model in the path, anthropic_version in the body, a Google bearer token', async () => {
    const msg = await client({ 'anthropic-beta': 'context-1m-2025-08-07' }).messages.create({
      model: 'claude-sonnet-4-6',
      max_tokens: 16,
      system: [{ type: 'text', text: 'Be brief.', cache_control: { type: 'ephemeral' } }],
      messages: [{ role: 'user', content: 'hi' }],
    });
    assert.deepEqual(msg.content, [{ type: 'text', text: 'Hello from Vertex' }]);
    const got = vertex.received.at(-1)!;
    assert.equal(got.url, `/v1/projects/${PROJECT}/locations/${REGION}/publishers/anthropic/models/${encodeURIComponent('claude-sonnet-4-6@20260101')}:rawPredict`);
    assert.equal(got.body.anthropic_version, '2026-10-21', "the client's anthropic-version, as the Vertex SDK sends it");
    assert.equal(got.body.model, undefined);
    assert.deepEqual(got.body.system, [{ type: 'text', text: 'Be brief.', cache_control: { type: 'ephemeral' } }]);
    assert.equal(got.headers['anthropic-beta'], 'context-1m-2025-08-07');
    assert.match(String(got.headers.authorization), /^Bearer ya29\.fake-token-\d+$/);
    assert.equal(got.headers['x-api-key'], undefined, 'the client key never goes to Google');
  });

  test('streamRawPredict: the SSE answer passes through; stream stays in the body', async () => {
    const final = await client()
      .messages.stream({ model: 'claude-sonnet-4-6', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] })
      .finalMessage();
    assert.equal((final.content[0] as { text: string }).text, 'Hello from Vertex');
    const got = vertex.received.at(-1)!;
    assert.match(got.url, /:streamRawPredict$/);
    assert.equal(got.body.stream, true);
  });

  test('count_tokens goes to count-tokens:rawPredict with the model in the body', async () => {
    const r = await client().messages.countTokens({ model: 'claude-sonnet-4-6', messages: [{ role: 'user', content: 'hi' }] });
    assert.equal(r.input_tokens, 42);
    const got = vertex.received.at(-1)!;
    assert.equal(got.url, `/v1/projects/${PROJECT}/locations/${REGION}/publishers/anthropic/models/count-tokens:rawPredict`);
    assert.equal(got.body.model, 'claude-sonnet-4-6@20260101');
    assert.equal(got.body.anthropic_version, '2026-10-21');
  });

  test('an access token about to expire is replaced: each request here carries a newly fetched one', async () => {
    const before = metadata.issued.length;
    await client().messages.create({ model: 'claude-sonnet-4-6', max_tokens: 8, messages: [{ role: 'user', content: 'a' }] });
    const first = String(vertex.received.at(-1)!.headers.authorization);
    await client().messages.create({ model: 'claude-sonnet-4-6', max_tokens: 8, messages: [{ role: 'user', content: 'b' }] });
    const second = String(vertex.received.at(-1)!.headers.authorization);
    assert.notEqual(first, second);
    assert.ok(metadata.issued.length >= before + 2);
  });

  test("a Google error (RESOURCE_EXHAUSTED) becomes Anthropic's 429 rate_limit_error naming the provider, retry-after kept", async () => {
    const r = await request(gw.gw.url + '/v1/messages', {
      method: 'POST',
      headers: { 'content-type': 'application/json' }, // no anthropic-version: the body gets Vertex's own
      body: JSON.stringify({ model: 'quota-exhausted', max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] }),
    });
    assert.equal(r.statusCode, 429);
    assert.equal(r.headers['retry-after'], '7');
    const body = (await r.body.json()) as { error: { type: string; message: string } };
    assert.equal(body.error.type, 'rate_limit_error');
    assert.match(body.error.message, /^provider "vertex" \(Google Vertex AI\) answered 429: RESOURCE_EXHAUSTED: Quota exceeded/);
    assert.equal(vertex.received.at(-1)!.body.anthropic_version, 'vertex-2023-10-16');
  });

  test('credentials that cannot be loaded: the route falls back; the token is never logged', async () => {
    const msg = await client({ 'x-route': 'keyfile' }).messages.create({ model: 'claude-sonnet-4-6', max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] });
    assert.equal(msg.type, 'message');
    const line = gw.logs.lines.find((l) => l.msg === 'provider credentials unavailable');
    assert.match(String(line?.error), /^provider "vertex-keyfile": no usable credentials from google credentials file .*no-such-key\.json: /);
    const text = gw.logs.text();
    for (const t of metadata.issued) assert.ok(!text.includes(t), 'no access token in the log');
  });

  test('/admin/providers shows the credential source and expiry, never the token', async () => {
    const r = (await (await request(gw.gw.url + '/admin/providers')).body.json()) as { providers: Array<{ name: string; credentials?: { source: string; expires_at: string | null } }> };
    const v = r.providers.find((p) => p.name === 'vertex')!;
    assert.equal(v.credentials?.source, 'google application default credentials');
    assert.ok(v.credentials?.expires_at && Date.parse(v.credentials.expires_at) > Date.now());
    assert.ok(!JSON.stringify(r).includes('ya29.'));
  });
});

test("Vertex AI hosts — global, the multi-regions us and eu, and a region — are the ones Anthropic's own Vertex SDK uses", async () => {
  const { vertexBaseUrl } = await import('../src/upstream/providers/vertex/urls.js');
  const saved = process.env.ANTHROPIC_VERTEX_BASE_URL;
  delete process.env.ANTHROPIC_VERTEX_BASE_URL;
  try {
    for (const region of ['global', 'us', 'eu', 'us-east5', 'europe-west1', 'asia-southeast1']) {
      const sdk = new AnthropicVertex({ region, projectId: 'p', accessToken: 't' });
      assert.equal(`${vertexBaseUrl(region)}/v1`, sdk.baseURL, region);
    }
  } finally {
    if (saved !== undefined) process.env.ANTHROPIC_VERTEX_BASE_URL = saved;
  }
});
