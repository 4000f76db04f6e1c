/**
 * Wire details a proxy gets wrong without noticing (issue 35): SSE events separated by CRLF pass whole and are counted;
 * the response headers reach the client before the upstream's first event; a body no rule changed is forwarded byte
 * for byte; CORS answers say `Vary: Origin` — allowed origin or not, and merged with the upstream's own `Vary`.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { request } from 'undici';
import { startFakeUpstream, type FakeUpstream } from './fake-upstream.js';
import { startTestGateway, until } from './helpers.js';

let fake: FakeUpstream;
let g: Awaited<ReturnType<typeof startTestGateway>>;
const ALLOWED = 'https://app.example.com';
before(async () => {
  fake = await startFakeUpstream();
  g = await startTestGateway({ upstream: fake.url, extraConfig: `cors: { origins: [ "${ALLOWED}" ] }\n` });
});
after(async () => {
  await g?.gw.close();
  await fake?.close();
});

const headers = { 'content-type': 'application/json', 'anthropic-version': '2023-06-01', 'x-api-key': 'sk-ant-client' };
const body = (stream: boolean) => JSON.stringify({ model: 'claude-sonnet-4-6', max_tokens: 16, stream, messages: [{ role: 'user', content: 'hi' }] });

describe('SSE framing', () => {
  test('events separated by CRLF, arriving in 7-byte pieces, reach the client whole and their usage is counted', async () => {
    const r = await request(`${g.gw.url}/v1/messages`, { method: 'POST', headers: { ...headers, 'x-fake': 'crlf-sse' }, body: body(true) });
    assert.equal(r.statusCode, 200);
    const text = await r.body.text();
    assert.ok(text.includes('event: message_stop\r\n'), 'the stream is passed on as the upstream framed it');
    assert.ok(!text.includes('event: error'), 'no error event appended: the last event ended on a CRLF boundary');
    const id = String(r.headers['x-switchyard-request-id']);
    await until(() => g.logs.lines.some((l) => l.request_id === id && l.msg === 'request'));
    const line = g.logs.lines.find((l) => l.request_id === id && l.msg === 'request')!;
    assert.equal(line.outcome, 'ok');
    const ledger = g.gw.deps.ledger!;
    await ledger.flush();
    const record = (await ledger.store.query(new Date(Date.now() - 60_000).toISOString(), new Date(Date.now() + 1000).toISOString())).find((x) => x.request_id === id);
    assert.ok(record && record.input_tokens > 0 && record.output_tokens > 0, `usage read from CRLF-framed events: ${JSON.stringify(record)}`);
  });

  test("the response headers reach the client before the upstream's first event", async () => {
    const r = await request(`${g.gw.url}/v1/messages`, { method: 'POST', headers: { ...headers, 'x-fake': 'gated-headers' }, body: body(true) });
    // request() resolves on the headers: the upstream has not sent an event yet (it waits for release()).
    assert.equal(r.statusCode, 200);
    assert.match(String(r.headers['content-type']), /text\/event-stream/);
    fake.release();
    assert.match(await r.body.text(), /event: message_stop/);
  });
});

test('a body no rule changed is forwarded byte for byte (whitespace, key order, escapes, unknown fields)', async () => {
  const raw = '{ "max_tokens":16,\n\t"model" : "claude-sonnet-4-6", "messages":[{"role":"user","content":"caf\\u00e9 \\"q\\" \u{1F600}"}],\r\n "x_unknown": [1.50, 2e3, null] }';
  const r = await request(`${g.gw.url}/v1/messages`, { method: 'POST', headers: { ...headers, 'x-fake': 'nothing' }, body: raw });
  assert.equal(r.statusCode, 200);
  await r.body.dump();
  const sent = fake.received.at(-1)!;
  assert.equal(sent.body.toString('utf8'), raw);
  assert.equal(Number(sent.headers['content-length']), Buffer.byteLength(raw));
});

describe('CORS and caches', () => {
  const varyOf = (h: Record<string, unknown>) =>
    String(h.vary ?? '')
      .split(',')
      .map((v) => v.trim().toLowerCase());

  test('an allowed origin gets its CORS headers and Vary: Origin, merged with the upstream Vary', async () => {
    const r = await request(`${g.gw.url}/v1/messages`, { method: 'POST', headers: { ...headers, origin: ALLOWED, 'x-fake': 'vary' }, body: body(false) });
    assert.equal(r.statusCode, 200);
    await r.body.dump();
    assert.equal(r.headers['access-control-allow-origin'], ALLOWED);
    assert.ok(varyOf(r.headers).includes('origin'), `vary: ${r.headers.vary}`);
    assert.ok(varyOf(r.headers).includes('accept-encoding'), `the upstream's Vary is kept: ${r.headers.vary}`);
  });

  test('an origin not allowed gets no CORS headers, and still Vary: Origin (a shared cache must not serve it to the other)', async () => {
    const r = await request(`${g.gw.url}/v1/messages`, { method: 'POST', headers: { ...headers, origin: 'https://evil.example.net' }, body: body(false) });
    await r.body.dump();
    assert.equal(r.headers['access-control-allow-origin'], undefined);
    assert.ok(varyOf(r.headers).includes('origin'), `vary: ${r.headers.vary}`);
  });

  test('a preflight says Vary: Origin too', async () => {
    const r = await request(`${g.gw.url}/v1/messages`, {
      method: 'OPTIONS',
      headers: { origin: ALLOWED, 'access-control-request-method': 'POST', 'access-control-request-headers': 'x-api-key, content-type' },
    });
    await r.body.dump();
    assert.equal(r.statusCode, 204);
    assert.ok(varyOf(r.headers).includes('origin'), `vary: ${r.headers.vary}`);
    assert.equal(r.headers['access-control-allow-headers'], 'x-api-key, content-type');
  });
});
