/**
 * Test helpers: a temporary gateway config + rules directory, an in-process gateway with a captured
 * log, and a Claude-Code-shaped request body.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import pg from 'pg';
import { createLogger } from '../src/log.js';
import { startGateway, type Gateway } from '../src/server/serve.js';
import type { UsageRecord } from '../src/usage/record.js';

/** Captured log lines (parsed JSON). */
export class LogCapture extends Writable {
  readonly lines: Array<Record<string, unknown>> = [];
  readonly raw: string[] = [];
  override _write(chunk: Buffer, _enc: string, cb: () => void): void {
    for (const line of chunk.toString('utf8').split('\n')) {
      if (!line) continue;
      this.raw.push(line);
      this.lines.push(JSON.parse(line) as Record<string, unknown>);
    }
    cb();
  }
  text(): string {
    return this.raw.join('\n');
  }
}

/** Writes a config (and rule files) to a fresh temp directory; returns the config path. */
export function writeConfig(opts: { upstream: string; rules?: Record<string, string>; extraConfig?: string; providers?: string }): { dir: string; configFile: string; rulesDir: string } {
  const dir = mkdtempSync(path.join(tmpdir(), 'switchyard-test-'));
  const rulesDir = path.join(dir, 'rules');
  mkdirSync(rulesDir);
  const providers =
    opts.providers ??
    // No gateway retries and no breaker by default, so that tests of pass-through see each upstream answer
    // once; the retry tests configure their own.
    `  anthropic:\n    type: anthropic\n    base_url: ${opts.upstream}\n    timeouts: { connect_ms: 2000, headers_ms: 5000, first_byte_ms: 5000, body_ms: 5000 }\n    retries: { max: 0 }\n    breaker: { failures: 1000 }\n`;
  writeFileSync(path.join(dir, 'switchyard.yaml'), `listen: { host: 127.0.0.1, port: 0 }\nrules: ./rules\nproviders:\n${providers}${opts.extraConfig ?? ''}shutdown: { grace_ms: 2000 }\n`);
  const rules = opts.rules ?? { '50-default.yaml': 'version: 1\nrules:\n  - id: default\n    actions:\n      - route_to: { provider: anthropic }\n' };
  for (const [name, text] of Object.entries(rules)) writeFileSync(path.join(rulesDir, name), text);
  return { dir, configFile: path.join(dir, 'switchyard.yaml'), rulesDir };
}

/** Starts an in-process gateway on a free port with a captured trace-level log. */
export async function startTestGateway(
  opts: Parameters<typeof writeConfig>[0] & { dryRun?: boolean; watch?: boolean; configFile?: string },
): Promise<{ gw: Gateway; logs: LogCapture; configFile: string; rulesDir: string }> {
  // An existing config (e.g. one whose ledger a test seeded first), else a fresh one.
  const { configFile, rulesDir } = opts.configFile ? { configFile: opts.configFile, rulesDir: path.join(path.dirname(opts.configFile), 'rules') } : writeConfig(opts);
  const logs = new LogCapture();
  // trace: the most verbose level, so tests that look for secrets in logs see everything that is logged.
  const gw = await startGateway({ configFile, dryRun: opts.dryRun, watch: opts.watch ?? false, logger: createLogger({ level: 'trace', destination: logs }) });
  return { gw, logs, configFile, rulesDir };
}

/**
 * A Claude-Code-shaped request body of about `targetBytes` (default 76 KB): ~two dozen tools with JSON
 * Schemas, 3 system blocks (the first an attribution block, the last two with cache_control), metadata
 * with a JSON-string user_id, thinking, context_management, output_config, and the last user block
 * marked with cache_control. Synthetic text, not Claude Code's prompts.
 */
export function claudeCodeBody(opts: { targetBytes?: number; stream?: boolean; model?: string } = {}): Record<string, unknown> {
  const target = opts.targetBytes ?? 76_000;
  const filler = (n: number, seed: string) => {
    let s = '';
    let i = 0;
    while (s.length < n) s += `${seed} sentence ${i++} describes how the synthetic agent should behave in this test. `;
    return s.slice(0, n);
  };
  const tools = Array.from({ length: 24 }, (_, i) => ({
    name: `tool_${i}`,
    description: filler(1400, `Tool ${i}`),
    input_schema: {
      type: 'object',
      properties: { path: { type: 'string', description: 'A file path.' }, limit: { type: 'integer', description: 'How many.' } },
      required: ['path'],
      additionalProperties: false,
    },
  }));
  const body: Record<string, unknown> = {
    model: opts.model ?? 'claude-sonnet-4-6',
    max_tokens: 64000,
    stream: opts.stream ?? true,
    metadata: { user_id: JSON.stringify({ device_id: 'dev-123', account_uuid: 'acc-456', session_id: 'sess-from-metadata' }) },
    thinking: { type: 'adaptive' },
    context_management: { edits: [{ type: 'clear_thinking_20251015', keep: 'all' }] },
    output_config: { effort: 'high' },
    an_unknown_future_field: { keep: ['me', 1, true, null] },
    system: [
      { type: 'text', text: 'x-anthropic-billing-header: cc_version=2.1.0; cc_entrypoint=cli' },
      { type: 'text', text: filler(3000, 'System'), cache_control: { type: 'ephemeral' } },
      { type: 'text', text: filler(2000, 'Context'), cache_control: { type: 'ephemeral' } },
    ],
    tools,
    messages: [] as unknown[],
  };
  const size = () => Buffer.byteLength(JSON.stringify(body));
  const messages = body.messages as unknown[];
  messages.push({ role: 'user', content: [{ type: 'text', text: 'Say hello — ünïcödé ✓ and "quotes".', cache_control: { type: 'ephemeral' } }] });
  const remaining = target - size();
  if (remaining > 200) {
    (messages[0] as { content: Array<{ text: string }> }).content.unshift({ text: filler(remaining - 120, 'History'), type: 'text' } as never);
  }
  return body;
}

/** Polls `check` every 10 ms until it returns true; fails after `ms` naming `what`. */
export async function until(check: () => boolean | Promise<boolean>, ms = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what} not met within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * A PostgreSQL database of its own for one test file, in the server of DATABASE_URL (default
 * postgres://postgres@127.0.0.1:5432/test): its URL, and `drop()` for the file's `after`.
 */
export async function freshDatabase(prefix: string): Promise<{ url: string; drop(): Promise<void> }> {
  const base = new URL(process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test');
  const name = `${prefix}_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: base.toString() });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(base.toString());
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      const c = new pg.Client({ connectionString: base.toString() });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}

/**
 * A usage record for seeding a ledger: a priced, successful Sonnet request with every field set, `over` replacing any.
 * Tokens: 20 in, 400 out, 1,000 cache write (5 m), 20,000 cache read; cost $0.0135.
 */
export function usageRecord(over: Partial<UsageRecord> & Pick<UsageRecord, 'time' | 'request_id'>): UsageRecord {
  return {
    client_id: null,
    key_fingerprint: null,
    session_id: null,
    user_id: null,
    project: null,
    agent_id: null,
    requested_model: 'claude-sonnet-4-6',
    provider: 'anthropic',
    model: 'claude-sonnet-4-6',
    rules_version: 'v',
    rules: [],
    facts: null,
    tags: {},
    status: 200,
    outcome: 'ok',
    error_type: null,
    retries: 0,
    latency_ms: 900,
    ttft_ms: 300,
    input_tokens: 20,
    output_tokens: 400,
    cache_creation_input_tokens: 1000,
    cache_creation_5m_input_tokens: 1000,
    cache_creation_1h_input_tokens: 0,
    cache_read_input_tokens: 20_000,
    cost_usd: 0.0135,
    ...over,
  };
}

/** Makes something closable (a store, a client), runs `fn` with it, and closes it whatever happens. */
export async function withClosing<T extends { close(): Promise<void> }>(make: () => Promise<T>, fn: (t: T) => Promise<void>): Promise<void> {
  const t = await make();
  try {
    await fn(t);
  } finally {
    await t.close();
  }
}
