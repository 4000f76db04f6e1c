/**
 * The OpenAI-compatible provider's wire edge (`upstream/providers/openai/wire.ts`) and the model names it shows
 * (`providers/models.ts`), function-level: the headers sent upstream (only what the vendor needs), `/models`
 * answers in Anthropic's shape (`https://platform.claude.com/docs/en/api/models/list`), and answers — JSON, SSE,
 * errors, a body that is not JSON — as Anthropic answers with the vendor's request id.
 */
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { describe, test } from 'node:test';
import type { UpstreamAnswer } from '../src/upstream/client.js';
import { displayName, modelIdOf } from '../src/upstream/providers/models.js';
import { openaiAdapter } from '../src/upstream/providers/openai/index.js';
import { reasoningEffortOf } from '../src/upstream/providers/openai/request.js';
import { CHAT_COMPLETIONS_PATH, fromOpenAI, modelsFromOpenAI, openaiHeaders } from '../src/upstream/providers/openai/wire.js';
import type { ProviderConfig } from '../src/upstream/providers/provider-config.js';

const provider = { name: 'vendor', reasoning_as_thinking: false } as unknown as ProviderConfig;
const answer = (statusCode: number, body: string | string[], headers: Record<string, string> = {}): UpstreamAnswer => ({
  statusCode,
  headers,
  body: Readable.from((Array.isArray(body) ? body : [body]).map((b) => Buffer.from(b))),
});
const json = async (a: UpstreamAnswer) => JSON.parse(await text(a.body)) as Record<string, any>;

test('headers: a key goes as a bearer token, identity encoding, the accept the mode needs, the body length; nothing else', () => {
  const body = Buffer.from('{"x":1}');
  assert.deepEqual(openaiHeaders({ kind: 'key', key: 'sk-vendor' } as never, body, false), {
    'content-type': 'application/json',
    accept: 'application/json',
    'accept-encoding': 'identity',
    'user-agent': 'switchyard',
    authorization: 'Bearer sk-vendor',
    'content-length': '7',
  });
  const streamed = openaiHeaders({ kind: 'none' } as never, null, true);
  assert.equal(streamed.accept, 'text/event-stream');
  assert.equal(streamed.authorization, undefined, 'no credential, no authorization header');
  assert.equal(streamed['content-length'], undefined, 'no body, no length');
  assert.equal(CHAT_COMPLETIONS_PATH, '/chat/completions');
});

test('display names: Claude ids read as Anthropic writes them; dates dropped; other ids are their own', () => {
  assert.equal(displayName('claude-sonnet-4-6'), 'Claude Sonnet 4.6');
  assert.equal(displayName('claude-haiku-4-5-20251001'), 'Claude Haiku 4.5');
  assert.equal(displayName('claude-3-7-sonnet-20250219'), 'Claude 3.7 Sonnet');
  assert.equal(displayName('claude-opus-4'), 'Claude Opus 4');
  assert.equal(displayName('gpt-5.1'), 'gpt-5.1');
  assert.equal(displayName('my-claude-proxy'), 'my-claude-proxy');
  // Version numbers join with dots only when both sides are plain numbers; a date is dropped only at the end.
  const cases: Array<[string, string]> = [
    ['claude-opus-4-10-5', 'Claude Opus 4.10.5'],
    ['claude-10-5', 'Claude 10.5'],
    ['claude-4-1-5', 'Claude 4.1.5'],
    ['claude-4-v2', 'Claude 4 V2'],
    ['claude-4-2x', 'Claude 4 2x'],
    ['claude-v4-5', 'Claude V4 5'],
    ['claude-4x-5', 'Claude 4x 5'],
    ['claude-12345678-x', 'Claude 12345678 X'],
    ['claude-x-1234567', 'Claude X 1234567'],
  ];
  for (const [id, want] of cases) assert.equal(displayName(id), want, id);
  assert.equal(modelIdOf('/v1/models'), null);
  assert.equal(modelIdOf('/v1/models/claude-opus-4-1?beta=true'), 'claude-opus-4-1');
  assert.equal(modelIdOf('/v1/models/org%2Fmodel'), 'org/model', 'decoded');
  assert.equal(modelIdOf('/x/v1/models/m'), null, 'only the path /v1/models/{id}');
  assert.equal(modelIdOf('/v1/models/m/extra'), 'm/extra', 'the rest of the path is the id');
});

test('a model list becomes one page of Anthropic model objects; created (epoch seconds) becomes created_at', async () => {
  const list = await json(
    await modelsFromOpenAI(answer(200, JSON.stringify({ object: 'list', data: [{ id: 'gpt-5.1', created: 1_700_000_000 }, { id: 'claude-sonnet-4-6' }, { id: 'x', created: -5 }] })), provider),
  );
  assert.deepEqual(list, {
    data: [
      { type: 'model', id: 'gpt-5.1', display_name: 'gpt-5.1', created_at: '2023-11-14T22:13:20.000Z' },
      { type: 'model', id: 'claude-sonnet-4-6', display_name: 'Claude Sonnet 4.6', created_at: '1970-01-01T00:00:00.000Z' },
      { type: 'model', id: 'x', display_name: 'x', created_at: '1970-01-01T00:00:00.000Z' },
    ],
    has_more: false,
    first_id: 'gpt-5.1',
    last_id: 'x',
  });
  const empty = await json(await modelsFromOpenAI(answer(200, '{"data":[]}'), provider));
  assert.deepEqual(empty, { data: [], has_more: false, first_id: null, last_id: null });
  const one = await modelsFromOpenAI(answer(200, '{"id":"gpt-5.1","created":1}'), provider);
  assert.equal(one.statusCode, 200);
  assert.equal(one.headers['content-type'], 'application/json');
  assert.deepEqual(await json(one), { type: 'model', id: 'gpt-5.1', display_name: 'gpt-5.1', created_at: '1970-01-01T00:00:01.000Z' });
});

test('a model list error keeps its status as an Anthropic error naming the provider; a list that is not JSON is a 502', async () => {
  const notFound = await modelsFromOpenAI(answer(404, '{"error":{"message":"no such model"}}'), provider);
  assert.equal(notFound.statusCode, 404);
  assert.deepEqual(await json(notFound), { type: 'error', error: { type: 'not_found_error', message: 'provider "vendor" answered 404: no such model' } });
  const garbled = await modelsFromOpenAI(answer(200, '<html>proxy</html>'), provider);
  assert.equal(garbled.statusCode, 502);
  assert.deepEqual(await json(garbled), { type: 'error', error: { type: 'api_error', message: 'provider "vendor" answered 502: <html>proxy</html>' } });
});

test("a JSON answer becomes an Anthropic message with the client's model and the vendor's request id", async () => {
  const chat = {
    id: 'chatcmpl-1',
    object: 'chat.completion',
    model: 'gpt-5.1',
    choices: [{ index: 0, message: { role: 'assistant', content: 'hello' }, finish_reason: 'stop' }],
    usage: { prompt_tokens: 12, completion_tokens: 3 },
  };
  const a = await fromOpenAI(answer(200, JSON.stringify(chat), { 'content-type': 'application/json', 'x-request-id': 'vreq-1' }), provider, 'claude-sonnet-4-6');
  assert.equal(a.statusCode, 200);
  assert.deepEqual(a.headers, { 'request-id': 'vreq-1', 'content-type': 'application/json' });
  const m = await json(a);
  assert.equal(m.type, 'message');
  assert.equal(m.model, 'claude-sonnet-4-6');
  assert.deepEqual(m.content, [{ type: 'text', text: 'hello' }]);
  assert.equal(m.stop_reason, 'end_turn');
  assert.equal(m.usage.input_tokens, 12);
  const noId = await fromOpenAI(answer(200, JSON.stringify(chat), { 'content-type': 'application/json', 'request-id': 'alt-7' }), provider, 'm');
  assert.equal(noId.headers['request-id'], 'alt-7', 'request-id is read when x-request-id is absent');
  const none = await fromOpenAI(answer(200, JSON.stringify(chat), {}), provider, 'm');
  assert.equal(none.headers['request-id'], undefined, 'never an empty request-id header');
});

test('an error answer keeps its status as an Anthropic error; a body that is not a completion is a 502 naming the provider', async () => {
  const limited = await fromOpenAI(answer(429, '{"error":{"message":"slow down"}}', { 'x-request-id': 'vreq-2' }), provider, 'm');
  assert.equal(limited.statusCode, 429);
  assert.equal(limited.headers['request-id'], 'vreq-2');
  assert.deepEqual(await json(limited), { type: 'error', error: { type: 'rate_limit_error', message: 'provider "vendor" answered 429: slow down' } });
  const garbled = await fromOpenAI(answer(200, 'upstream proxy error', { 'content-type': 'text/plain' }), provider, 'm');
  assert.equal(garbled.statusCode, 502);
  assert.deepEqual(await json(garbled), { type: 'error', error: { type: 'api_error', message: 'provider "vendor" answered 502: upstream proxy error' } });
});

test('an SSE answer is translated as it streams; a stream that breaks ends with an error event naming the provider', async () => {
  const chunk = (delta: Record<string, unknown>, finish: string | null = null) => `data: ${JSON.stringify({ id: 'c', choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
  const ok = await fromOpenAI(answer(200, [chunk({ role: 'assistant', content: 'hi' }), chunk({}, 'stop'), 'data: [DONE]\n\n'], { 'content-type': 'text/event-stream' }), provider, 'claude-x');
  assert.equal(ok.statusCode, 200);
  assert.equal(ok.headers['content-type'], 'text/event-stream; charset=utf-8');
  const sse = await text(ok.body);
  assert.match(sse, /^event: message_start\n/);
  assert.match(sse, /"text":"hi"/);
  assert.match(sse, /"model":"claude-x"/);
  assert.match(sse, /event: message_stop\n/);

  const broken = new Readable({ read() {} });
  const relayed = await fromOpenAI({ statusCode: 200, headers: { 'content-type': 'text/event-stream' }, body: broken }, provider, 'claude-x');
  broken.push(Buffer.from(chunk({ role: 'assistant', content: 'par' })));
  setImmediate(() => broken.destroy(new Error('socket hang up')));
  const out = await text(relayed.body);
  assert.match(out, /"text":"par"/);
  assert.match(out, /event: error\n.*provider \\"vendor\\" stream failed: socket hang up/s);
});

test('reasoning_effort from thinking: budget_tokens under 8k low, under 24k medium, else high; adaptive by effort; none when off', () => {
  const cases: Array<[Record<string, unknown>, string | null]> = [
    [{}, null],
    [{ thinking: { type: 'disabled' } }, null],
    [{ thinking: { type: 'enabled', budget_tokens: 1024 } }, 'low'],
    [{ thinking: { type: 'enabled', budget_tokens: 7999 } }, 'low'],
    [{ thinking: { type: 'enabled', budget_tokens: 8000 } }, 'medium'],
    [{ thinking: { type: 'enabled', budget_tokens: 23999 } }, 'medium'],
    [{ thinking: { type: 'enabled', budget_tokens: 24000 } }, 'high'],
    [{ thinking: { type: 'enabled', budget_tokens: 'lots' } }, 'medium'],
    [{ thinking: { type: 'adaptive' } }, 'medium'],
    [{ thinking: { type: 'adaptive' }, output_config: { effort: 'low' } }, 'low'],
    [{ thinking: { type: 'adaptive' }, output_config: { effort: 'high' } }, 'high'],
    [{ thinking: { type: 'adaptive' }, output_config: { effort: 'max' } }, 'high'],
    [{ thinking: { type: 'adaptive' }, output_config: { effort: 'extreme' } }, 'medium'],
  ];
  for (const [body, want] of cases) assert.equal(reasoningEffortOf(body), want, JSON.stringify(body));
});

describe('the type: openai adapter', () => {
  const req = (endpoint: string, pathAndQuery = '/v1/messages', stream = false) =>
    ({
      endpoint,
      pathAndQuery,
      headers: { 'x-api-key': 'sk-ant-client' },
      raw: null,
      body: {},
      decision: {
        body: { model: 'claude-sonnet-4-6', max_tokens: 10, system: 'be brief', messages: [{ role: 'user', content: 'hi' }], thinking: { type: 'enabled', budget_tokens: 30000 } },
        bodyChanged: false,
        headers: { set: {}, remove: [] },
        route: {},
      },
      stream,
    }) as never;
  const p = (over: Record<string, unknown> = {}) => ({ name: 'vendor', strip_attribution: true, reasoning_effort: true, reasoning_as_thinking: false, ...over }) as never;

  test("a Messages request becomes a Chat Completions POST; the client's Anthropic credential never goes to the vendor", () => {
    const out = openaiAdapter.request(req('messages', '/v1/messages', true), p(), 'gpt-5.1');
    assert.equal(out.method, 'POST');
    assert.equal(out.pathAndQuery, '/chat/completions');
    const body = JSON.parse(out.body!.toString());
    assert.equal(body.model, 'gpt-5.1');
    assert.equal(body.reasoning_effort, 'high');
    assert.deepEqual(body.messages[0], { role: 'system', content: 'be brief' });
    const asClient = out.headers({ kind: 'client' } as never);
    assert.equal(asClient.authorization, undefined);
    assert.equal(JSON.stringify(asClient).includes('sk-ant-client'), false);
    assert.equal(asClient.accept, 'text/event-stream');
    assert.equal(out.headers({ kind: 'key', key: 'sk-v' } as never).authorization, 'Bearer sk-v');
    const noEffort = JSON.parse(openaiAdapter.request(req('messages'), p({ reasoning_effort: false }), 'gpt-5.1').body!.toString());
    assert.equal('reasoning_effort' in noEffort, false, 'reasoning_effort only for a provider that takes it');
  });

  test('model lists go to /models and /models/{id}; count_tokens is answered locally with the estimate', () => {
    const list = openaiAdapter.request(req('models', '/v1/models?limit=5'), p(), 'x');
    assert.deepEqual([list.method, list.pathAndQuery, list.body], ['GET', '/models', null]);
    assert.equal(list.headers({ kind: 'client' } as never).authorization, undefined);
    assert.equal(openaiAdapter.request(req('models', '/v1/models/org%2Fm'), p(), 'x').pathAndQuery, '/models/org%2Fm');
    const local = openaiAdapter.local(req('count_tokens'), 1234);
    assert.deepEqual(local, { status: 200, headers: { 'content-type': 'application/json', 'x-switchyard-estimate': 'true' }, body: '{"input_tokens":1234}' });
    assert.equal(openaiAdapter.local(req('messages'), 1), null);
  });

  test('answers: messages translated, model lists reshaped, anything else passed through', async () => {
    const passed = answer(200, 'as is');
    assert.equal(await openaiAdapter.answer(passed, p(), req('count_tokens'), 'm', {} as never), passed);
    const models = await openaiAdapter.answer(answer(200, '{"data":[{"id":"a"}]}'), p(), req('models'), 'm', {} as never);
    assert.equal((await json(models)).first_id, 'a');
    const msg = await openaiAdapter.answer(
      answer(200, JSON.stringify({ choices: [{ message: { content: 'x' }, finish_reason: 'length' }] }), { 'content-type': 'application/json' }),
      p(),
      req('messages'),
      'claude-m',
      {} as never,
    );
    assert.equal((await json(msg)).stop_reason, 'max_tokens');
  });
});
