/** The provider adapters by config `type`. */
import type { ProviderConfig } from '../../config.js';
import { anthropicAdapter } from './anthropic/index.js';
import { bedrockAdapter } from './bedrock/index.js';
import { openaiAdapter } from './openai/index.js';
import { vertexAdapter } from './vertex/index.js';
import type { ProviderAdapter } from './types.js';

const ADAPTERS: Record<ProviderConfig['type'], ProviderAdapter> = { anthropic: anthropicAdapter, openai: openaiAdapter, bedrock: bedrockAdapter, vertex: vertexAdapter };

/** The adapter for a provider's `type`. */
export function adapterFor(provider: Pick<ProviderConfig, 'type'>): ProviderAdapter {
  return ADAPTERS[provider.type];
}

export type { ClientRequest, Endpoint, LocalAnswer, OutgoingRequest, ProviderAdapter } from './types.js';
