/**
 * CORS for browser clients, off unless `cors.origins` is configured. Headers are set on Node's response
 * object so that they reach both Hono responses and the proxied responses the pipeline writes directly.
 * Upstream `access-control-*` headers are dropped (src/upstream/headers.ts): the gateway decides.
 */
import type { HttpBindings } from '@hono/node-server';
import type { MiddlewareHandler } from 'hono';
import type { GatewayConfig } from '../config.js';

/** Response headers a browser client may read (request ids, rate-limit state, retry hints). */
const EXPOSE =
  'request-id, x-switchyard-request-id, retry-after, x-should-retry, anthropic-ratelimit-requests-remaining, anthropic-ratelimit-tokens-remaining, anthropic-ratelimit-requests-reset, anthropic-ratelimit-tokens-reset';

/** Middleware: allowed origins get CORS headers; a preflight (OPTIONS with Access-Control-Request-Method) is answered 204. */
export function cors(current: () => GatewayConfig['cors']): MiddlewareHandler<{ Bindings: HttpBindings }> {
  return async (c, next) => {
    const config = current();
    const origin = c.req.header('origin');
    if (!config || !origin) return next();
    const out = c.env.outgoing;
    // The answer depends on the Origin whether or not this one is allowed: a shared cache must keep them apart
    // (https://fetch.spec.whatwg.org/#cors-protocol-and-http-caches). The relay merges it with the upstream's Vary.
    out.setHeader('vary', 'Origin');
    if (!config.origins.includes('*') && !config.origins.includes(origin)) return next();
    out.setHeader('access-control-allow-origin', origin);
    out.setHeader('access-control-expose-headers', EXPOSE);
    const method = c.req.header('access-control-request-method');
    if (c.req.method === 'OPTIONS' && method) {
      const headers: Record<string, string> = {
        // DELETE: Message Batches, files and skills are deleted through the gateway too.
        'access-control-allow-methods': 'GET, POST, DELETE, HEAD, OPTIONS',
        'access-control-max-age': String(config.max_age_s),
      };
      const requested = c.req.header('access-control-request-headers');
      if (requested) headers['access-control-allow-headers'] = requested;
      return c.body(null, 204, headers);
    }
    return next();
  };
}
