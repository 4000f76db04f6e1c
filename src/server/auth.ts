/**
 * Who may use the gateway: client keys (virtual keys) for the proxied API and a bearer token for the admin
 * routes. Secrets are compared as SHA-256 digests with `crypto.timingSafeEqual`, and every configured client
 * is compared on every request, so timing reveals neither a key's bytes nor which client matched.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { ClientConfig } from '../config.js';
import { AuthenticationError } from '../errors.js';
import { clientCredential, credentialFingerprint } from '../rules/context.js';

const sha256 = (s: string) => createHash('sha256').update(s).digest();

/**
 * The configured client whose key the request carries (`x-api-key`, else `Authorization: Bearer`).
 * @throws AuthenticationError (401) when the key is missing or unknown.
 */
export function authenticateClient(headers: IncomingHttpHeaders, clients: readonly ClientConfig[]): ClientConfig {
  const credential = clientCredential(headers);
  if (!credential) {
    throw new AuthenticationError('switchyard requires a client key: send it as x-api-key or Authorization: Bearer (ANTHROPIC_API_KEY or ANTHROPIC_AUTH_TOKEN for Claude Code)');
  }
  const digest = sha256(credential);
  let found: ClientConfig | null = null;
  for (const c of clients) {
    if (timingSafeEqual(digest, c.sha256) && found === null) found = c;
  }
  if (!found) throw new AuthenticationError('the client key is not known to this switchyard gateway; ask its operator for a key (switchyard keys new ID)');
  return found;
}

/**
 * Who a request is, as limits, budgets and usage records name it: with `clients:` configured, the client its
 * key belongs to (its id); in transparent mode, the fingerprint of its own credential (`anonymous` without one).
 * @throws AuthenticationError (401) with `clients:` configured and a missing or unknown key.
 */
export function identifyClient(headers: IncomingHttpHeaders, clients: readonly ClientConfig[] | null): { client: ClientConfig | null; clientId: string } {
  if (clients) {
    const client = authenticateClient(headers, clients);
    return { client, clientId: client.id };
  }
  const credential = clientCredential(headers);
  return { client: null, clientId: credential ? credentialFingerprint(credential) : 'anonymous' };
}

/** True when `secret` equals `token` (compared as SHA-256 digests, in constant time). */
export function secretMatches(secret: string | undefined, token: string): boolean {
  return secret !== undefined && timingSafeEqual(sha256(secret), sha256(token));
}

/** True when `authorization` is `Bearer <token>` (compared in constant time). */
export function bearerMatches(authorization: string | undefined, token: string): boolean {
  return secretMatches(/^Bearer\s+(.+)$/i.exec(authorization ?? '')?.[1]?.trim(), token);
}
