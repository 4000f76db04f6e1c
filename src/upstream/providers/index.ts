/** The provider adapters by config `type`. */
import { MissingPackageError, missingPackages } from '../../lazy.js';
import type { ProviderConfig } from './provider-config.js';
import { anthropicAdapter } from './anthropic/index.js';
import { bedrockAdapter } from './bedrock/index.js';
import { openaiAdapter } from './openai/index.js';
import { vertexAdapter } from './vertex/index.js';
import { foundryAdapter } from './foundry/index.js';
import type { ProviderAdapter } from './types.js';

/**
 * The provider table: every provider type by its config `type`. Adding a provider is one folder under
 * upstream/providers/ (its adapter, wire translation, auth, settings) and one line here.
 */
const ADAPTERS: ReadonlyMap<string, ProviderAdapter> = new Map([anthropicAdapter, openaiAdapter, bedrockAdapter, vertexAdapter, foundryAdapter].map((a) => [a.type, a]));

/** The provider types, in table order (the config schema's `type` enum). */
export const PROVIDER_TYPES: readonly string[] = [...ADAPTERS.keys()];

/** Whether `type` is in the provider table. */
export function hasAdapter(type: string): boolean {
  return ADAPTERS.has(type);
}

/**
 * The optional packages the configured providers need and that are not installed, as the error to start with; null
 * when nothing is missing. (A type: bedrock provider needs AWS's SDK, a type: vertex one Google's auth library.)
 */
export function missingProviderPackages(providers: readonly Pick<ProviderConfig, 'name' | 'type'>[]): MissingPackageError | null {
  for (const p of providers) {
    const missing = missingPackages(adapterFor(p).packages ?? []);
    if (missing.length) return new MissingPackageError(missing, `provider "${p.name}" (type: ${p.type})`);
  }
  return null;
}

/** The adapter for a provider's `type`. @throws Error for a type the table does not have (the config schema refuses it first). */
export function adapterFor(provider: Pick<ProviderConfig, 'type'>): ProviderAdapter {
  const adapter = ADAPTERS.get(provider.type);
  if (!adapter) throw new Error(`no provider type "${provider.type}" (known: ${PROVIDER_TYPES.join(', ')})`);
  return adapter;
}

export type { ClientRequest, Endpoint, LocalAnswer, OutgoingRequest, ProviderAdapter } from './types.js';
