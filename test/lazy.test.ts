/** src/lazy.ts: a module loaded on first call, the same module after; a missing one throws when asked for, not before. */
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { test } from 'node:test';
import { lazyModule, MissingPackageError, missingPackages, packageOf } from '../src/lazy.js';

test('lazyModule loads on the first call and returns the same module after', () => {
  const resolved = createRequire(import.meta.url).resolve('picomatch');
  const cache = createRequire(import.meta.url).cache;
  delete cache[resolved];
  const picomatch = lazyModule<typeof import('picomatch')>('picomatch');
  assert.equal(cache[resolved], undefined, 'nothing loaded before the first call');
  const first = picomatch();
  assert.equal(typeof first, 'function');
  assert.ok(cache[resolved], 'loaded by the first call');
  delete cache[resolved];
  assert.equal(picomatch(), first, 'the second call returns what the first loaded');
});

test('a missing package throws at its first call, not when declared, naming what needs it and the install', () => {
  const missing = lazyModule('@switchyard-test/no-such-package/sub', 'a type: bedrock provider');
  assert.throws(
    () => missing(),
    (err: Error) =>
      err instanceof MissingPackageError &&
      err.message === 'a type: bedrock provider needs @switchyard-test/no-such-package, which is not installed (optional packages of Switchyard): npm install @switchyard-test/no-such-package',
  );
});

test('missingPackages names what cannot be resolved; the install command carries package.json ranges', () => {
  assert.deepEqual(missingPackages(['picomatch', 'switchyard-no-such-package', '@opentelemetry/sdk-trace']), ['switchyard-no-such-package']);
  assert.deepEqual([packageOf('@smithy/core/event-streams'), packageOf('google-auth-library'), packageOf('yaml/util')], ['@smithy/core', 'google-auth-library', 'yaml']);
  assert.match(
    new MissingPackageError(['@opentelemetry/core', '@opentelemetry/sdk-trace'], 'telemetry').message,
    /^telemetry needs @opentelemetry\/core, @opentelemetry\/sdk-trace, which are not installed .*: npm install "@opentelemetry\/core@~2\.12\.0" "@opentelemetry\/sdk-trace@~2\.12\.0"$/,
  );
});
