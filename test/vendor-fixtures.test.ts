/**
 * Recorded streams of eleven OpenAI-compatible vendors (test/fixtures/vendors, sources in its SOURCES.md)
 * replayed through the gateway to the real @anthropic-ai/sdk with Claude Code's typical request (tools,
 * `stream: true`). Each answer must be a well-formed Anthropic stream: `message_start` first, contiguous block
 * indices with one block open at a time, exactly one `tool_use` block per call with a non-empty id unique in
 * the answer and an input that parses, `stop_reason: tool_use` whenever a call is present, and the usage the
 * vendor reported (reasoning included). Each stream is replayed with and without `data: [DONE]`.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import Anthropic from '@anthropic-ai/sdk';
import type { Gateway } from '../src/server/serve.js';
import { claudeCodeBody, startTestGateway } from './helpers.js';

const DIR = path.join(import.meta.dirname, 'fixtures/vendors');

interface Expected {
  text?: string;
  calls: Array<{ name: string; input: unknown }>;
  usage: { input_tokens: number; output_tokens: number; cache_read_input_tokens?: number };
  /** The stream ends in an error event with this message. */
  error?: RegExp;
}

const EXPECTED: Record<string, Expected> = {
  'openai-tool-call.jsonl': { calls: [{ name: 'get_weather', input: { location: 'Tokyo' } }], usage: { input_tokens: 67, output_tokens: 31 } },
  'azure-text.jsonl': { text: 'Hello World', calls: [], usage: { input_tokens: 15, output_tokens: 5 } },
  'deepseek-reasoning-tool-call.jsonl': { calls: [{ name: 'weather', input: { location: 'San Francisco' } }], usage: { input_tokens: 118, output_tokens: 61, cache_read_input_tokens: 256 } },
  'groq-tool-call.jsonl': { calls: [{ name: 'weather', input: {} }], usage: { input_tokens: 210, output_tokens: 15 } },
  // xAI reports 196 reasoning tokens outside completion_tokens (total = prompt + completion + reasoning).
  'xai-tool-call.jsonl': { calls: [{ name: 'weather', input: { location: 'San Francisco' } }], usage: { input_tokens: 1, output_tokens: 222, cache_read_input_tokens: 290 } },
  'mistral-thinking.jsonl': { text: '391', calls: [], usage: { input_tokens: 28, output_tokens: 139 } },
  'moonshot-indexless-tool-calls.jsonl': {
    calls: [
      { name: 'weather', input: { location: 'San Francisco' } },
      { name: 'time', input: { zone: 'UTC' } },
    ],
    usage: { input_tokens: 61, output_tokens: 25 },
  },
  'moonshot-stream-error.jsonl': { text: 'Partial', calls: [], usage: { input_tokens: 0, output_tokens: 0 }, error: /Stream failed/ },
  'alibaba-qwen-tool-call.jsonl': { calls: [{ name: 'weather', input: { location: 'San Francisco' } }], usage: { input_tokens: 295, output_tokens: 22 } },
  'cerebras-glm-reasoning-tool-call.jsonl': { calls: [{ name: 'nonUsefulTool', input: {} }], usage: { input_tokens: 66, output_tokens: 104, cache_read_input_tokens: 256 } },
  'ollama-parallel-tool-calls.jsonl': {
    calls: [
      { name: 'run_command', input: { command: 'ls' } },
      { name: 'run_command', input: { command: 'ls -l' } },
    ],
    usage: { input_tokens: 0, output_tokens: 0 },
  },
};

/**
 * A loopback vendor that answers every Chat Completions call with the recording its `model` names
 * (`<file>` or `<file>+done`): the gateway sends an OpenAI-compatible server only the headers it needs, so the
 * model is how the test picks the recording.
 */
let vendor: Server;
let vendorUrl: string;
let gw: Gateway;
before(async () => {
  vendor = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const [file, flag] = String((JSON.parse(Buffer.concat(chunks).toString()) as { model: string }).model).split('+');
      const done = flag === 'done';
      const lines = readFileSync(path.join(DIR, file ?? ''), 'utf8')
        .split('\n')
        .filter(Boolean);
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      for (const line of lines) res.write(`data: ${line}\n\n`);
      res.end(done ? 'data: [DONE]\n\n' : '');
    });
  });
  await new Promise<void>((resolve) => vendor.listen(0, '127.0.0.1', resolve));
  vendorUrl = `http://127.0.0.1:${(vendor.address() as AddressInfo).port}`;
  const providers = `  vendor:\n    type: openai\n    base_url: ${vendorUrl}/v1\n    auth: none\n    retries: { max: 0 }\n`;
  ({ gw } = await startTestGateway({ upstream: vendorUrl, providers, rules: { '50.yaml': 'version: 1\nrules:\n  - id: r\n    actions: [ { route_to: { provider: vendor } } ]\n' } }));
});
after(async () => {
  await gw.close();
  await new Promise((resolve) => vendor.close(resolve));
});

/** The raw events of one streamed answer, and the SDK's accumulated message (or its error). */
async function replay(file: string, done: boolean) {
  const client = new Anthropic({ apiKey: 'sk-ant-client', baseURL: gw.url, maxRetries: 0, timeout: 10_000 });
  const body = claudeCodeBody({ targetBytes: 20_000, stream: true, model: done ? `${file}+done` : file }) as unknown as Anthropic.MessageCreateParamsStreaming;
  const stream = client.messages.stream(body);
  const events: Anthropic.MessageStreamEvent[] = [];
  stream.on('streamEvent', (e) => events.push(e));
  let message: Anthropic.Message | null = null;
  let error: Error | null = null;
  try {
    message = await stream.finalMessage();
  } catch (err) {
    error = err as Error;
  }
  return { events, message, error };
}

describe('recorded vendor streams through the gateway', () => {
  for (const [file, want] of Object.entries(EXPECTED)) {
    for (const done of [true, false]) {
      test(`${file.replace('.jsonl', '')} (${done ? 'with' : 'without'} [DONE])`, async () => {
        const { events, message, error } = await replay(file, done);
        assert.equal(events[0]?.type, 'message_start', 'message_start first');
        // One block open at a time, indices contiguous from 0, each delta to the open block.
        let open: number | null = null;
        let next = 0;
        for (const e of events) {
          if (e.type === 'content_block_start') {
            assert.equal(open, null, `block ${e.index} started while ${open} is open`);
            assert.equal(e.index, next++);
            open = e.index;
          } else if (e.type === 'content_block_delta') assert.equal(e.index, open);
          else if (e.type === 'content_block_stop') {
            assert.equal(e.index, open);
            open = null;
          }
        }
        // An error event ends the stream where it is, as Anthropic's own mid-stream errors do.
        if (!want.error) assert.equal(open, null, 'every block stopped');
        if (want.error) {
          assert.ok(error, 'the SDK reports the stream error');
          assert.match(error.message, want.error);
          const text = events.flatMap((e) => (e.type === 'content_block_delta' && e.delta.type === 'text_delta' ? [e.delta.text] : [])).join('');
          assert.equal(text, want.text, 'the text before the error reached the client');
          return;
        }
        assert.equal(error, null, String(error));
        assert.ok(message);
        assert.deepEqual(
          events.slice(-2).map((e) => e.type),
          ['message_delta', 'message_stop'],
        );
        const tools = message.content.filter((b): b is Anthropic.ToolUseBlock => b.type === 'tool_use');
        assert.deepEqual(
          tools.map((t) => ({ name: t.name, input: t.input })),
          want.calls,
        );
        for (const t of tools) assert.ok(t.id.trim().length > 0, 'a non-empty id');
        assert.equal(new Set(tools.map((t) => t.id)).size, tools.length, 'ids unique in the answer');
        assert.equal(message.stop_reason, tools.length ? 'tool_use' : 'end_turn');
        const text = message.content.flatMap((b) => (b.type === 'text' ? [b.text] : [])).join('');
        if (want.text !== undefined) assert.equal(text, want.text);
        assert.equal(message.usage.input_tokens, want.usage.input_tokens, 'input tokens');
        assert.equal(message.usage.output_tokens, want.usage.output_tokens, 'output tokens (reasoning included)');
        assert.equal(message.usage.cache_read_input_tokens ?? 0, want.usage.cache_read_input_tokens ?? 0, 'cache reads');
      });
    }
  }
});

describe('reasoning_as_thinking', () => {
  test("the vendor's reasoning becomes a thinking block before the tool call; it is never sent back upstream", async () => {
    const seen: Array<{ messages: Array<{ role: string; content: unknown }> }> = [];
    const providers = `  vendor:\n    type: openai\n    base_url: ${vendorUrl}/v1\n    auth: none\n    reasoning_as_thinking: true\n    retries: { max: 0 }\n`;
    const own = await startTestGateway({ upstream: vendorUrl, providers, rules: { '50.yaml': 'version: 1\nrules:\n  - id: r\n    actions: [ { route_to: { provider: vendor } } ]\n' } });
    vendor.on('request', (req) => {
      const parts: Buffer[] = [];
      req.on('data', (c: Buffer) => parts.push(c));
      req.on('end', () => seen.push(JSON.parse(Buffer.concat(parts).toString()) as (typeof seen)[number]));
    });
    try {
      const client = new Anthropic({ apiKey: 'sk-ant-client', baseURL: own.gw.url, maxRetries: 0, timeout: 10_000 });
      const file = 'deepseek-reasoning-tool-call.jsonl';
      const first = await client.messages.stream({ model: `${file}+done`, max_tokens: 100, messages: [{ role: 'user', content: 'Weather in SF?' }] }).finalMessage();
      assert.deepEqual(
        first.content.map((b) => b.type),
        ['thinking', 'tool_use'],
      );
      assert.equal((first.content[0] as Anthropic.ThinkingBlock).thinking, 'The user asks about the weather in San Francisco. I should use the weather tool.');
      const tool = first.content[1] as Anthropic.ToolUseBlock;
      await client.messages
        .stream({
          model: `${file}+done`,
          max_tokens: 100,
          messages: [
            { role: 'user', content: 'Weather in SF?' },
            { role: 'assistant', content: first.content as Anthropic.ContentBlockParam[] },
            { role: 'user', content: [{ type: 'tool_result', tool_use_id: tool.id, content: 'sunny' }] },
          ],
        })
        .finalMessage();
      const history = JSON.stringify(seen.at(-1)!.messages);
      assert.ok(history.includes('sunny') && history.includes(tool.id), 'the tool round trip reached the vendor');
      assert.ok(!history.includes('I should use the weather tool'), 'the thinking block was not sent back');
    } finally {
      await own.gw.close();
    }
  });
});
