/**
 * The real Claude Code CLI for tests (npm package @anthropic-ai/claude-code). It is a native binary of ~400 MB,
 * so it is not a dependency: it is installed once into `node_modules/.cache/claude-code/<version>` from the npm
 * registry (CI allows the registry), or `CLAUDE_CODE_BIN` names one.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { messageJson, sseTextEvents } from './fake-upstream.js';

const ROOT = path.resolve(import.meta.dirname, '..');
/** The CLI version the tests install (pinned: its wire behaviour is what the tests are about). */
export const CLAUDE_CODE_VERSION = '2.1.332';

/**
 * The `claude` binary: `CLAUDE_CODE_BIN`, else the cached install, made on first use. Test files run in parallel:
 * each installs into its own temporary directory and renames it into place, so a half-made install is never used.
 */
export function claudeBinary(): string {
  if (process.env.CLAUDE_CODE_BIN) return process.env.CLAUDE_CODE_BIN;
  const cache = path.join(ROOT, 'node_modules/.cache/claude-code');
  const prefix = path.join(cache, CLAUDE_CODE_VERSION);
  const bin = path.join(prefix, 'node_modules/@anthropic-ai/claude-code/bin/claude.exe');
  if (!existsSync(bin)) {
    mkdirSync(cache, { recursive: true });
    const tmp = mkdtempSync(path.join(cache, `.install-${CLAUDE_CODE_VERSION}-`));
    execFileSync('npm', ['install', '--prefix', tmp, '--no-audit', '--no-fund', '--no-save', `@anthropic-ai/claude-code@${CLAUDE_CODE_VERSION}`], { stdio: 'ignore', timeout: 600_000 });
    try {
      renameSync(tmp, prefix);
    } catch {
      rmSync(tmp, { recursive: true, force: true }); // another test file's install got there first
    }
  }
  return bin;
}

/** What `claude -p` printed and how it exited. */
export interface ClaudeRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs the CLI in print mode with the Bash tool allowed, asked to run "the marker command" and say what it
 * printed (JSON output, at most 4 turns), in `cwd` with exactly `env`; killed after `timeoutMs`.
 */
export function runClaudeBashRoundTrip(env: NodeJS.ProcessEnv, cwd: string, timeoutMs = 180_000): Promise<ClaudeRun> {
  return new Promise((resolve) => {
    const child = spawn(claudeBinary(), ['-p', 'Run the marker command with Bash and tell me what it printed.', '--allowedTools', 'Bash', '--output-format', 'json', '--max-turns', '4'], { cwd, env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end();
  });
}

/** A fake Anthropic upstream for the CLI's Bash round trip, and what it was asked. */
export interface ClaudeCodeUpstream {
  url: string;
  /** Each Messages call: its model, and the tool result it carried (JSON) or null. */
  calls: Array<{ model: string; toolResult: string | null; headers: IncomingHttpHeaders; path: string }>;
  close(): Promise<void>;
}

/**
 * An Anthropic upstream that drives `runClaudeBashRoundTrip`: a streamed call offering the Bash tool is answered
 * with a `tool_use` running `command` (default `echo <marker>`); the call carrying its result is answered "The
 * command printed: …"; anything else (titles, count_tokens) with a short answer.
 */
export async function startClaudeCodeUpstream(marker: string, command = `echo ${marker}`): Promise<ClaudeCodeUpstream> {
  const calls: ClaudeCodeUpstream['calls'] = [];
  const server = createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(parts).toString() || '{}') as { model: string; stream?: boolean; tools?: Array<{ name: string }>; messages?: Array<{ role: string; content: unknown }> };
      if ((req.url ?? '').includes('/v1/messages/count_tokens')) {
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ input_tokens: 10 }));
        return;
      }
      const last = body.messages?.at(-1);
      const result = Array.isArray(last?.content) ? (last.content as Array<{ type: string; content?: unknown }>).find((b) => b.type === 'tool_result') : undefined;
      const toolResult = result ? JSON.stringify(result.content) : null;
      calls.push({ model: body.model, toolResult, headers: req.headers, path: req.url ?? '' });
      const wantsBash = !result && (body.tools ?? []).some((t) => t.name === 'Bash');
      if (!body.stream) {
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(messageJson(body.model, [{ type: 'text', text: 'A title' }])));
        return;
      }
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      if (wantsBash) {
        const ev = (event: string, data: unknown) => `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
        const input = JSON.stringify({ command, description: 'Print a marker' });
        res.end(
          [
            ev('message_start', { type: 'message_start', message: { ...messageJson(body.model, []), stop_reason: null } }),
            ev('content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'tool_use', id: 'toolu_cc_01', name: 'Bash', input: {} } }),
            ev('content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'input_json_delta', partial_json: input } }),
            ev('content_block_stop', { type: 'content_block_stop', index: 0 }),
            ev('message_delta', { type: 'message_delta', delta: { stop_reason: 'tool_use', stop_sequence: null }, usage: { output_tokens: 12 } }),
            ev('message_stop', { type: 'message_stop' }),
          ].join(''),
        );
        return;
      }
      res.end(sseTextEvents(body.model, result ? `The command printed: ${toolResult}` : 'ok').join(''));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    calls,
    close: () => new Promise((r) => server.close(() => r())),
  };
}

/**
 * Asserts that a `runClaudeBashRoundTrip` run completed: exit 0, a result naming the marker, and the marker's
 * Bash output sent back to the upstream in a tool result.
 */
export function assertBashRoundTrip(out: ClaudeRun, calls: ClaudeCodeUpstream['calls'], marker: string): void {
  assert.equal(out.code, 0, `claude exited ${out.code}: ${out.stderr.slice(0, 2000)} ${out.stdout.slice(0, 2000)}`);
  const result = JSON.parse(out.stdout) as { result: string; is_error: boolean };
  assert.equal(result.is_error, false);
  assert.match(result.result, new RegExp(marker));
  const withResult = calls.find((c) => c.toolResult !== null);
  assert.ok(withResult, 'the CLI sent the tool result back');
  assert.match(withResult.toolResult!, new RegExp(marker));
}
