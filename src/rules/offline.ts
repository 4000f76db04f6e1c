/**
 * A request decided without a network: the rules' decision and the upstream request the provider's adapter
 * would build from it — what `dry-run` prints and what `switchyard test` checks expectations against. The
 * same functions the gateway runs (buildContext, evaluate, prepareUpstream), so an offline answer is the
 * gateway's answer.
 */
import type { GatewayConfig } from '../config.js';
import { upstreamPathAndQuery } from '../upstream/client.js';
import { prepareUpstream, type PreparedRequest } from '../upstream/prepare.js';
import { buildContext, type RequestContext } from './context.js';
import type { Decision } from './decision.js';
import { evaluate } from './evaluate.js';
import type { RuleSet } from './load.js';

/** One request to decide offline. */
export interface OfflineRequest {
  /** The Messages API request body (a JSON object). */
  body: Record<string, unknown>;
  /** Its bytes as the client would send them; default `JSON.stringify(body)`. */
  raw?: Buffer;
  /** Request headers, lower-cased names. */
  headers: Record<string, string>;
  /** Endpoint path and query, e.g. `/v1/messages?beta=true`. */
  path: string;
  /** Client id to decide as (a configured client brings its tags); default: derived from the credential. */
  clientId?: string;
  /** A signed-in user's identity-provider groups (rules' `group:`); default none. */
  groups?: string[];
  /** Request time (rules read `time.hour`, `time.weekday`); default now. */
  now?: Date;
}

/** What the gateway would do with one request. */
export interface OfflineDecision {
  rc: RequestContext;
  decision: Decision;
  /** The upstream request for the route's first provider, as forwarding builds it. */
  prepared: PreparedRequest;
}

/**
 * Decides `req` with `rules` under `config`, exactly as the gateway would.
 * @throws InternalError when the decision names a provider the config lacks (the rules loader prevents this).
 */
export async function decideOffline(config: GatewayConfig, rules: RuleSet, req: OfflineRequest): Promise<OfflineDecision> {
  const raw = req.raw ?? Buffer.from(JSON.stringify(req.body));
  const client = req.clientId ? config.clients?.find((c) => c.id === req.clientId) : undefined;
  const rc = buildContext({
    path: req.path.split('?')[0]!,
    body: req.body,
    headers: req.headers,
    bodyBytes: raw.length,
    clientId: req.clientId,
    clientTags: client?.tags,
    groups: req.groups,
    now: req.now,
  });
  const decision = await evaluate(rules, rc, config.default_provider);
  const pathAndQuery = upstreamPathAndQuery(req.path);
  const endpoint = pathAndQuery.startsWith('/v1/messages/count_tokens') ? 'count_tokens' : 'messages';
  const prepared = prepareUpstream(config, { endpoint, pathAndQuery, headers: req.headers, raw, body: req.body, decision, stream: rc.stream }, rc.estimate.input_tokens);
  return { rc, decision, prepared };
}
