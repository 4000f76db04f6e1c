/**
 * `scan_secrets` (issue 36) through the running gateway: redact (the upstream never receives the secret, the
 * placeholder is the same every turn, the prompt cache still hits), block (400 naming the rule and the block, never
 * the secret), report (the body forwarded byte for byte); the real Claude Code CLI in both modes; the findings in the
 * usage record of both ledgers, the dashboard and the secret.found notification. The rule set and the action's own
 * logic: test/scan-secrets.test.ts.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { request } from 'undici';
import { placeholder, redactionKey } from '../src/actions/scan_secrets/index.js';
import type { UsageRecord } from '../src/usage/record.js';
import { runClaudeBashRoundTrip, startClaudeCodeUpstream } from './claude-code-bin.js';
import { PrefixCache, startCacheUpstream } from '../bench/prefix-cache.js';
import { AWS_KEY, ENV_FILE, SECRET_RULES, turnWithSecret } from './secrets-fixtures.js';
import { startFakeUpstream } from './fake-upstream.js';
import { freshDatabase, startTestGateway, until, usageRecord } from './helpers.js';
import { PostgresStore } from '../src/usage/postgres.js';
import { SqliteStore } from '../src/usage/sqlite.js';
import { runUsageQuery } from '../src/usage/usage-query.js';
import { loadPrices } from '../src/usage/prices.js';

const ROOT = path.resolve(import.meta.dirname, '..');

test('redact: the upstream never receives the secret; the placeholder is the same on every turn, so the prefix bytes are too', async () => {
  const fake = await startFakeUpstream();
  const { gw, configFile } = await startTestGateway({ upstream: fake.url, rules: SECRET_RULES('redact'), extraConfig: 'ledger: { sqlite: ./data/usage.db, flush_interval_ms: 50 }\n' });
  const configDir = path.dirname(configFile);
  try {
    for (const extra of [0, 1]) {
      const r = await request(`${gw.url}/v1/messages`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(turnWithSecret(extra)) });
      assert.equal(r.statusCode, 200, await r.body.text());
    }
  } finally {
    await gw.close();
    await fake.close();
  }
  const [first, second] = fake.received.map((r) => r.body.toString());
  assert.ok(first && second);
  assert.ok(!first.includes(AWS_KEY) && !second.includes(AWS_KEY), 'the key never reaches the upstream');
  const sent = JSON.parse(first) as { messages: Array<{ content: Array<{ content: string }> }> };
  const expected = placeholder('aws-access-token', AWS_KEY, redactionKey());
  assert.match(expected, /^\[REDACTED:aws-access-token:[0-9a-f]{6}\]$/);
  assert.equal(sent.messages[2]!.content[0]!.content, ENV_FILE.replace(AWS_KEY, expected), 'only the secret is replaced');
  // Turn 2 resends turn 1's messages: the bytes up to the end of the redacted block are identical.
  const cut = first.indexOf(expected) + expected.length;
  assert.equal(second.slice(0, cut), first.slice(0, cut));
  const db = new Database(path.join(configDir, 'data/usage.db'), { readonly: true });
  const rows = db.prepare('SELECT secret_findings FROM usage_records').all() as Array<{ secret_findings: string }>;
  db.close();
  assert.deepEqual(
    rows.map((r) => JSON.parse(r.secret_findings) as UsageRecord['secret_findings']),
    [{ 'aws-access-token': 1 }, { 'aws-access-token': 1 }],
    'the usage record counts findings by rule id',
  );
  assert.ok(!readFileSync(path.join(configDir, 'data/usage.db')).includes(AWS_KEY), 'the ledger never holds the value');
});

test('block: 400 invalid_request_error naming the rule, the message and the block — never the secret; nothing goes upstream', async () => {
  const fake = await startFakeUpstream();
  const { gw, logs } = await startTestGateway({ upstream: fake.url, rules: SECRET_RULES('block') });
  try {
    const r = await request(`${gw.url}/v1/messages`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(turnWithSecret()) });
    const text = await r.body.text();
    assert.equal(r.statusCode, 400);
    const err = JSON.parse(text) as { type: string; error: { type: string; message: string } };
    assert.equal(err.error.type, 'invalid_request_error');
    assert.match(err.error.message, /rule "secrets"/);
    assert.match(err.error.message, /aws-access-token in messages\[2\]\.content\[0\]\.content \(tool_result block\)/);
    assert.ok(!text.includes(AWS_KEY) && !text.includes('AKIA'), 'the answer never holds the secret');
    assert.equal(fake.received.length, 0);
    // A clean request passes.
    const ok = await request(`${gw.url}/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'claude-sonnet-4-6', max_tokens: 5, messages: [{ role: 'user', content: 'hello there, nothing secret here' }] }),
    });
    assert.equal(ok.statusCode, 200);
    await ok.body.dump();
  } finally {
    await gw.close();
    await fake.close();
  }
  assert.ok(!logs.text().includes(AWS_KEY), 'the logs never hold the secret');
});

test('report: the body is forwarded byte for byte; the trace lists the finding masked', async () => {
  const fake = await startFakeUpstream();
  const { gw } = await startTestGateway({ upstream: fake.url, rules: SECRET_RULES('report') });
  try {
    const raw = JSON.stringify(turnWithSecret());
    const r = await request(`${gw.url}/v1/messages`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: raw });
    assert.equal(r.statusCode, 200);
    await r.body.dump();
    assert.equal(fake.received[0]!.body.toString(), raw);
  } finally {
    await gw.close();
    await fake.close();
  }
});

test('dry-run shows what would be redacted — rule, block, length and placeholder — never the value', async () => {
  const fake = await startFakeUpstream();
  const { gw } = await startTestGateway({ upstream: fake.url, rules: SECRET_RULES('redact'), dryRun: true });
  try {
    const r = await request(`${gw.url}/v1/messages`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(turnWithSecret()) });
    const text = await r.body.text();
    assert.equal(r.statusCode, 200);
    assert.ok(!text.includes(AWS_KEY), 'the report never holds the secret');
    const report = JSON.parse(text) as { secret_findings: { on_find: string; counts: Record<string, number>; findings: unknown[] }; body_changed: boolean };
    assert.equal(report.secret_findings.on_find, 'redact');
    assert.deepEqual(report.secret_findings.findings, [
      {
        rule: 'aws-access-token',
        where: 'messages[2].content[0].content',
        block: 'tool_result',
        length: AWS_KEY.length,
        placeholder: placeholder('aws-access-token', AWS_KEY, redactionKey()),
        first_seen: true,
      },
    ]);
    assert.equal(report.body_changed, true);
    assert.equal(fake.received.length, 0);
  } finally {
    await gw.close();
    await fake.close();
  }
});

/** The real Claude Code CLI runs `cat .env` through the gateway with `scan_secrets` in `mode`. */
async function claudeCatsEnv(mode: 'redact' | 'block') {
  const upstream = await startClaudeCodeUpstream('MARKER', 'cat .env');
  const { gw } = await startTestGateway({ upstream: upstream.url, rules: SECRET_RULES(mode) });
  const workdir = mkdtempSync(path.join(tmpdir(), 'switchyard-cc-secrets-work-'));
  writeFileSync(path.join(workdir, '.env'), ENV_FILE);
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: mkdtempSync(path.join(tmpdir(), 'switchyard-cc-secrets-home-')),
    ANTHROPIC_BASE_URL: gw.url,
    ANTHROPIC_API_KEY: 'sk-ant-test-through-switchyard',
    CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
    DISABLE_AUTOUPDATER: '1',
    CI: '1',
  };
  try {
    return { out: await runClaudeBashRoundTrip(env, workdir), calls: upstream.calls };
  } finally {
    await gw.close();
    await upstream.close();
  }
}

test('Claude Code, redact: the Bash tool prints a key from .env, the upstream never receives it and the tool loop completes', { timeout: 900_000 }, async () => {
  const { out, calls } = await claudeCatsEnv('redact');
  assert.equal(out.code, 0, `claude exited ${out.code}: ${out.stderr.slice(0, 2000)} ${out.stdout.slice(0, 2000)}`);
  const result = JSON.parse(out.stdout) as { result: string; is_error: boolean };
  assert.equal(result.is_error, false);
  const withResult = calls.find((c) => c.toolResult !== null);
  assert.ok(withResult, 'the CLI sent the tool result back');
  assert.match(withResult.toolResult!, /REGION=eu-west-1/, 'the rest of the file went through');
  assert.match(withResult.toolResult!, /\[REDACTED:aws-access-token:[0-9a-f]{6}\]/);
  assert.ok(!JSON.stringify(calls).includes(AWS_KEY), 'no call the upstream saw holds the key');
  assert.match(result.result, /The command printed: .*REDACTED:aws-access-token/);
});

test("Claude Code, block: the CLI shows the gateway's error naming the rule, not the key", { timeout: 900_000 }, async () => {
  const { out, calls } = await claudeCatsEnv('block');
  const shown = out.stdout + out.stderr;
  assert.match(shown, /aws-access-token in messages\[\d+\]\.content\[\d+\]\.content \(tool_result block\)/, shown.slice(0, 2000));
  assert.ok(!shown.includes(AWS_KEY.slice(4)), 'the CLI does not show the key back from the error');
  assert.equal(calls.filter((c) => c.toolResult !== null).length, 0, 'the tool result never reached the upstream');
});

/**
 * A 20-turn Claude-Code-shaped session (tools, two marked system blocks, the last user block marked each turn) whose
 * turn-3 Bash tool printed `secret` in a .env file; each turn's cache-read tokens as a model of Anthropic's prefix
 * cache (bench/prefix-cache.ts) bills them, the session sent through a gateway serving `rules`.
 */
async function cacheReadsPerTurn(rules: Record<string, string>, secret: string): Promise<number[]> {
  const cache = new PrefixCache();
  const upstream = await startCacheUpstream(cache);
  const { gw } = await startTestGateway({ upstream: upstream.url, rules });
  const filler = (n: number, seed: string) => `${seed}: `.padEnd(n, `${seed} reads, edits and tests code. `);
  const cc = { type: 'ephemeral' };
  const tools = Array.from({ length: 12 }, (_, i) => ({ name: `tool_${i}`, description: filler(3000, `tool ${i}`), input_schema: { type: 'object', properties: { arg: { type: 'string' } } } }));
  const system = [
    { type: 'text', text: 'x-anthropic-billing-header: cc_version=2.1.0; cc_entrypoint=cli' },
    { type: 'text', text: filler(12_000, 'system'), cache_control: cc },
    { type: 'text', text: filler(6000, 'context'), cache_control: cc },
  ];
  const messages: Array<{ role: string; content: Array<Record<string, unknown>> }> = [{ role: 'user', content: [{ type: 'text', text: filler(2000, 'task') }] }];
  const reads: number[] = [];
  try {
    for (let turn = 1; turn <= 20; turn++) {
      cache.now += 20_000;
      const last = messages.at(-1)!;
      const body = {
        model: 'claude-sonnet-4-6',
        max_tokens: 4096,
        tools,
        system,
        messages: [...messages.slice(0, -1), { ...last, content: last.content.map((b, j) => (j === last.content.length - 1 ? { ...b, cache_control: cc } : b)) }],
      };
      const r = await request(`${gw.url}/v1/messages`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      assert.equal(r.statusCode, 200);
      reads.push(((await r.body.json()) as { usage: { cache_read_input_tokens: number } }).usage.cache_read_input_tokens);
      const output = turn === 3 ? `# .env\nAWS_ACCESS_KEY_ID=${secret}\nREGION=eu-west-1\n${filler(3000, 'log')}` : filler(4000, `result ${turn}`);
      messages.push({ role: 'assistant', content: [{ type: 'tool_use', id: `toolu_${turn}`, name: 'Bash', input: { arg: filler(300, `call ${turn}`) } }] });
      messages.push({ role: 'user', content: [{ type: 'tool_result', tool_use_id: `toolu_${turn}`, content: output }] });
    }
  } finally {
    await gw.close();
    upstream.close();
  }
  return reads;
}

test('redaction keeps the prompt cache: a 20-turn session with a secret in turn 3 reads as many cached tokens every turn as the same session with the secret removed by hand', async () => {
  const redacted = await cacheReadsPerTurn(SECRET_RULES('redact'), AWS_KEY);
  // By hand: the key replaced by text as long as the placeholder the gateway writes.
  const byHand = await cacheReadsPerTurn(SECRET_RULES('report'), 'x'.repeat(placeholder('aws-access-token', AWS_KEY, redactionKey()).length));
  assert.deepEqual(redacted, byHand);
  assert.ok(
    redacted.slice(4).every((n) => n > 10_000),
    `turns after the secret still read the cache: ${redacted.join(', ')}`,
  );
});

test('a secret first seen in a request is notified once to the webhook (type secret.found, never the value); later turns that resend it are not', async () => {
  const got: Array<Record<string, unknown>> = [];
  const hook = createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => {
      got.push(JSON.parse(Buffer.concat(parts).toString()) as Record<string, unknown>);
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => hook.listen(0, '127.0.0.1', r));
  const fake = await startFakeUpstream();
  const hookUrl = `http://127.0.0.1:${(hook.address() as AddressInfo).port}/hook`;
  const { gw } = await startTestGateway({ upstream: fake.url, rules: SECRET_RULES('redact'), extraConfig: `budgets: { webhook: "${hookUrl}" }\n` });
  try {
    for (const extra of [0, 1, 2]) {
      const r = await request(`${gw.url}/v1/messages`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-claude-code-session-id': 'sess-secret' },
        body: JSON.stringify(turnWithSecret(extra)),
      });
      assert.equal(r.statusCode, 200);
      await r.body.dump();
    }
    await until(() => got.length >= 1, 5000, 'the notification');
    await new Promise((r) => setTimeout(r, 300));
  } finally {
    await gw.close();
    await fake.close();
    hook.close();
  }
  assert.equal(got.length, 1, 'one notification for the three turns');
  const n = got[0] as { type: string; rule: string; on_find: string; session_id: string; findings: Array<{ rule: string; where: string; placeholder: string }> };
  assert.equal(n.type, 'secret.found');
  assert.equal(n.rule, 'secrets');
  assert.equal(n.on_find, 'redact');
  assert.equal(n.session_id, 'sess-secret');
  assert.deepEqual(
    n.findings.map((f) => [f.rule, f.where]),
    [['aws-access-token', 'messages[2].content[0].content']],
  );
  assert.ok(!JSON.stringify(got).includes(AWS_KEY));
});

test('the dashboard API lists findings per user and session', async () => {
  const fake = await startFakeUpstream();
  const { gw } = await startTestGateway({ upstream: fake.url, rules: SECRET_RULES('report'), extraConfig: 'ledger: { sqlite: ./data/usage.db, flush_interval_ms: 50 }\n' });
  try {
    for (const session of ['s1', 's1', 's2']) {
      const r = await request(`${gw.url}/v1/messages`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-claude-code-session-id': session },
        body: JSON.stringify(turnWithSecret()),
      });
      await r.body.dump();
    }
    const r = await request(`${gw.url}/admin/ui/api/secrets`);
    assert.equal(r.statusCode, 200);
    const body = (await r.body.json()) as { sessions: Array<{ session: string; findings: Record<string, number>; requests: number }> };
    assert.deepEqual(
      body.sessions.map((s) => [s.session, s.findings, s.requests]),
      [
        ['s1', { 'aws-access-token': 2 }, 2],
        ['s2', { 'aws-access-token': 1 }, 1],
      ],
    );
  } finally {
    await gw.close();
    await fake.close();
  }
});

test('both ledgers keep secret_findings and give them back as written; usage --by rule reads the same from each', async () => {
  const t = new Date(Date.now() - 60_000).toISOString();
  const written = [usageRecord({ time: t, request_id: 'f1', secret_findings: { 'aws-access-token': 1, 'github-pat': 2 } }), usageRecord({ time: t, request_id: 'f2', secret_findings: null })];
  const db = await freshDatabase('switchyard_secrets');
  const stores = [new SqliteStore(path.join(mkdtempSync(path.join(tmpdir(), 'switchyard-secrets-')), 'usage.db')), new PostgresStore(db.url)];
  const prices = loadPrices(path.join(ROOT, 'prices.yaml'));
  try {
    for (const store of stores) {
      await store.init();
      await store.insert(written);
      const back = await store.query(new Date(Date.now() - 3_600_000).toISOString(), new Date().toISOString());
      assert.deepEqual(
        back.map((r) => [r.request_id, r.secret_findings]),
        [
          ['f1', { 'aws-access-token': 1, 'github-pat': 2 }],
          ['f2', null],
        ],
        store.constructor.name,
      );
      const byRule = await runUsageQuery({ view: 'usage', by: ['rule'], where: [] }, store, prices);
      assert.equal(byRule.view, 'usage');
      assert.deepEqual(
        byRule.report.rows.map((r) => [r.group.rule, r.requests]).sort(),
        [
          ['(none)', 1],
          ['aws-access-token', 1],
          ['github-pat', 1],
        ],
        store.constructor.name,
      );
    }
  } finally {
    for (const s of stores) await s.close();
    await db.drop();
  }
});
