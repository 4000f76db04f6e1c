/**
 * A fake Anthropic upstream on 127.0.0.1 for tests and benchmarks. It answers the Messages API in
 * Anthropic's wire format (JSON and SSE), records every request it receives, and misbehaves on demand
 * through the `x-fake` request header:
 *   json (default when stream is false) | sse (default when stream is true) | gzip | status:<code> |
 *   hang | gated-sse (sends the first event, then waits for release()) | slow-sse (an event every 20 ms,
 *   for ~10 s) | tool (answers with a tool_use block unless the last user turn holds a tool_result) |
 *   noretry:<code> (that status with `x-should-retry: false`) | reset (destroys the connection unanswered) |
 *   truncate-sse (two events and half of a third, then the connection is destroyed) |
 *   cut-sse (two whole events, then a clean end of the response: no message_stop) |
 *   huge-error:<MB> (status 500 with an error body of that many MB, streamed) |
 *   slow-headers:<ms> (waits that long, then answers as usual).
 * Upstream keys can misbehave too, by their name: `k-status-<code>...` always answers that status,
 * `k-once-<code>...` answers it the first time that key is seen, `k-hang...` never answers.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';

/** One request as the fake upstream received it. */
export interface Received {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: Buffer;
  /** performance.now() when the upstream saw the request socket close early (client gone), else null. */
  closedEarlyAt: number | null;
}

export interface FakeUpstream {
  url: string;
  received: Received[];
  /** Lets a `gated-sse` response continue past its first event. */
  release(): void;
  close(): Promise<void>;
  server: Server;
}

const sse = (event: string, data: unknown) => `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;

/** A complete non-streaming Messages answer. */
export function messageJson(model: string, content: unknown[], stopReason = 'end_turn'): Record<string, unknown> {
  return {
    id: 'msg_fake_0001',
    type: 'message',
    role: 'assistant',
    model,
    content,
    stop_reason: stopReason,
    stop_sequence: null,
    usage: { input_tokens: 25, output_tokens: 7, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 },
  };
}

/** The SSE events of a streamed text answer, one string per event. */
export function sseTextEvents(model: string, text: string): string[] {
  const parts = text.match(/.{1,6}/gs) ?? [''];
  return [
    sse('message_start', {
      type: 'message_start',
      message: { ...messageJson(model, []), stop_reason: null, usage: { input_tokens: 25, output_tokens: 1, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 } },
    }),
    sse('content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } }),
    ': a comment line the gateway must pass through\n\n',
    sse('ping', { type: 'ping' }),
    ...parts.map((p) => sse('content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: p } })),
    sse('content_block_stop', { type: 'content_block_stop', index: 0 }),
    sse('message_delta', { type: 'message_delta', delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: 7 } }),
    sse('message_stop', { type: 'message_stop' }),
  ];
}

/** The SSE events of a streamed tool_use answer. */
export function sseToolEvents(model: string, name: string, input: Record<string, unknown>): string[] {
  const json = JSON.stringify(input);
  const half = Math.ceil(json.length / 2);
  return [
    sse('message_start', { type: 'message_start', message: { ...messageJson(model, []), stop_reason: null } }),
    sse('content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'tool_use', id: 'toolu_fake_01', name, input: {} } }),
    sse('content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'input_json_delta', partial_json: json.slice(0, half) } }),
    sse('content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'input_json_delta', partial_json: json.slice(half) } }),
    sse('content_block_stop', { type: 'content_block_stop', index: 0 }),
    sse('message_delta', { type: 'message_delta', delta: { stop_reason: 'tool_use', stop_sequence: null }, usage: { output_tokens: 12 } }),
    sse('message_stop', { type: 'message_stop' }),
  ];
}

function lastUserHasToolResult(body: Record<string, unknown>): boolean {
  const messages = (body.messages as Array<{ role: string; content: unknown }>) ?? [];
  const last = messages[messages.length - 1];
  return Array.isArray(last?.content) && last.content.some((b: { type?: string }) => b.type === 'tool_result');
}

/** Starts the fake upstream on a free loopback port. */
export async function startFakeUpstream(): Promise<FakeUpstream> {
  const received: Received[] = [];
  let gate: (() => void) | null = null;
  let gateOpen: Promise<void> = new Promise((r) => (gate = r));

  const seenKeys = new Set<string>();
  const handle = async (req: IncomingMessage, res: ServerResponse, body: Buffer, rec: Received) => {
    const apiKey = String(req.headers['x-api-key'] ?? '');
    const once = /^k-once-(\d+)/.exec(apiKey);
    const firstTime = once !== null && !seenKeys.has(apiKey);
    seenKeys.add(apiKey);
    const scenario =
      String(req.headers['x-fake'] ?? '') ||
      (/^k-status-(\d+)/.exec(apiKey) ? `status:${/^k-status-(\d+)/.exec(apiKey)![1]}` : firstTime ? `status:${once![1]}` : apiKey.startsWith('k-hang') ? 'hang' : '');
    const path = (req.url ?? '').split('?')[0];
    if (req.method === 'GET' && path === '/v1/models') {
      res.writeHead(200, { 'content-type': 'application/json', 'request-id': 'req_fake_models' });
      res.end(
        JSON.stringify({
          data: [{ type: 'model', id: 'claude-sonnet-4-6', display_name: 'Claude Sonnet 4.6', created_at: '2025-09-29T00:00:00Z' }],
          has_more: false,
          first_id: 'claude-sonnet-4-6',
          last_id: 'claude-sonnet-4-6',
        }),
      );
      return;
    }
    const status = /^(status|noretry):(\d+)$/.exec(scenario);
    if (status) {
      const code = Number(status[2]);
      const type = code === 429 ? 'rate_limit_error' : code === 529 ? 'overloaded_error' : code >= 500 ? 'api_error' : 'invalid_request_error';
      const headers: Record<string, string> = { 'content-type': 'application/json', 'request-id': 'req_fake_err' };
      if (code === 429) headers['retry-after'] = '17';
      if (status[1] === 'noretry') headers['x-should-retry'] = 'false';
      res.writeHead(code, headers);
      res.end(JSON.stringify({ type: 'error', error: { type, message: `fake upstream says ${code}` }, request_id: 'req_fake_err' }));
      return;
    }
    if (scenario === 'hang') return; // never answers
    const slowHeaders = /^slow-headers:(\d+)$/.exec(scenario);
    if (slowHeaders) await new Promise((r) => setTimeout(r, Number(slowHeaders[1])));
    if (scenario === 'reset') {
      req.socket.destroy();
      return;
    }
    const huge = /^huge-error:(\d+)$/.exec(scenario);
    if (huge) {
      res.writeHead(500, { 'content-type': 'application/json' });
      const mb = Buffer.alloc(1024 * 1024, 0x20);
      res.write('{"type":"error","error":{"type":"api_error","message":"');
      for (let i = 0; i < Number(huge[1]); i++) if (!res.write(mb)) await new Promise((r) => res.once('drain', r));
      res.end('"}}');
      return;
    }
    let parsed: Record<string, unknown> = {};
    try {
      parsed = JSON.parse(body.toString('utf8')) as Record<string, unknown>;
    } catch {
      res.writeHead(400, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ type: 'error', error: { type: 'invalid_request_error', message: 'fake upstream: body is not JSON' } }));
      return;
    }
    const model = String(parsed.model ?? 'unknown');
    if (path === '/v1/messages/count_tokens') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ input_tokens: Math.ceil(body.length / 4) }));
      return;
    }
    const wantsTool = scenario === 'tool' && !lastUserHasToolResult(parsed);
    if (parsed.stream === true) {
      const events = wantsTool ? sseToolEvents(model, 'get_weather', { city: 'Paris', unit: 'celsius' }) : sseTextEvents(model, 'Hello from the fake upstream.');
      res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', 'request-id': 'req_fake_sse', 'anthropic-ratelimit-requests-remaining': '99' });
      // The events with CRLF line endings (as some servers and proxies send them), in 7-byte writes.
      if (scenario === 'crlf-sse') {
        const bytes = Buffer.from(events.join('').replaceAll('\n', '\r\n'));
        for (let i = 0; i < bytes.length; i += 7) res.write(bytes.subarray(i, i + 7));
        res.end();
        return;
      }
      // Headers on the wire at once, the first event only when the test calls release().
      if (scenario === 'gated-headers') {
        res.flushHeaders();
        await gateOpen;
        for (const e of events) res.write(e);
        res.end();
        return;
      }
      if (scenario === 'gated-sse') {
        res.write(events[0]);
        await gateOpen;
        for (const e of events.slice(1)) res.write(e);
        res.end();
        return;
      }
      if (scenario === 'truncate-sse') {
        res.write(events[0]);
        res.write(events[1]);
        await new Promise((r) => setTimeout(r, 20));
        res.write(events[4]!.slice(0, 30));
        await new Promise((r) => setTimeout(r, 20));
        req.socket.destroy();
        return;
      }
      if (scenario === 'cut-sse') {
        res.end(events[0]! + events[1]!);
        return;
      }
      if (scenario === 'slow-sse') {
        res.write(events[0]);
        for (let i = 0; i < 500 && !rec.closedEarlyAt; i++) {
          await new Promise((r) => setTimeout(r, 20));
          res.write(sse('ping', { type: 'ping' }));
        }
        res.end();
        return;
      }
      for (const e of events) {
        res.write(e);
        await new Promise((r) => setTimeout(r, 2));
      }
      res.end();
      return;
    }
    const answer = wantsTool
      ? messageJson(model, [{ type: 'tool_use', id: 'toolu_fake_01', name: 'get_weather', input: { city: 'Paris', unit: 'celsius' } }], 'tool_use')
      : messageJson(model, [{ type: 'text', text: 'Hello from the fake upstream.' }]);
    // A prompt-cache hit and write, as Anthropic reports them (usage.cache_creation split by TTL).
    if (scenario === 'cached')
      answer.usage = {
        input_tokens: 25,
        output_tokens: 7,
        cache_creation_input_tokens: 120,
        cache_read_input_tokens: 300,
        cache_creation: { ephemeral_5m_input_tokens: 120, ephemeral_1h_input_tokens: 0 },
      };
    const json = Buffer.from(JSON.stringify(answer));
    if (scenario === 'vary') {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': json.length, vary: 'Accept-Encoding' });
      res.end(json);
      return;
    }
    if (scenario === 'gzip') {
      const gz = gzipSync(json);
      res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip', 'content-length': gz.length, 'request-id': 'req_fake_gzip' });
      res.end(gz);
      return;
    }
    res.writeHead(200, {
      'content-type': 'application/json',
      'content-length': json.length,
      'request-id': 'req_fake_json',
      'anthropic-ratelimit-requests-remaining': '99',
      'access-control-allow-origin': '*',
    });
    res.end(json);
  };

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    const rec: Received = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.alloc(0), closedEarlyAt: null };
    res.once('close', () => {
      if (!res.writableFinished) rec.closedEarlyAt = performance.now();
    });
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      rec.body = Buffer.concat(chunks);
      received.push(rec);
      void handle(req, res, rec.body, rec);
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    received,
    server,
    release() {
      gate?.();
      gateOpen = new Promise((r) => (gate = r));
    },
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
