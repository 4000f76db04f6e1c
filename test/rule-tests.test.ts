/**
 * `switchyard test`: rule test files checked against the gateway's own decision — the bundled rules' and every
 * example's tests pass; a broken expectation prints expected vs actual and exits 1; coverage names the rule a
 * suite never exercises (file:line) and `--min-coverage` fails below it; broken test files get file:line:col
 * errors; throttle and budget refusals follow the case's state and clock; TAP, JUnit and JSON output.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { loadRuleDir } from '../src/rules/load.js';
import { formatCoverage, formatJunit, formatTap, formatText, runTestPaths, splitTestFile } from '../src/rules/rule-tests.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const CLI = [process.execPath, '--import', 'tsx', path.join(ROOT, 'src/cli.ts')] as const;

function run(args: string[]) {
  const r = spawnSync(CLI[0], [...CLI.slice(1), ...args], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A gateway config with two providers and the given rule and test files, in a fresh directory. */
function project(rules: string, tests: string): { dir: string; config: string; testFile: string } {
  const dir = mkdtempSync(path.join(tmpdir(), 'switchyard-rule-tests-'));
  mkdirSync(path.join(dir, 'rules'));
  writeFileSync(
    path.join(dir, 'switchyard.yaml'),
    'rules: ./rules\nproviders:\n  anthropic: { type: anthropic, base_url: "http://127.0.0.1:9", keys: [sk-test-a] }\n  cheap: { type: anthropic, base_url: "http://127.0.0.1:9", keys: [sk-test-c], models: { claude-haiku-4-5: cheap-haiku } }\nclients:\n  ci-bot: { key_sha256: "' +
      'a'.repeat(64) +
      '", tags: { team: infra } }\n',
  );
  writeFileSync(path.join(dir, 'rules', '10-rules.yaml'), rules);
  const testFile = path.join(dir, 'rules', 'routes.test.yaml');
  writeFileSync(testFile, tests);
  return { dir, config: path.join(dir, 'switchyard.yaml'), testFile };
}

const RULES = `version: 1
rules:
  - id: haiku-cheap
    match: { model: "claude-haiku-*" }
    actions:
      - route_to: { provider: cheap, fallback: [anthropic] }
      - tag_billing: { tier: background }
  - id: ci-throttle
    match: { key: "ci-*" }
    actions:
      - throttle: { scope: client, requests_per_minute: 10 }
      - budget: { scope: "tag:team", usd: 50, per: day }
  - id: night-deny
    match: { when: "time.hour < 6" }
    actions:
      - deny: { status: 403, message: "closed at night (00:00-06:00 UTC)" }
  - id: never-hit
    match: { header: { x-never: "*" } }
    actions:
      - set_headers: { x-route: never }
`;

describe('switchyard test', () => {
  test('the bundled rules and every example ship tests, and they pass with full coverage', () => {
    const examples = readdirSync(path.join(ROOT, 'examples'), { withFileTypes: true })
      .filter((d) => d.isDirectory() && readdirSync(path.join(ROOT, 'examples', d.name)).includes('switchyard.yaml'))
      .map((d) => `examples/${d.name}/rules`);
    assert.ok(examples.length >= 8, examples.join(', '));
    const r = run(['test', 'rules', ...examples, '--min-coverage', '100']);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const passed = Number(/(\d+) passed, 0 failed/.exec(r.stdout)?.[1]);
    assert.ok(passed >= 20, r.stdout);
    for (const dir of ['rules', ...examples]) assert.match(r.stdout, new RegExp(`coverage ${dir}: 100\\.0%`), dir);
  });

  test('a broken expectation prints expected and actual and exits 1; the other cases still run', () => {
    const p = project(
      RULES,
      `version: 1
config: ../switchyard.yaml
tests:
  - name: haiku is routed to cheap under its own model name
    request: { model: claude-haiku-4-5, time: "2026-11-30T12:00:00Z" }
    expect: { provider: cheap, model: cheap-haiku, fallback: [anthropic], tags: { tier: background }, matched: [haiku-cheap] }
  - name: a wrong expectation
    request: { model: claude-haiku-4-5, time: "2026-11-30T12:00:00Z" }
    expect: { provider: anthropic, tags: { tier: interactive } }
`,
    );
    const r = run(['test', p.testFile]);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stdout, /^ok {3}.*routes\.test\.yaml:4 haiku is routed to cheap/m);
    assert.match(r.stdout, /^FAIL .*routes\.test\.yaml:7 a wrong expectation/m);
    assert.match(r.stdout, /provider:\n\s+- expected "anthropic"\n\s+\+ actual {3}"cheap"/);
    assert.match(r.stdout, /tags\.tier:\n\s+- expected "interactive"\n\s+\+ actual {3}"background"/);
    assert.match(r.stdout, /1 passed, 1 failed/);
  });

  test('coverage names the rule never matched and the condition never seen to fail, with file:line; --min-coverage fails below it', async () => {
    const p = project(
      RULES,
      `version: 1
config: ../switchyard.yaml
tests:
  - name: haiku by day
    request: { model: claude-haiku-4-5, client: ci-bot, time: "2026-11-30T12:00:00Z" }
    expect: { provider: cheap, fallback: [anthropic] }
  - name: ci by night is denied
    request: { client: ci-bot, time: "2026-11-30T03:00:00Z" }
    expect: { denied: { status: 403, rule: night-deny, message: "/closed at night/" }, matched: [ci-throttle, night-deny] }
`,
    );
    const { results, coverage } = await runTestPaths([p.testFile], p.config);
    assert.ok(
      results.every((r) => r.ok),
      formatText(results),
    );
    const report = [...coverage.values()][0]!;
    const missing = report.items.filter((i) => !i.covered).map((i) => `${i.kind}:${i.rule}`);
    assert.deepEqual(missing.sort(), ['branch:ci-throttle', 'rule:never-hit'].sort(), 'ci-throttle always matched in these cases; never-hit never did');
    const text = formatCoverage(coverage);
    const line = loadRuleDir(path.join(p.dir, 'rules'), ['anthropic', 'cheap']).rules.find((r) => r.id === 'never-hit')!.line;
    assert.match(text, new RegExp(`10-rules\\.yaml:${line}: rule "never-hit" never matched`));
    assert.equal(report.percent.toFixed(1), ((100 * 7) / 9).toFixed(1), '7 of 9 items: 4 rules, 4 branches, 1 fallback');
    const low = run(['test', p.testFile, '--min-coverage', '80']);
    assert.equal(low.code, 1);
    assert.match(low.stderr, /coverage of .* is 77\.8%, below --min-coverage 80/);
    assert.equal(run(['test', p.testFile, '--min-coverage', '77']).code, 0);
  });

  test('a rule an earlier rule kept from being evaluated is neither matched nor seen to fail', async () => {
    const p = project(
      `version: 1
rules:
  - id: no-opus
    match: { model: "claude-opus-*" }
    actions: [ { deny: { status: 403, message: "no Opus" } } ]
  - id: team-tag
    match: { header: { x-team: "*" } }
    actions: [ { tag_billing: { team: { expr: "headers.'x-team'" } } } ]
`,
      `version: 1
config: ../switchyard.yaml
tests:
  - name: Opus is refused (evaluation stops there)
    request: { model: claude-opus-4-1, headers: { x-team: search } }
    expect: { denied: { status: 403, rule: no-opus }, matched: [no-opus] }
`,
    );
    const { results, coverage } = await runTestPaths([p.testFile], p.config);
    assert.ok(
      results.every((r) => r.ok),
      formatText(results),
    );
    const items = [...coverage.values()][0]!.items;
    const covered = (kind: string, rule: string) => items.find((i) => i.kind === kind && i.rule === rule)?.covered;
    assert.equal(covered('rule', 'no-opus'), true);
    assert.equal(covered('rule', 'team-tag'), false, 'never reached, so never matched');
    assert.equal(covered('branch', 'team-tag'), false, 'never reached, so not seen to fail either');
  });

  test('a case whose rule fails with an error fails, naming the rule and its error; the next case still runs', async () => {
    const p = project(
      `version: 1
rules:
  - id: broken-transform
    match: { model: "claude-haiku-*" }
    actions: [ { transform: { expr: "'not an object'" } } ]
  - id: route
    actions: [ { route_to: { provider: anthropic } } ]
`,
      `version: 1
config: ../switchyard.yaml
tests:
  - name: haiku meets the broken transform
    request: { model: claude-haiku-4-5 }
    expect: { provider: anthropic }
  - name: sonnet is routed
    request: { model: claude-sonnet-4-6 }
    expect: { provider: anthropic, matched: [route] }
`,
    );
    const { results } = await runTestPaths([p.testFile], p.config);
    assert.deepEqual(
      results.map((r) => r.ok),
      [false, true],
    );
    const failure = results[0]!.mismatches.find((m) => m.field === 'error');
    assert.ok(failure, formatText(results));
    assert.match(String(failure.actual), /rule "broken-transform" failed: .*object/);
  });

  test('throttle and budget refusals follow the case state and clock', async () => {
    const p = project(
      RULES,
      `version: 1
config: ../switchyard.yaml
tests:
  - name: under its limits
    request: { client: ci-bot, time: "2026-11-30T12:00:00Z" }
    state: { throttles: { ci-throttle: { requests: 9 } }, budgets: { ci-throttle: 49.5 } }
    expect: { refused: false, throttles: [ci-throttle], budgets: [ci-throttle] }
  - name: the 11th request of the minute
    request: { client: ci-bot, time: "2026-11-30T12:00:00Z" }
    state: { throttles: { ci-throttle: { requests: 10 } } }
    expect: { refused: { by: throttle, rule: ci-throttle, status: 429, message: "/requests_per_minute 10 for client \\"ci-bot\\"/" } }
  - name: the team's budget is spent until midnight
    request: { client: ci-bot, time: "2026-11-30T12:00:00Z" }
    state: { budgets: { ci-throttle: 50 } }
    expect: { refused: { by: budget, message: '/is spent \\(\\$50\\.00\\); it resets at 2026-12-01T00:00:00\\.000Z/' } }
  - name: expected a refusal that does not happen
    request: { client: ci-bot, time: "2026-11-30T12:00:00Z" }
    expect: { refused: { by: throttle } }
`,
    );
    const { results, issues } = await runTestPaths([p.testFile], p.config);
    assert.deepEqual(issues, []);
    assert.deepEqual(
      results.map((r) => r.ok),
      [true, true, true, false],
      formatText(results),
    );
    assert.deepEqual(results[3]!.mismatches, [{ field: 'refused', expected: { by: 'throttle' }, actual: false }]);
  });

  test('broken test files get file:line:col errors and exit 1', () => {
    const p = project(
      RULES,
      `version: 1
tests:
  - name: typo and a wrong type
    request: { model: 3, colour: red, body_file: nowhere.json }
    expect: { provider: anthropic, denied: { status: "x" }, matched: haiku-cheap }
`,
    );
    const r = run(['test', p.testFile, '--config', p.config]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /routes\.test\.yaml:4:\d+: unknown key "colour" in tests\[0\]\.request/);
    assert.match(r.stderr, /routes\.test\.yaml:4:\d+: tests\[0\]\.request\.model must be a string, got number 3/);
    assert.match(r.stderr, /routes\.test\.yaml:5:\d+: tests\[0\]\.expect\.denied\.status must be an integer/);
    assert.match(r.stderr, /routes\.test\.yaml:5:\d+: tests\[0\]\.expect\.matched must be a list/);
    writeFileSync(p.testFile, 'version: 1\ntests:\n  - name: x\n    expect: { provider: [unclosed\n');
    const yaml = run(['test', p.testFile, '--config', p.config]);
    assert.equal(yaml.code, 1);
    assert.match(yaml.stderr, /routes\.test\.yaml:\d+:\d+: YAML: /);
    writeFileSync(p.testFile, 'version: 1\ntests:\n  - name: x\n    request: { body_file: nowhere.json }\n    expect: { provider: anthropic }\n');
    const missing = run(['test', p.testFile, '--config', p.config]);
    assert.match(missing.stderr, /routes\.test\.yaml:4:\d+: body file nowhere\.json does not exist/);
  });

  test('a test file beside the rules is not a rule file: the rules load and the gateway version ignores it', () => {
    const p = project(RULES, 'version: 1\ntests:\n  - name: x\n    expect: { provider: anthropic }\n');
    const set = loadRuleDir(path.join(p.dir, 'rules'), ['anthropic', 'cheap']);
    assert.deepEqual(
      set.files.map((f) => path.basename(f)),
      ['10-rules.yaml'],
    );
    const r = run(['validate-rules', '--config', p.config]);
    assert.equal(r.code, 0, r.stderr);
  });

  test('TAP, JUnit and JSON output for CI', async () => {
    const p = project(
      RULES,
      `version: 1
config: ../switchyard.yaml
tests:
  - name: "passes # with a hash"
    request: { model: claude-haiku-4-5, time: "2026-11-30T12:00:00Z" }
    expect: { provider: cheap }
  - name: fails <&>
    request: { model: claude-haiku-4-5, time: "2026-11-30T12:00:00Z" }
    expect: { provider: anthropic }
`,
    );
    const { results } = await runTestPaths([p.testFile], p.config);
    const tap = formatTap(results).split('\n');
    assert.deepEqual(tap.slice(0, 4), ['TAP version 13', '1..2', 'ok 1 - passes \\# with a hash', 'not ok 2 - fails <&>']);
    assert.ok(tap.includes('  provider:') && tap.includes('    expected: "anthropic"') && tap.includes('    actual: "cheap"'), tap.join('\n'));
    const junit = formatJunit(results);
    assert.match(junit, /<testsuites name="switchyard rules" tests="2" failures="1">/);
    assert.match(junit, /<testcase [^>]*name="fails &lt;&amp;&gt;"[^>]*line="7"[^>]*>\s*<failure message="provider: expected &quot;anthropic&quot;, actual &quot;cheap&quot;">/);
    const json = run(['test', p.testFile, '--format', 'json', '--coverage']);
    assert.equal(json.code, 1);
    const parsed = JSON.parse(json.stdout) as { results: Array<{ name: string; ok: boolean }>; coverage: Record<string, { percent: number }> };
    assert.deepEqual(
      parsed.results.map((r) => [r.name, r.ok]),
      [
        ['passes # with a hash', true],
        ['fails <&>', false],
      ],
    );
    assert.equal(Object.keys(parsed.coverage).length, 1);
  });
});

describe('switchyard test streams its cases (a large file is read a piece at a time)', () => {
  test('1,200 cases in one file run in pieces; a failing case and a broken case name their lines in the whole file', async () => {
    const cases: string[] = [];
    for (let i = 0; i < 1200; i++) {
      const provider = i === 1100 ? 'anthropic' : 'cheap'; // case 1100 expects the wrong provider
      cases.push(`  - name: case ${i}\n    request: { model: claude-haiku-4-5, time: "2026-11-30T12:00:00Z" }\n    expect: { provider: ${provider} }`);
    }
    // Case 1150 is broken: an unknown key, reported at its own line.
    cases[1150] = '  - name: case 1150\n    request: { model: claude-haiku-4-5 }\n    expect: { provdier: cheap }';
    const text = `version: 1\nconfig: ../switchyard.yaml\ntests:\n${cases.join('\n')}\n`;
    const pieces = splitTestFile(text, 500);
    assert.equal(pieces?.length, 3, 'three pieces of at most 500 cases');
    const p = project(RULES, text);
    const { results, issues } = await runTestPaths([p.testFile], p.config);
    const lineOf = (name: string) => text.split('\n').indexOf(`  - name: ${name}`) + 1;
    // The piece holding the broken case contributes no cases (as a whole file with an error would not).
    assert.equal(results.length, 1000);
    assert.deepEqual(
      results.filter((r) => !r.ok).map((r) => r.name),
      [],
      'case 1100 is in the broken piece, so it did not run',
    );
    assert.equal(issues.length, 1, JSON.stringify(issues));
    assert.equal(issues[0]!.line, lineOf('case 1150') + 2, `${issues[0]!.message}: the broken case's expect: line in the whole file`);
    assert.match(issues[0]!.message, /provdier/);
    // Without the broken case, case 1100 fails at its own line.
    const fixed = text.replace('expect: { provdier: cheap }', 'expect: { provider: cheap }');
    const q = project(RULES, fixed);
    const again = await runTestPaths([q.testFile], q.config);
    assert.equal(again.results.length, 1200);
    assert.deepEqual(
      again.results.filter((r) => !r.ok).map((r) => [r.name, r.line]),
      [['case 1100', lineOf('case 1100')]],
    );
  });

  test('a file with anchors or aliases, or a flow-style list, is read whole', () => {
    const many = Array.from({ length: 600 }, (_, i) => `  - name: c${i}\n    expect: { provider: cheap }`).join('\n');
    assert.equal(splitTestFile(`version: 1\ntests:\n  - name: a\n    request: &r { model: m }\n    expect: { provider: cheap }\n${many}\n`, 500), null);
    assert.equal(splitTestFile(`version: 1\ntests: [ { name: a, expect: { provider: cheap } } ]\n`, 500), null);
    assert.notEqual(splitTestFile(`version: 1\ntests:\n${many}\n`, 500), null);
  });
});
