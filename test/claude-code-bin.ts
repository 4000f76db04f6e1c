/**
 * The real Claude Code CLI for tests (npm package @anthropic-ai/claude-code). It is a native binary of ~400 MB,
 * so it is not a dependency: it is installed once into `node_modules/.cache/claude-code/<version>` from the npm
 * registry (CI allows the registry), or `CLAUDE_CODE_BIN` names one.
 */
import { execFileSync, spawn } from 'node:child_process';
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

/** What `claude -p` printed and how it exited. */
export interface ClaudeRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs the CLI in print mode with the Bash tool allowed, asked to run "the marker command" and say what it
 * printed (JSON output, at most 4 turns), in `cwd` with exactly `env`; killed after `timeoutMs`.
 */
export function runClaudeBashRoundTrip(env: NodeJS.ProcessEnv, cwd: string, timeoutMs = 180_000): Promise<ClaudeRun> {
  return new Promise((resolve) => {
    const child = spawn(claudeBinary(), ['-p', 'Run the marker command with Bash and tell me what it printed.', '--allowedTools', 'Bash', '--output-format', 'json', '--max-turns', '4'], { cwd, env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end();
  });
}
