/**
 * The HTTP side of Claude Code's sign-in (the gateway protocol): the authorization-server metadata, the device
 * authorization and token endpoints (OAuth errors in RFC 6749 §5.2's shape), the browser pages that sign a
 * device in at the identity provider, `GET /managed/settings`, and the OTLP/HTTP endpoints Claude Code sends
 * its own telemetry to. With `login:` off, every one of them answers 404.
 *
 * Sources: https://code.claude.com/docs/en/llm-gateway-protocol and the Claude apps gateway's `GET /protocol`
 * (endpoints, the device flow, managed settings with ETag / 304 and 404 ≠ `{}`, telemetry answered 200 whether
 * forwarded or dropped); RFC 8414 (metadata), RFC 8628 (device grant), RFC 6749 §5 (token responses).
 */
import { clientAddress } from '../client-address.js';
import { createHash, randomBytes } from 'node:crypto';
import type { HttpBindings } from '@hono/node-server';
import type { Context, Hono } from 'hono';
import { getCookie, setCookie } from 'hono/cookie';
import { AuthenticationError, NoPolicyError, NotFoundError, RequestTooLargeError } from '../errors.js';
import { identify } from './auth.js';
import type { ProxyDeps } from './pipeline/exchange.js';
import { OAuthError } from '../login/device.js';
import type { LoginService } from '../login/service.js';
import { InvalidTokenError } from '../login/errors.js';
import { recordTelemetry } from '../login/telemetry.js';

type C = Context<{ Bindings: HttpBindings }>;

const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
/** Largest OTLP body accepted, bytes (Claude Code batches a few KB; collectors commonly cap at 4–20 MB). */
export const MAX_OTLP_BYTES = 8 * 1024 * 1024;

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);

/** A small self-contained page (no scripts: the CSP of the dashboard does not apply here, nothing runs). */
function page(c: C, status: number, title: string, body: string): Response {
  c.header('content-security-policy', "default-src 'none'; style-src 'unsafe-inline'; form-action 'self' https: http:; frame-ancestors 'none'");
  c.header('cache-control', 'no-store');
  return c.html(
    `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>${escapeHtml(title)} · Switchyard</title>` +
      '<style>body{font:16px/1.5 system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;color:#1b1f24}input{font:inherit;font-size:1.4rem;letter-spacing:.15em;padding:.4rem;width:12rem;text-transform:uppercase}button{font:inherit;padding:.5rem 1.2rem}</style>' +
      `</head><body><h1>${escapeHtml(title)}</h1>${body}</body></html>`,
    status as 200,
  );
}

function oauthError(c: C, err: OAuthError): Response {
  c.header('cache-control', 'no-store');
  return c.json({ error: err.error, error_description: err.description }, err.status as 400);
}

/** Registers the sign-in routes. */
export function loginRoutes(app: Hono<{ Bindings: HttpBindings }>, deps: ProxyDeps): void {
  /** The login service, or a 404 when `login:` is off. */
  const service = async (c: C): Promise<LoginService> => {
    const s = deps.logins?.get(deps.runtime.current.config.login);
    if (!s) throw new NotFoundError(c.req.method, c.req.path);
    return s;
  };
  /** RFC 8628 §5.1: device authorizations and code entries per client IP per minute. */
  const rateLimited = async (c: C, login: LoginService): Promise<boolean> => {
    const perMinute = login.config.device_requests_per_minute;
    // Behind a reverse proxy, the client's own address (trusted_proxies), so one company is not one bucket.
    const ip = clientAddress(c.env.incoming, deps.runtime.current.config.trusted_proxies) || 'unknown';
    const r = await deps.state.take(`login:rate:${ip}`, 1, { capacity: perMinute, refillPerMs: perMinute / 60_000 });
    if (!r.ok) c.header('retry-after', String(Math.ceil(r.retryAfterMs / 1000)));
    return !r.ok;
  };

  app.get('/.well-known/oauth-authorization-server', async (c) => {
    const { config } = await service(c);
    return c.json({
      issuer: config.public_url,
      device_authorization_endpoint: `${config.public_url}/oauth/device_authorization`,
      token_endpoint: `${config.public_url}/oauth/token`,
      grant_types_supported: [DEVICE_GRANT, 'refresh_token'],
      response_types_supported: [],
      token_endpoint_auth_methods_supported: ['none'],
    });
  });

  app.post('/oauth/device_authorization', async (c) => {
    const login = await service(c);
    if (await rateLimited(c, login)) return oauthError(c, new OAuthError(429, 'slow_down', 'too many sign-ins from this address; wait a minute'));
    c.header('cache-control', 'no-store');
    return c.json(await login.device.authorize());
  });

  app.post('/oauth/token', async (c) => {
    const login = await service(c);
    const form = await c.req.parseBody().catch(() => ({}) as Record<string, unknown>);
    const grant = String(form.grant_type ?? '');
    // Token responses and their errors are never cached (RFC 6749 §5.1).
    c.header('cache-control', 'no-store');
    try {
      if (grant === DEVICE_GRANT) {
        const code = String(form.device_code ?? '');
        if (!code) throw new OAuthError(400, 'invalid_request', 'device_code is required');
        return c.json(await login.device.poll(code));
      }
      if (grant === 'refresh_token') {
        try {
          return c.json(await login.tokens.refresh(String(form.refresh_token ?? '')));
        } catch (err) {
          // The gateway protocol: 401 invalid_grant sends the developer back through the browser sign-in.
          if (err instanceof InvalidTokenError) throw new OAuthError(401, 'invalid_grant', `the refresh token is not valid (${err.message}); sign in again`);
          throw err;
        }
      }
      throw new OAuthError(400, 'unsupported_grant_type', `grant_type must be ${DEVICE_GRANT} or refresh_token`);
    } catch (err) {
      if (err instanceof OAuthError) return oauthError(c, err);
      throw err;
    }
  });

  // The verification page: the developer types (or confirms) the code; never submitted automatically (RFC 8628 §5.4).
  app.get('/device', async (c) => {
    await service(c);
    const csrf = randomBytes(16).toString('base64url');
    setCookie(c, 'sy_csrf', csrf, { httpOnly: true, sameSite: 'Strict', path: '/device', secure: c.req.url.startsWith('https:') });
    const code = escapeHtml((c.req.query('user_code') ?? '').slice(0, 16));
    return page(
      c,
      200,
      'Sign in to Claude Code',
      `<p>Check that this code matches the one in your terminal, then continue to your company's sign-in.</p><form method="post" action="/device"><input type="hidden" name="csrf" value="${csrf}"><p><input name="user_code" value="${code}" autocomplete="off" aria-label="Code" required></p><p><button type="submit">Continue</button></p></form>`,
    );
  });

  app.post('/device', async (c) => {
    const login = await service(c);
    const form = await c.req.parseBody().catch(() => ({}) as Record<string, unknown>);
    const csrf = getCookie(c, 'sy_csrf');
    if (!csrf || form.csrf !== csrf) return page(c, 403, 'Start again', '<p>This form expired or came from another site. Open the link from your terminal again.</p>');
    if (await rateLimited(c, login)) return page(c, 429, 'Too many attempts', '<p>Wait a minute, then try again.</p>');
    const deviceCode = await login.device.deviceCodeFor(String(form.user_code ?? ''));
    if (!deviceCode) return page(c, 400, 'Code not found', '<p>That code is unknown or expired. Run <code>/login</code> in Claude Code again and use the new code.</p>');
    let signIn: Awaited<ReturnType<LoginService['beginSignIn']>>;
    try {
      signIn = await login.beginSignIn(deviceCode);
    } catch (err) {
      // The identity provider is down or misconfigured: the developer gets a page saying so, not a JSON 500.
      if (!(err instanceof OAuthError)) throw err;
      deps.log.error({ login: 'idp_unavailable', err: err.description }, 'a device sign-in could not reach the identity provider');
      return page(c, err.status, 'Sign-in is unavailable', `<p>${escapeHtml(err.description)}</p><p>Try again in a few minutes, or tell the gateway's operator.</p>`);
    }
    // The callback must come back to this browser: the state is bound to it (no sign-in fixation).
    setCookie(c, 'sy_login', signIn.state, { httpOnly: true, sameSite: 'Lax', path: '/oauth/callback', maxAge: 600, secure: c.req.url.startsWith('https:') });
    return c.redirect(signIn.url.href, 302);
  });

  app.get('/oauth/callback', async (c) => {
    const login = await service(c);
    const url = new URL(c.req.url);
    const state = url.searchParams.get('state');
    if (!state || getCookie(c, 'sy_login') !== state) return page(c, 400, 'Start again', '<p>This sign-in did not start in this browser. Open the link from your terminal again.</p>');
    try {
      const user = await login.finishSignIn(new URL(`${login.callbackUrl}${url.search}`));
      deps.log.info({ login: 'device_approved', user: user.email ?? user.sub, groups: user.groups.length }, 'a device signed in');
      return page(c, 200, 'You are signed in', `<p>Signed in as <strong>${escapeHtml(user.email ?? user.sub)}</strong>. Return to your terminal: Claude Code continues there.</p>`);
    } catch (err) {
      if (!(err instanceof OAuthError)) throw err;
      deps.log.warn({ login: 'device_refused', err: err.description }, 'a device sign-in did not complete');
      return page(c, err.status, 'Sign-in did not complete', `<p>${escapeHtml(err.description)}</p>`);
    }
  });

  app.get('/managed/settings', async (c) => {
    const login = await service(c);
    const who = await identify(c.env.incoming.headers, deps.runtime.current.config, deps.logins);
    if (!who.user) throw new AuthenticationError('managed settings are per signed-in user: send the token from /login as Authorization: Bearer');
    const { name, settings } = login.policies(deps.runtime.current.config.policies).for(who.user);
    if (!settings) throw new NoPolicyError(who.clientId);
    // The Claude apps gateway's shape: {uuid, checksum, settings}, with the checksum as the ETag.
    const text = JSON.stringify(settings);
    const checksum = `sha256:${createHash('sha256').update(text).digest('hex')}`;
    const etag = `"${checksum}"`;
    c.header('etag', etag);
    c.header('cache-control', 'private, no-cache');
    const inm = c.req.header('if-none-match');
    if (inm?.split(',').some((t) => t.trim().replace(/^W\//, '') === etag)) return c.body(null, 304);
    return c.json({ uuid: `sha256:${createHash('sha256').update(name).digest('hex')}`, checksum, settings });
  });

  for (const signal of ['metrics', 'logs', 'traces'] as const) {
    app.post(`/v1/${signal}`, async (c) => {
      const login = await service(c);
      const who = await identify(c.env.incoming.headers, deps.runtime.current.config, deps.logins);
      const length = Number(c.req.header('content-length') ?? 0);
      if (length > MAX_OTLP_BYTES) throw new RequestTooLargeError(MAX_OTLP_BYTES, 'the bound of an OTLP telemetry body');
      const body = Buffer.from(await c.req.arrayBuffer());
      const contentType = c.req.header('content-type') ?? 'application/x-protobuf';
      if (login.config.telemetry_forward) forward(deps, `${login.config.telemetry_forward.replace(/\/+$/, '')}/v1/${signal}`, contentType, body);
      if (signal === 'metrics' && contentType.startsWith('application/json')) recordTelemetry(deps, who.clientId, body);
      // OTLP/HTTP success: an empty ExportServiceResponse, in the request's encoding.
      return contentType.startsWith('application/json') ? c.json({}) : c.body(new Uint8Array(0), 200, { 'content-type': 'application/x-protobuf' });
    });
  }
}

/** Sends one OTLP body on to the collector, verbatim, without holding the client's answer (5 s bound). */
function forward(deps: ProxyDeps, url: string, contentType: string, body: Buffer): void {
  fetch(url, { method: 'POST', headers: { 'content-type': contentType }, body: new Uint8Array(body), signal: AbortSignal.timeout(5000) })
    .then(async (r) => {
      await r.arrayBuffer();
      if (!r.ok) deps.warnOnce(`otlp-forward:${r.status}`, `forwarding Claude Code telemetry to ${url} answered ${r.status} (logged once per status)`);
    })
    .catch((err: Error) => deps.warnOnce(`otlp-forward:${err.name}`, `forwarding Claude Code telemetry to ${url} failed: ${err.message} (logged once per kind of failure)`));
}
