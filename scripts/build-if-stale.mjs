/**
 * `npm start`, `npm ci` and `npm pack` (prestart, prepare, prepack): builds dist/ (`npm run build`) only when it is
 * missing or older than what it is built from — src/, ui/, the build config, the lock file — so that a clone serves
 * within seconds of `npm ci`, a start after an edit runs the new code, and a pack builds once. A build's age is that of
 * the older of its two last outputs (tsc's dist/cli.js, the dashboard's dist/ui/manifest.json), so any
 * `npm run build` counts.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');

/** Newest modification time (ms) of a file, or of every file under a directory. */
function newest(p) {
  if (!existsSync(p)) return 0;
  const s = statSync(p);
  if (!s.isDirectory()) return s.mtimeMs;
  return readdirSync(p).reduce((m, f) => Math.max(m, newest(path.join(p, f))), s.mtimeMs);
}

// Not a clone (a Docker build stage before the sources are copied in): nothing to build from yet.
if (!existsSync(path.join(root, 'src'))) process.exit(0);
const sources = ['src', 'ui', 'scripts/build-ui.mjs', 'tsconfig.json', 'tsconfig.build.json', 'package-lock.json'].map((p) => newest(path.join(root, p)));
const outputs = ['dist/cli.js', 'dist/ui/manifest.json'].map((p) => path.join(root, p));
const built = outputs.every((p) => existsSync(p)) ? Math.min(...outputs.map((p) => statSync(p).mtimeMs)) : 0;
if (built >= Math.max(...sources)) process.exit(0);
console.error(built ? 'switchyard: sources changed since the last build; building dist/' : 'switchyard: building dist/ (once)');
const r = spawnSync('npm', ['run', 'build', '--silent'], { cwd: root, stdio: 'inherit' });
if (r.status !== 0) process.exit(r.status ?? 1);
