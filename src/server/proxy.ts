/**
 * The request pipeline for the proxied endpoints (DESIGN §3, §10), as the list of its stages over one
 * exchange (src/server/pipeline/): each stage does its part and calls the next; a stage that takes a
 * resource (a concurrency count, a body reservation, an upstream key) gives it back in its own scope, and the
 * exchange owns it too, so that a request ended by anything (the watchdog included) gives everything back.
 * Enforcing actions (actions/index.ts `ENFORCING`) each get a generic `enforce` stage. `record` comes first because it wraps the rest: it sees every outcome, answers errors in
 * Anthropic's shape and writes the log line and the usage record.
 */
import type { Ingress } from './ingress.js';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { authenticate } from './pipeline/authenticate.js';
import { ENFORCING } from '../actions/index.js';
import { concurrency } from './pipeline/concurrency.js';
import { decide } from './pipeline/decide.js';
import { compose, Exchange, type ProxyDeps } from './pipeline/exchange.js';
import { forward } from './pipeline/forward.js';
import { receive } from './pipeline/receive.js';
import { record } from './pipeline/record.js';
import { refuse } from './pipeline/refuse.js';
import { relay } from './pipeline/relay.js';
import { enforce } from './pipeline/enforce.js';
import type { Endpoint } from '../upstream/providers/index.js';

export type { OpenRelay, ProxyDeps } from './pipeline/exchange.js';

const pipeline = compose([
  record, // log line, usage record, errors in Anthropic's shape (wraps everything below)
  concurrency, // limits.max_concurrent_requests
  authenticate, // client keys, or the credential's fingerprint
  receive, // body read once within the limits and the in-flight cap, parsed once
  decide, // request context, rules -> Decision
  refuse, // dry-run, deny, failed rules, answers the provider's adapter gives itself
  ...ENFORCING.map(enforce), // budget, throttle: admitted here, settled when the request ends (actions/index.ts)
  forward, // key pools, retries, fallbacks, through the provider's adapter
  relay, // the answer, streamed event by event, usage tapped
]);

/**
 * Handles one proxied request end to end.
 * @param endpoint which API endpoint this is; `models` is a GET without a body or rule evaluation.
 * @param ingress set when the client spoke Bedrock's or Vertex AI's format (server/ingress.ts).
 */
export async function proxyRequest(req: IncomingMessage, res: ServerResponse, endpoint: Endpoint, deps: ProxyDeps, ingress: Ingress | null = null): Promise<void> {
  return pipeline(new Exchange(req, res, endpoint, deps, ingress));
}
