/**
 * Fault isolation, upstream side (issue 12): client hang-ups never open the circuit; a stream cut by the
 * upstream or by shutdown ends with an SSE `event: error` after the last whole event; a streaming request
 * has its own first-byte bound; huge upstream error bodies are not held; a failed request records every
 * attempt.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { request } from 'undici';
import { startFakeUpstream, type FakeUpstream } from './fake-upstream.js';
import { startTestGateway, until, type LogCapture } from './helpers.js';

let fake: FakeUpstream;
before(async () => {
  fake = await startFakeUpstream();
});
after(() => fake.close());

const provider = (extra = '') =>
  `  anthropic:\n    type: anthropic\n    base_url: ${fake.url}\n    timeouts: { connect_ms: 1000, headers_ms: 5000, first_byte_ms: 5000, body_ms: 5000 }\n    retries: { max: 0 }\n    breaker: { failures: 5, cooldown_ms: 60000 }\n${extra}`;
const body = (stream: boolean) => JSON.stringify({ model: 'claude-sonnet-4-6', max_tokens: 5, stream, messages: [{ role: 'user', content: 'hi' }] });
const send = (url: string, opts: { fake?: string; stream?: boolean; signal?: AbortSignal } = {}) =>
  request(url + '/v1/messages', {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(opts.fake ? { 'x-fake': opts.fake } : {}) },
    body: body(opts.stream ?? false),
    signal: opts.signal,
  });
const requestLines = (logs: LogCapture) => logs.lines.filter((l) => l.msg === 'request');

/** The SSE events of a body: event names and parsed data, in order. */
function events(text: string): Array<{ event: string; data: string }> {
  return text
    .split('\n\n')
    .filter((e) => e.includes('event:'))
    .map((e) => ({ event: /^event: (.*)$/m.exec(e)![1]!, data: /^data: (.*)$/m.exec(e)?.[1] ?? '' }));
}

describe('circuit breaker counts only upstream faults', () => {
  test('50 clients hanging up while the upstream thinks leave the circuit closed; the next request gets 200', async () => {
    const { gw, logs } = await startTestGateway({ upstream: fake.url, providers: provider() });
    try {
      // 50 concurrent, then 10 one after another: both shapes opened the circuit before the fix.
      const hangUp = async () => {
        const ac = new AbortController();
        const p = send(gw.url, { fake: 'hang', signal: ac.signal }).catch((e: Error) => e);
        const seen = fake.received.length;
        await until(() => fake.received.length > seen);
        ac.abort();
        return p;
      };
      await Promise.all(
        Array.from({ length: 50 }, () => {
          const ac = new AbortController();
          setTimeout(() => ac.abort(), 150);
          return send(gw.url, { fake: 'hang', signal: ac.signal }).catch((e: Error) => e);
        }),
      );
      for (let i = 0; i < 10; i++) await hangUp();
      await until(() => requestLines(logs).length >= 60);
      const ok = await send(gw.url);
      assert.equal(ok.statusCode, 200);
      await ok.body.dump();
      const ready = (await (await request(gw.url + '/readyz')).body.json()) as { circuits: Record<string, string> };
      assert.equal(ready.circuits.anthropic, 'closed');
      assert.ok(
        requestLines(logs)
          .slice(0, 60)
          .every((l) => l.outcome === 'client_aborted'),
        'hang-ups are recorded as client aborts',
      );
    } finally {
      await gw.close();
    }
  });

  test('five upstream faults in a row (connection reset) still open it', async () => {
    const { gw } = await startTestGateway({ upstream: fake.url, providers: provider() });
    try {
      for (let i = 0; i < 5; i++) {
        const r = await send(gw.url, { fake: 'reset' });
        assert.equal(r.statusCode, 502);
        await r.body.dump();
      }
      const r = await send(gw.url);
      assert.equal(r.statusCode, 503);
      assert.match(((await r.body.json()) as { error: { message: string } }).error.message, /circuit open/);
    } finally {
      await gw.close();
    }
  });

  test('4xx answers do not count', async () => {
    const { gw } = await startTestGateway({ upstream: fake.url, providers: provider() });
    try {
      for (let i = 0; i < 8; i++) {
        const r = await send(gw.url, { fake: 'status:400' });
        assert.equal(r.statusCode, 400);
        await r.body.dump();
      }
      const r = await send(gw.url);
      assert.equal(r.statusCode, 200);
      await r.body.dump();
    } finally {
      await gw.close();
    }
  });
});

describe('interrupted streams end with an SSE error event', () => {
  test('an upstream that closes mid-event: the client gets the whole events, then event: error (api_error), never half an event', async () => {
    const { gw, logs } = await startTestGateway({ upstream: fake.url, providers: provider() });
    try {
      const r = await send(gw.url, { fake: 'truncate-sse', stream: true });
      assert.equal(r.statusCode, 200);
      const text = await r.body.text();
      const evs = events(text);
      assert.deepEqual(
        evs.map((e) => e.event),
        ['message_start', 'content_block_start', 'error'],
      );
      const err = JSON.parse(evs[2]!.data) as { type: string; error: { type: string; message: string } };
      assert.equal(err.type, 'error');
      assert.equal(err.error.type, 'api_error');
      assert.match(err.error.message, /middle of an event|stream failed/);
      assert.ok(text.endsWith('\n\n'), 'the answer ends on an event boundary');
      for (const e of evs) JSON.parse(e.data); // every event forwarded is whole
      await until(() => requestLines(logs).length === 1);
      assert.equal(requestLines(logs)[0]!.outcome, 'upstream_failed');
    } finally {
      await gw.close();
    }
  });

  test('a stream still open when the shutdown grace ends gets event: error (overloaded_error) before the connection closes', async () => {
    const { gw } = await startTestGateway({ upstream: fake.url, providers: provider(), extraConfig: '' });
    const r = await send(gw.url, { fake: 'slow-sse', stream: true });
    assert.equal(r.statusCode, 200);
    let got = '';
    r.body.on('data', (c: Buffer) => (got += c.toString()));
    const ended = new Promise((res) => r.body.once('end', res));
    await until(() => got.includes('message_start'), 5000, 'the stream open');
    const closed = gw.close(); // grace_ms is 2000 in the test config
    await ended;
    await closed;
    const evs = events(got);
    assert.equal(evs[0]!.event, 'message_start');
    assert.equal(evs.at(-1)!.event, 'error');
    const err = JSON.parse(evs.at(-1)!.data) as { error: { type: string; message: string } };
    assert.equal(err.error.type, 'overloaded_error');
    assert.match(err.error.message, /shutting down/);
  });
});

describe('upstream bounds', () => {
  test('a streaming request waits first_byte_ms for the stream to open, not headers_ms', async () => {
    const providers = provider().replace('headers_ms: 5000, first_byte_ms: 5000', 'headers_ms: 60000, first_byte_ms: 300');
    const { gw } = await startTestGateway({ upstream: fake.url, providers });
    try {
      const t0 = performance.now();
      const r = await send(gw.url, { fake: 'hang', stream: true });
      const ms = performance.now() - t0;
      assert.equal(r.statusCode, 504);
      const err = (await r.body.json()) as { error: { message: string } };
      assert.match(err.error.message, /no first byte within 300 ms \(timeouts\.first_byte_ms\)/);
      assert.ok(ms < 30_000, `answered after ${ms} ms, well before headers_ms`);
    } finally {
      await gw.close();
    }
  });

  test('a 20 MB upstream error body is not held: the client gets a short Anthropic-shaped error naming the provider', async () => {
    const providers = provider().replace('retries: { max: 0 }', 'retries: { max: 1, base_delay_ms: 1, max_delay_ms: 2 }');
    const { gw, logs } = await startTestGateway({ upstream: fake.url, providers });
    try {
      const r = await send(gw.url, { fake: 'huge-error:20' });
      assert.equal(r.statusCode, 500);
      const text = await r.body.text();
      assert.ok(text.length < 1000, `body of ${text.length} bytes`);
      const err = JSON.parse(text) as { type: string; error: { type: string; message: string } };
      assert.equal(err.error.type, 'api_error');
      assert.match(err.error.message, /provider "anthropic" answered 500 with an error body over 65536 bytes/);
      await until(() => requestLines(logs).length === 1);
      assert.equal(requestLines(logs)[0]!.retries, 1, 'both attempts are counted');
    } finally {
      await gw.close();
    }
  });

  test('a request that fails on every attempt records every attempt', async () => {
    const providers = provider().replace('retries: { max: 0 }', 'retries: { max: 2, base_delay_ms: 1, max_delay_ms: 2 }').replace('failures: 5', 'failures: 100');
    const { gw, logs } = await startTestGateway({ upstream: fake.url, providers, extraConfig: 'ledger: off\n' });
    try {
      const seen = fake.received.length;
      const r = await send(gw.url, { fake: 'reset' });
      assert.equal(r.statusCode, 502);
      await r.body.dump();
      assert.equal(fake.received.length - seen, 3);
      await until(() => requestLines(logs).length === 1);
      assert.equal(requestLines(logs)[0]!.retries, 2);
    } finally {
      await gw.close();
    }
  });
});

describe('throttles and budgets across refusals and restarts', () => {
  test('an upstream 529 or 429 before the first byte gives the throttle tokens back', async () => {
    const rules = { '10.yaml': 'version: 1\nrules:\n  - id: two-per-minute\n    actions:\n      - throttle: { scope: global, requests_per_minute: 2, burst: 1 }\n' };
    const { gw } = await startTestGateway({ upstream: fake.url, providers: provider(), rules, extraConfig: 'ledger: off\n' });
    try {
      for (const f of ['status:529', 'status:429', 'status:529']) {
        const r = await send(gw.url, { fake: f });
        assert.equal(r.statusCode, Number(f.slice(7)));
        await r.body.dump();
      }
      const statuses: number[] = [];
      for (let i = 0; i < 3; i++) {
        const r = await send(gw.url);
        statuses.push(r.statusCode);
        await r.body.dump();
      }
      assert.deepEqual(statuses, [200, 200, 429], 'the refused attempts did not spend the two requests of the minute');
    } finally {
      await gw.close();
    }
  });

  test('a later throttle refusing gives back the tokens and the concurrency slot an earlier one took', async () => {
    const rules = {
      '10.yaml':
        'version: 1\nrules:\n' +
        '  - id: slots\n    actions: [ { throttle: { scope: global, concurrent: 1, requests_per_minute: 3, burst: 1 } } ]\n' +
        '  - id: tight\n    match: { header: { x-tight: "*" } }\n    actions: [ { throttle: { scope: global, requests_per_minute: 1, burst: 1 } } ]\n',
    };
    const { gw } = await startTestGateway({ upstream: fake.url, providers: provider(), rules, extraConfig: 'ledger: off\n' });
    try {
      const first = await request(gw.url + '/v1/messages', { method: 'POST', headers: { 'content-type': 'application/json', 'x-tight': '1' }, body: body(false) });
      assert.equal(first.statusCode, 200);
      await first.body.dump();
      for (let i = 0; i < 3; i++) {
        const r = await request(gw.url + '/v1/messages', { method: 'POST', headers: { 'content-type': 'application/json', 'x-tight': '1' }, body: body(false) });
        assert.equal(r.statusCode, 429);
        assert.match(((await r.body.json()) as { error: { message: string } }).error.message, /rule "tight"/);
      }
      // "slots" allows 3 a minute and 1 at a time: had the refused requests kept their token or slot, these would fail.
      const ok = await send(gw.url);
      assert.equal(ok.statusCode, 200);
      await ok.body.dump();
      const ok2 = await send(gw.url);
      assert.equal(ok2.statusCode, 200);
      await ok2.body.dump();
    } finally {
      await gw.close();
    }
  });

  test('a spent budget stays spent after a restart (spend recomputed from the ledger)', async () => {
    const rules = { '10.yaml': 'version: 1\nrules:\n  - id: tiny\n    actions:\n      - budget: { scope: global, usd: 0.0002, per: day }\n' };
    const dir = `/tmp/switchyard-budget-${process.pid}-${Date.now()}`;
    const extraConfig = `ledger: { sqlite: "${dir}/usage.db", flush_interval_ms: 50 }\n`;
    const { writeConfig } = await import('./helpers.js');
    const { configFile } = writeConfig({ upstream: fake.url, providers: provider(), rules, extraConfig });
    const { startGateway } = await import('../src/server/serve.js');
    const { createLogger } = await import('../src/log.js');
    const { LogCapture } = await import('./helpers.js');
    const start = () => startGateway({ configFile, watch: false, logger: createLogger({ level: 'info', destination: new LogCapture() }) });
    let gw = await start();
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 6; i++) {
        const r = await send(gw.url);
        statuses.push(r.statusCode);
        await r.body.dump();
      }
      assert.ok(statuses.includes(429), `the budget was spent: ${statuses.join(',')}`);
    } finally {
      await gw.close();
    }
    gw = await start();
    try {
      const r = await send(gw.url);
      assert.equal(r.statusCode, 429, 'still refused after the restart');
      assert.equal(r.headers['x-should-retry'], 'false');
      assert.match(((await r.body.json()) as { error: { message: string } }).error.message, /budget "tiny" of \$0\.0002 per day for global "\*" is spent/);
    } finally {
      await gw.close();
    }
  });
});

describe('memory in flight is capped', () => {
  const big = (mb: number) => JSON.stringify({ model: 'claude-sonnet-4-6', max_tokens: 5, messages: [{ role: 'user', content: 'x'.repeat(mb * 1024 * 1024) }] });

  test('over limits.max_inflight_body_bytes a request gets 529 overloaded_error with retry-after, before its body is read; per client too', async () => {
    const extraConfig = `limits: { max_inflight_body_bytes: ${40 * 1024 * 1024}, max_inflight_body_bytes_per_client: ${25 * 1024 * 1024} }\nledger: off\n`;
    const { gw } = await startTestGateway({ upstream: fake.url, providers: provider(), extraConfig });
    const ac = new AbortController();
    try {
      const payload = big(15);
      const seen = fake.received.length;
      const holding = ['alice', 'bob'].map((key) =>
        request(gw.url + '/v1/messages', { method: 'POST', headers: { 'content-type': 'application/json', 'x-fake': 'hang', 'x-api-key': key }, body: payload, signal: ac.signal }).catch(
          (e: Error) => e,
        ),
      );
      await until(() => fake.received.length >= seen + 2, 10_000); // both bodies read and forwarded: 30 MB held
      const third = await request(gw.url + '/v1/messages', { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': 'carol' }, body: payload });
      assert.equal(third.statusCode, 529);
      assert.equal(third.headers['retry-after'], '1');
      const err = (await third.body.json()) as { error: { type: string; message: string } };
      assert.equal(err.error.type, 'overloaded_error');
      assert.match(err.error.message, /holding 30 MB of request bodies, its limit is 40 MB \(limits\.max_inflight_body_bytes\)/);
      assert.equal(fake.received.length, seen + 2, 'the refused body never went upstream');
      const perClient = await request(gw.url + '/v1/messages', { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': 'alice' }, body: big(12) });
      assert.equal(perClient.statusCode, 529);
      assert.match(((await perClient.body.json()) as { error: { message: string } }).error.message, /this client has 15 MB .* \(limits\.max_inflight_body_bytes_per_client\)/);
      ac.abort();
      await Promise.all(holding);
      await until(async () => {
        const r = await request(gw.url + '/v1/messages', { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': 'carol' }, body: big(1) });
        await r.body.dump();
        return r.statusCode === 200;
      }, 10_000);
    } finally {
      ac.abort();
      await gw.close();
    }
  });
});
