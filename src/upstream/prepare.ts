/**
 * The route chain of a decision, and the concrete upstream request dry-run shows: built by the provider's
 * adapter exactly as forwarding builds it, with the credential of the first attempt.
 */
import type { GatewayConfig, ProviderConfig } from '../config.js';
import { InternalError } from '../errors.js';
import type { Decision } from '../rules/decision.js';
import { upstreamUrl } from './client.js';
import { credentialFor } from './headers.js';
import { adapterFor, type ClientRequest, type LocalAnswer } from './providers/index.js';

/** One provider of a route and the model it is sent. */
export interface ChainLink {
  provider: ProviderConfig;
  /** The model name this provider gets (after its `models:` rename). */
  model: string;
}

/**
 * The providers a request may go to, in order, each with the model it gets: the route's provider gets the
 * route's model (a rule's `model`, else the client's); a fallback gets its own `model`, else the model the
 * client asked for — a rule's model for one provider never leaks to another. Each provider's `models:` map
 * renames last.
 * @throws InternalError when the decision names a provider the config lacks (the loader prevents this).
 */
export function routeChain(config: GatewayConfig, route: Decision['route']): ChainLink[] {
  const link = (name: string, model: string): ChainLink => {
    const provider = config.providers[name];
    if (!provider) throw new InternalError(`provider "${name}" is not in the config`);
    return { provider, model: provider.models[model] ?? model };
  };
  return [link(route.provider, route.model), ...route.fallback.map((f) => link(f.provider, f.model ?? (route.requested_model || route.model)))];
}

/** A request as it would be sent to the route's first provider (what dry-run shows). */
export interface PreparedRequest {
  provider: ProviderConfig;
  method: 'GET' | 'POST';
  url: string;
  headers: Record<string, string | string[]>;
  /** Body bytes; null for GET. */
  body: Buffer | null;
  /** Body fields the provider has no equivalent for (dropped in translation). */
  dropped: string[];
  /** The route's provider, then its fallbacks, each with the model it would be sent. */
  chain: ChainLink[];
  /** Set when the gateway answers this request itself (e.g. a token-count estimate). */
  local: LocalAnswer | null;
  /** How the headers are signed just before sending (`aws-sigv4`), or null when they go as shown. */
  signedWhenSent: string | null;
}

/**
 * The upstream request for the route's first provider, built by the same adapter that forwarding uses, with
 * the credential its first attempt would carry (the pool's first key, the client's own in transparent mode).
 * @param estimateTokens the request's input-token estimate, for answers the gateway gives itself.
 * @throws InternalError when the decision names a provider the config lacks (the loader prevents this).
 */
export function prepareUpstream(config: GatewayConfig, req: ClientRequest, estimateTokens: number): PreparedRequest {
  const chain = routeChain(config, req.decision.route);
  const { provider, model } = chain[0]!;
  const adapter = adapterFor(provider);
  const outgoing = adapter.request(req, provider, model);
  const credential = credentialFor(provider.keys[0], config.clients !== null);
  return {
    provider,
    method: outgoing.method,
    url: upstreamUrl(provider, outgoing.pathAndQuery),
    headers: outgoing.headers(credential),
    signedWhenSent: outgoing.signing?.(credential) ?? null,
    body: outgoing.body,
    dropped: outgoing.dropped,
    chain,
    local: adapter.local(req, estimateTokens),
  };
}
