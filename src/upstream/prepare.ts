/**
 * Turns a decision into the concrete upstream request (dry-run shows the pool's first key): which provider, which URL, which headers
 * (DESIGN §6) and which body bytes. The original bytes are forwarded when no action changed the body.
 * Used by the proxy and by dry-run, so what dry-run shows is what would be sent.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { GatewayConfig, ProviderConfig } from '../config.js';
import { InternalError } from '../errors.js';
import type { Decision } from '../rules/decision.js';
import { upstreamUrl } from './client.js';
import { credentialFor, upstreamRequestHeaders } from './headers.js';

/** The body to send upstream: the client's bytes unless an action changed the body. */
export function upstreamBody(decision: Pick<Decision, 'body' | 'bodyChanged'>, rawBody: Buffer | null): Buffer | null {
  return rawBody === null ? null : decision.bodyChanged ? Buffer.from(JSON.stringify(decision.body)) : rawBody;
}

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

/** A request ready to send. */
export interface PreparedRequest {
  provider: ProviderConfig;
  url: string;
  headers: Record<string, string | string[]>;
  /** Body bytes; null for GET. */
  body: Buffer | null;
  /** The route's provider, then its fallbacks, each with the model it would be sent. */
  chain: ChainLink[];
}

/**
 * @param rawBody the client's body bytes (forwarded as is when the decision did not change the body).
 * @param pathAndQuery the client's path and query string, forwarded unchanged (e.g. `/v1/messages?beta=true`).
 * @throws InternalError when the decision names a provider the config lacks (the loader prevents this).
 */
export function prepareUpstream(
  config: GatewayConfig,
  decision: Pick<Decision, 'route' | 'headers' | 'body' | 'bodyChanged'>,
  incoming: IncomingHttpHeaders,
  rawBody: Buffer | null,
  pathAndQuery: string,
): PreparedRequest {
  const provider = config.providers[decision.route.provider];
  if (!provider) throw new InternalError(`provider "${decision.route.provider}" is not in the config`);
  const body = upstreamBody(decision, rawBody);
  const headers = upstreamRequestHeaders(incoming, credentialFor(provider.keys[0], config.clients !== null), decision.headers, body === null ? null : body.length);
  return { provider, url: upstreamUrl(provider, pathAndQuery), headers, body, chain: routeChain(config, decision.route) };
}
