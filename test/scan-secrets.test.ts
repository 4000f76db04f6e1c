/**
 * `scan_secrets` (issue 36): gitleaks' rule set on RE2, recall on its own positive cases, false positives on real code
 * that holds no secret, and the action through the running gateway — redact (the upstream never receives the secret,
 * the placeholder is the same every turn), block (400 naming the rule and the block, never the secret), report (the
 * body forwarded byte for byte) — with the findings counted in the usage record.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { request } from 'undici';
import { lazyBody, scanJsonObject } from '../src/body/json-scan.js';
import { placeholder, redactionKey, scanSecrets } from '../src/actions/scan_secrets/index.js';
import { findSecrets, GITLEAKS_FILE, loadRuleSet, shannonEntropy } from '../src/actions/scan_secrets/rules.js';
import type { UsageRecord } from '../src/usage/record.js';
import { DecisionDraft } from '../src/rules/decision.js';
import type { RequestContext } from '../src/rules/context.js';
import { runClaudeBashRoundTrip, startClaudeCodeUpstream } from './claude-code-bin.js';
import { PrefixCache } from '../bench/prefix-cache.js';
import { messageJson, startFakeUpstream } from './fake-upstream.js';
import { freshDatabase, startTestGateway, until, usageRecord } from './helpers.js';
import { PostgresStore } from '../src/usage/postgres.js';
import { SqliteStore } from '../src/usage/sqlite.js';
import { runUsageQuery } from '../src/usage/usage-query.js';
import { loadPrices } from '../src/usage/prices.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const POSITIVES = JSON.parse(readFileSync(path.join(import.meta.dirname, 'fixtures/secrets/gitleaks-positives.json'), 'utf8')) as Record<string, string[]>;

/** Made up for these tests, in the shapes of the real thing (an AWS access key id, a GitHub token). */
const AWS_KEY = 'AKIAZ4BTQPXWNR7D5VJH';
const GH_TOKEN = 'ghp_R7xqLk2M9vTn4Wp8Ys1Hd6Fj3Bc5Gz0Ea2Qu';
const ENV_FILE = `# .env\nAWS_ACCESS_KEY_ID=${AWS_KEY}\nREGION=eu-west-1\n`;

test('every gitleaks rule compiles on RE2; path-only rules are set apart, not dropped silently', () => {
  const rs = loadRuleSet();
  const file = readFileSync(GITLEAKS_FILE, 'utf8');
  const ids = [...file.matchAll(/^id = "([^"]+)"/gm)].map((m) => m[1]);
  assert.equal(rs.rules.length + rs.pathOnly.length, ids.length, 'each rule of the file is compiled or listed as path-only');
  assert.ok(rs.rules.length >= 200, `${rs.rules.length} rules`);
  assert.match(rs.version, /^gitleaks v\d+\.\d+\.\d+$/);
  assert.ok(rs.pathOnly.includes('pkcs12-file'), 'a rule that matches file names only cannot fire on a content block');
});

test("recall on gitleaks' own positive cases is at least 95 %, each case found by the rule it was written for", () => {
  const rs = loadRuleSet();
  let n = 0;
  let found = 0;
  const missed: string[] = [];
  for (const [id, cases] of Object.entries(POSITIVES)) {
    if (rs.pathOnly.includes(id)) continue;
    for (const c of cases) {
      n++;
      if (findSecrets(Buffer.from(c), rs).some((f) => f.rule === id)) found++;
      else missed.push(id);
    }
  }
  const recall = found / n;
  assert.ok(n > 5000, `${n} cases`);
  assert.ok(recall >= 0.95, `recall ${(recall * 100).toFixed(1)} % (${found}/${n}); most missed: ${[...new Set(missed)].slice(0, 10).join(', ')}`);
});

test('keywords first: a block none of whose keywords occur runs no regex and finds nothing; entropy is a floor', () => {
  const rs = loadRuleSet();
  assert.deepEqual(findSecrets(Buffer.from('plain prose about the weather, nothing more'), rs), []);
  // The same shape with a low-entropy value is not a secret (gitleaks' aws rule wants entropy > 3).
  assert.deepEqual(findSecrets(Buffer.from('AKIAAAAAAAAAAAAAAAAA'), rs), []);
  assert.equal(shannonEntropy('aaaa'), 0);
  assert.equal(shannonEntropy('abcd'), 2);
  const f = findSecrets(Buffer.from(ENV_FILE), rs);
  assert.deepEqual(
    f.map((x) => [x.rule, ENV_FILE.slice(x.start, x.end)]),
    [['aws-access-token', AWS_KEY]],
  );
  // gitleaks' own allowlist: AWS's documented example key is not a finding.
  assert.deepEqual(findSecrets(Buffer.from('aws_access_key_id = AKIAIOSFODNN7EXAMPLE'), rs), []);
  // A value allowed by the action's `allow` is not a finding either.
  assert.deepEqual(findSecrets(Buffer.from(ENV_FILE), rs, new Set([AWS_KEY])), []);
});

/** JavaScript files under `dir`, up to `limit` bytes in all. */
function jsCorpus(dir: string, limit: number): Buffer[] {
  const out: Buffer[] = [];
  let bytes = 0;
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      if (bytes >= limit) return;
      const p = path.join(d, name);
      const s = statSync(p);
      if (s.isDirectory()) walk(p);
      else if (name.endsWith('.js') && s.size < 200_000) {
        const b = readFileSync(p);
        out.push(b);
        bytes += b.length;
      }
    }
  };
  walk(dir);
  return out;
}

test('false positives on real code that holds no secret (JavaScript of well-known packages) stay rare', () => {
  const rs = loadRuleSet();
  const files = ['hono', 'undici', 'ajv', 'pino', 'yaml', 'commander', 'jsonata', 'typescript/lib', 'esbuild', 'pg', 'ioredis'].flatMap((p) => jsCorpus(path.join(ROOT, 'node_modules', p), 2_000_000));
  const bytes = files.reduce((n, b) => n + b.length, 0);
  const findings = files.flatMap((b) => findSecrets(b, rs));
  const perMb = findings.length / (bytes / 1e6);
  console.log(`false positives: ${findings.length} in ${(bytes / 1e6).toFixed(1)} MB of JavaScript (${perMb.toFixed(2)} per MB): ${[...new Set(findings.map((f) => f.rule))].join(', ')}`);
  assert.ok(bytes > 4e6, `${bytes} bytes scanned`);
  assert.ok(perMb < 1, `${perMb.toFixed(2)} false positives per MB`);
  // The same corpus with one token planted in the middle of a file: found, by the rule for it.
  const planted = Buffer.concat([files[3]!.subarray(0, 500), Buffer.from(`\nconst token = "${GH_TOKEN}";\n`), files[3]!.subarray(500)]);
  assert.deepEqual(
    findSecrets(planted, rs).map((f) => f.rule),
    ['generic-api-key', 'github-pat'],
  );
});

const SECRET_RULES = (onFind: string) => ({
  '10-secrets.yaml': `version: 1\nrules:\n  - id: secrets\n    actions:\n      - scan_secrets: { on_find: ${onFind} }\n      - route_to: { provider: anthropic }\n`,
});

/** A Claude-Code-shaped turn whose Bash tool printed the .env file. */
function turnWithSecret(extraTurns = 0): Record<string, unknown> {
  const messages: unknown[] = [
    { role: 'user', content: [{ type: 'text', text: 'show me the env file' }] },
    { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_01', name: 'Bash', input: { command: 'cat .env' } }] },
    { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_01', content: ENV_FILE }] },
  ];
  for (let i = 0; i < extraTurns; i++) messages.push({ role: 'assistant', content: [{ type: 'text', text: `turn ${i}` }] }, { role: 'user', content: [{ type: 'text', text: `next ${i}` }] });
  return {
    model: 'claude-sonnet-4-6',
    max_tokens: 100,
    system: [{ type: 'text', text: 'You are Claude Code.' }],
    tools: [{ name: 'Bash', description: 'Runs a command.', input_schema: { type: 'object', properties: { command: { type: 'string' } } } }],
    messages,
  };
}

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

/** Applies a compiled scan_secrets action to `body` as the rules engine does. */
async function applyTo(params: Record<string, unknown>, body: Record<string, unknown>) {
  const errors: string[] = [];
  const c = scanSecrets.compile(params, { providers: new Set(), error: (_p, m) => errors.push(m) });
  const d = new DecisionDraft(lazyBody(scanJsonObject(Buffer.from(JSON.stringify(body)), 256)));
  const trace = await scanSecrets.apply(c, {} as RequestContext, d, 'r');
  return { c, d, trace, errors };
}

test('the parts scanned, skipped rules and skipped block types are what the parameters and the docs say', async () => {
  const inSystem = { ...turnWithSecret(), system: [{ type: 'text', text: `deploy with ${GH_TOKEN}` }], messages: [{ role: 'user', content: 'hi' }] };
  assert.equal((await applyTo({ on_find: 'report' }, inSystem)).d.extra.secret_findings !== undefined, true, 'system is scanned by default');
  assert.equal((await applyTo({ on_find: 'report', scan: ['messages'] }, inSystem)).d.extra.secret_findings, undefined, 'scan: [messages] leaves system alone');
  const skipped = await applyTo({ on_find: 'report', skip_rules: ['github-pat', 'generic-api-key'] }, inSystem);
  assert.equal(skipped.d.extra.secret_findings, undefined, 'skip_rules');
  assert.match((await applyTo({ on_find: 'report', skip_rules: ['no-such-rule'] }, inSystem)).errors[0]!, /"no-such-rule" is not a rule of gitleaks/);
  // A signed thinking block is never changed (the API would refuse the edit) nor scanned.
  const thinking = { model: 'm', messages: [{ role: 'assistant', content: [{ type: 'thinking', thinking: ENV_FILE, signature: 'sig' }] }] };
  assert.equal((await applyTo({ on_find: 'redact' }, thinking)).d.extra.secret_findings, undefined);
  // A tool_use input and a string message content are scanned.
  const input = {
    model: 'm',
    messages: [
      { role: 'assistant', content: [{ type: 'tool_use', id: 't', name: 'Bash', input: { command: `export GH=${GH_TOKEN}` } }] },
      { role: 'user', content: ENV_FILE },
    ],
  };
  const red = await applyTo({ on_find: 'redact' }, input);
  const out = JSON.parse(JSON.stringify(red.d.body)) as { messages: [{ content: [{ input: { command: string } }] }, { content: string }] };
  assert.ok(!out.messages[0].content[0].input.command.includes(GH_TOKEN));
  assert.ok(!out.messages[1].content.includes(AWS_KEY));
  assert.deepEqual(
    (red.d.extra.secret_findings as { counts: Record<string, number> }).counts,
    { 'github-pat': 1, 'aws-access-token': 1 },
    'one finding per secret: overlapping rules (github-pat, generic-api-key) are merged',
  );
});

test('a block scanned once is a memo lookup on later turns; the memo is bounded in bytes', async () => {
  const body = turnWithSecret();
  const { c } = await applyTo({ on_find: 'redact' }, body);
  const before = c.memo.size;
  assert.ok(before >= 5, `${before} blocks remembered`);
  const d = new DecisionDraft(lazyBody(scanJsonObject(Buffer.from(JSON.stringify(turnWithSecret(1))), 256)));
  await scanSecrets.apply(c, {} as RequestContext, d, 'r');
  assert.equal(c.memo.size, before + 2, 'only the two new blocks were scanned');
  assert.ok(c.memo.maxSize > 0 && c.memo.calculatedSize <= c.memo.maxSize);
});

test('usage --by rule: a request counts under each rule that found a secret in it; the rollup is not asked', async () => {
  const t = new Date(Date.now() - 60_000).toISOString();
  const records = [
    usageRecord({ time: t, request_id: 'a', secret_findings: { 'aws-access-token': 1, 'github-pat': 2 } }),
    usageRecord({ time: t, request_id: 'b', secret_findings: { 'aws-access-token': 1 } }),
    usageRecord({ time: t, request_id: 'c', secret_findings: null }),
    usageRecord({ time: t, request_id: 'd' }),
  ];
  const source = {
    query: async () => records,
    summarize: async () => {
      throw new Error('the rollup has no rules');
    },
  };
  const prices = loadPrices(path.join(ROOT, 'prices.yaml'));
  const byRule = await runUsageQuery({ view: 'usage', by: ['rule'], where: [] }, source, prices);
  assert.equal(byRule.view, 'usage');
  assert.deepEqual(
    byRule.report.rows.map((r) => [r.group.rule, r.requests]),
    [
      ['(none)', 2],
      ['aws-access-token', 2],
      ['github-pat', 1],
    ],
  );
  assert.equal(byRule.report.totals.requests, 4, 'totals count each request once');
  const filtered = await runUsageQuery({ view: 'usage', by: ['user'], where: ['rule=github-pat'] }, source, prices);
  assert.equal(filtered.report.totals.requests, 1);
  await assert.rejects(runUsageQuery({ view: 'usage', by: ['rules'], where: [] }, source, prices), /provider or rule/);
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
      { rule: 'aws-access-token', where: 'messages[2].content[0].content', block: 'tool_result', length: AWS_KEY.length, placeholder: placeholder('aws-access-token', AWS_KEY, redactionKey()), first_seen: true },
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
  const upstream = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const usage = cache.usage(JSON.parse(Buffer.concat(chunks).toString()) as Record<string, unknown>);
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ ...messageJson('claude-sonnet-4-6', [{ type: 'text', text: 'ok' }]), usage: { ...usage, output_tokens: 10 } }));
    });
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  const { gw } = await startTestGateway({ upstream: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`, rules });
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
