/**
 * OpenAI-compatible vendors as they really stream (issue 15, translation part): tool calls without `index`
 * (Gemini's endpoint), blank tool-call ids, a tool-calling turn ended with `finish_reason: "stop"` (Ollama),
 * reasoning tokens reported outside `completion_tokens` (xAI), and answers without a request id. Each
 * becomes a turn Claude Code can act on: one tool_use block per call with a non-empty unique id and an input
 * that parses, `stop_reason: tool_use`, every output token counted, a request-id on every answer.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, test } from 'node:test';
import { request } from 'undici';
import { anthropicUsage, toAnthropicMessage } from '../src/upstream/providers/openai/response.js';
import { ChatToMessagesStream } from '../src/upstream/providers/openai/stream.js';
import { startTestGateway } from './helpers.js';

/** Runs OpenAI SSE chunks through the translation; returns the Anthropic events. */
async function translate(chunks: unknown[], opts: { done?: boolean; reasoningAsThinking?: boolean; raw?: string[] } = {}): Promise<Array<{ event: string; data: Record<string, any> }>> {
  const t = new ChatToMessagesStream('claude-haiku-4-5', undefined, { reasoningAsThinking: opts.reasoningAsThinking });
  let out = '';
  t.on('data', (d: Buffer | string) => (out += d.toString()));
  const done = new Promise((r) => t.on('end', r));
  for (const c of chunks) t.write(`data: ${JSON.stringify(c)}\n\n`);
  for (const r of opts.raw ?? []) t.write(r);
  t.end(opts.done === false ? '' : 'data: [DONE]\n\n');
  await done;
  return out
    .split('\n\n')
    .filter(Boolean)
    .map((e) => ({ event: /^event: (.*)$/m.exec(e)![1]!, data: JSON.parse(/^data: (.*)$/m.exec(e)![1]!) as Record<string, any> }));
}

const base = { id: 'chatcmpl-q', object: 'chat.completion.chunk', model: 'vendor-model' };
const chunk = (delta: unknown, finish: string | null = null, extra: Record<string, unknown> = {}) => ({ ...base, choices: [{ index: 0, delta, finish_reason: finish }], ...extra });

/**
 * The tool_use blocks of an event list, with their inputs assembled and parsed the way a strict client
 * does: a block's input is final at its `content_block_stop`, and a fragment for a stopped block is lost.
 */
function toolUses(events: Awaited<ReturnType<typeof translate>>) {
  const blocks = new Map<number, { id: string; name: string; json: string; stopped: boolean }>();
  for (const e of events) {
    if (e.event === 'content_block_start' && e.data.content_block.type === 'tool_use')
      blocks.set(e.data.index, { id: e.data.content_block.id, name: e.data.content_block.name, json: '', stopped: false });
    const b = blocks.get(e.data.index);
    if (e.event === 'content_block_delta' && e.data.delta.type === 'input_json_delta' && b && !b.stopped) b.json += e.data.delta.partial_json;
    if (e.event === 'content_block_stop' && b) b.stopped = true;
  }
  return [...blocks.values()].map((b) => ({ id: b.id, name: b.name, input: JSON.parse(b.json || '{}') as unknown }));
}

/** Block indices start at 0 and are contiguous; each block starts once and stops once; a delta goes to the open block. */
function assertWellFormed(events: Awaited<ReturnType<typeof translate>>) {
  let open: number | null = null;
  for (const e of events) {
    if (e.event === 'content_block_start') {
      assert.equal(open, null, `block ${e.data.index} starts while block ${open} is open`);
      open = e.data.index as number;
    }
    if (e.event === 'content_block_delta') assert.equal(e.data.index, open, 'a delta goes to the open block');
    if (e.event === 'content_block_stop') {
      assert.equal(e.data.index, open);
      open = null;
    }
  }
  const started = events.filter((e) => e.event === 'content_block_start').map((e) => e.data.index as number);
  const stopped = events.filter((e) => e.event === 'content_block_stop').map((e) => e.data.index as number);
  assert.deepEqual(
    started,
    started.map((_, i) => i),
  );
  assert.deepEqual(stopped, started);
  assert.equal(events[0]!.event, 'message_start');
  assert.deepEqual(
    events.slice(-2).map((e) => e.event),
    ['message_delta', 'message_stop'],
  );
}

describe('tool calls as vendors send them', () => {
  test('after an earlier call, two new calls whose fragments come side by side without index or id each get their own fragments', async () => {
    const events = await translate([
      chunk({ role: 'assistant', tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'ls', arguments: '{"dir":"."}' } }] }),
      // Two more calls named together, then their argument fragments two by two, neither with index nor id.
      chunk({
        tool_calls: [
          { id: 'call_2', type: 'function', function: { name: 'read', arguments: '' } },
          { id: 'call_3', type: 'function', function: { name: 'grep', arguments: '' } },
        ],
      }),
      chunk({ tool_calls: [{ function: { arguments: '{"pa' } }, { function: { arguments: '{"pat' } }] }),
      chunk({ tool_calls: [{ function: { arguments: 'th":"a.ts"}' } }, { function: { arguments: 'tern":"TODO"}' } }] }),
      chunk({}, 'tool_calls'),
    ]);
    assertWellFormed(events);
    assert.deepEqual(toolUses(events), [
      { id: 'call_1', name: 'ls', input: { dir: '.' } },
      { id: 'call_2', name: 'read', input: { path: 'a.ts' } },
      { id: 'call_3', name: 'grep', input: { pattern: 'TODO' } },
    ]);
  });

  test('parallel calls without index (Gemini): one tool_use block per call, each input parses', async () => {
    const events = await translate([
      chunk({
        role: 'assistant',
        tool_calls: [
          { id: 'call_a', type: 'function', function: { name: 'read', arguments: '{"path":"a.txt"}' } },
          { id: 'call_b', type: 'function', function: { name: 'read', arguments: '{"path":"b.txt"}' } },
        ],
      }),
      chunk({}, 'tool_calls'),
    ]);
    assertWellFormed(events);
    assert.deepEqual(toolUses(events), [
      { id: 'call_a', name: 'read', input: { path: 'a.txt' } },
      { id: 'call_b', name: 'read', input: { path: 'b.txt' } },
    ]);
    assert.equal(events.at(-2)!.data.delta.stop_reason, 'tool_use');
  });

  test('parallel calls whose fragments interleave (index 0, 1, 0, 1): every fragment reaches its call, one open block at a time', async () => {
    const events = await translate([
      chunk({ role: 'assistant', content: 'Checking both.' }),
      chunk({ tool_calls: [{ index: 0, id: 'call_a', type: 'function', function: { name: 'read', arguments: '{"pa' } }] }),
      chunk({ tool_calls: [{ index: 1, id: 'call_b', type: 'function', function: { name: 'grep', arguments: '{"pat' } }] }),
      chunk({ tool_calls: [{ index: 0, function: { arguments: 'th":"a.ts"}' } }] }),
      chunk({
        tool_calls: [
          { index: 1, function: { arguments: 'tern":"x"' } },
          { index: 2, id: 'call_c', type: 'function', function: { name: 'ls', arguments: '{}' } },
        ],
      }),
      chunk({ tool_calls: [{ index: 1, function: { arguments: '}' } }] }),
      chunk({}, 'tool_calls'),
    ]);
    assertWellFormed(events);
    assert.deepEqual(toolUses(events), [
      { id: 'call_a', name: 'read', input: { path: 'a.ts' } },
      { id: 'call_b', name: 'grep', input: { pattern: 'x' } },
      { id: 'call_c', name: 'ls', input: {} },
    ]);
    assert.equal(events.find((e) => e.event === 'message_delta')!.data.delta.stop_reason, 'tool_use');
    // The first call streams live: its first fragment goes out before the second call's first chunk is read.
    const firstDelta = events.findIndex((e) => e.event === 'content_block_delta' && e.data.delta.type === 'input_json_delta');
    assert.equal(events[firstDelta]!.data.delta.partial_json, '{"pa');
  });

  test('blank or missing ids get a synthesized id, non-empty and unique in the answer; fragments follow their call', async () => {
    const events = await translate([
      chunk({ tool_calls: [{ index: 0, id: '', function: { name: 'bash', arguments: '{"cmd":' } }] }),
      chunk({ tool_calls: [{ index: 0, function: { arguments: '"ls"}' } }] }),
      chunk({ tool_calls: [{ function: { name: 'bash', arguments: '{"cmd":"pwd"}' } }] }),
      chunk({}, 'tool_calls'),
    ]);
    assertWellFormed(events);
    const uses = toolUses(events);
    assert.deepEqual(
      uses.map((u) => u.input),
      [{ cmd: 'ls' }, { cmd: 'pwd' }],
    );
    for (const u of uses) assert.match(u.id, /^toolu_\w{8,}$/);
    assert.notEqual(uses[0]!.id, uses[1]!.id);
  });

  test('a tool-calling turn ended with finish_reason "stop" (Ollama) stops for tool_use; "length" stays max_tokens', async () => {
    const stop = await translate([chunk({ tool_calls: [{ index: 0, id: 'c1', function: { name: 'read', arguments: '{}' } }] }), chunk({}, 'stop')]);
    assert.equal(stop.at(-2)!.data.delta.stop_reason, 'tool_use');
    const cut = await translate([chunk({ tool_calls: [{ index: 0, id: 'c1', function: { name: 'read', arguments: '{' } }] }), chunk({}, 'length')]);
    assert.equal(cut.at(-2)!.data.delta.stop_reason, 'max_tokens');
    const text = await translate([chunk({ content: 'hi' }), chunk({}, 'stop')]);
    assert.equal(text.at(-2)!.data.delta.stop_reason, 'end_turn');
  });

  test('the JSON path: blank ids synthesized, stop_reason from the content', () => {
    const m = toAnthropicMessage(
      {
        id: 'chatcmpl-j',
        choices: [{ message: { role: 'assistant', content: null, tool_calls: [{ id: '', type: 'function', function: { name: 'read', arguments: '{"path":"x"}' } }] }, finish_reason: 'stop' }],
      },
      'claude-haiku-4-5',
    ) as { content: Array<{ type: string; id: string; input: unknown }>; stop_reason: string };
    assert.equal(m.stop_reason, 'tool_use');
    assert.match(m.content[0]!.id, /^toolu_\w{8,}$/);
    assert.deepEqual(m.content[0]!.input, { path: 'x' });
  });
});

describe('usage', () => {
  test('reasoning tokens reported outside completion_tokens (xAI) are output tokens; inside (OpenAI) they are not counted twice', () => {
    assert.equal(anthropicUsage({ prompt_tokens: 100, completion_tokens: 20, total_tokens: 420, completion_tokens_details: { reasoning_tokens: 300 } }).output_tokens, 320);
    assert.equal(anthropicUsage({ prompt_tokens: 100, completion_tokens: 320, total_tokens: 420, completion_tokens_details: { reasoning_tokens: 300 } }).output_tokens, 320);
    assert.equal(anthropicUsage({ prompt_tokens: 100, completion_tokens: 20 }).output_tokens, 20);
  });
});

describe('request-id', () => {
  test("an answer from a vendor that sends no request id carries the gateway's, never an empty header", async () => {
    const vendor = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ id: 'chatcmpl-n', choices: [{ message: { role: 'assistant', content: 'ok' }, finish_reason: 'stop' }], usage: { prompt_tokens: 3, completion_tokens: 1 } }));
      });
    });
    await new Promise<void>((r) => vendor.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(vendor.address() as AddressInfo).port}/v1`;
    const { gw } = await startTestGateway({ upstream: url, providers: `  anthropic:\n    type: openai\n    base_url: ${url}\n    keys: [ "k" ]\n    retries: { max: 0 }\n` });
    try {
      const r = await request(gw.url + '/v1/messages', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'claude-haiku-4-5', max_tokens: 5, messages: [{ role: 'user', content: 'hi' }] }),
      });
      assert.equal(r.statusCode, 200);
      await r.body.dump();
      assert.ok(r.headers['request-id'], 'request-id present');
      assert.equal(r.headers['request-id'], r.headers['x-switchyard-request-id']);
    } finally {
      await gw.close();
      vendor.close();
    }
  });
});

describe('answer translation, unit by unit', () => {
  test('finish_reason → stop_reason: stop, length, tool_calls, function_call, content_filter, unknown', async () => {
    const { stopReason } = await import('../src/upstream/providers/openai/response.js');
    assert.deepEqual(['stop', 'length', 'tool_calls', 'function_call', 'content_filter', 'something-new', null].map(stopReason), [
      'end_turn',
      'max_tokens',
      'tool_use',
      'tool_use',
      'refusal',
      'end_turn',
      'end_turn',
    ]);
  });

  test('usage: cached prompt tokens are cache reads and not input; no negative input; zeros when absent', () => {
    assert.deepEqual(anthropicUsage({ prompt_tokens: 1000, completion_tokens: 5, prompt_tokens_details: { cached_tokens: 800 } }), {
      input_tokens: 200,
      output_tokens: 5,
      cache_creation_input_tokens: 0,
      cache_read_input_tokens: 800,
    });
    assert.equal(anthropicUsage({ prompt_tokens: 10, prompt_tokens_details: { cached_tokens: 50 } }).input_tokens, 0);
    assert.deepEqual(anthropicUsage(null), { input_tokens: 0, output_tokens: 0, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 });
    // Reasoning is added only when the vendor's total shows it was left out of completion_tokens.
    assert.equal(anthropicUsage({ prompt_tokens: 10, completion_tokens: 5, completion_tokens_details: { reasoning_tokens: 7 } }).output_tokens, 5);
    assert.equal(anthropicUsage({ prompt_tokens: 10, completion_tokens: 5, total_tokens: 22, completion_tokens_details: { reasoning_tokens: 0 } }).output_tokens, 5);
  });

  test('a completion becomes a message: id, text, tool input (bad JSON kept raw), stop_reason from the content', () => {
    const m = toAnthropicMessage(
      {
        id: 'chatcmpl-abc',
        choices: [
          {
            message: {
              role: 'assistant',
              content: 'Let me look.',
              tool_calls: [
                { id: 'call_1', type: 'function', function: { name: 'read', arguments: '{"path":"a"}' } },
                { id: 'call_2', type: 'function', function: { name: 'grep', arguments: 'not json' } },
                { id: 'call_3', type: 'function', function: { name: 'ls', arguments: '' } },
              ],
            },
            finish_reason: 'tool_calls',
          },
        ],
        usage: { prompt_tokens: 3, completion_tokens: 2 },
      },
      'claude-haiku-4-5',
    );
    assert.deepEqual(m, {
      id: 'msg_abc',
      type: 'message',
      role: 'assistant',
      model: 'claude-haiku-4-5',
      content: [
        { type: 'text', text: 'Let me look.' },
        { type: 'tool_use', id: 'call_1', name: 'read', input: { path: 'a' } },
        { type: 'tool_use', id: 'call_2', name: 'grep', input: { _raw_arguments: 'not json' } },
        { type: 'tool_use', id: 'call_3', name: 'ls', input: {} },
      ],
      stop_reason: 'tool_use',
      stop_sequence: null,
      usage: { input_tokens: 3, output_tokens: 2, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 },
    });
    const empty = toAnthropicMessage({ choices: [{ message: { role: 'assistant', content: '' }, finish_reason: 'length' }] }, 'm') as { id: string; content: unknown[]; stop_reason: string };
    assert.equal(empty.id, 'msg_openai');
    assert.deepEqual(empty.content, []);
    assert.equal(empty.stop_reason, 'max_tokens');
    const none = toAnthropicMessage({}, 'm') as { content: unknown[]; stop_reason: string };
    assert.deepEqual(none.content, []);
    assert.equal(none.stop_reason, 'end_turn');
  });

  test("vendor error bodies (OpenAI-shaped, a bare string, plain text, a proxy's HTML) become Anthropic errors naming the provider", async () => {
    const { toAnthropicError } = await import('../src/upstream/providers/openai/response.js');
    const parse = (s: string) => JSON.parse(s) as { type: string; error: { type: string; message: string } };
    assert.deepEqual(parse(toAnthropicError(429, JSON.stringify({ error: { message: 'slow down', type: 'rate_limit' } }), 'groq')), {
      type: 'error',
      error: { type: 'rate_limit_error', message: 'provider "groq" answered 429: slow down' },
    });
    assert.equal(parse(toAnthropicError(400, JSON.stringify({ error: 'bad model' }), 'p')).error.message, 'provider "p" answered 400: bad model');
    assert.equal(parse(toAnthropicError(404, JSON.stringify({ message: 'no route' }), 'p')).error.message, 'provider "p" answered 404: no route');
    assert.equal(parse(toAnthropicError(502, '<html>Bad Gateway</html>', 'p')).error.message, 'provider "p" answered 502: <html>Bad Gateway</html>');
    assert.equal(parse(toAnthropicError(500, JSON.stringify({ error: { code: 7 } }), 'p')).error.message, 'provider "p" answered 500: {"error":{"code":7}}');
    assert.equal(parse(toAnthropicError(500, 'x'.repeat(2000), 'p')).error.message.length, 'provider "p" answered 500: '.length + 500);
    assert.equal(parse(toAnthropicError(529, '{}', 'p')).error.type, 'overloaded_error');
  });

  test('synthesized ids are unique; real ids are kept, blank ones replaced', async () => {
    const { toolIdOf } = await import('../src/upstream/providers/openai/response.js');
    assert.equal(toolIdOf('call_9'), 'call_9');
    const ids = new Set([toolIdOf(''), toolIdOf('   '), toolIdOf(undefined), toolIdOf(null)]);
    assert.equal(ids.size, 4);
    for (const id of ids) assert.match(id, /^toolu_sy[0-9a-f]{22}$/);
  });
});

describe('stream translation edges', () => {
  test('message id from the chunk id, chatcmpl- dropped; usage from the usage chunk; [DONE] ends once', async () => {
    const events = await translate([chunk({ content: 'hi' }), chunk({}, 'stop'), { ...base, choices: [], usage: { prompt_tokens: 7, completion_tokens: 3 } }], { raw: ['data: [DONE]\n\n'] });
    assert.equal(events[0]!.data.message.id, 'msg_q');
    assert.equal(events[0]!.data.message.model, 'claude-haiku-4-5');
    assert.deepEqual(events.find((e) => e.event === 'message_delta')!.data.usage, { input_tokens: 7, output_tokens: 3, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 });
    assert.equal(events.filter((e) => e.event === 'message_stop').length, 1, 'a second [DONE] adds nothing');
    const noId = await translate([{ choices: [{ index: 0, delta: { content: 'x' } }] }, { choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] }]);
    assert.equal(noId[0]!.data.message.id, 'msg_openai');
  });

  test('no [DONE]: a finish_reason still ends the message; without one the client gets an error event', async () => {
    const finished = await translate([chunk({ content: 'a' }), chunk({}, 'stop')], { done: false });
    assert.deepEqual(
      finished.slice(-2).map((e) => e.event),
      ['message_delta', 'message_stop'],
    );
    const cut = await translate([chunk({ content: 'a' })], { done: false });
    assert.equal(cut.at(-1)!.event, 'error');
    assert.match(cut.at(-1)!.data.error.message, /ended before it finished/);
  });

  test('an error chunk ends the stream with an error event naming it; later chunks add nothing', async () => {
    const events = await translate([chunk({ content: 'a' }), { error: { message: 'rate limited upstream' } } as never, chunk({ content: 'late' })]);
    const err = events.find((e) => e.event === 'error')!;
    assert.deepEqual(err.data, { type: 'error', error: { type: 'api_error', message: 'rate limited upstream' } });
    assert.equal(events.at(-1)!.event, 'error');
    assert.ok(!JSON.stringify(events).includes('late'));
    const bare = await translate([{ error: 'just a string' } as never]);
    assert.equal(bare.find((e) => e.event === 'error')!.data.error.message, 'just a string');
  });

  test('fail() after a partial answer: an error event, then the end; after the end it adds nothing', async () => {
    const t = new ChatToMessagesStream('m');
    let out = '';
    t.on('data', (d: Buffer | string) => (out += d.toString()));
    const ended = new Promise((r) => t.on('end', r));
    t.write(`data: ${JSON.stringify(chunk({ content: 'part' }))}\n\n`);
    t.fail('connection reset');
    await ended;
    assert.match(out, /event: error\ndata: \{"type":"error","error":\{"type":"api_error","message":"connection reset"\}\}/);
    assert.equal(out.match(/event: error/g)!.length, 1);
  });

  test('reasoning_as_thinking: reasoning_content and reasoning become one thinking block before the text; off: none', async () => {
    const chunks = [chunk({ reasoning_content: 'Let me ' }), chunk({ reasoning: 'think.' }), chunk({ content: 'Answer.' }), chunk({}, 'stop')];
    const on = await translate(chunks, { reasoningAsThinking: true });
    assertWellFormed(on);
    assert.deepEqual(
      on.filter((e) => e.event === 'content_block_start').map((e) => e.data.content_block.type),
      ['thinking', 'text'],
    );
    assert.equal(
      on
        .filter((e) => e.event === 'content_block_delta' && e.data.delta.type === 'thinking_delta')
        .map((e) => e.data.delta.thinking)
        .join(''),
      'Let me think.',
    );
    const off = await translate(chunks);
    assert.deepEqual(
      off.filter((e) => e.event === 'content_block_start').map((e) => e.data.content_block.type),
      ['text'],
    );
  });

  test("a held call takes its name from a later fragment; a call's empty arguments send no delta", async () => {
    const events = await translate([
      chunk({ tool_calls: [{ index: 0, id: 'call_a', function: { name: 'first', arguments: '' } }] }),
      chunk({ tool_calls: [{ index: 1, id: 'call_b', function: { arguments: '' } }] }),
      chunk({ tool_calls: [{ index: 1, function: { name: 'second', arguments: '{"x":1}' } }] }),
      chunk({}, 'tool_calls'),
    ]);
    assertWellFormed(events);
    assert.deepEqual(toolUses(events), [
      { id: 'call_a', name: 'first', input: {} },
      { id: 'call_b', name: 'second', input: { x: 1 } },
    ]);
    assert.equal(events.filter((e) => e.event === 'content_block_delta' && e.data.index === 0).length, 0, 'no empty input_json_delta');
  });
});
