/**
 * The real Claude Code CLI (npm package @anthropic-ai/claude-code, print mode) through the gateway to an
 * OpenAI-compatible loopback vendor that streams its tool call the hard way — no `index` on any
 * `tool_calls` entry and a blank `id` — and completes a Bash tool round trip: the CLI runs the command the
 * vendor asked for and sends its output back, and the vendor's final answer quotes it.
 *
 * The CLI comes from claude-code-bin.ts (installed once into node_modules/.cache, or `CLAUDE_CODE_BIN`).
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import type { Gateway } from '../src/server/serve.js';
import { runClaudeBashRoundTrip } from './claude-code-bin.js';
import { startTestGateway } from './helpers.js';

const MARKER = 'switchyard-round-trip-ok';

const sse = (data: unknown) => `data: ${JSON.stringify(data)}\n\n`;
const chunk = (delta: unknown, finish: string | null = null) => ({ id: 'chatcmpl-cc', object: 'chat.completion.chunk', model: 'vendor-coder', choices: [{ index: 0, delta, finish_reason: finish }] });

/** What the vendor was asked, in order: whether each call carried a tool result. */
const calls: Array<{ tools: string[]; toolResult: string | null }> = [];
let vendor: Server;
let gw: Gateway;

before(async () => {
  vendor = createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(parts).toString()) as { messages: Array<{ role: string; content: unknown }>; tools?: Array<{ function: { name: string } }>; stream?: boolean };
      const toolMessage = body.messages.find((m) => m.role === 'tool');
      const tools = (body.tools ?? []).map((t) => t.function.name);
      calls.push({ tools, toolResult: toolMessage ? String(toolMessage.content) : null });
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      if (!body.stream) {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({
            id: 'chatcmpl-cc',
            object: 'chat.completion',
            model: 'vendor-coder',
            choices: [{ index: 0, message: { role: 'assistant', content: 'A title' }, finish_reason: 'stop' }],
            usage: { prompt_tokens: 10, completion_tokens: 2, total_tokens: 12 },
          }),
        );
        return;
      }
      res.write(sse(chunk({ role: 'assistant', content: '' })));
      if (toolMessage) {
        res.write(sse(chunk({ content: `The command printed: ${String(toolMessage.content).trim()}` })));
        res.write(sse(chunk({}, 'stop')));
      } else if (tools.includes('Bash')) {
        // No index anywhere, a blank id, the arguments in fragments that name nothing.
        res.write(sse(chunk({ tool_calls: [{ id: '', type: 'function', function: { name: 'Bash', arguments: '' } }] })));
        for (const a of ['{"command": ', `"echo ${MARKER}"`, ', "description": "Print a marker"}']) res.write(sse(chunk({ tool_calls: [{ function: { arguments: a } }] })));
        res.write(sse(chunk({}, 'tool_calls')));
      } else {
        res.write(sse(chunk({ content: 'ok' })));
        res.write(sse(chunk({}, 'stop')));
      }
      res.write(sse({ ...chunk({}), choices: [], usage: { prompt_tokens: 100, completion_tokens: 20, total_tokens: 120 } }));
      res.end('data: [DONE]\n\n');
    });
  });
  await new Promise<void>((resolve) => vendor.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(vendor.address() as AddressInfo).port}`;
  const providers = `  vendor:\n    type: openai\n    base_url: ${url}/v1\n    auth: none\n    retries: { max: 0 }\n`;
  ({ gw } = await startTestGateway({ upstream: url, providers, rules: { '50.yaml': 'version: 1\nrules:\n  - id: all\n    actions: [ { route_to: { provider: vendor } } ]\n' } }));
});
after(async () => {
  await gw.close();
  await new Promise((resolve) => vendor.close(resolve));
});

test('claude -p completes a Bash tool round trip through an OpenAI-compatible vendor without indices or ids', { timeout: 900_000 }, async () => {
  const home = mkdtempSync(path.join(tmpdir(), 'switchyard-cc-home-'));
  const workdir = mkdtempSync(path.join(tmpdir(), 'switchyard-cc-work-'));
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: home,
    ANTHROPIC_BASE_URL: gw.url,
    ANTHROPIC_API_KEY: 'sk-ant-test-through-switchyard',
    CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
    DISABLE_AUTOUPDATER: '1',
    CI: '1',
  };
  const out = await runClaudeBashRoundTrip(env, workdir);
  assert.equal(out.code, 0, `claude exited ${out.code}: ${out.stderr.slice(0, 2000)} ${out.stdout.slice(0, 2000)}`);
  const result = JSON.parse(out.stdout) as { result: string; is_error: boolean; num_turns: number };
  assert.equal(result.is_error, false);
  assert.match(result.result, new RegExp(`The command printed: ${MARKER}`));
  const withResult = calls.find((c) => c.toolResult !== null);
  assert.ok(withResult, 'the CLI sent the tool result back');
  assert.match(withResult.toolResult!, new RegExp(MARKER), 'the Bash output went back to the vendor');
});
