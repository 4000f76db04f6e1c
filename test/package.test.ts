/**
 * Installable (issue 20, item 4): `npm pack` builds the package (prepack), the tarball installs into an empty
 * directory, and from there — a repository that holds only rules — `switchyard --version`, `switchyard init` (git init,
 * .gitignore, a hook that finds the switchyard command and runs on `git commit`),
 * `validate-rules`, `test` and `serve` work through `npx switchyard-gateway …`. Dependencies come from the npm cache
 * `npm ci` filled (no network); install scripts are skipped, so the scaffolded config is served with the ledger
 * off (the SQLite module's native build is what install scripts would make).
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { request } from 'undici';

const ROOT = path.resolve(import.meta.dirname, '..');
const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { name: string; version: string };
const work = mkdtempSync(path.join(tmpdir(), 'switchyard-pack-'));
const team = path.join(work, 'team');

const run = (cmd: string, args: string[], cwd: string, timeout = 300_000) => {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', timeout, env: { ...process.env, npm_config_update_notifier: 'false', npm_config_fund: 'false', npm_config_audit: 'false' } });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
};

before(() => {
  const packed = run('npm', ['pack', '--pack-destination', work, '--silent'], ROOT);
  assert.equal(packed.status, 0, packed.out);
  // The tarball's name is the line ending in .tgz (a build that pack runs first may print around it).
  const tarball = path.join(
    work,
    packed.out
      .split('\n')
      .findLast((l) => l.trim().endsWith('.tgz'))!
      .trim(),
  );
  run('mkdir', ['-p', team], work);
  writeFileSync(path.join(team, 'package.json'), JSON.stringify({ name: 'team-rules', private: true }));
  const installed = run('npm', ['install', tarball, '--prefer-offline', '--ignore-scripts', '--no-audit', '--no-fund'], team, 600_000);
  assert.equal(installed.status, 0, installed.out);
});

let serving: ReturnType<typeof spawn> | null = null;
after(async () => {
  if (serving && serving.exitCode === null) {
    const exited = new Promise((r) => serving!.once('exit', r));
    serving.kill('SIGTERM');
    await exited;
  }
});

test('the packed tarball holds the built gateway, the dashboard, the bundled rules and schemas — and no sources or tests', () => {
  const r = run('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], ROOT);
  const files = (JSON.parse(r.out.slice(r.out.indexOf('['))) as Array<{ files: Array<{ path: string }> }>)[0]!.files.map((f) => f.path);
  for (const f of ['dist/cli.js', 'dist/ui/manifest.json', 'rules/00-defaults.yaml', 'rules/tests/bundled.test.yaml', 'schemas/config.schema.json', 'prices.yaml', 'switchyard.yaml'])
    assert.ok(files.includes(f), `${f} is packed`);
  assert.ok(!files.some((f) => f.startsWith('src/') || f.startsWith('test/')), 'no sources or tests');
});

test('the install leaves out the optional packages (OpenTelemetry, the AWS and Google SDKs) and stays under 60 MB', () => {
  const optional = Object.keys((JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { peerDependencies: Record<string, string> }).peerDependencies);
  assert.ok(optional.includes('@opentelemetry/sdk-trace') && optional.includes('@aws-sdk/credential-providers') && optional.includes('google-auth-library'));
  for (const name of optional) assert.ok(!existsSync(path.join(team, 'node_modules', name)), `${name} is not installed`);
  const bytes = Number(run('du', ['-sb', 'node_modules'], team).out.split(/\s/)[0]);
  console.log(`installed: ${(bytes / 1e6).toFixed(1)} MB in node_modules`);
  assert.ok(bytes < 60e6, `${(bytes / 1e6).toFixed(1)} MB installed`);
});

test('a configuration that needs a missing optional package does not start, and says what to install', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'switchyard-optional-'));
  const config = (extra: string) => {
    const file = path.join(dir, `${Math.random().toString(36).slice(2)}.yaml`);
    writeFileSync(file, `listen: { host: 127.0.0.1, port: 0 }\nrules: ./rules\nledger: off\nproviders:\n  anthropic: { type: anthropic, base_url: "http://127.0.0.1:1" }\n${extra}`);
    return file;
  };
  run('mkdir', ['-p', path.join(dir, 'rules')], dir);
  writeFileSync(path.join(dir, 'rules', '50.yaml'), 'version: 1\nrules: []\n');
  const bin = path.join(team, 'node_modules/.bin/switchyard');
  const otel = spawnSync(bin, ['serve', '--config', config('telemetry: { endpoint: "http://127.0.0.1:4318" }\n')], { cwd: dir, encoding: 'utf8', timeout: 30_000 });
  assert.equal(otel.status, 1, otel.stdout + otel.stderr);
  assert.match(otel.stderr, /not starting: OpenTelemetry export .* needs @opentelemetry\/core, .*npm install "@opentelemetry\/core@/);
  const bedrock = spawnSync(bin, ['serve', '--config', config('  bedrock: { type: bedrock, region: us-east-1 }\n')], { cwd: dir, encoding: 'utf8', timeout: 30_000 });
  assert.equal(bedrock.status, 1, bedrock.stdout + bedrock.stderr);
  assert.match(bedrock.stderr, /provider "bedrock" \(type: bedrock\) needs @aws-sdk\/credential-providers, .*npm install "@aws-sdk\/credential-providers@\^3/);
});

test('npx switchyard-gateway --version prints the package version', () => {
  const r = run('npx', ['--no-install', pkg.name, '--version'], team);
  assert.equal(r.status, 0, r.out);
  assert.equal(r.out.trim(), pkg.version);
});

test('init scaffolds a team repository whose rules validate and whose rule tests pass; it never overwrites', () => {
  const init = run('npx', ['--no-install', pkg.name, 'init'], team);
  assert.equal(init.status, 0, init.out);
  assert.match(init.out, /switchyard\.yaml/);
  assert.match(init.out, /git init\ngit config core\.hooksPath \.githooks/);
  assert.match(readFileSync(path.join(team, '.githooks/pre-commit'), 'utf8'), new RegExp(`npx --yes --package ${pkg.name} switchyard`));
  assert.match(readFileSync(path.join(team, '.gitignore'), 'utf8'), /^data\/$/m);
  assert.equal(run('git', ['config', 'core.hooksPath'], team).out.trim(), '.githooks');
  const validate = run('npx', ['--no-install', pkg.name, 'validate-rules'], team);
  assert.equal(validate.status, 0, validate.out);
  const tested = run('npx', ['--no-install', pkg.name, 'test'], team);
  assert.equal(tested.status, 0, tested.out);
  const again = run('npx', ['--no-install', pkg.name, 'init'], team);
  assert.equal(again.status, 1);
  assert.match(again.out, /not overwriting what is there: switchyard\.yaml/);
});

test('after init, git commit runs the hook with the switchyard it finds: node_modules/.bin, then one on PATH', () => {
  const commit = (message: string, env: Record<string, string> = {}) => {
    const r = spawnSync('git', ['-c', 'user.name=Team', '-c', 'user.email=team@example.com', 'commit', '--quiet', '-m', message], { cwd: team, encoding: 'utf8', env: { ...process.env, ...env } });
    return { status: r.status, out: `${r.stdout}${r.stderr}` };
  };
  writeFileSync(path.join(team, 'data-was-here.txt'), 'x');
  run('mkdir', ['-p', 'data'], team);
  writeFileSync(path.join(team, 'data', 'usage.db'), 'not committed');
  assert.equal(run('git', ['add', '-A'], team).status, 0);
  const staged = run('git', ['diff', '--cached', '--name-only'], team).out.split('\n');
  assert.ok(staged.includes('switchyard.yaml') && staged.includes('.githooks/pre-commit'));
  assert.ok(!staged.some((f) => f.startsWith('data/') || f.startsWith('node_modules/')), `the ledger and node_modules are ignored: ${staged.join(' ')}`);
  const first = commit('rules');
  assert.equal(first.status, 0, first.out);
  assert.match(first.out, /ok: \d+ rules? in 1 directory/, 'the hook validated the rules');
  // A global install: a switchyard on PATH wins (the installed command behind a wrapper that records each call).
  const bin = mkdtempSync(path.join(tmpdir(), 'switchyard-path-'));
  writeFileSync(path.join(bin, 'switchyard'), `#!/bin/sh\necho "$@" >> "${bin}/calls"\nexec "${path.join(team, 'node_modules/.bin/switchyard')}" "$@"\n`, { mode: 0o755 });
  writeFileSync(path.join(team, 'data-was-here.txt'), 'y');
  run('git', ['add', '-A'], team);
  const second = commit('again', { PATH: `${bin}:${process.env.PATH}` });
  assert.equal(second.status, 0, second.out);
  assert.match(second.out, /ok: \d+ rules? in 1 directory/, 'the command on PATH validated the rules');
  assert.deepEqual(readFileSync(path.join(bin, 'calls'), 'utf8').trim().split('\n'), ['validate-rules', 'test']);
  // A rule file that does not load stops the commit.
  writeFileSync(path.join(team, 'rules', '99-broken.yaml'), 'version: 1\nrules:\n  - id: x\n    actions: [ { nope: {} } ]\n');
  run('git', ['add', '-A'], team);
  const refused = commit('broken');
  assert.notEqual(refused.status, 0);
  assert.match(refused.out, /99-broken\.yaml:\d+:\d+/);
  run('git', ['rm', '-q', '--cached', 'rules/99-broken.yaml'], team);
  run('rm', ['rules/99-broken.yaml'], team);
});

test('serve runs from the installed package and answers', async () => {
  const config = path.join(team, 'switchyard.yaml');
  writeFileSync(config, readFileSync(config, 'utf8').replace(/^ledger: .*$/m, 'ledger: off'));
  // The installed command itself (npx would stay between us and the gateway, and outlive a kill).
  serving = spawn(path.join(team, 'node_modules/.bin/switchyard'), ['serve', '--port', '0'], { cwd: team, env: { ...process.env, LOG_LEVEL: 'info' }, stdio: ['ignore', 'pipe', 'inherit'] });
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`serve did not start:\n${out}`)), 30_000);
    serving!.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening on (http:\/\/[^\s"]+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
  });
  const health = await request(url + '/healthz');
  assert.equal(health.statusCode, 200);
  await health.body.dump();
  const ui = await request(url + '/admin/ui/');
  assert.equal(ui.statusCode, 200, 'the dashboard is in the package');
  await ui.body.dump();
});
