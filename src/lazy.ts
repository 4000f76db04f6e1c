/**
 * Modules a gateway loads only when its configuration uses them (the Bedrock and Vertex SDKs): `lazyModule(name)`
 * returns a function that `require`s the module on its first call and returns the same module after. Loading on
 * first use keeps an idle gateway that routes to neither cloud about 30 MB smaller (issue 34). Every module named
 * must ship a CommonJS entry (Node 20 cannot `require` an ES module).
 */
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/**
 * @param specifier a package name or subpath, resolved from this file like an import.
 * @returns a loader; its first call may throw what `require` throws (a missing or broken package).
 */
export function lazyModule<T>(specifier: string): () => T {
  let loaded: T | undefined;
  return () => (loaded ??= require(specifier) as T);
}
