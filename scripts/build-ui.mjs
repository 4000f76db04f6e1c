/**
 * Builds the dashboard (ui/ → dist/ui/): one ES module and one stylesheet with content-hashed names (served with
 * a year of caching), and manifest.json naming them for the page src/server/ui.ts serves. Preact and uPlot are
 * bundled in: the page loads nothing from elsewhere. Run by `npm run build` and before `npm test`.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { build } from 'esbuild';

const root = path.resolve(import.meta.dirname, '..');
const out = path.join(root, 'dist/ui');
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
const result = await build({
  entryPoints: [path.join(root, 'ui/main.tsx')],
  bundle: true,
  format: 'esm',
  target: 'es2022',
  minify: true,
  jsx: 'automatic',
  jsxImportSource: 'preact',
  entryNames: 'app-[hash]',
  outdir: out,
  metafile: true,
  logLevel: 'warning',
});
const names = Object.keys(result.metafile.outputs).map((f) => path.basename(f));
const manifest = { js: names.find((n) => n.endsWith('.js')), css: names.find((n) => n.endsWith('.css')) };
if (!manifest.js || !manifest.css) throw new Error(`the dashboard build made ${names.join(', ')}; expected a .js and a .css`);
writeFileSync(path.join(out, 'manifest.json'), JSON.stringify(manifest) + '\n');
console.log(`dashboard: dist/ui/${manifest.js}, dist/ui/${manifest.css}`);
