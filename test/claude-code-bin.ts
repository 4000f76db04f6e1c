/**
 * The real Claude Code CLI for tests (npm package @anthropic-ai/claude-code). It is a native binary of ~400 MB,
 * so it is not a dependency: it is installed once into `node_modules/.cache/claude-code/<version>` from the npm
 * registry (CI allows the registry), or `CLAUDE_CODE_BIN` names one.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync } from 'node:fs';
import path from 'node:path';

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
