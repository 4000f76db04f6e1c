/**
 * `scan_secrets` (issue 36), fast and in process (the mutation run's file): gitleaks' rule set on RE2, recall on its
 * own positive cases, false positives on real code that holds no secret, what the action scans, skips and redacts,
 * its memo, and `usage --by rule`. Through the running gateway: test/scan-secrets-gateway.test.ts.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { lazyBody, scanJsonObject } from '../src/body/json-scan.js';
import { MEMO_BYTES, placeholder, redactionKey, scanSecrets } from '../src/actions/scan_secrets/index.js';
import { findSecrets, GITLEAKS_FILE, loadRuleSet, shannonEntropy } from '../src/actions/scan_secrets/rules.js';
import { DecisionDraft } from '../src/rules/decision.js';
import { compileRuleSources } from '../src/rules/load.js';
import { formatIssue, LoadError } from '../src/validation.js';
import type { RequestContext } from '../src/rules/context.js';
import { AWS_KEY, ENV_FILE, GH_TOKEN, turnWithSecret } from './secrets-fixtures.js';
import { usageRecord } from './helpers.js';
import { runUsageQuery } from '../src/usage/usage-query.js';
import { loadPrices } from '../src/usage/prices.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const POSITIVES = JSON.parse(readFileSync(path.join(import.meta.dirname, 'fixtures/secrets/gitleaks-positives.json'), 'utf8')) as Record<string, string[]>;

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
  console.log(`recall: ${found} of ${n} positive cases (${(recall * 100).toFixed(2)} %) over ${Object.keys(POSITIVES).length} rules`);
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

test('a block scanned once is a memo lookup on later turns, a clean message a single lookup; the memo is bounded in bytes', async () => {
  const body = turnWithSecret();
  const { c } = await applyTo({ on_find: 'redact' }, body);
  // tools and system (a group each, then their blocks), three messages (the clean ones a group each) and their blocks.
  const keys = () => [...c.memo.values()].map((m) => ('clean' in m ? 'clean' : 'skip' in m ? 'skip' : m.findings.length ? 'found' : 'none'));
  const count = (k: string) => keys().filter((x) => x === k).length;
  assert.deepEqual([count('clean'), count('found'), count('none')], [4, 1, 4], keys().join(','));
  const d = new DecisionDraft(lazyBody(scanJsonObject(Buffer.from(JSON.stringify(turnWithSecret(1))), 256)));
  await scanSecrets.apply(c, {} as RequestContext, d, 'r');
  // The next turn adds two messages: each scanned once (a block entry) and remembered clean (a group entry).
  assert.deepEqual([count('clean'), count('found'), count('none')], [6, 1, 6], keys().join(','));
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
  await assert.rejects(runUsageQuery({ view: 'usage', by: ['rules'], where: [] }, source, prices), /provider, rule or kind/);
});

/** A gitleaks config of our own, to pin how each part of a rule is read. */
const CUSTOM_TOML = `
[allowlist]
regexes = ['''^allowed-by-global''']
stopwords = ["stopword"]

[[rules]]
id = "group-two"
regex = '''(tok|key)=([a-z0-9-]{12,})'''
secretGroup = 2
keywords = ["tok=", "key="]

[[rules]]
id = "first-group"
regex = '''pw:(x?)([A-Za-z0-9]{10,})'''
keywords = ["pw:"]

[[rules]]
id = "entropy-floor"
regex = '''ent_([a-z]{8})'''
entropy = 2
keywords = ["ent_"]

[[rules]]
id = "no-keywords"
regex = '''NOKW([0-9]{6})'''

[[rules]]
id = "empty-group"
regex = '''emg:(x?)[a-z]{10}'''
keywords = ["emg:"]

[[rules]]
id = "maybe-empty"
regex = '''(?:emp_([a-z]{10}))?'''
keywords = ["emp_"]

[[rules]]
id = "and-regex-only"
regex = '''aro_([a-z]{10})'''
keywords = ["aro_"]
[[rules.allowlists]]
condition = "AND"
regexes = ['''^safe''']

[[rules]]
id = "commit-or"
regex = '''cmt_([a-z]{10})'''
keywords = ["cmt_"]
[[rules.allowlists]]
commits = ["abc123"]
regexes = ['''^never$''']

[[rules]]
id = "dotted"
regex = '''s\\.[A-Z]{10}'''
keywords = ["s."]

[[rules]]
id = "match-allow"
regex = '''mat_([a-z]{10})'''
keywords = ["mat_"]
[[rules.allowlists]]
regexTarget = "match"
regexes = ['''^mat_allowed''']

[[rules]]
id = "line-allow"
regex = '''lin_([a-z]{10})'''
keywords = ["lin_"]
[[rules.allowlists]]
regexTarget = "line"
regexes = ['''^lin_[a-z]+ # test fixture$''']

[[rules]]
id = "and-allow"
regex = '''and_([a-z]{10})'''
keywords = ["and_"]
[[rules.allowlists]]
condition = "AND"
regexes = ['''^qwert''']
stopwords = ["zzz"]

[[rules]]
id = "path-and"
regex = '''pth_([a-z]{10})'''
keywords = ["pth_"]
[[rules.allowlists]]
condition = "AND"
paths = ['''.*''']
regexes = ['''.*''']

[[rules]]
id = "path-only"
path = '''\\.p12$'''
`;

function customRules(): ReturnType<typeof loadRuleSet> {
  const dir = mkdtempSync(path.join(tmpdir(), 'switchyard-gitleaks-'));
  writeFileSync(path.join(dir, 'rules.toml'), CUSTOM_TOML);
  return loadRuleSet([], path.join(dir, 'rules.toml'));
}

const found = (text: string, rs = customRules()) => findSecrets(Buffer.from(text), rs).map((f) => [f.rule, text.slice(f.start, f.end)]);

test('a gitleaks rule file is read as gitleaks reads it: secret groups, entropy, keywords, allowlists and their targets', () => {
  const rs = customRules();
  assert.deepEqual(rs.pathOnly, ['path-only']);
  assert.equal(rs.version, path.join(path.dirname(rs.version), 'rules.toml'), 'a file of ours is named by its path');
  assert.deepEqual(rs.always, [rs.rules.findIndex((r) => r.id === 'no-keywords')]);
  // secretGroup picks the second group; without it, the first non-empty group; without groups, the whole match.
  assert.deepEqual(found('x tok=abcdef123456 y', rs), [['group-two', 'abcdef123456']]);
  assert.deepEqual(found('pw:Abcdefghij12', rs), [['first-group', 'Abcdefghij12']]);
  assert.deepEqual(found('NOKW000000', rs), [['no-keywords', '000000']], 'no entropy floor: even a zero-entropy secret');
  assert.deepEqual(found('emg:abcdefghij', rs), [['empty-group', 'emg:abcdefghij']], 'every group empty: the whole match');
  assert.deepEqual(found('emp_abcdefghij', rs), [['maybe-empty', 'abcdefghij']], 'empty matches are stepped over, not looped on');
  // Findings come in rule order, a rule without keywords included.
  assert.deepEqual(
    found('NOKW123456 tok=abcdef123456', rs).map((f) => f[0]),
    ['group-two', 'no-keywords'],
  );
  // Keywords are case-insensitive and literal: "s." is not "sx".
  assert.deepEqual(found('TOK=ABCDEF123456'.toLowerCase(), rs), [['group-two', 'abcdef123456']]);
  assert.deepEqual(found('s.ABCDEFGHIJ', rs), [['dotted', 's.ABCDEFGHIJ']]);
  assert.deepEqual(found('sxABCDEFGHIJ s.', rs), []);
  // The entropy floor: at or under it, no finding.
  assert.deepEqual(found('ent_abcdefgh', rs), [['entropy-floor', 'abcdefgh']], 'entropy 3 > 2');
  assert.deepEqual(found('ent_aabbccdd', rs), [], 'entropy exactly 2: at the floor is not over it');
  // The global allowlist: a regex on the secret, stopwords the secret contains (case-insensitive).
  assert.deepEqual(found('key=allowed-by-global1', rs), []);
  assert.deepEqual(found('key=my-STOPWORD-value', rs), []);
  // A rule's allowlist against the match, the line, or (AND) every check.
  assert.deepEqual(found('mat_allowedabc mat_qwertyuiop', rs), [['match-allow', 'qwertyuiop']]);
  assert.deepEqual(found('lin_qwertyuiop # test fixture\nlin_asdfghjklz', rs), [['line-allow', 'asdfghjklz']]);
  assert.deepEqual(found('lin_qwertyuiop # test fixture\\nlin_asdfghjklz', rs), [['line-allow', 'asdfghjklz']], 'an escaped newline ends a line too');
  assert.deepEqual(found('x\nlin_qwertyuiop # test fixture', rs), [], 'the line starts after a newline');
  assert.deepEqual(found('x\\nlin_qwertyuiop # test fixture', rs), [], 'or after an escaped one');
  assert.deepEqual(found('x\\n\nlin_qwertyuiop # test fixture', rs), [], 'whichever is nearer');
  assert.deepEqual(found('x\n\\nlin_qwertyuiop # test fixture', rs), [], 'whichever is nearer (escaped)');
  assert.deepEqual(found('lin_qwertyuiop # test fixture\\n\nmore', rs), [], 'the line ends at the nearer newline');
  assert.deepEqual(found('lin_qwertyuiop # test fixture\n\\nmore', rs), [], 'the line ends at the nearer newline (raw)');
  assert.deepEqual(found('lin_qwertyuiop # test fixture and more', rs), [['line-allow', 'qwertyuiop']], 'the line is all of it');
  assert.deepEqual(found('and_qwertyuiop', rs), [['and-allow', 'qwertyuiop']], 'AND: the regex holds, the stopword does not');
  assert.deepEqual(found('and_qwertzzzop', rs), [], 'AND: both hold');
  assert.deepEqual(found('and_asdzzzfghj', rs), [['and-allow', 'asdzzzfghj']], 'AND: the stopword holds, the regex does not');
  assert.deepEqual(found('pth_qwertyuiop', rs), [['path-and', 'qwertyuiop']], 'an AND allowlist that needs a path never allows a content block');
  assert.deepEqual(found('aro_safeabcdef', rs), [], 'AND with only regexes: the regex decides');
  assert.deepEqual(found('aro_qwertyuiop', rs), [['and-regex-only', 'qwertyuiop']]);
  assert.deepEqual(found('cmt_qwertyuiop', rs), [['commit-or', 'qwertyuiop']], 'OR: a commit list alone allows nothing in a content block');
  // A line marked gitleaks:allow is skipped.
  assert.deepEqual(found('tok=abcdef123456 # gitleaks:allow\ntok=zyxwvu987654', rs), [['group-two', 'zyxwvu987654']]);
  // Rule sets are compiled once per file and skip list (in any order).
  assert.equal(loadRuleSet(['github-pat', 'aws-access-token']), loadRuleSet(['aws-access-token', 'github-pat']));
  assert.notEqual(loadRuleSet(['github-pat']), loadRuleSet([]));
  assert.ok(!loadRuleSet(['github-pat']).rules.some((r) => r.id === 'github-pat'));
});

test('a rule file RE2 cannot compile is an error naming the rule; the action reports it at load', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'switchyard-gitleaks-'));
  writeFileSync(path.join(dir, 'bad.toml'), `[[rules]]\nid = "lookahead"\nregex = '''a(?=b)'''\n`);
  assert.throws(() => loadRuleSet([], path.join(dir, 'bad.toml')), /gitleaks rule lookahead: RE2 rejects its regex/);
  writeFileSync(path.join(dir, 'bad-target.toml'), `[[rules]]\nid = "t"\nregex = '''x'''\n[[rules.allowlists]]\nregexTarget = "file"\nregexes = ['''x''']\n`);
  assert.throws(() => loadRuleSet([], path.join(dir, 'bad-target.toml')), /gitleaks rule t allowlist 0: unknown regexTarget "file"/);
});

test('what is scanned and what is not: images, base64 documents and thinking are skipped; text documents, string system prompts and tools are read', async () => {
  const b64 = Buffer.from(ENV_FILE).toString('base64');
  const skipped = {
    model: 'm',
    messages: [
      {
        role: 'user',
        content: [
          { type: 'image', source: { type: 'base64', media_type: 'image/png', data: b64, note: ENV_FILE } },
          { type: 'document', source: { type: 'base64', media_type: 'application/pdf', data: b64, note: ENV_FILE } },
        ],
      },
      { role: 'assistant', content: [{ type: 'redacted_thinking', data: ENV_FILE }] },
    ],
  };
  assert.equal((await applyTo({ on_find: 'report' }, skipped)).d.extra.secret_findings, undefined);
  const read = {
    model: 'm',
    system: `deploy with ${GH_TOKEN}`,
    tools: [{ name: 'deploy', description: `uses ${GH_TOKEN}`, input_schema: { type: 'object' } }],
    messages: [{ role: 'user', content: [{ type: 'document', source: { type: 'text', media_type: 'text/plain', data: ENV_FILE } }] }],
  };
  const { d } = await applyTo({ on_find: 'redact' }, read);
  const extra = d.extra.secret_findings as { findings: Array<{ rule: string; where: string; block: string }> };
  assert.deepEqual(
    extra.findings.map((f) => [f.rule, f.where, f.block]),
    [
      ['github-pat', 'tools[0].description', 'tool'],
      ['github-pat', 'system', 'text'],
      ['aws-access-token', 'messages[0].content[0].source.data', 'document'],
    ],
  );
  const sent = JSON.parse(JSON.stringify(d.body)) as typeof read;
  assert.equal(sent.system, `deploy with ${placeholder('github-pat', GH_TOKEN, redactionKey())}`);
  assert.equal(sent.tools[0]!.description, `uses ${placeholder('github-pat', GH_TOKEN, redactionKey())}`);
  assert.deepEqual(sent.tools[0]!.input_schema, { type: 'object' });
  assert.equal(sent.messages[0]!.content[0]!.source.data, ENV_FILE.replace(AWS_KEY, placeholder('aws-access-token', AWS_KEY, redactionKey())));
  assert.equal(d.bodyChanged, true);
});

test('redaction copies on write: the request as received is untouched; two secrets in one string are both replaced', async () => {
  const two = `${ENV_FILE}GITHUB_TOKEN=${GH_TOKEN}\n`;
  const body = {
    model: 'm',
    messages: [
      {
        role: 'user',
        content: [
          { type: 'text', text: 'hello there' },
          { type: 'tool_result', tool_use_id: 't', content: [{ type: 'text', text: two }] },
        ],
      },
    ],
  };
  const errors: string[] = [];
  const c = scanSecrets.compile({ on_find: 'redact' }, { providers: new Set(), error: (_p, m) => errors.push(m) });
  const original = lazyBody(scanJsonObject(Buffer.from(JSON.stringify(body)), 256));
  const d = new DecisionDraft(original);
  await scanSecrets.apply(c, {} as RequestContext, d, 'r');
  assert.deepEqual(JSON.parse(JSON.stringify(original)), body, 'the received body is unchanged');
  const sent = JSON.parse(JSON.stringify(d.body)) as typeof body;
  const text = (sent.messages[0]!.content[1] as unknown as { content: Array<{ text: string }> }).content[0]!.text;
  assert.equal(text, two.replace(AWS_KEY, placeholder('aws-access-token', AWS_KEY, redactionKey())).replace(GH_TOKEN, placeholder('github-pat', GH_TOKEN, redactionKey())));
  assert.deepEqual(sent.messages[0]!.content[0], body.messages[0]!.content[0], 'the other block is as sent');
});

test('block names every rule found and says when there is more than one; a second scan_secrets is shadowed by the first', async () => {
  const two = { model: 'm', messages: [{ role: 'user', content: `${ENV_FILE}GITHUB_TOKEN=${GH_TOKEN}\n` }] };
  const { d, trace } = await applyTo({ on_find: 'block' }, two);
  assert.equal(d.denied?.status, 400);
  assert.equal(d.denied?.rule, 'r');
  assert.match(
    d.denied!.message,
    /^found 2 secrets: aws-access-token in messages\[0\]\.content \(text block\) and more; remove it from the conversation \(gitleaks rule ids: aws-access-token, github-pat\)$/,
  );
  assert.equal((trace.detail as { on_find: string }).on_find, 'block');
  const one = await applyTo({ on_find: 'block' }, { model: 'm', messages: [{ role: 'user', content: ENV_FILE }] });
  assert.match(one.d.denied!.message, /^found a secret: aws-access-token in messages\[0\]\.content \(text block\); remove/);
  // Two rules with scan_secrets: the first applies, the second is shadowed (one scan per request).
  const c = scanSecrets.compile({ on_find: 'report' }, { providers: new Set(), error: () => {} });
  const draft = new DecisionDraft(lazyBody(scanJsonObject(Buffer.from(JSON.stringify(two)), 256)));
  const first = await scanSecrets.apply(c, {} as RequestContext, draft, 'first');
  const second = await scanSecrets.apply(scanSecrets.compile({ on_find: 'block' }, { providers: new Set(), error: () => {} }), {} as RequestContext, draft, 'second');
  assert.equal(first.applied, true);
  assert.equal(second.applied, false);
  assert.equal(second.shadowed_by, 'first');
  assert.equal(draft.denied, null, 'the shadowed block did not run');
  assert.deepEqual(scanSecrets.settings(c), [{ setting: 'scan_secrets', always: true }]);
});

test('the placeholder key comes from SWITCHYARD_REDACTION_KEY: the same key gives the same placeholder, another key another', () => {
  const a = redactionKey({ SWITCHYARD_REDACTION_KEY: 'team-key' });
  assert.deepEqual(a, Buffer.from('team-key'));
  assert.equal(placeholder('github-pat', GH_TOKEN, a), placeholder('github-pat', GH_TOKEN, redactionKey({ SWITCHYARD_REDACTION_KEY: 'team-key' })));
  assert.notEqual(placeholder('github-pat', GH_TOKEN, a), placeholder('github-pat', GH_TOKEN, redactionKey({ SWITCHYARD_REDACTION_KEY: 'other' })));
  // Without it, one random key for the process.
  assert.equal(redactionKey({}).length, 32);
  assert.equal(redactionKey({}), redactionKey({}));
  assert.match(placeholder('github-pat', GH_TOKEN, a), /^\[REDACTED:github-pat:[0-9a-f]{6}\]$/);
  assert.equal(MEMO_BYTES, 8 * 1024 * 1024);
});

test('allow_paths: the result of a tool call that read an allowed file is not scanned; another file is', async () => {
  const turn = (file: string) => ({
    model: 'm',
    messages: [
      { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_r', name: 'Read', input: { file_path: file } }] },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_r', content: ENV_FILE }] },
    ],
  });
  const params = { on_find: 'report', allow_paths: ['**/fixtures/**', '**/*.example'] };
  assert.equal((await applyTo(params, turn('/repo/test/fixtures/creds.env'))).d.extra.secret_findings, undefined);
  assert.equal((await applyTo(params, turn('/repo/.env.example'))).d.extra.secret_findings, undefined);
  const other = (await applyTo(params, turn('/repo/.env'))).d.extra.secret_findings as { counts: Record<string, number> };
  assert.deepEqual(other.counts, { 'aws-access-token': 1 });
  // Without allow_paths the fixture is scanned like any file.
  assert.ok((await applyTo({ on_find: 'report' }, turn('/repo/test/fixtures/creds.env'))).d.extra.secret_findings);
});

/** The load errors of one rule whose actions are `actions` (a YAML flow sequence), or [] when it loads. */
function loadErrors(actions: string): string[] {
  try {
    compileRuleSources([{ file: 'r.yaml', text: `version: 1\nrules:\n  - id: a\n    actions: ${actions}\n` }], ['anthropic']);
    return [];
  } catch (err) {
    assert.ok(err instanceof LoadError, String(err));
    return err.issues.map(formatIssue);
  }
}

test("scan_secrets' parameters are checked at load, each with an error naming it", () => {
  assert.deepEqual(loadErrors('[ { scan_secrets: { on_find: redact, scan: [messages, tools], skip_rules: [generic-api-key], allow: [x], allow_paths: ["**/x"] } } ]'), []);
  const cases: Array<[string, RegExp]> = [
    ['[ { scan_secrets: {} } ]', /on_find/],
    ['[ { scan_secrets: { on_find: drop } } ]', /on_find.*(block|redact|report)/],
    ['[ { scan_secrets: { on_find: block, scan: [] } } ]', /scan/],
    ['[ { scan_secrets: { on_find: block, scan: [messages, messages] } } ]', /scan/],
    ['[ { scan_secrets: { on_find: block, scan: [images] } } ]', /scan/],
    ['[ { scan_secrets: { on_find: block, extra: 1 } } ]', /extra/],
    ['[ { scan_secrets: { on_find: block, skip_rules: [""] } } ]', /skip_rules/],
    ['[ { scan_secrets: { on_find: block, allow: [""] } } ]', /allow/],
    ['[ { scan_secrets: { on_find: block, allow_paths: [""] } } ]', /allow_paths/],
    ['[ { scan_secrets: { on_find: block, skip_rules: [github-pat, nope] } } ]', /"nope" is not a rule of gitleaks v8\.30\.1; the rule ids are the "id"s of secrets\/gitleaks\.toml/],
  ];
  for (const [actions, re] of cases) {
    const errs = loadErrors(actions);
    assert.ok(errs.length > 0 && errs.some((e) => re.test(e)), `${actions}: ${errs.join(' | ')}`);
  }
  // Only the unknown rule id is an error, at its index.
  const errs = loadErrors('[ { scan_secrets: { on_find: block, skip_rules: [github-pat, nope] } } ]');
  assert.equal(errs.length, 1, errs.join(' | '));
});

test('the strings of a block are scanned wherever they are: nested objects and arrays, not member names; short strings are passed over', async () => {
  const input = {
    model: 'm',
    messages: [{ role: 'assistant', content: [{ type: 'tool_use', id: 't', name: 'Write', input: { files: [{ path: 'a', text: ENV_FILE }], meta: { [GH_TOKEN]: 'x' } } }] }],
  };
  const { d } = await applyTo({ on_find: 'redact' }, input);
  const extra = d.extra.secret_findings as { findings: Array<{ rule: string; where: string; length: number }> };
  assert.deepEqual(
    extra.findings.map((f) => [f.rule, f.where, f.length]),
    [['aws-access-token', 'messages[0].content[0].input.files[0].text', AWS_KEY.length]],
    'a secret used as a member name is not a string value',
  );
  const sent = JSON.parse(JSON.stringify(d.body)) as typeof input;
  assert.deepEqual(sent.messages[0]!.content[0]!.input.meta, input.messages[0]!.content[0]!.input.meta);
  assert.equal(sent.messages[0]!.content[0]!.input.files[0]!.path, 'a');
  // A content block that is not an object (a string element) is scanned as text.
  const odd = await applyTo({ on_find: 'report' }, { model: 'm', messages: [{ role: 'user', content: [ENV_FILE, { text: ENV_FILE }, { type: 7, text: ENV_FILE }] }, null, { role: 'user' }] });
  assert.deepEqual(
    (odd.d.extra.secret_findings as { findings: Array<{ where: string; block: string }> }).findings.map((f) => [f.where, f.block]),
    [
      ['messages[0].content[0]', 'text'],
      ['messages[0].content[1].text', 'unknown'],
      ['messages[0].content[2].text', 'unknown'],
    ],
  );
});

test('a memo hit is reported as such, and redaction on a later turn gives the same bytes as the first', async () => {
  const body = turnWithSecret();
  const c = scanSecrets.compile({ on_find: 'redact' }, { providers: new Set(), error: () => {} });
  const run = async () => {
    const d = new DecisionDraft(lazyBody(scanJsonObject(Buffer.from(JSON.stringify(body)), 256)));
    const trace = await scanSecrets.apply(c, {} as RequestContext, d, 'r');
    return { sent: JSON.stringify(d.body), findings: (trace.detail as { findings: Array<{ first_seen: boolean }> }).findings };
  };
  const first = await run();
  const second = await run();
  assert.deepEqual(
    first.findings.map((f) => f.first_seen),
    [true],
  );
  assert.deepEqual(
    second.findings.map((f) => f.first_seen),
    [false],
  );
  assert.equal(second.sent, first.sent);
  assert.ok(!first.sent.includes(AWS_KEY));
  // report leaves the body as it came (the same object: nothing to serialize again).
  const r = scanSecrets.compile({ on_find: 'report' }, { providers: new Set(), error: () => {} });
  const d = new DecisionDraft(lazyBody(scanJsonObject(Buffer.from(JSON.stringify(body)), 256)));
  const before = d.body;
  await scanSecrets.apply(r, {} as RequestContext, d, 'r');
  assert.equal(d.body, before);
  assert.equal(d.bodyChanged, false);
});

test('overlapping findings merge into one span; entropy of a string counts each character once per occurrence', () => {
  assert.ok(Math.abs(shannonEntropy('aabb') - 1) < 1e-12);
  assert.ok(Math.abs(shannonEntropy('aaab') - 0.8112781244591328) < 1e-12);
  assert.equal(shannonEntropy(''), 0);
  const rs = loadRuleSet();
  // github-pat and generic-api-key find the same token: one finding named by the specific rule.
  const text = `token = "${GH_TOKEN}"`;
  const raw = findSecrets(Buffer.from(text), rs)
    .map((f) => f.rule)
    .sort();
  assert.deepEqual(raw, ['generic-api-key', 'github-pat']);
});
