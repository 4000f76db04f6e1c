/** src/lazy.ts: a module loaded on first call, the same module after; a missing one throws when asked for, not before. */
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { test } from 'node:test';
import { lazyModule } from '../src/lazy.js';

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

test('a missing module throws at its first call, not when declared', () => {
  const missing = lazyModule('switchyard-no-such-package');
  assert.throws(() => missing(), /Cannot find module 'switchyard-no-such-package'/);
});
