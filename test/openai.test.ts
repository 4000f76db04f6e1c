/**
 * OpenAI-compatible providers: the translation units (request, JSON answer, SSE stream with interleaved
 * text and tool calls, pings), and the real Anthropic SDK through the gateway to a fake Chat Completions
 * server: text, streaming text, a tool round trip, two parallel tool calls, an image, a mid-conversation
 * system turn; the SDK's stream helper accumulates the same message as the non-streaming answer.
 */
import Anthropic from '@anthropic-ai/sdk';
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { request } from 'undici';
import { toChatCompletions } from '../src/upstream/providers/openai/request.js';
import { toAnthropicMessage } from '../src/upstream/providers/openai/response.js';
import { ChatToMessagesStream } from '../src/upstream/providers/openai/stream.js';
import type { Gateway } from '../src/server/serve.js';
import { startFakeOpenAI, type FakeOpenAI } from './fake-openai.js';
import { claudeCodeBody, startTestGateway } from './helpers.js';

describe('request translation', () => {
  test('system, mid-conversation system turns, images, tools, tool_choice, tool_use and tool_result, thinking dropped', () => {
    const { body, dropped } = toChatCompletions(
      {
        model: 'claude-sonnet-4-6',
        max_tokens: 100,
        stop_sequences: ['END'],
        temperature: 0.2,
        top_p: 0.9,
        metadata: { user_id: 'u-1' },
        thinking: { type: 'adaptive' },
        context_management: {},
        system: [
          { type: 'text', text: 'Be brief.' },
          { type: 'text', text: 'Be kind.' },
        ],
        tools: [{ name: 'get_weather', description: 'Weather', input_schema: { type: 'object', properties: { city: { type: 'string' } } } }],
        tool_choice: { type: 'any', disable_parallel_tool_use: true },
        stream: true,
        messages: [
          {
            role: 'user',
            content: [
              { type: 'text', text: 'Look' },
              { type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'iVBOR' } },
              { type: 'image', source: { type: 'url', url: 'https://img.example/x.png' } },
            ],
          },
          {
            role: 'assistant',
            content: [
              { type: 'thinking', thinking: 'hmm', signature: 's' },
              { type: 'text', text: 'Checking.' },
              { type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: { city: 'Paris' } },
              { type: 'tool_use', id: 'toolu_2', name: 'get_weather', input: { city: 'Rome' } },
            ],
          },
          {
            role: 'user',
            content: [
              { type: 'tool_result', tool_use_id: 'toolu_1', content: '18C' },
              { type: 'tool_result', tool_use_id: 'toolu_2', content: [{ type: 'text', text: 'no data' }], is_error: true },
              { type: 'text', text: 'And now?' },
            ],
          },
          { role: 'system', content: 'Mid-conversation note.' },
        ],
      },
      'gpt-x',
    );
    assert.deepEqual(body.messages, [
      { role: 'system', content: 'Be brief.\n\nBe kind.' },
      {
        role: 'user',
        content: [
          { type: 'text', text: 'Look' },
          { type: 'image_url', image_url: { url: 'data:image/png;base64,iVBOR' } },
          { type: 'image_url', image_url: { url: 'https://img.example/x.png' } },
        ],
      },
      {
        role: 'assistant',
        content: 'Checking.',
        tool_calls: [
          { id: 'toolu_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } },
          { id: 'toolu_2', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Rome"}' } },
        ],
      },
      { role: 'tool', tool_call_id: 'toolu_1', content: '18C' },
      { role: 'tool', tool_call_id: 'toolu_2', content: 'Error: no data' },
      { role: 'user', content: 'And now?' },
      { role: 'system', content: 'Mid-conversation note.' },
    ]);
    assert.equal(body.model, 'gpt-x');
    assert.deepEqual(body.stop, ['END']);
    assert.equal(body.user, 'u-1');
    assert.equal(body.tool_choice, 'required');
    assert.equal(body.parallel_tool_calls, false);
    assert.deepEqual(body.tools, [{ type: 'function', function: { name: 'get_weather', description: 'Weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }]);
    assert.deepEqual(body.stream_options, { include_usage: true });
    assert.deepEqual(dropped.sort(), ['context_management', 'thinking']);
    assert.deepEqual(toChatCompletions({ messages: [], tool_choice: { type: 'tool', name: 'x' }, tools: [{ name: 'x', input_schema: {} }] }, 'm').body.tool_choice, {
      type: 'function',
      function: { name: 'x' },
    });
  });

  test('a 76 KB Claude-Code-shaped request translates whole', () => {
    const cc = claudeCodeBody();
    const { body } = toChatCompletions(cc, 'local-model');
    assert.equal((body.tools as unknown[]).length, (cc.tools as unknown[]).length);
    assert.equal((body.messages as Array<{ role: string }>)[0]!.role, 'system');
    assert.ok(JSON.stringify(body).length > 60_000);
  });
});

test('JSON answer: text and tool calls, finish_reason, usage with cached tokens', () => {
  const m = toAnthropicMessage(
    {
      id: 'chatcmpl-1',
      choices: [{ message: { content: 'Hi', tool_calls: [{ id: 'c1', function: { name: 'f', arguments: '{"a":1}' } }] }, finish_reason: 'tool_calls' }],
      usage: { prompt_tokens: 50, completion_tokens: 5, prompt_tokens_details: { cached_tokens: 30 } },
    },
    'claude-sonnet-4-6',
  );
  assert.deepEqual(m.content, [
    { type: 'text', text: 'Hi' },
    { type: 'tool_use', id: 'c1', name: 'f', input: { a: 1 } },
  ]);
  assert.equal(m.stop_reason, 'tool_use');
  assert.deepEqual(m.usage, { input_tokens: 20, output_tokens: 5, cache_creation_input_tokens: 0, cache_read_input_tokens: 30 });
  for (const [f, want] of [
    ['stop', 'end_turn'],
    ['length', 'max_tokens'],
    ['tool_calls', 'tool_use'],
  ])
    assert.equal(toAnthropicMessage({ choices: [{ message: {}, finish_reason: f }] }, 'm').stop_reason, want);
});

test('stream translation: interleaved text and two tool calls get correct block indexes; pings while silent', async () => {
  const s = new ChatToMessagesStream('claude-sonnet-4-6', 40);
  let out = '';
  s.on('data', (d: Buffer) => (out += d.toString()));
  const send = (o: unknown) => s.write(`data: ${JSON.stringify(o)}\n\n`);
  send({ id: 'chatcmpl-9', choices: [{ delta: { role: 'assistant', content: '' } }] });
  await new Promise((r) => setTimeout(r, 120)); // silence: pings
  send({ choices: [{ delta: { content: 'Let me ' } }] });
  send({ choices: [{ delta: { content: 'check.' } }] });
  send({ choices: [{ delta: { tool_calls: [{ index: 0, id: 'c0', function: { name: 'a', arguments: '{"x"' } }] } }] });
  send({ choices: [{ delta: { tool_calls: [{ index: 0, function: { arguments: ':1}' } }] } }] });
  send({ choices: [{ delta: { tool_calls: [{ index: 1, id: 'c1', function: { name: 'b', arguments: '' } }] } }] });
  send({ choices: [{ delta: { tool_calls: [{ index: 1, function: { arguments: '{}' } }] } }] });
  send({ choices: [{ delta: {}, finish_reason: 'tool_calls' }] });
  send({ choices: [], usage: { prompt_tokens: 10, completion_tokens: 4 } });
  s.end('data: [DONE]\n\n');
  await new Promise((r) => s.on('end', r));
  const events = out
    .split('\n\n')
    .filter(Boolean)
    .map((e) => JSON.parse(e.split('\n')[1]!.slice(6)) as Record<string, any>);
  const types = events.map((e) => e.type);
  assert.equal(types[0], 'message_start');
  assert.deepEqual(events[0]!.message.usage, { input_tokens: 0, output_tokens: 0, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 });
  assert.ok(types.includes('ping'), 'pings while the upstream is silent');
  const blocks = events.filter((e) => e.type === 'content_block_start').map((e) => [e.index, e.content_block.type, e.content_block.name ?? null]);
  assert.deepEqual(blocks, [
    [0, 'text', null],
    [1, 'tool_use', 'a'],
    [2, 'tool_use', 'b'],
  ]);
  const json = (i: number) =>
    events
      .filter((e) => e.type === 'content_block_delta' && e.index === i)
      .map((e) => e.delta.partial_json)
      .join('');
  assert.equal(json(1), '{"x":1}');
  assert.equal(json(2), '{}');
  const delta = events.find((e) => e.type === 'message_delta')!;
  assert.equal(delta.delta.stop_reason, 'tool_use');
  assert.equal(delta.usage.output_tokens, 4);
  assert.equal(types.at(-1), 'message_stop');
});

test('a mid-stream failure becomes an SSE error event; a stream that ends early gets one too', async () => {
  for (const end of ['fail', 'early'] as const) {
    const s = new ChatToMessagesStream('m');
    let out = '';
    s.on('data', (d: Buffer) => (out += d.toString()));
    s.write(`data: ${JSON.stringify({ id: 'chatcmpl-2', choices: [{ delta: { content: 'par' } }] })}\n\n`);
    if (end === 'fail') s.fail('connection reset');
    else s.end();
    await new Promise((r) => s.on('end', r));
    assert.match(out, /event: error\ndata: \{"type":"error","error":\{"type":"api_error","message":"[^"]+"\}\}/);
    assert.doesNotMatch(out, /message_stop/);
  }
});

describe('the SDK through the gateway to an OpenAI-compatible server', () => {
  let openai: FakeOpenAI;
  let gw: Gateway;
  before(async () => {
    openai = await startFakeOpenAI();
    const providers = `  local:\n    type: openai\n    base_url: ${openai.url}/v1\n    keys: [ "sk-openai-test" ]\n    models: { claude-sonnet-4-6: local-llama }\n    retries: { max: 0 }\n`;
    ({ gw } = await startTestGateway({ upstream: openai.url, providers, rules: { 'r.yaml': 'version: 1\nrules:\n  - id: local\n    actions: [ { route_to: { provider: local } } ]\n' } }));
  });
  after(async () => {
    await gw.close();
    await openai.close();
  });
  const client = () => new Anthropic({ apiKey: 'sk-ant-client', baseURL: gw.url, maxRetries: 0 });
  const tools = [{ name: 'get_weather', description: 'Weather', input_schema: { type: 'object' as const, properties: { city: { type: 'string' } } } }];

  test('text, JSON and streaming: the stream helper accumulates the non-streaming answer', async () => {
    const params = { model: 'claude-sonnet-4-6', max_tokens: 100, messages: [{ role: 'user' as const, content: 'hi' }] };
    const json = await client().messages.create(params);
    const streamed = await client().messages.stream(params).finalMessage();
    assert.deepEqual(json.content, [{ type: 'text', text: 'Hello from OpenAI. System turns: 0.' }]);
    assert.deepEqual(streamed.content, json.content);
    assert.equal(streamed.stop_reason, json.stop_reason);
    assert.deepEqual(streamed.usage.output_tokens, json.usage.output_tokens);
    assert.equal(json.usage.cache_read_input_tokens, 100);
    const sent = openai.received.at(-1)!;
    assert.equal(sent.body.model, 'local-llama');
    assert.equal(sent.headers.authorization, 'Bearer sk-openai-test');
    assert.equal(sent.headers['x-api-key'], undefined, "the client's Anthropic key never goes to another vendor");
  });

  test('a full tool round trip, and two parallel tool calls, streaming and not', async () => {
    for (const stream of [false, true]) {
      const create = (messages: Anthropic.MessageParam[]) =>
        stream
          ? client().messages.stream({ model: 'claude-sonnet-4-6', max_tokens: 100, tools, messages }).finalMessage()
          : client().messages.create({ model: 'claude-sonnet-4-6', max_tokens: 100, tools, messages });
      const first = await create([{ role: 'user', content: 'Weather in two cities?' }]);
      assert.equal(first.stop_reason, 'tool_use');
      const uses = first.content.filter((b): b is Anthropic.ToolUseBlock => b.type === 'tool_use');
      assert.deepEqual(
        uses.map((u) => u.input),
        [
          { city: 'Paris', unit: 'celsius' },
          { city: 'Tokyo', unit: 'celsius' },
        ],
      );
      const second = await create([
        { role: 'user', content: 'Weather in two cities?' },
        { role: 'assistant', content: first.content },
        { role: 'user', content: uses.map((u) => ({ type: 'tool_result' as const, tool_use_id: u.id, content: `sunny in ${(u.input as { city: string }).city}` })) },
      ]);
      assert.equal(second.stop_reason, 'end_turn');
      assert.deepEqual(second.content, [{ type: 'text', text: 'Tool said: sunny in Tokyo' }]);
      const toolMessages = (openai.received.at(-1)!.body.messages as Array<{ role: string; tool_call_id?: string }>).filter((m) => m.role === 'tool');
      assert.deepEqual(
        toolMessages.map((m) => m.tool_call_id),
        uses.map((u) => u.id),
      );
    }
  });

  test('an image and a mid-conversation system turn', async () => {
    const m = await client().messages.create({
      model: 'claude-sonnet-4-6',
      max_tokens: 100,
      messages: [
        { role: 'user', content: 'first' },
        { role: 'assistant', content: 'ok' },
        { role: 'system', content: 'Be terse from now on.' } as unknown as Anthropic.MessageParam,
        {
          role: 'user',
          content: [
            { type: 'text', text: 'what is this?' },
            { type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'iVBORw0KGgo=' } },
          ],
        },
      ],
    });
    assert.deepEqual(m.content, [{ type: 'text', text: 'Hello from OpenAI. I see an image. System turns: 1.' }]);
  });

  test('count_tokens is an estimate; upstream errors come back in Anthropic shape naming the provider', async () => {
    const r = await request(gw.url + '/v1/messages/count_tokens', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'claude-sonnet-4-6', messages: [{ role: 'user', content: 'x'.repeat(400) }] }),
    });
    assert.equal(r.headers['x-switchyard-estimate'], 'true');
    assert.ok(((await r.body.json()) as { input_tokens: number }).input_tokens >= 100);
    const err = await client()
      .messages.create({ model: 'claude-sonnet-4-6', max_tokens: 5, metadata: { user_id: 'status:401' }, messages: [{ role: 'user', content: 'hi' }] })
      .catch((e: unknown) => e);
    assert.ok(err instanceof Anthropic.AuthenticationError);
    assert.match(JSON.stringify(err.error), /provider \\"local\\" answered 401: fake openai says 401/);
  });
});
