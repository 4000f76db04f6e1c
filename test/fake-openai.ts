/**
 * A fake OpenAI-compatible Chat Completions server on 127.0.0.1 that streams the way real ones do: a
 * role-only first chunk, content deltas, tool calls split across chunks with the id and name only in the
 * first, a finish_reason chunk, a usage chunk with empty `choices`, then `[DONE]`. What it answers depends
 * on the request: a `tool` message last → text about the tool result; tools offered and "weather" asked →
 * one tool call ("two cities" → two parallel calls); `x-fake: status:<code>` → that error; `GET /v1/models` → a
 * list in OpenAI's shape.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FakeOpenAI {
  url: string;
  received: Array<{ method: string; url: string; headers: Record<string, unknown>; body: Record<string, any> }>;
  close(): Promise<void>;
  server: Server;
}

type Call = { id: string; name: string; args: string };

function plan(body: Record<string, any>): { text: string; calls: Call[] } {
  const messages = body.messages as Array<Record<string, any>>;
  const last = messages.at(-1)!;
  if (last.role === 'tool') return { text: `Tool said: ${last.content}`, calls: [] };
  const userText =
    typeof last.content === 'string'
      ? last.content
      : (last.content as Array<Record<string, any>>)
          .filter((p) => p.type === 'text')
          .map((p) => p.text)
          .join(' ');
  const hasImage = Array.isArray(last.content) && last.content.some((p: Record<string, any>) => p.type === 'image_url');
  const systemTurns = messages.filter((m) => m.role === 'system').length;
  if (body.tools && /weather/i.test(userText)) {
    const cities = /two cities/i.test(userText) ? ['Paris', 'Tokyo'] : ['Paris'];
    return { text: '', calls: cities.map((c, i) => ({ id: `call_${i}`, name: 'get_weather', args: JSON.stringify({ city: c, unit: 'celsius' }) })) };
  }
  return { text: `Hello from OpenAI.${hasImage ? ' I see an image.' : ''} System turns: ${systemTurns}.`, calls: [] };
}

const usage = { prompt_tokens: 120, completion_tokens: 9, total_tokens: 129, prompt_tokens_details: { cached_tokens: 100 } };

export async function startFakeOpenAI(): Promise<FakeOpenAI> {
  const received: FakeOpenAI['received'] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString() || '{}') as Record<string, any>;
      received.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      if (req.method === 'GET' && req.url === '/v1/models') {
        // OpenAI's list shape (https://platform.openai.com/docs/api-reference/models/list).
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({
            object: 'list',
            data: [
              { id: 'local-llama', object: 'model', created: 1735689600, owned_by: 'fake' },
              { id: 'qwen3-coder', object: 'model', created: 1735776000, owned_by: 'fake' },
            ],
          }),
        );
        return;
      }
      const status = /^status:(\d+)$/.exec(String(req.headers['x-fake'] ?? body.user ?? ''));
      if (req.url !== '/v1/chat/completions' || status) {
        const code = status ? Number(status[1]) : 404;
        res.writeHead(code, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { message: `fake openai says ${code}`, type: 'invalid_request_error', code: null } }));
        return;
      }
      const { text, calls } = plan(body);
      const finish = calls.length ? 'tool_calls' : 'stop';
      if (!body.stream) {
        res.writeHead(200, { 'content-type': 'application/json', 'x-request-id': 'req_openai_1' });
        res.end(
          JSON.stringify({
            id: 'chatcmpl-fake1',
            object: 'chat.completion',
            model: body.model,
            choices: [
              {
                index: 0,
                message: {
                  role: 'assistant',
                  content: text || null,
                  ...(calls.length ? { tool_calls: calls.map((c) => ({ id: c.id, type: 'function', function: { name: c.name, arguments: c.args } })) } : {}),
                },
                finish_reason: finish,
              },
            ],
            usage,
          }),
        );
        return;
      }
      res.writeHead(200, { 'content-type': 'text/event-stream', 'x-request-id': 'req_openai_1' });
      const send = (o: unknown) => res.write(`data: ${JSON.stringify(o)}\n\n`);
      const base = { id: 'chatcmpl-fake1', object: 'chat.completion.chunk', model: body.model };
      send({ ...base, choices: [{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }] });
      for (const piece of text.match(/.{1,5}/gs) ?? []) send({ ...base, choices: [{ index: 0, delta: { content: piece }, finish_reason: null }] });
      calls.forEach((c, i) => {
        send({ ...base, choices: [{ index: 0, delta: { tool_calls: [{ index: i, id: c.id, type: 'function', function: { name: c.name, arguments: '' } }] }, finish_reason: null }] });
        for (const piece of c.args.match(/.{1,4}/gs) ?? []) send({ ...base, choices: [{ index: 0, delta: { tool_calls: [{ index: i, function: { arguments: piece } }] }, finish_reason: null }] });
      });
      send({ ...base, choices: [{ index: 0, delta: {}, finish_reason: finish }] });
      send({ ...base, choices: [], usage });
      res.end('data: [DONE]\n\n');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    received,
    server,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
