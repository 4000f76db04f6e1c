/**
 * Modules a gateway loads only when its configuration uses them (the Bedrock and Vertex SDKs): `lazyModule(name)`
 * returns a function that `require`s the module on its first call and returns the same module after. Loading on
 * first use keeps an idle gateway that routes to neither cloud about 30 MB smaller (issue 34). Every module named
 * must ship a CommonJS entry (Node 20 cannot `require` an ES module).
 *
 * Those SDKs and OpenTelemetry's are optional packages (package.json `peerDependenciesMeta`, issue 33): an install
 * of Switchyard does not bring them (about 50 MB); a configuration that needs one that is missing is refused at start
 * by {@link MissingPackageError}, which names the `npm install` that fixes it.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

const require = createRequire(import.meta.url);

/** The package a module specifier belongs to: `@scope/name` or `name`. */
export function packageOf(specifier: string): string {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
}

/** Version ranges of the optional packages (package.json peerDependencies), for the install command. */
function peerRanges(): Record<string, string> {
  try {
    const pkg = JSON.parse(readFileSync(path.join(import.meta.dirname, '..', 'package.json'), 'utf8')) as { peerDependencies?: Record<string, string> };
    return pkg.peerDependencies ?? {};
  } catch {
    return {};
  }
}

/** An optional package that a configured feature needs is not installed. */
export class MissingPackageError extends Error {
  /**
   * @param packages the package names missing.
   * @param feature what needs them, as the operator configured it (`provider "bedrock" (type: bedrock)`).
   */
  constructor(
    readonly packages: string[],
    feature: string,
  ) {
    const ranges = peerRanges();
    const install = packages.map((p) => (ranges[p] ? `"${p}@${ranges[p]}"` : p)).join(' ');
    super(`${feature} needs ${packages.join(', ')}, which ${packages.length === 1 ? 'is' : 'are'} not installed (optional packages of Switchyard): npm install ${install}`);
    this.name = 'MissingPackageError';
  }
}

/** Which of `packages` cannot be resolved from here (none: all installed). */
export function missingPackages(packages: readonly string[]): string[] {
  return packages.filter((p) => {
    try {
      require.resolve(`${p}/package.json`);
      return false;
    } catch {
      try {
        require.resolve(p);
        return false;
      } catch {
        return true;
      }
    }
  });
}

/**
 * @param specifier a package name or subpath, resolved from this file like an import.
 * @param feature what needs it, for the error when it is not installed.
 * @returns a loader; its first call throws MissingPackageError when the package is not installed, and what `require`
 *   throws for a broken one.
 */
export function lazyModule<T>(specifier: string, feature = 'this feature'): () => T {
  let loaded: T | undefined;
  return () => {
    if (loaded !== undefined) return loaded;
    try {
      loaded = require(specifier) as T;
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === 'MODULE_NOT_FOUND' && missingPackages([packageOf(specifier)]).length) throw new MissingPackageError([packageOf(specifier)], feature);
      throw err;
    }
    return loaded;
  };
}
