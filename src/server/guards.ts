/**
 * Guards of the routes served by the Hono app (admin, dashboard, sign-in, telemetry), DESIGN §11.4-5:
 *   - `sameOriginWrites`: a write (POST, PUT, PATCH, DELETE) to an admin route is refused when another site
 *     could have sent it — a cross-site `Sec-Fetch-Site`, an `Origin` that is not this gateway's own — and
 *     unless its body is `application/json` (an HTML form or a no-CORS `fetch` cannot send that without a
 *     preflight), also when no admin token is set (then a page on any site could drive a loopback operator's
 *     browser). The dashboard's own sign-in form is the one form post, from its own origin.
 *   - `AdminBackoff`: wrong admin tokens from one address lock it out for 2^(n-10) s from the tenth on (at most
 *     5 minutes), so a token cannot be guessed at line rate.
 *   - `boundedBodies`: every body these routes read is read within a size bound and reserved against the
 *     in-flight byte cap (`limits.max_inflight_body_bytes`), chunked or not, before a handler parses it.
 */
import type { Context, MiddlewareHandler } from 'hono';
import type { HttpBindings } from '@hono/node-server';
import { LRUCache } from 'lru-cache';
import { AdminBackoffError, CrossSiteError, RequestTooLargeError } from '../errors.js';
import type { ProxyDeps } from './pipeline/exchange.js';
import { readBody } from './pipeline/receive.js';

type Ctx = Context<{ Bindings: HttpBindings }>;

const WRITES = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** The form post of the dashboard's own sign-in page (still same-origin only). */
const FORM_ROUTES = new Set(['/admin/ui/login']);

/** Whether `origin` (an Origin header) names this gateway: the same host and port as the request's Host. */
function ownOrigin(origin: string, host: string | undefined): boolean {
  try {
    return host !== undefined && new URL(origin).host === host;
  } catch {
    return false;
  }
}

/** Refuses admin writes another site could have sent (see the module comment). @throws CrossSiteError */
export const sameOriginWrites: MiddlewareHandler<{ Bindings: HttpBindings }> = async (c, next) => {
  if (!WRITES.has(c.req.method)) return next();
  const site = c.req.header('sec-fetch-site');
  if (site === 'cross-site' || site === 'same-site')
    throw new CrossSiteError(`admin writes are refused from another site (Sec-Fetch-Site: ${site}); use the dashboard on this gateway's own address, or a client that is not a browser`);
  // A browser that sends Sec-Fetch-Site said where the request came from (a page with an opaque origin, such as
  // one served with a sandboxing CSP, sends Origin: null from its own site); older browsers only send Origin.
  const origin = c.req.header('origin');
  if (site === undefined && origin !== undefined && !ownOrigin(origin, c.req.header('host')))
    throw new CrossSiteError(`admin writes are refused from another origin (${origin.slice(0, 100)}); use the dashboard on this gateway's own address`);
  const type = (c.req.header('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
  const hasBody = c.req.header('content-length') !== undefined ? c.req.header('content-length') !== '0' : c.req.header('transfer-encoding') !== undefined;
  if (hasBody && type !== 'application/json' && !(FORM_ROUTES.has(c.req.path) && type === 'application/x-www-form-urlencoded')) {
    throw new CrossSiteError(`admin writes take a JSON body (content-type: application/json), not ${type || 'no content-type'}`);
  }
  return next();
};

/** Wrong admin tokens per address, and the lockout they earn. */
export class AdminBackoff {
  private readonly failures = new LRUCache<string, { n: number; until: number }>({ max: 10_000, ttl: 15 * 60_000 });

  /** @throws AdminBackoffError (429) while `address` is locked out. */
  check(address: string, now = Date.now()): void {
    const f = this.failures.get(address);
    if (f && f.until > now) throw new AdminBackoffError(Math.max(1, Math.ceil((f.until - now) / 1000)));
  }

  /** Counts a wrong token from `address`; from the tenth on, locks it out for 2^(n-10) s (at most 300 s). */
  failed(address: string, now = Date.now()): void {
    const f = this.failures.get(address) ?? { n: 0, until: 0 };
    f.n++;
    if (f.n >= 10) f.until = now + Math.min(300, 2 ** (f.n - 10)) * 1000;
    this.failures.set(address, f);
  }

  /** A right token clears the address's count. */
  succeeded(address: string): void {
    this.failures.delete(address);
  }
}

/** Largest body of an app route (admin JSON, OTLP telemetry, sign-in forms), bytes. */
export const MAX_APP_BODY_BYTES = 8 * 1024 * 1024;

/**
 * Reads the body of every write to an app route once, within `maxBytes` (413 past it, chunked or not) and
 * reserved against the in-flight byte cap for as long as the handler runs (529 over it); handlers then read
 * it from Hono's body cache (`c.req.json()`, `arrayBuffer()`, `parseBody()`).
 */
export function boundedBodies(
  deps: Pick<ProxyDeps, 'inflightBytes' | 'runtime'>,
  maxBytes = MAX_APP_BODY_BYTES,
  what = 'the bound of a body on admin and sign-in routes',
): MiddlewareHandler<{ Bindings: HttpBindings }> {
  return async (c: Ctx, next) => {
    if (!WRITES.has(c.req.method)) return next();
    const { limits } = deps.runtime.current.config;
    const caps = { total: limits.max_inflight_body_bytes, perClient: limits.max_inflight_body_bytes_per_client };
    const reservation = deps.inflightBytes.reservation(`app:${c.env.incoming.socket.remoteAddress ?? ''}`, caps);
    try {
      reservation.growTo(Math.min(Number(c.req.header('content-length')) || 0, maxBytes));
      const buf = await readBody(c.env.incoming, maxBytes, reservation.growTo).catch((err: Error) => {
        throw err instanceof RequestTooLargeError ? new RequestTooLargeError(maxBytes, what) : err;
      });
      const ab = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length) as ArrayBuffer;
      (c.req as unknown as { bodyCache: { arrayBuffer?: Promise<ArrayBuffer> } }).bodyCache.arrayBuffer = Promise.resolve(ab);
      await next();
    } finally {
      reservation.release();
    }
  };
}
