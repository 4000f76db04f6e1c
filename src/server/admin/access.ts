/**
 * Who may use the admin routes (`/admin/*`, `/v1/organizations/*`, `/metrics`): with `admin.token` configured, the
 * token as a bearer, as `x-api-key` (Anthropic's Admin API clients) or in the dashboard's sign-in cookie;
 * without one, only callers on a loopback address.
 */
import type { HttpBindings } from '@hono/node-server';
import type { Context } from 'hono';
import { bearerMatches, secretMatches } from '../auth.js';

/** The dashboard's sign-in cookie, holding the admin token (HttpOnly, SameSite=Strict, Path=/admin). */
export const ADMIN_COOKIE = 'switchyard_admin';

/** The admin token in a `Cookie` header, or undefined. */
export function adminCookie(header: string | undefined): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === ADMIN_COOKIE) return decodeURIComponent(part.slice(eq + 1).trim());
  }
  return undefined;
}

/** Loopback peer addresses (IPv4, IPv6, IPv4-mapped). */
const LOOPBACK = /^(127\.|::1$|::ffff:127\.)/;

/**
 * Why an admin request is refused, or null when it may go on: with `admin.token` configured, the token as a
 * bearer, as `x-api-key` (Anthropic's Admin API clients) or in the dashboard's sign-in cookie; without one, only
 * from a loopback address.
 */
export function adminRefusal(c: Context<{ Bindings: HttpBindings }>, token: string | null): 'token' | 'loopback' | null {
  if (token) {
    const ok = bearerMatches(c.req.header('authorization'), token) || secretMatches(c.req.header('x-api-key'), token) || secretMatches(adminCookie(c.req.header('cookie')), token);
    return ok ? null : 'token';
  }
  return LOOPBACK.test(c.env.incoming.socket.remoteAddress ?? '') ? null : 'loopback';
}
