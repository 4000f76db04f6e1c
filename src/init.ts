/**
 * `switchyard init [dir]`: a starting point for a team — the bundled gateway config, rule set and its tests, the
 * price table, the JSON Schemas the files name for editors, and a git pre-commit hook that validates and tests
 * the rules before they are committed. Copied from the installed package, so what a team starts from is what
 * this version serves and checks. Never overwrites: existing files are reported and nothing is written.
 */
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/** The package's root: one level above src/ or dist/. */
export const PACKAGE_ROOT = path.resolve(import.meta.dirname, '..');

/** The package's name and version (package.json). */
export function packageInfo(): { name: string; version: string } {
  return JSON.parse(readFileSync(path.join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { name: string; version: string };
}

/** The pre-commit hook: validate the config and rules, then run the rule tests (through the installed package). */
const HOOK = (pkg: string) => `#!/bin/sh
# Installed by \`switchyard init\`; enable with: git config core.hooksPath .githooks
# Refuses a commit whose gateway config or rules do not load, or whose rule tests fail.
set -e
npx --no-install ${pkg} validate-rules
npx --no-install ${pkg} test
`;

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
  const existing = [...copies.map(([, to]) => to), hook].filter((f) => existsSync(path.join(target, f)));
  if (existing.length) throw new Error(`not overwriting what is there: ${existing.join(', ')} in ${target}`);
  for (const [from, to] of copies) {
    mkdirSync(path.dirname(path.join(target, to)), { recursive: true });
    copyFileSync(path.join(PACKAGE_ROOT, from), path.join(target, to));
  }
  mkdirSync(path.join(target, '.githooks'), { recursive: true });
  writeFileSync(path.join(target, hook), HOOK(packageInfo().name));
  chmodSync(path.join(target, hook), 0o755);
  return [...copies.map(([, to]) => to), hook];
}
