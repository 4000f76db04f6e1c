/**
 * `switchyard init [dir]`: a starting point for a team — the bundled gateway config, rule set and its tests, the
 * price table, the JSON Schemas the files name for editors, a `.gitignore` for what the gateway writes (the ledger,
 * the spool), and a git pre-commit hook that validates and tests the rules before they are committed. Copied from the
 * installed package, so what a team starts from is what this version serves and checks. Never overwrites: existing
 * files are reported and nothing is written. Outside a git work tree it runs `git init`; it points the repository's
 * `core.hooksPath` at the hook (when git is installed).
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/** The package's root: one level above src/ or dist/. */
export const PACKAGE_ROOT = path.resolve(import.meta.dirname, '..');

/** The gateway config file looked for in the working directory when neither --config nor SWITCHYARD_CONFIG names one. */
export const DEFAULT_CONFIG_FILE = 'switchyard.yaml';

/** The package's name and version (package.json). */
export function packageInfo(): { name: string; version: string } {
  return JSON.parse(readFileSync(path.join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { name: string; version: string };
}

/**
 * The pre-commit hook: validate the config and rules, then run the rule tests, with whichever switchyard is there — the
 * command on PATH (a global install), the repository's own node_modules/.bin, else npx running the package's
 * `switchyard` bin (npx looks for a bin named like the package unless told which, hence `--package`).
 */
const HOOK = (pkg: string) => `#!/bin/sh
# Installed by \`switchyard init\` (git config core.hooksPath .githooks enables it; init does that).
# Refuses a commit whose gateway config or rules do not load, or whose rule tests fail.
set -e
if command -v switchyard >/dev/null 2>&1; then
  sy=switchyard
elif [ -x node_modules/.bin/switchyard ]; then
  sy=node_modules/.bin/switchyard
else
  sy="npx --yes --package ${pkg} switchyard"
fi
$sy validate-rules
$sy test
`;

/** What the gateway writes beside its config and must not be committed. */
const GITIGNORE = `# Written by the gateway as it serves (switchyard init): the usage ledger, its disk spool, budget notifications.
data/
node_modules/
`;

/** Runs git in `cwd`; null when git is not installed. */
function git(cwd: string, args: string[]): { status: number | null; out: string } | null {
  const r = spawnSync('git', args, { cwd, encoding: 'utf8' });
  if (r.error) return null;
  return { status: r.status, out: `${r.stdout}${r.stderr}`.trim() };
}

/**
 * Makes `dir` a git repository whose commits run the hook: `git init` unless it is inside a work tree already, then
 * `core.hooksPath`. @returns what was done, one line each, for the operator (git missing: a line saying so).
 */
export function gitSetup(dir: string): string[] {
  const inside = git(dir, ['rev-parse', '--is-inside-work-tree']);
  if (inside === null) return ['git is not installed: run `git init` and `git config core.hooksPath .githooks` once it is'];
  const done: string[] = [];
  if (inside.status !== 0 || inside.out !== 'true') {
    const init = git(dir, ['init', '--quiet']);
    if (init?.status !== 0) return [`git init failed: ${init?.out}`];
    done.push('git init');
  }
  const top = git(dir, ['rev-parse', '--show-toplevel'])?.out ?? dir;
  const hooks = path.relative(top, path.join(dir, '.githooks')) || '.githooks';
  const set = git(dir, ['config', 'core.hooksPath', hooks]);
  done.push(set?.status === 0 ? `git config core.hooksPath ${hooks}` : `git config core.hooksPath failed: ${set?.out}`);
  return done;
}

/**
 * Writes the starting files into `dir` (created if missing).
 * @returns the files written, relative to `dir`.
 * @throws Error listing the files that already exist (nothing is written then).
 */
export function scaffold(dir: string): string[] {
  const target = path.resolve(dir);
  // Every file under rules/: the rules, their tests and the request bodies the tests read.
  const walk = (rel: string): string[] => readdirSync(path.join(PACKAGE_ROOT, rel)).flatMap((f) => (statSync(path.join(PACKAGE_ROOT, rel, f)).isDirectory() ? walk(`${rel}/${f}`) : [`${rel}/${f}`]));
  const copies: Array<[string, string]> = [
    ['switchyard.yaml', 'switchyard.yaml'],
    ['prices.yaml', 'prices.yaml'],
    ...['config.schema.json', 'rules.schema.json', 'rule-tests.schema.json'].map((f): [string, string] => [`schemas/${f}`, `schemas/${f}`]),
    ...walk('rules').map((f): [string, string] => [f, f]),
  ];
  const hook = '.githooks/pre-commit';
  const ignore = '.gitignore';
  const existing = [...copies.map(([, to]) => to), hook].filter((f) => existsSync(path.join(target, f)));
  if (existing.length) throw new Error(`not overwriting what is there: ${existing.join(', ')} in ${target}`);
  for (const [from, to] of copies) {
    mkdirSync(path.dirname(path.join(target, to)), { recursive: true });
    copyFileSync(path.join(PACKAGE_ROOT, from), path.join(target, to));
  }
  mkdirSync(path.join(target, '.githooks'), { recursive: true });
  writeFileSync(path.join(target, hook), HOOK(packageInfo().name));
  chmodSync(path.join(target, hook), 0o755);
  // A .gitignore the team already has is theirs: left as it is.
  const ignored = !existsSync(path.join(target, ignore));
  if (ignored) writeFileSync(path.join(target, ignore), GITIGNORE);
  return [...copies.map(([, to]) => to), hook, ...(ignored ? [ignore] : [])];
}
