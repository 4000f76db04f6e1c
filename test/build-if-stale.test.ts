/**
 * scripts/build-if-stale.mjs (prestart, prepare, prepack; issue 33): `npm start` after `npm ci` serves at once — the
 * build happens once, and again only when what it is built from changed. Run in a scratch project whose `build`
 * script counts its runs.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';

test('builds when dist/ is missing, not again while it is newer than its sources, again after a source changes', () => {
  const root = mkdtempSync(path.join(tmpdir(), 'switchyard-stale-'));
  mkdirSync(path.join(root, 'scripts'));
  mkdirSync(path.join(root, 'src'));
  copyFileSync(path.join(import.meta.dirname, '../scripts/build-if-stale.mjs'), path.join(root, 'scripts/build-if-stale.mjs'));
  writeFileSync(path.join(root, 'src/a.ts'), 'export {};\n');
  const build =
    "require('fs').mkdirSync('dist/ui',{recursive:true});require('fs').writeFileSync('dist/cli.js','');require('fs').writeFileSync('dist/ui/manifest.json','{}');require('fs').appendFileSync('builds','x')";
  writeFileSync(path.join(root, 'package.json'), JSON.stringify({ name: 'p', private: true, scripts: { build: `node -e "${build}"` } }));
  const run = () => {
    const r = spawnSync(process.execPath, ['scripts/build-if-stale.mjs'], { cwd: root, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    return { builds: readFileSync(path.join(root, 'builds'), 'utf8').length, said: r.stderr };
  };
  assert.deepEqual(run(), { builds: 1, said: 'switchyard: building dist/ (once)\n' });
  assert.equal(run().builds, 1, 'fresh: no second build');
  // The source edited after the last build: the outputs made 10 s before it.
  const earlier = new Date(Date.now() - 10_000);
  for (const f of ['dist/cli.js', 'dist/ui/manifest.json']) utimesSync(path.join(root, f), earlier, earlier);
  writeFileSync(path.join(root, 'src/a.ts'), 'export const edited = 1;\n');
  const again = run();
  assert.equal(again.builds, 2, 'a changed source builds again');
  assert.match(again.said, /sources changed/);
  assert.equal(run().builds, 2);
});
