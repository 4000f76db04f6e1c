/**
 * The OpenAI → Anthropic stream translator on its own (src/upstream/providers/openai/stream.ts), event by event: the
 * message_start it opens with, content parts that are and are not answer text, reasoning that is not a string,
 * which call a tool-call fragment belongs to (blank ids, several calls side by side), `[DONE]`, usage, pings only
 * after silence, a multi-byte character split across chunks, an error after the end, and the pinger stopped on
 * destroy. Each assertion is one a planted bug in the translator broke (npm run mutate).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ChatToMessagesStream, reasoningText } from '../src/upstream/providers/openai/stream.js';

interface Ev {
  event: string;
  data: Record<string, any>;
}

/** Feeds `chunks` (SSE payloads, or raw Buffers) and returns the Anthropic events that came out. */
async function translate(chunks: Array<unknown | Buffer>, opts: { reasoningAsThinking?: boolean; done?: boolean; pingMs?: number } = {}): Promise<Ev[]> {
  const t = new ChatToMessagesStream('claude-x', opts.pingMs ?? 60_000, { reasoningAsThinking: opts.reasoningAsThinking });
  let out = '';
  t.on('data', (d: Buffer) => (out += d.toString()));
  for (const c of chunks) t.write(Buffer.isBuffer(c) ? c : Buffer.from(`data: ${typeof c === 'string' ? c : JSON.stringify(c)}\n\n`));
  if (opts.done !== false) t.write(Buffer.from('data: [DONE]\n\n'));
  t.end();
  await new Promise((r) => t.once('end', r));
  return out
    .split('\n\n')
    .filter(Boolean)
    .map((block) => ({ event: /^event: (.*)$/m.exec(block)![1]!, data: JSON.parse(/^data: (.*)$/m.exec(block)![1]!) as Record<string, any> }));
}

const chunk = (delta: Record<string, unknown>, finish: string | null = null, extra: Record<string, unknown> = {}) => ({
  id: 'chatcmpl-abc123',
  choices: [{ index: 0, delta, finish_reason: finish }],
  ...extra,
});

describe('message_start', () => {
  test('a complete message: id from the chunk id without chatcmpl-, type, role, model, empty content, numeric usage', async () => {
    const [start] = await translate([chunk({ content: 'hi' }, 'stop')]);
    assert.equal(start!.event, 'message_start');
    assert.deepEqual(start!.data, {
      type: 'message_start',
      message: {
        id: 'msg_abc123',
        type: 'message',
        role: 'assistant',
        model: 'claude-x',
        content: [],
        stop_reason: null,
        stop_sequence: null,
        usage: { input_tokens: 0, output_tokens: 0, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 },
      },
    });
  });

  test('"chatcmpl-" is stripped only at the start of the id', async () => {
    const [start] = await translate([{ id: 'x-chatcmpl-1', choices: [{ delta: { content: 'a' } }] }]);
    assert.equal(start!.data.message.id, 'msg_x-chatcmpl-1');
  });

  test('a stream with no chunk at all before [DONE] still opens with message_start (id msg_openai)', async () => {
    const events = await translate([]);
    assert.deepEqual(
      events.map((e) => e.event),
      ['message_start', 'message_delta', 'message_stop'],
    );
    assert.equal(events[0]!.data.message.id, 'msg_openai');
  });
});

describe('content', () => {
  test('of a parts array only the text parts are answer text; thinking parts and parts without string text are not', async () => {
    const events = await translate([
      chunk({ content: [{ type: 'thinking', text: 'hmm' }, { type: 'text', text: 'A' }, { type: 'text', text: 7 }, { type: 'image', text: 'no' }, { text: 'untyped' }, null] }, 'stop'),
    ]);
    const deltas = events.filter((e) => e.event === 'content_block_delta');
    assert.deepEqual(
      deltas.map((e) => e.data.delta),
      [{ type: 'text_delta', text: 'A' }],
    );
  });

  test('reasoning that is not a string is no reasoning', () => {
    assert.equal(reasoningText({ reasoning_content: { text: 'x' } }), '');
    assert.equal(reasoningText({ reasoning: 5 }), '');
    assert.equal(reasoningText({ reasoning: 'r' }), 'r');
  });

  test('reasoning as thinking: an unsigned thinking block (signature ""), then the text block', async () => {
    const events = await translate([chunk({ reasoning_content: 'think' }), chunk({ content: 'answer' }, 'stop')], { reasoningAsThinking: true });
    const starts = events.filter((e) => e.event === 'content_block_start').map((e) => e.data.content_block);
    assert.deepEqual(starts, [
      { type: 'thinking', thinking: '', signature: '' },
      { type: 'text', text: '' },
    ]);
    assert.ok(events.some((e) => e.event === 'content_block_delta' && e.data.delta.type === 'text_delta' && e.data.index === 1));
  });

  test('a character split across two network chunks arrives whole', async () => {
    const bytes = Buffer.from(`data: ${JSON.stringify(chunk({ content: 'é✓' }, 'stop'))}\n\n`);
    const at = bytes.indexOf(Buffer.from('✓')) + 1; // inside the three bytes of ✓
    const events = await translate([bytes.subarray(0, at), bytes.subarray(at)]);
    assert.equal(events.find((e) => e.event === 'content_block_delta')!.data.delta.text, 'é✓');
  });

  test('usage comes from the chunk that carries it; chunks without usage do not reset it', async () => {
    const events = await translate([chunk({ content: 'a' }), { id: 'c', choices: [], usage: { prompt_tokens: 11, completion_tokens: 3 } }, chunk({}, 'stop')]);
    const delta = events.find((e) => e.event === 'message_delta')!;
    assert.equal(delta.data.usage.output_tokens, 3);
    assert.equal(delta.data.usage.input_tokens, 11);
  });
});

describe('tool calls', () => {
  test('an id that is only blanks names no call: the fragment continues the last call', async () => {
    const events = await translate([
      chunk({ tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'Read', arguments: '{"a":' } }] }),
      chunk({ tool_calls: [{ id: '   ', function: { arguments: '1}' } }] }),
      chunk({}, 'tool_calls'),
    ]);
    const starts = events.filter((e) => e.event === 'content_block_start');
    assert.equal(starts.length, 1, 'one call, not two');
    const args = events.filter((e) => e.event === 'content_block_delta').map((e) => e.data.delta.partial_json);
    assert.deepEqual(args, ['{"a":', '1}']);
  });

  test('calls named only by id (no index) are told apart by id, the second held and sent whole', async () => {
    const events = await translate([
      chunk({ tool_calls: [{ id: 'call_A', function: { name: 'A', arguments: '{"x":' } }] }),
      chunk({ tool_calls: [{ id: 'call_B', function: { name: 'B', arguments: '{"y":' } }] }),
      chunk({ tool_calls: [{ id: 'call_A', function: { arguments: '1}' } }] }),
      chunk({ tool_calls: [{ id: 'call_B', function: { arguments: '2}' } }] }),
      chunk({}, 'tool_calls'),
    ]);
    const blocks = events.filter((e) => e.event === 'content_block_start').map((e) => e.data.content_block);
    assert.deepEqual(
      blocks.map((b) => [b.id, b.name]),
      [
        ['call_A', 'A'],
        ['call_B', 'B'],
      ],
    );
    const byIndex = (i: number) =>
      events
        .filter((e) => e.event === 'content_block_delta' && e.data.index === i)
        .map((e) => e.data.delta.partial_json)
        .join('');
    assert.equal(byIndex(0), '{"x":1}');
    assert.equal(byIndex(1), '{"y":2}');
    assert.equal(events.filter((e) => e.event === 'content_block_delta' && e.data.index === 1).length, 1, 'a held call goes as one delta');
  });

  test('calls with a name only, no index and no id, are separate calls in order', async () => {
    const events = await translate([
      chunk({ tool_calls: [{ function: { name: 'First', arguments: '{}' } }] }),
      chunk({ tool_calls: [{ function: { name: 'Second', arguments: '{}' } }] }),
      chunk({}, 'tool_calls'),
    ]);
    assert.deepEqual(
      events.filter((e) => e.event === 'content_block_start').map((e) => e.data.content_block.name),
      ['First', 'Second'],
    );
  });

  test('one nameless fragment after two calls continues the last call, not the first', async () => {
    const events = await translate([
      chunk({ tool_calls: [{ index: 0, id: 'c0', function: { name: 'A', arguments: '{"a":0}' } }] }),
      chunk({ tool_calls: [{ index: 1, id: 'c1', function: { name: 'B', arguments: '{"b":' } }] }),
      chunk({ tool_calls: [{ function: { arguments: '1}' } }] }),
      chunk({}, 'tool_calls'),
    ]);
    const second = events.filter((e) => e.event === 'content_block_delta' && e.data.index === 1).map((e) => e.data.delta.partial_json);
    assert.deepEqual(second, ['{"b":1}']);
  });

  test('a held call whose later chunk renames it keeps its first name; a held call without arguments sends no delta', async () => {
    const events = await translate([
      chunk({ tool_calls: [{ index: 0, id: 'c0', function: { name: 'Live', arguments: '{}' } }] }),
      chunk({ tool_calls: [{ index: 1, id: 'c1', function: { name: 'Held' } }] }),
      chunk({ tool_calls: [{ index: 1, function: { name: 'Renamed' } }] }),
      chunk({}, 'tool_calls'),
    ]);
    const held = events.filter((e) => e.event === 'content_block_start')[1]!;
    assert.equal(held.data.content_block.name, 'Held');
    assert.equal(events.filter((e) => e.event === 'content_block_delta' && e.data.index === 1).length, 0);
    assert.equal(events.find((e) => e.event === 'message_delta')!.data.delta.stop_reason, 'tool_use');
  });

  test('arguments that are not a string add nothing', async () => {
    const events = await translate([
      chunk({ tool_calls: [{ index: 0, id: 'c0', function: { name: 'T', arguments: { not: 'a string' } } }] }),
      chunk({ tool_calls: [{ index: 0, function: { arguments: '{}' } }] }),
      chunk({}, 'tool_calls'),
    ]);
    assert.deepEqual(
      events.filter((e) => e.event === 'content_block_delta').map((e) => e.data.delta.partial_json),
      ['{}'],
    );
  });
});

describe('ends', () => {
  test('[DONE] ends the message at once: nothing after it goes out', async () => {
    const events = await translate([chunk({ content: 'a' }, 'stop'), '[DONE]', chunk({ content: 'after' })], { done: false });
    assert.equal(events.at(-1)!.event, 'message_stop');
    assert.ok(!events.some((e) => e.event === 'content_block_delta' && e.data.delta.text === 'after'));
  });

  test('an error chunk: one error event (opened by message_start), nothing after it', async () => {
    const events = await translate([{ error: { message: 'vendor overloaded' } }, chunk({ content: 'late' })]);
    assert.deepEqual(
      events.map((e) => e.event),
      ['message_start', 'error'],
    );
    assert.equal(events[0]!.data.message.id, 'msg_error');
    assert.equal(events[1]!.data.error.message, 'vendor overloaded');
  });

  test('fail() after the message ended adds nothing', async () => {
    const t = new ChatToMessagesStream('m', 60_000);
    let out = '';
    t.on('data', (d: Buffer) => (out += d.toString()));
    t.write(Buffer.from(`data: ${JSON.stringify(chunk({ content: 'a' }, 'stop'))}\n\ndata: [DONE]\n\n`));
    t.fail('too late');
    await new Promise((r) => t.once('end', r));
    assert.ok(!out.includes('too late'));
    assert.match(out, /event: message_stop/);
  });

  test('fail() before anything: message_start with id msg_error, then the error', async () => {
    const t = new ChatToMessagesStream('m', 60_000);
    let out = '';
    t.on('data', (d: Buffer) => (out += d.toString()));
    t.fail('connection reset');
    await new Promise((r) => t.once('end', r));
    assert.match(out, /^event: message_start\ndata: \{"type":"message_start","message":\{"id":"msg_error"/);
    assert.match(out, /event: error\ndata: \{"type":"error","error":\{"type":"api_error","message":"connection reset"\}\}/);
  });
});

describe('pings', () => {
  test('only after the given silence: none while chunks keep coming, one during a pause', async () => {
    const t = new ChatToMessagesStream('m', 150);
    const events: string[] = [];
    t.on('data', (d: Buffer) => events.push(/^event: (.*)$/m.exec(d.toString())![1]!));
    for (let i = 0; i < 6; i++) {
      t.write(Buffer.from(`data: ${JSON.stringify(chunk({ content: String(i) }))}\n\n`));
      await new Promise((r) => setTimeout(r, 40));
    }
    assert.ok(!events.includes('ping'), `no ping while the upstream talks: ${events.join(',')}`);
    await new Promise((r) => setTimeout(r, 320));
    assert.ok(events.includes('ping'), 'a ping after 150 ms of silence');
    t.destroy();
  });

  test('destroy stops the pinger: no ping after it', async () => {
    const t = new ChatToMessagesStream('m', 30);
    let pings = 0;
    t.on('data', (d: Buffer) => d.toString().includes('event: ping') && pings++);
    t.on('error', () => {});
    t.destroy();
    await new Promise((r) => setTimeout(r, 120));
    assert.equal(pings, 0);
  });
});
