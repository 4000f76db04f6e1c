/**
 * The core gateway over real loopback HTTP: the real @anthropic-ai/sdk client → switchyard → a fake
 * Anthropic upstream. Covers routes, streaming without buffering, header and body pass-through,
 * client disconnects, compressed upstream bodies and every error path of the core issue.
 */
import Anthropic from '@anthropic-ai/sdk';
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createServer } from 'node:net';
import { Readable } from 'node:stream';
import { gunzipSync } from 'node:zlib';
import { request } from 'undici';
import { DEFAULT_MAX_BODY_BYTES } from '../src/config-schema.js';
import type { Gateway } from '../src/server/serve.js';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { directEndpoint, requestListener } from '../src/server/app.js';
import type { ProxyDeps } from '../src/server/proxy.js';
import { startFakeUpstream, type FakeUpstream } from './fake-upstream.js';
import { claudeCodeBody, startTestGateway, type LogCapture } from './helpers.js';

let fake: FakeUpstream;
let gw: Gateway;
let logs: LogCapture;
const SECRET_KEY = 'sk-ant-test-PLANTED-SECRET-0001';

const sdk = (headers: Record<string, string> = {}) => new Anthropic({ apiKey: SECRET_KEY, baseURL: gw.url, maxRetries: 0, defaultHeaders: headers });

before(async () => {
  fake = await startFakeUpstream();
  ({ gw, logs } = await startTestGateway({ upstream: fake.url, extraConfig: 'limits: { max_body_bytes: 200000 }\n' }));
});
after(async () => {
  await gw.close();
  await fake.close();
});

const waitFor = async (cond: () => boolean, ms: number, what: string) => {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
};

describe('the direct path of the Messages API', () => {
  test('POST /v1/messages and count_tokens (any query) skip the app; browsers, other methods and paths do not', () => {
    const req = (method: string, url: string, headers: Record<string, string> = {}) => ({ method, url, headers }) as unknown as IncomingMessage;
    assert.equal(directEndpoint(req('POST', '/v1/messages')), 'messages');
    assert.equal(directEndpoint(req('POST', '/v1/messages?beta=true')), 'messages');
    assert.equal(directEndpoint(req('POST', '/v1/messages/count_tokens?beta=true')), 'count_tokens');
    assert.equal(directEndpoint(req('POST', '/v1/messages', { origin: 'https://app.example' })), null, 'CORS headers come from the app');
    assert.equal(directEndpoint(req('HEAD', '/v1/messages')), null);
    assert.equal(directEndpoint(req('OPTIONS', '/v1/messages')), null);
    assert.equal(directEndpoint(req('POST', '/v1/messages/')), null);
    assert.equal(directEndpoint(req('POST', '/v1/messagesX')), null);
    assert.equal(directEndpoint(req('GET', '/v1/models')), null);
  });

  test("an error escaping the pipeline is answered in Anthropic's shape and logged, not left hanging", async () => {
    const sent: { status?: number; body?: string } = {};
    const errors: unknown[] = [];
    const res = {
      headersSent: false,
      destroyed: false,
      writeHead(status: number) {
        sent.status = status;
      },
      end(body: string) {
        sent.body = body;
      },
    } as unknown as ServerResponse;
    const deps = {
      runtime: {
        get current(): never {
          throw new Error('planted');
        },
      },
      log: { error: (o: unknown) => errors.push(o) },
    } as unknown as ProxyDeps;
    requestListener(deps, () => assert.fail('the app must not see it'))({ method: 'POST', url: '/v1/messages', headers: {} } as unknown as IncomingMessage, res);
    await waitFor(() => sent.status !== undefined, 2000, 'the answer');
    assert.equal(sent.status, 500);
    assert.equal(JSON.parse(sent.body!).type, 'error');
    assert.equal(errors.length, 1);
  });
});

describe('routes that never touch an upstream', () => {
  test('HEAD on any path, GET /, /healthz and /readyz answer 200 without an upstream call', async () => {
    const before = fake.received.length;
    for (const p of ['/', '/api/hello', '/v1/messages', '/anything/at/all']) {
      const r = await request(gw.url + p, { method: 'HEAD' });
      assert.equal(r.statusCode, 200, `HEAD ${p}`);
      await r.body.dump();
    }
    for (const p of ['/', '/healthz', '/readyz']) {
      const r = await request(gw.url + p);
      assert.equal(r.statusCode, 200, `GET ${p}`);
      const body = (await r.body.json()) as Record<string, unknown>;
      assert.ok(body.status === 'ok' || body.status === 'ready');
    }
    assert.equal(fake.received.length, before);
  });

  test('unknown paths get 404 in Anthropic error shape', async () => {
    const r = await request(gw.url + '/v2/nope', { method: 'POST', body: '{}' });
    assert.equal(r.statusCode, 404);
    const body = (await r.body.json()) as { type: string; error: { type: string; message: string } };
    assert.equal(body.type, 'error');
    assert.equal(body.error.type, 'not_found_error');
    assert.match(body.error.message, /POST \/v2\/nope/);
  });
});

describe('Messages API through the real SDK', () => {
  test('non-streaming create returns the upstream message', async () => {
    const msg = await sdk().messages.create({ model: 'claude-sonnet-4-6', max_tokens: 100, messages: [{ role: 'user', content: 'hi' }] });
    assert.equal(msg.type, 'message');
    assert.deepEqual(msg.content, [{ type: 'text', text: 'Hello from the fake upstream.' }]);
    assert.equal(msg.usage.input_tokens, 25);
  });

  test('streaming: the SDK accumulates the same message; ping and comment lines pass through', async () => {
    const stream = sdk().messages.stream({ model: 'claude-sonnet-4-6', max_tokens: 100, messages: [{ role: 'user', content: 'hi' }] });
    const final = await stream.finalMessage();
    assert.equal((final.content[0] as { text: string }).text, 'Hello from the fake upstream.');
    assert.equal(final.stop_reason, 'end_turn');

    const raw = await request(gw.url + '/v1/messages', {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': SECRET_KEY, 'anthropic-version': '2023-06-01' },
      body: JSON.stringify({ model: 'm', max_tokens: 5, stream: true, messages: [{ role: 'user', content: 'hi' }] }),
    });
    assert.equal(raw.headers['cache-control'], 'no-cache, no-transform');
    assert.equal(raw.headers['x-accel-buffering'], 'no');
    assert.match(String(raw.headers['content-type']), /^text\/event-stream/);
    const text = await raw.body.text();
    assert.match(text, /^: a comment line the gateway must pass through$/m);
    assert.match(text, /^event: ping$/m);
    assert.match(text, /^event: message_stop$/m);
  });

  test('the first SSE event reaches the client before the upstream sends the second', async () => {
    const stream = await sdk({ 'x-fake': 'gated-sse' }).messages.create({ model: 'claude-sonnet-4-6', max_tokens: 100, stream: true, messages: [{ role: 'user', content: 'hi' }] });
    const it = stream[Symbol.asyncIterator]();
    // If the gateway buffered, this would never resolve: the upstream holds everything after event 1.
    const first = await Promise.race([it.next(), new Promise<never>((_, rej) => setTimeout(() => rej(new Error('first event was held back by the gateway')), 5000))]);
    assert.equal((first.value as { type: string }).type, 'message_start');
    fake.release();
    const types: string[] = [];
    for (let r = await it.next(); !r.done; r = await it.next()) types.push((r.value as { type: string }).type);
    assert.equal(types.at(-1), 'message_stop');
  });

  test('a tool round trip (tool_use then tool_result), streaming and not', async () => {
    const client = sdk({ 'x-fake': 'tool' });
    const tools = [{ name: 'get_weather', description: 'Weather for a city', input_schema: { type: 'object' as const, properties: { city: { type: 'string' } } } }];
    for (const streaming of [false, true]) {
      const first = streaming
        ? await client.messages.stream({ model: 'claude-sonnet-4-6', max_tokens: 200, tools, messages: [{ role: 'user', content: 'Weather in Paris?' }] }).finalMessage()
        : await client.messages.create({ model: 'claude-sonnet-4-6', max_tokens: 200, tools, messages: [{ role: 'user', content: 'Weather in Paris?' }] });
      assert.equal(first.stop_reason, 'tool_use');
      const toolUse = first.content.find((b) => b.type === 'tool_use');
      assert.ok(toolUse && toolUse.type === 'tool_use');
      assert.deepEqual(toolUse.input, { city: 'Paris', unit: 'celsius' });
      const messages: Anthropic.MessageParam[] = [
        { role: 'user', content: 'Weather in Paris?' },
        { role: 'assistant', content: first.content },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: toolUse.id, content: '18°C, sunny' }] },
      ];
      const second = streaming
        ? await client.messages.stream({ model: 'claude-sonnet-4-6', max_tokens: 200, tools, messages }).finalMessage()
        : await client.messages.create({ model: 'claude-sonnet-4-6', max_tokens: 200, tools, messages });
      assert.equal(second.stop_reason, 'end_turn');
      const sent = JSON.parse(fake.received.at(-1)!.body.toString()) as { messages: Array<{ content: Array<{ type: string; tool_use_id?: string }> }> };
      assert.equal(sent.messages[2]!.content[0]!.type, 'tool_result');
      assert.equal(sent.messages[2]!.content[0]!.tool_use_id, toolUse.id);
    }
  });

  test('count_tokens and models pass through', async () => {
    const count = await sdk().messages.countTokens({ model: 'claude-sonnet-4-6', messages: [{ role: 'user', content: 'hello there' }] });
    assert.ok(count.input_tokens > 0);
    assert.equal(fake.received.at(-1)!.url, '/v1/messages/count_tokens');
    const models = await sdk().models.list();
    assert.equal(models.data[0]!.id, 'claude-sonnet-4-6');
  });
});

describe('pass-through fidelity', () => {
  test('headers, query string and a 76 KB Claude-Code-shaped body arrive upstream unchanged', async () => {
    const bytes = Buffer.from(JSON.stringify(claudeCodeBody({ targetBytes: 76_000, stream: false })));
    assert.ok(bytes.length > 70_000 && bytes.length < 80_000, `body is ${bytes.length} bytes`);
    const headers = {
      'content-type': 'application/json',
      'anthropic-version': '2023-06-01',
      'anthropic-beta': 'claude-code-20250219,interleaved-thinking-2025-05-14,context-management-2025-06-27,some-future-beta-2099-01-01',
      'x-claude-code-session-id': '3f1c2d4e-0000-4000-8000-000000000001',
      'x-claude-code-agent-id': 'agent-7',
      'x-app': 'cli',
      'x-stainless-retry-count': '0',
      'user-agent': 'claude-cli/2.1.0 (external, sdk-cli)',
      'x-api-key': SECRET_KEY,
    };
    const r = await request(gw.url + '/v1/messages?beta=true', { method: 'POST', headers, body: bytes });
    assert.equal(r.statusCode, 200);
    await r.body.dump();
    const got = fake.received.at(-1)!;
    assert.equal(got.url, '/v1/messages?beta=true');
    assert.ok(got.body.equals(bytes), 'body bytes differ');
    for (const [k, v] of Object.entries(headers)) assert.equal(got.headers[k], v, `header ${k}`);
    assert.equal(got.headers['content-length'], String(bytes.length));
    const parsed = JSON.parse(got.body.toString()) as Record<string, unknown>;
    assert.deepEqual(parsed.an_unknown_future_field, { keep: ['me', 1, true, null] });
  });

  test('Authorization: Bearer is forwarded in transparent mode', async () => {
    const r = await request(gw.url + '/v1/messages', {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer tok-123' },
      body: JSON.stringify({ model: 'm', max_tokens: 5, messages: [] }),
    });
    await r.body.dump();
    assert.equal(fake.received.at(-1)!.headers.authorization, 'Bearer tok-123');
  });

  test('gzip upstream bodies reach the client intact', async () => {
    const msg = await sdk({ 'x-fake': 'gzip' }).messages.create({ model: 'claude-sonnet-4-6', max_tokens: 100, messages: [{ role: 'user', content: 'hi' }] });
    assert.equal((msg.content[0] as { text: string }).text, 'Hello from the fake upstream.');
    const raw = await request(gw.url + '/v1/messages', {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'accept-encoding': 'gzip', 'x-fake': 'gzip' },
      body: JSON.stringify({ model: 'm', max_tokens: 5, messages: [] }),
    });
    assert.equal(raw.headers['content-encoding'], 'gzip');
    const gz = Buffer.from(await raw.body.arrayBuffer());
    assert.equal(Number(raw.headers['content-length']), gz.length);
    assert.equal((JSON.parse(gunzipSync(gz).toString()) as { type: string }).type, 'message');
  });

  test('upstream 429 and 529 pass through with status, headers and body unchanged', async () => {
    for (const code of [429, 529, 500, 400]) {
      const r = await request(gw.url + '/v1/messages', {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-fake': `status:${code}` },
        body: JSON.stringify({ model: 'm', max_tokens: 5, messages: [] }),
      });
      assert.equal(r.statusCode, code);
      const body = (await r.body.json()) as { error: { message: string }; request_id: string };
      assert.equal(body.error.message, `fake upstream says ${code}`);
      assert.equal(body.request_id, 'req_fake_err');
      assert.equal(r.headers['request-id'], 'req_fake_err');
      if (code === 429) assert.equal(r.headers['retry-after'], '17');
    }
  });
});

describe('client disconnects', () => {
  test('a client disconnect aborts the upstream request and closes its socket', async () => {
    const ac = new AbortController();
    const r = await request(gw.url + '/v1/messages', {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-fake': 'slow-sse' },
      body: JSON.stringify({ model: 'm', max_tokens: 5, stream: true, messages: [] }),
      signal: ac.signal,
    });
    const rec = fake.received.at(-1)!;
    await new Promise<void>((resolve) => r.body.once('data', () => resolve()));
    const t0 = performance.now();
    ac.abort();
    r.body.on('error', () => {});
    await waitFor(() => rec.closedEarlyAt !== null, 2000, 'the upstream to see its request closed');
    const ms = rec.closedEarlyAt! - t0;
    // The target is 100 ms; allow slack for a loaded CI machine.
    assert.ok(ms < 500, `upstream saw the close after ${ms.toFixed(1)} ms`);
    await waitFor(() => logs.lines.some((l) => l.outcome === 'client_aborted'), 2000, 'the request log line');
  });
});

describe('gateway errors', () => {
  test('malformed JSON gets 400 invalid_request_error and nothing is forwarded', async () => {
    const before = fake.received.length;
    for (const body of ['{"model": "x", ', '[1,2,3]', '"a string"', '']) {
      const r = await request(gw.url + '/v1/messages', { method: 'POST', headers: { 'content-type': 'application/json' }, body });
      assert.equal(r.statusCode, 400, `body ${JSON.stringify(body)}`);
      const json = (await r.body.json()) as { type: string; error: { type: string; message: string } };
      assert.equal(json.type, 'error');
      assert.equal(json.error.type, 'invalid_request_error');
    }
    assert.equal(fake.received.length, before);
  });

  test('a body over the limit gets 413 request_too_large, with or without content-length', async () => {
    const big = Buffer.alloc(250_000, 'a');
    const r = await request(gw.url + '/v1/messages', { method: 'POST', headers: { 'content-type': 'application/json' }, body: big });
    assert.equal(r.statusCode, 413);
    const json = (await r.body.json()) as { error: { type: string; message: string } };
    assert.equal(json.error.type, 'request_too_large');
    assert.match(json.error.message, /200000 bytes/);
    async function* chunks() {
      for (let i = 0; i < 5; i++) yield Buffer.alloc(60_000, 'b');
    }
    const r2 = await request(gw.url + '/v1/messages', { method: 'POST', headers: { 'content-type': 'application/json' }, body: Readable.from(chunks()) });
    assert.equal(r2.statusCode, 413);
    await r2.body.dump();
    assert.equal(DEFAULT_MAX_BODY_BYTES, 32 * 1024 * 1024);
  });

  test('an upstream that refuses connections gives 502 naming the provider and URL', async () => {
    const port = await new Promise<number>((resolve) => {
      const s = createServer();
      s.listen(0, '127.0.0.1', () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
    const dead = await startTestGateway({ upstream: `http://127.0.0.1:${port}` });
    try {
      const err = await new Anthropic({ apiKey: 'k', baseURL: dead.gw.url, maxRetries: 0 }).messages
        .create({ model: 'claude-sonnet-4-6', max_tokens: 5, messages: [{ role: 'user', content: 'hi' }] })
        .catch((e: unknown) => e);
      assert.ok(err instanceof Anthropic.APIError);
      assert.equal(err.status, 502);
      const body = err.error as { type: string; error: { type: string; message: string } };
      assert.equal(body.error.type, 'api_error');
      assert.match(body.error.message, /provider "anthropic"/);
      assert.match(body.error.message, new RegExp(`POST http://127\\.0\\.0\\.1:${port}/v1/messages`));
      assert.match(body.error.message, /connection refused/);
    } finally {
      await dead.gw.close();
    }
  });
});

describe('logs', () => {
  test('one line per request with the documented fields; no credentials or bodies', async () => {
    const marker = 'PLANTED-PROMPT-STRING-42';
    await sdk({ 'x-claude-code-session-id': 'sess-log-1', 'x-claude-code-agent-id': 'agent-log-1' }).messages.create({
      model: 'claude-sonnet-4-6',
      max_tokens: 10,
      messages: [{ role: 'user', content: marker }],
    });
    const line = logs.lines.findLast((l) => l.msg === 'request' && l.session_id === 'sess-log-1');
    assert.ok(line, 'request log line');
    for (const field of ['method', 'path', 'status', 'model', 'upstream', 'latency_ms', 'request_id', 'agent_id']) assert.ok(field in line, `log has ${field}`);
    assert.equal(line.agent_id, 'agent-log-1');
    assert.equal(line.status, 200);
    assert.ok(!logs.text().includes(SECRET_KEY), 'the API key appears in the logs');
    assert.ok(!logs.text().includes(marker), 'the prompt appears in the logs');
  });
});
