/**
 * Claude Code's gateway protocol (code.claude.com/docs/en/llm-gateway-protocol) where a provider is not
 * Anthropic: the attribution line Claude Code puts first in its system prompt is dropped before an
 * OpenAI-compatible provider (its per-request `cch` defeats their prefix caches) and kept byte for byte for
 * Anthropic; the options that say so are refused on the provider type they do not apply to.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { request } from 'undici';
import { loadConfig } from '../src/config.js';
import { reasoningEffortOf, toChatCompletions, withoutAttribution } from '../src/upstream/providers/openai/request.js';
import { LoadError } from '../src/validation.js';
import { startFakeOpenAI, type FakeOpenAI } from './fake-openai.js';
import { startFakeUpstream, type FakeUpstream } from './fake-upstream.js';
import { claudeCodeBody, startTestGateway, writeConfig } from './helpers.js';

const LINE = 'x-anthropic-billing-header: cc_version=2.1.153.d02; cc_entrypoint=cli; cch=4873d;';

let openai: FakeOpenAI;
let fake: FakeUpstream;
before(async () => {
  openai = await startFakeOpenAI();
  fake = await startFakeUpstream();
});
after(async () => {
  await openai.close();
  await fake.close();
});

/** Claude Code's body with a real-shaped attribution line as its first system block. */
function body(): Record<string, unknown> {
  const b = claudeCodeBody({ targetBytes: 8000, stream: false });
  (b.system as Array<{ text: string }>)[0]!.text = LINE;
  return b;
}

const send = (url: string, b: Record<string, unknown>) =>
  request(url + '/v1/messages?beta=true', { method: 'POST', headers: { 'content-type': 'application/json', 'anthropic-version': '2023-06-01' }, body: JSON.stringify(b) });

describe('the system-prompt attribution block', () => {
  const openaiProvider = (extra = '') => `  local:\n    type: openai\n    base_url: ${openai.url}/v1\n    auth: none\n    retries: { max: 0 }\n${extra}`;
  const route = { '50.yaml': 'version: 1\nrules:\n  - id: r\n    actions: [ { route_to: { provider: local } } ]\n' };

  test('dropped before an OpenAI-compatible provider, the rest of the system prompt kept in order', async () => {
    const { gw } = await startTestGateway({ upstream: openai.url, providers: openaiProvider(), rules: route });
    try {
      const r = await send(gw.url, body());
      assert.equal(r.statusCode, 200);
      await r.body.dump();
      const system = openai.received.at(-1)!.body.messages[0] as { role: string; content: string };
      assert.equal(system.role, 'system');
      assert.ok(!system.content.includes('x-anthropic-billing-header'), 'the attribution line is gone');
      assert.ok(system.content.startsWith('System sentence 0'), 'the next block now leads');
      assert.ok(system.content.includes('Context sentence 0'));
    } finally {
      await gw.close();
    }
  });

  test('kept when strip_attribution: false', async () => {
    const { gw } = await startTestGateway({ upstream: openai.url, providers: openaiProvider('    strip_attribution: false\n'), rules: route });
    try {
      await (await send(gw.url, body())).body.dump();
      const system = openai.received.at(-1)!.body.messages[0] as { content: string };
      assert.ok(system.content.startsWith(LINE));
    } finally {
      await gw.close();
    }
  });

  test('never touched for an Anthropic provider: the body goes byte for byte', async () => {
    const { gw } = await startTestGateway({ upstream: fake.url });
    try {
      const b = body();
      await (await send(gw.url, b)).body.dump();
      assert.equal(fake.received.at(-1)!.body.toString(), JSON.stringify(b));
    } finally {
      await gw.close();
    }
  });

  test('the line is removed from a string system prompt and from a block it starts; other blocks are untouched', () => {
    assert.equal(withoutAttribution(`${LINE}\nYou are Claude Code.`), 'You are Claude Code.');
    assert.deepEqual(
      withoutAttribution([
        { type: 'text', text: LINE },
        { type: 'text', text: 'B', cache_control: { type: 'ephemeral' } },
      ]),
      [{ type: 'text', text: 'B', cache_control: { type: 'ephemeral' } }],
    );
    assert.deepEqual(withoutAttribution([{ type: 'text', text: `${LINE}\nrest` }]), [{ type: 'text', text: 'rest' }]);
    const later = [
      { type: 'text', text: 'A' },
      { type: 'text', text: `quoting ${LINE}` },
    ];
    assert.deepEqual(withoutAttribution(later), later, 'only a block that starts with it');
    assert.equal(withoutAttribution(undefined), undefined);
  });
});

describe('thinking → reasoning_effort', () => {
  test('budget_tokens by band, adaptive by output_config.effort, off or absent: none', () => {
    const cases: Array<[Record<string, unknown>, string | null]> = [
      [{ thinking: { type: 'enabled', budget_tokens: 1024 } }, 'low'],
      [{ thinking: { type: 'enabled', budget_tokens: 7999 } }, 'low'],
      [{ thinking: { type: 'enabled', budget_tokens: 8000 } }, 'medium'],
      [{ thinking: { type: 'enabled', budget_tokens: 23999 } }, 'medium'],
      [{ thinking: { type: 'enabled', budget_tokens: 24000 } }, 'high'],
      [{ thinking: { type: 'enabled' } }, 'medium'],
      [{ thinking: { type: 'adaptive' }, output_config: { effort: 'low' } }, 'low'],
      [{ thinking: { type: 'adaptive' }, output_config: { effort: 'high' } }, 'high'],
      [{ thinking: { type: 'adaptive' }, output_config: { effort: 'max' } }, 'high'],
      [{ thinking: { type: 'adaptive' } }, 'medium'],
      [{ thinking: { type: 'disabled' } }, null],
      [{}, null],
    ];
    for (const [body, want] of cases) assert.equal(reasoningEffortOf(body), want, JSON.stringify(body));
  });

  test('sent only to a provider that declares it; otherwise thinking is dropped and listed', () => {
    const b = { model: 'm', max_tokens: 10, messages: [], thinking: { type: 'enabled', budget_tokens: 16000 }, output_config: { effort: 'high' } };
    const on = toChatCompletions(b, 'o3-mini', { reasoningEffort: true });
    assert.equal(on.body.reasoning_effort, 'medium');
    assert.deepEqual(on.dropped, []);
    const off = toChatCompletions(b, 'llama', {});
    assert.equal(off.body.reasoning_effort, undefined);
    assert.deepEqual(off.dropped, ['thinking', 'output_config']);
  });

  test('through the gateway to a provider with reasoning_effort: true', async () => {
    const providers = `  local:\n    type: openai\n    base_url: ${openai.url}/v1\n    auth: none\n    reasoning_effort: true\n    retries: { max: 0 }\n`;
    const { gw } = await startTestGateway({ upstream: openai.url, providers, rules: { '50.yaml': 'version: 1\nrules:\n  - id: r\n    actions: [ { route_to: { provider: local } } ]\n' } });
    try {
      await (await send(gw.url, body())).body.dump(); // Claude Code's body: adaptive thinking, effort high
      assert.equal(openai.received.at(-1)!.body.reasoning_effort, 'high');
    } finally {
      await gw.close();
    }
  });
});

/** Claude Code's headers on every request (CLAUDE_CODE_TRAFFIC.md), with this session's id. */
const CC_HEADERS = {
  accept: 'application/json',
  'content-type': 'application/json',
  'user-agent': 'claude-cli/2.1.0 (external, sdk-cli)',
  'x-claude-code-session-id': '3f0c1d2e-0000-4000-8000-00000000c0de',
  'x-app': 'cli',
  'anthropic-version': '2023-06-01',
  'anthropic-beta': 'claude-code-20250219,interleaved-thinking-2025-05-14,context-management-2025-06-27',
  'anthropic-dangerous-direct-browser-access': 'true',
  'x-api-key': 'sk-ant-client-key',
  'x-stainless-lang': 'js',
  'x-stainless-retry-count': '0',
  'x-stainless-timeout': '600',
};

/** Claude Code's request shapes: the main turn (with a mid-conversation system turn), a tool round trip, a background call. */
function shapes(): Array<{ name: string; path: string; body: Record<string, unknown> }> {
  const main = claudeCodeBody({ targetBytes: 12_000, stream: true });
  (main.messages as unknown[]).unshift({ role: 'user', content: 'earlier turn' }, { role: 'assistant', content: 'noted' }, { role: 'system', content: 'A mid-conversation system turn.' });
  const round = claudeCodeBody({ targetBytes: 12_000, stream: true });
  (round.messages as unknown[]).push(
    { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_01', name: 'tool_1', input: { path: 'a.ts' } }] },
    { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_01', content: 'file contents' }] },
  );
  const background = { model: 'claude-haiku-4-5', max_tokens: 512, stream: false, messages: [{ role: 'user', content: 'Write a 3-word title.' }] };
  return [
    { name: 'main turn', path: '/v1/messages?beta=true', body: main },
    { name: 'tool round trip', path: '/v1/messages?beta=true', body: round },
    { name: 'background call', path: '/v1/messages?beta=true', body: background },
    { name: 'count_tokens', path: '/v1/messages/count_tokens?beta=true', body: { model: 'claude-sonnet-4-6', messages: [{ role: 'user', content: 'count me' }] } },
  ];
}

describe("Claude Code's request shapes through each provider type", () => {
  test('anthropic: every shape forwarded byte for byte with its path, query and headers; HEAD / and GET /v1/models', async () => {
    const { gw } = await startTestGateway({ upstream: fake.url });
    try {
      const head = await request(gw.url + '/', { method: 'HEAD' });
      assert.equal(head.statusCode, 200);
      for (const shape of shapes()) {
        const before = fake.received.length;
        const text = JSON.stringify(shape.body);
        const r = await request(gw.url + shape.path, { method: 'POST', headers: CC_HEADERS, body: text });
        assert.equal(r.statusCode, 200, shape.name);
        await r.body.dump();
        assert.equal(fake.received.length, before + 1, `${shape.name}: one upstream call (HEAD / made none)`);
        const got = fake.received.at(-1)!;
        assert.equal(got.url, shape.path);
        assert.equal(got.body.toString(), text, `${shape.name}: the body byte for byte`);
        for (const [name, value] of Object.entries(CC_HEADERS)) assert.equal(got.headers[name], value, `${shape.name}: ${name}`);
      }
      const models = await request(gw.url + '/v1/models', { headers: CC_HEADERS });
      assert.equal(models.statusCode, 200);
      await models.body.dump();
      assert.equal(fake.received.at(-1)!.url, '/v1/models');
    } finally {
      await gw.close();
    }
  });

  test('openai-compatible: every shape answered in Anthropic format; count_tokens says it is an estimate; /v1/models in Anthropic shape', async () => {
    const providers = `  local:\n    type: openai\n    base_url: ${openai.url}/v1\n    auth: none\n    retries: { max: 0 }\n`;
    const { gw } = await startTestGateway({ upstream: openai.url, providers, rules: { '50.yaml': 'version: 1\nrules:\n  - id: r\n    actions: [ { route_to: { provider: local } } ]\n' } });
    try {
      for (const shape of shapes()) {
        const r = await request(gw.url + shape.path, { method: 'POST', headers: CC_HEADERS, body: JSON.stringify(shape.body) });
        assert.equal(r.statusCode, 200, shape.name);
        assert.ok(String(r.headers['request-id'] ?? '').length > 0, `${shape.name}: a request-id`);
        const text = await r.body.text();
        if (shape.name === 'count_tokens') {
          assert.equal(r.headers['x-switchyard-estimate'], 'true');
          assert.ok((JSON.parse(text) as { input_tokens: number }).input_tokens > 0);
        } else if (shape.body.stream) {
          const names = [...text.matchAll(/^event: (.+)$/gm)].map((m) => m[1]);
          assert.equal(names[0], 'message_start');
          assert.deepEqual(names.slice(-2), ['message_delta', 'message_stop'], shape.name);
        } else {
          assert.equal((JSON.parse(text) as { type: string }).type, 'message');
        }
      }
      // count_tokens is answered by the gateway: the vendor saw the main turn, the round trip, the background call.
      const sent = openai.received.filter((r) => r.url === '/v1/chat/completions');
      const mainTurn = sent.at(-3)!.body as { messages: Array<{ role: string; content: unknown }> };
      assert.ok(
        mainTurn.messages.some((m, i) => i > 0 && m.role === 'system' && m.content === 'A mid-conversation system turn.'),
        'the mid-conversation system turn reaches the vendor as a system message',
      );
      const roundTrip = sent.at(-2)!.body as { messages: Array<{ role: string; tool_call_id?: string; content: unknown }> };
      assert.deepEqual(roundTrip.messages.at(-1), { role: 'tool', tool_call_id: 'toolu_01', content: 'file contents' });
      const models = await request(gw.url + '/v1/models', { headers: CC_HEADERS });
      assert.equal(models.statusCode, 200);
      assert.deepEqual(await models.body.json(), {
        data: [
          { type: 'model', id: 'local-llama', display_name: 'local-llama', created_at: '2025-01-01T00:00:00.000Z' },
          { type: 'model', id: 'qwen3-coder', display_name: 'qwen3-coder', created_at: '2025-01-02T00:00:00.000Z' },
        ],
        has_more: false,
        first_id: 'local-llama',
        last_id: 'qwen3-coder',
      });
    } finally {
      await gw.close();
    }
  });
});

describe('provider options that apply to one type', () => {
  const load = (providers: string) => () => loadConfig(writeConfig({ upstream: '', providers }).configFile);
  test('betas on an OpenAI-compatible provider, strip_attribution on an Anthropic one: refused naming the provider', () => {
    assert.throws(
      load('  x:\n    type: openai\n    base_url: http://127.0.0.1:1/v1\n    betas: [a]\n'),
      (e: unknown) => e instanceof LoadError && /provider "x": betas applies to type: anthropic, bedrock, vertex or foundry providers only/.test(e.message),
    );
    assert.throws(
      load('  anthropic:\n    type: anthropic\n    base_url: http://127.0.0.1:1\n    strip_attribution: true\n'),
      (e: unknown) => e instanceof LoadError && /provider "anthropic": strip_attribution applies to type: openai providers only/.test(e.message),
    );
    assert.throws(
      load('  anthropic:\n    type: anthropic\n    base_url: http://127.0.0.1:1\n    reasoning_effort: true\n'),
      (e: unknown) => e instanceof LoadError && /reasoning_effort applies to type: openai providers only/.test(e.message),
    );
    const ok = loadConfig(writeConfig({ upstream: '', providers: '  x:\n    type: openai\n    base_url: http://127.0.0.1:1/v1\n' }).configFile);
    assert.equal(ok.providers.x!.strip_attribution, true, 'on by default for OpenAI-compatible providers');
    assert.equal(ok.providers.x!.betas, null);
  });

  test('cloud providers: region (and project) required, base_url defaulted from them, keys refused on Vertex', () => {
    const refused = (providers: string, message: RegExp) => assert.throws(load(providers), (e: unknown) => e instanceof LoadError && message.test(e.message));
    refused('  b:\n    type: bedrock\n', /provider "b": type: bedrock needs region: \(the AWS region to call and sign for/);
    refused('  v:\n    type: vertex\n    project: p\n', /provider "v": type: vertex needs region: \(the Vertex AI location/);
    refused('  v:\n    type: vertex\n    region: us-east5\n', /provider "v": type: vertex needs project:/);
    refused('  v:\n    type: vertex\n    region: us-east5\n    project: p\n    keys: [ k ]\n', /provider "v": keys: does not apply to type: vertex/);
    refused('  a:\n    type: anthropic\n', /provider "a": base_url is required for type: anthropic/);
    refused('  a:\n    type: anthropic\n    base_url: http://127.0.0.1:1\n    region: us-east-1\n', /provider "a": region applies to type: bedrock or vertex providers only/);
    refused('  b:\n    type: bedrock\n    region: us-east-1\n    project: p\n', /provider "b": project applies to type: vertex providers only/);
    const c = loadConfig(
      writeConfig({
        upstream: '',
        providers:
          '  b:\n    type: bedrock\n    region: eu-central-1\n    aws_profile: claude\n  v:\n    type: vertex\n    region: us-east5\n    project: p\n    credentials_file: sa.json\n  g:\n    type: vertex\n    region: global\n    project: p\n',
      }).configFile,
    );
    assert.equal(c.providers.b!.base_url, 'https://bedrock-runtime.eu-central-1.amazonaws.com');
    assert.deepEqual(c.providers.b!.bedrock, { region: 'eu-central-1', profile: 'claude' });
    assert.equal(c.providers.v!.base_url, 'https://us-east5-aiplatform.googleapis.com');
    assert.equal(c.providers.v!.vertex!.credentials_file, path.join(path.dirname(c.file), 'sa.json'), 'relative to the config file');
    assert.equal(c.providers.g!.base_url, 'https://aiplatform.googleapis.com');
    assert.equal(c.providers.g!.vertex!.credentials_file, null);
  });
});
