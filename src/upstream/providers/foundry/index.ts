/**
 * `type: foundry`: Claude in Microsoft Foundry (https://platform.claude.com/docs/en/build-with-claude/claude-in-microsoft-foundry).
 * Foundry serves the Anthropic Messages API itself at `https://{resource}.services.ai.azure.com/anthropic/v1/*`, so
 * requests are built as for `type: anthropic` (the client's bytes, its `anthropic-beta` and `anthropic-version`),
 * and answers pass through; `model` is the Foundry deployment name (a provider's `models:` maps names to
 * deployments). What differs is the credential:
 * - with `keys:`, each key goes as the `api-key` header, the one Foundry documents (it takes `x-api-key` too);
 * - without, a Microsoft Entra ID token (auth.ts) goes as `Authorization: Bearer`, added just before sending.
 * Either way the client's own credential never reaches Foundry. `resource:` names the Foundry resource (the base URL
 * is made from it), or `base_url:` gives the endpoint whole. Foundry has no Message Batches, Files or Skills through
 * the gateway (those need a `type: anthropic` provider).
 */
import { anthropicAdapter } from '../anthropic/index.js';
import { type ProviderAdapter, ProviderEntryError } from '../types.js';
import { entraStatus, entraTokensFor } from './auth.js';

/** The base URL of a Foundry resource's Claude endpoint. */
export function foundryBaseUrl(resource: string): string {
  return `https://${resource}.services.ai.azure.com/anthropic`;
}

export const foundryAdapter: ProviderAdapter = {
  description: 'Claude in Microsoft Foundry: the Messages API at {resource}.services.ai.azure.com/anthropic, with api-key keys or Microsoft Entra ID tokens',
  options: ['betas', 'resource'],
  cloudCredentials: true,
  settle(name, entry) {
    if (entry.base_url === undefined && entry.resource === undefined) {
      throw new ProviderEntryError(
        [],
        `provider "${name}": type: foundry needs resource: (the Foundry resource name, e.g. my-resource) or base_url: (e.g. https://my-resource.services.ai.azure.com/anthropic)`,
      );
    }
    return { base_url: entry.base_url ?? foundryBaseUrl(entry.resource!), strip_attribution: false, bedrock: null, vertex: null };
  },
  genaiName: 'azure.ai.inference',
  packages: [],
  credentials(p) {
    if (p.keys.length) return null;
    return { ...(entraStatus()[p.name] ?? { source: 'microsoft entra id (DefaultAzureCredential)', fetched_at: null }) };
  },
  type: 'foundry',
  local: () => null,
  request(req, provider, model) {
    const out = anthropicAdapter.request(req, provider, model);
    const build = out.headers;
    const tokens = provider.keys.length ? null : entraTokensFor(provider.name);
    return {
      ...out,
      headers: (credential) => {
        // No credential of the client's kind; a key goes as Foundry's own api-key header.
        // Stryker disable next-line ObjectLiteral,StringLiteral: equivalent — every credential but the client's is dropped alike.
        const headers = build({ kind: 'none' });
        if (credential.kind === 'key') headers['api-key'] = credential.key;
        return headers;
      },
      signing: (credential) => (credential.kind === 'key' ? null : 'entra-id'),
      // Stryker disable next-line ConditionalExpression,LogicalOperator: equivalent — a provider with keys always sends one (credentialFor), so `!tokens` only ever meets a key.
      sign: async (headers, credential) => (credential.kind === 'key' || !tokens ? headers : { ...headers, authorization: `Bearer ${await tokens.token()}` }),
    };
  },
  answer: async (answer) => answer,
};
