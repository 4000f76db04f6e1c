/**
 * The command line as an operator uses it: `validate-rules` exit codes and messages on the bundled
 * rules, every example and broken files; `dry-run --json` decisions for the examples; the generated
 * schema files being current; `serve` refusing an invalid initial rule set; SIGTERM letting an open
 * stream finish.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { request } from 'undici';
import { SCHEMA_FILES } from '../scripts/write-schemas.js';
import { ruleFiles } from '../src/rules/load.js';
import { findTestFiles } from '../src/rules/rule-tests.js';
import { startFakeUpstream } from './fake-upstream.js';
import { until, writeConfig } from './helpers.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const CLI = [process.execPath, '--import', 'tsx', path.join(ROOT, 'src/cli.ts')] as const;

function run(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(CLI[0], [...CLI.slice(1), ...args], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, ...env }, timeout: 30_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const EXAMPLES = readdirSync(path.join(ROOT, 'examples'), { withFileTypes: true })
  .filter((d) => d.isDirectory() && readdirSync(path.join(ROOT, 'examples', d.name)).includes('switchyard.yaml'))
  .map((d) => d.name);

describe('validate-rules', () => {
  test('the bundled config and rules/ are valid', () => {
    const r = run(['validate-rules']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^ok: \d+ rules? in 1 directory/m);
  });

  test('every example config and its rules are valid', () => {
    assert.ok(EXAMPLES.length >= 3, `examples: ${EXAMPLES.join(', ')}`);
    const r = run(['validate-rules', ...EXAMPLES.map((e) => `examples/${e}/switchyard.yaml`)]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`in ${EXAMPLES.length} directories`));
  });

  test('a broken rule file exits 1 with one file:line:col line per error', () => {
    const { rulesDir, configFile } = writeConfig({
      upstream: 'http://127.0.0.1:9',
      rules: {
        '10-bad.yaml': 'version: 1\nrules:\n  - id: a\n    actions:\n      - route_to: { provider: nowhere }\n  - id: b\n    match: { when: "(" }\n    actions: [ { tag_billing: { a: b } } ]\n',
      },
    });
    const r = run(['validate-rules', '--config', configFile]);
    assert.equal(r.code, 1);
    const lines = r.stderr.trim().split('\n');
    // A rule file outside the working directory is named by its absolute path, never ../../tmp/...
    const file = path.join(rulesDir, '10-bad.yaml');
    assert.equal(lines.length, 3, r.stderr);
    assert.match(lines[0]!, new RegExp(`^${file.replace(/[.]/g, '\\.')}:5:31: rule "a": unknown provider "nowhere"`));
    assert.match(lines[1]!, /:7:\d+: rule "b": JSONata syntax error/);
    assert.equal(lines[2], '2 errors');
    // A rule file given by path is checked with its whole directory (ids are unique per directory).
    const direct = run(['validate-rules', '--config', configFile, path.join(rulesDir, '10-bad.yaml')]);
    assert.equal(direct.code, 1);
  });

  test('a YAML alias bomb in a rule file exits 1 with a file:line:col line naming the rule file, no stack trace', () => {
    const bomb = [
      'version: 1',
      'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
      'b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]',
      'c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]',
      'd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]',
      'e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]',
      'rules: []',
      '',
    ].join('\n');
    const { rulesDir, configFile } = writeConfig({ upstream: 'http://127.0.0.1:9', rules: { '10-bomb.yaml': bomb } });
    const r = run(['validate-rules', '--config', configFile]);
    assert.equal(r.code, 1, r.stderr);
    const file = path.join(rulesDir, '10-bomb.yaml');
    assert.match(r.stderr, new RegExp(`^${file.replace(/[.]/g, '\\.')}:3:8: YAML: Excessive alias count .*aliases may expand to at most 100 nodes each`, 'm'));
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  });

  test('a config with an unknown key exits 1 naming it', () => {
    const { configFile } = writeConfig({ upstream: 'http://127.0.0.1:9', extraConfig: 'listne: { port: 1 }\n' });
    const r = run(['validate-rules', configFile]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /switchyard\.yaml:\d+:1: unknown key "listne" in \(top level\); expected one of: listen, rules, /);
  });
});

describe('dry-run', () => {
  test('--group decides as a signed-in member of that identity-provider group', () => {
    const args = ['dry-run', '--config', 'examples/sso-login/switchyard.yaml', '--request', 'examples/sso-login/request.json', '--json'];
    const member = run([...args, '--group', 'staff', '--group', 'research']);
    assert.equal(member.code, 0, member.stderr);
    assert.deepEqual((JSON.parse(member.stdout) as { tags: Record<string, string> }).tags, { team: 'research' });
    const other = run(args);
    assert.equal(other.code, 0, other.stderr);
    assert.deepEqual((JSON.parse(other.stdout) as { tags: Record<string, string> }).tags, {});
  });

  test('shows each budget with its modes: notify thresholds, shaping and no block', () => {
    const r = run(['dry-run', '--config', 'examples/budgets/switchyard.yaml', '--request', 'examples/budgets/request.json', '--header', 'x-team=search']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stdout,
      /^budgets {3}team-daily \(\$200\/day per tag:team; notify at 50%\/80%\/100%\), user-daily-soft \(\$50\/day per user; no block; notify at 100%; from 90% sent to claude-haiku-4-5\)$/m,
    );
  });

  test('--json for the examples gives the expected decisions, credentials masked', () => {
    const secret = 'sk-ant-PLANTED-DRYRUN-SECRET';
    const haiku = run([
      'dry-run',
      '--json',
      '--config',
      'examples/haiku-to-second-provider/switchyard.yaml',
      '--request',
      'examples/haiku-to-second-provider/request.json',
      '--header',
      `x-api-key=${secret}`,
    ]);
    assert.equal(haiku.code, 0, haiku.stderr);
    assert.ok(!haiku.stdout.includes(secret), 'dry-run printed the credential');
    const h = JSON.parse(haiku.stdout) as Record<string, any>;
    assert.deepEqual(h.route, {
      provider: 'background',
      model: 'claude-haiku-4-5',
      requested_model: 'claude-haiku-4-5-20251001',
      fallback: [{ provider: 'anthropic' }],
      rule: 'haiku-to-background',
      url: 'https://relay.internal.example/v1/messages?beta=true',
      // The fallback gets the model the client asked for, never the background provider's name for it.
      chain: [
        { provider: 'background', model: 'claude-haiku-4-5' },
        { provider: 'anthropic', model: 'claude-haiku-4-5-20251001' },
      ],
    });
    assert.deepEqual(h.tags, { cost_center: 'eng-background' });
    assert.equal(h.body_changed, true);
    assert.match(h.headers['x-api-key'], /^\[masked fp-[0-9a-f]{10}\]$/);
    assert.deepEqual(
      h.rules.map((r: { id: string; matched: boolean }) => [r.id, r.matched]),
      [
        ['haiku-to-background', true],
        ['everything-else', true],
      ],
    );
    assert.equal(h.rules[1].actions[0].shadowed_by, 'haiku-to-background');
    assert.equal(h.denied, null);
    assert.deepEqual(h.throttles, []);

    const team = JSON.parse(
      run(['dry-run', '--json', '--config', 'examples/tag-by-team/switchyard.yaml', '--request', 'examples/tag-by-team/request.json', '--header', 'x-team=search', '--header', 'x-project=ranker'])
        .stdout,
    ) as Record<string, any>;
    assert.deepEqual(team.tags, { team: 'search', project: 'ranker' });
    assert.equal(team.body_changed, false);
    const noTeam = JSON.parse(run(['dry-run', '--json', '--config', 'examples/tag-by-team/switchyard.yaml', '--request', 'examples/tag-by-team/request.json']).stdout) as Record<string, any>;
    assert.deepEqual(noTeam.tags, { team: 'unassigned' });

    const ci = JSON.parse(
      run(['dry-run', '--json', '--config', 'examples/deny-model-for-keys/switchyard.yaml', '--request', 'examples/deny-model-for-keys/request.json', '--key', 'ci-nightly']).stdout,
    ) as Record<string, any>;
    assert.deepEqual(ci.denied, { rule: 'no-opus-for-ci', status: 403, message: 'CI jobs may not use Opus; use a claude-sonnet-* model' });
    const alice = JSON.parse(
      run(['dry-run', '--json', '--config', 'examples/deny-model-for-keys/switchyard.yaml', '--request', 'examples/deny-model-for-keys/request.json', '--key', 'alice']).stdout,
    ) as Record<string, any>;
    assert.equal(alice.denied, null);
    assert.match(alice.rules[0].reason, /client "alice" does not match ci-\*/);

    const cache = JSON.parse(run(['dry-run', '--json', '--config', 'examples/prompt-caching/switchyard.yaml', '--request', 'examples/prompt-caching/request.json']).stdout) as Record<string, any>;
    assert.equal(cache.cache_breakpoints.rule, 'opus-prefix-1h');
    assert.deepEqual(
      cache.cache_breakpoints.places.map((p: { place: string; ttl: string; status: string }) => [p.place, p.ttl, p.status]),
      [
        ['tools', '1h', 'injected'],
        ['system', '1h', 'injected'],
      ],
    );
    assert.equal(cache.rules[1].actions[0].shadowed_by, 'opus-prefix-1h');
  });

  test('the human table names each rule and why it matched or not', () => {
    const r = run(['dry-run', '--config', 'examples/deny-model-for-keys/switchyard.yaml', '--request', 'examples/deny-model-for-keys/request.json', '--key', 'ci-1']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^DENIED by no-opus-for-ci: 403 /m);
    assert.match(r.stdout, /^default\s+no\s+not evaluated: rule "no-opus-for-ci" denied the request$/m);
  });
});

test('schemas/*.json are generated from src (run `npm run schemas` after changing a schema)', () => {
  for (const [file, schema] of Object.entries(SCHEMA_FILES)) {
    assert.deepEqual(JSON.parse(readFileSync(path.join(ROOT, file), 'utf8')), JSON.parse(JSON.stringify(schema)), `${file} is stale`);
  }
});

test('every bundled and example rule file and rule test file starts with the yaml-language-server modeline', () => {
  const dirs = [path.join(ROOT, 'rules'), ...EXAMPLES.map((e) => path.join(ROOT, 'examples', e, 'rules'))];
  for (const dir of dirs) {
    for (const f of ruleFiles(dir)) assert.match(readFileSync(path.join(dir, f), 'utf8'), /^# yaml-language-server: \$schema=.*\/rules\.schema\.json$/m, f);
    const tests = findTestFiles(dir);
    assert.ok(tests.length > 0, `${dir} ships rule tests`);
    for (const f of tests) assert.match(readFileSync(f, 'utf8'), /^# yaml-language-server: \$schema=.*\/rule-tests\.schema\.json$/m, f);
  }
});

describe('serve', () => {
  test('refuses to start on an invalid initial rule set, with the same messages', () => {
    const { configFile } = writeConfig({ upstream: 'http://127.0.0.1:9', rules: { 'a.yaml': 'version: 1\nrules:\n  - id: x\n    actions: [ { route_to: { provider: nope } } ]\n' } });
    const r = run(['serve', '--config', configFile, '--port', '0']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /not starting, the configuration is invalid/);
    assert.match(r.stderr, /a\.yaml:4:\d+: rule "x": unknown provider "nope"/);
  });

  test('SIGTERM: stops accepting, lets an open stream finish, exits 0', async () => {
    const fake = await startFakeUpstream();
    const { configFile } = writeConfig({ upstream: fake.url });
    // A grace long enough that a loaded machine cannot run it out while the test checks new connections are refused.
    writeFileSync(configFile, readFileSync(configFile, 'utf8').replace('grace_ms: 2000', 'grace_ms: 20000'));
    const child = spawn(CLI[0], [...CLI.slice(1), 'serve', '--config', configFile, '--port', '0'], { cwd: ROOT, env: { ...process.env, LOG_LEVEL: 'info' } });
    try {
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (out += d.toString()));
      const url = await new Promise<string>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`gateway did not start:\n${out}`)), 15_000);
        child.stdout.on('data', () => {
          const m = /switchyard listening on (http:\/\/[^"\s]+)/.exec(out);
          if (m) {
            clearTimeout(t);
            resolve(m[1]!);
          }
        });
      });
      const r = await request(url + '/v1/messages', {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-fake': 'gated-sse' },
        body: JSON.stringify({ model: 'm', max_tokens: 5, stream: true, messages: [] }),
      });
      const chunks: string[] = [];
      r.body.on('data', (c: Buffer) => chunks.push(c.toString()));
      // Listened for from the start (an end that came early must not leave the test waiting), and bounded: a gateway
      // that died instead of draining fails the test with its own output.
      const bounded = <T>(p: Promise<T>, what: string) =>
        Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${what} within 30 s; the gateway said:\n${out}`)), 30_000).unref())]);
      const ended = bounded(
        new Promise((res, rej) => {
          r.body.once('end', res);
          r.body.once('error', (err: Error) => rej(new Error(`the stream broke (${err.message}); the gateway said:\n${out}`)));
        }),
        'the open stream did not end',
      );
      await until(() => chunks.length > 0, 5000, 'the first event');
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      child.kill('SIGTERM');
      // New connections are refused while the open stream is still running.
      await until(
        () =>
          // A fresh connection each time: one kept alive from an earlier poll would still be served while draining.
          request(url + '/healthz', { reset: true }).then(
            async (h) => {
              await h.body.dump();
              return false;
            },
            (err: Error) => /ECONNREFUSED/.test(err.message),
          ),
        5000,
        'new connections refused',
      );
      assert.equal(chunks.join('').includes('message_stop'), false, 'the stream is still open');
      fake.release();
      await ended;
      assert.match(chunks.join(''), /event: message_stop/);
      assert.equal(await bounded(exited, 'the gateway did not exit'), 0, out);
    } finally {
      child.kill('SIGKILL');
      await fake.close();
    }
  });
});
