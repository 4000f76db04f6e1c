/**
 * Who may use the gateway: client keys (virtual keys) for the proxied API and a bearer token for the admin
 * routes. Secrets are compared as SHA-256 digests with `crypto.timingSafeEqual`, and every configured client
 * is compared on every request, so timing reveals neither a key's bytes nor which client matched.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { ClientConfig, GatewayConfig } from '../config.js';
import { InvalidTokenError } from '../login/errors.js';
import type { LoginService } from '../login/service.js';
import type { LoginServices } from '../login/services.js';
import type { SignedInUser } from '../login/tokens.js';
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

/** Who a proxied request is: a configured client, a signed-in user (with their login service), or transparent. */
export interface Identity {
  client: ClientConfig | null;
  clientId: string;
  /** Set when the request carries a sign-in token of this gateway. */
  user: SignedInUser | null;
  login: LoginService | null;
}

const NO_KEY = Buffer.alloc(32);

/** The token of `Authorization: Bearer` when it has a JWT's shape (three base64url parts, a JSON header). */
function signInToken(headers: IncomingHttpHeaders): string | null {
  const m = /^Bearer\s+(eyJ[\w-]*\.[\w-]+\.[\w-]+)\s*$/i.exec(headers.authorization ?? '');
  return m ? m[1]! : null;
}

/**
 * Who a request is, with Claude Code's sign-in on (`login:`): a bearer token the gateway signed names a user —
 * their email (else subject) is the client id rules, limits and usage records see, their groups go to rules
 * and policies; anything else goes to the client keys, and with none configured a request without a sign-in
 * is refused. Verified tokens are cached (login/tokens.ts): this costs a map lookup per request.
 * @throws AuthenticationError (401 `authentication_error`, so Claude Code offers a new sign-in) for a token that
 *   does not verify or has expired, or a request with neither a sign-in nor a known client key.
 */
export async function identify(headers: IncomingHttpHeaders, config: GatewayConfig, logins: LoginServices | null): Promise<Identity> {
  const service = logins?.get(config.login);
  if (service) {
    const token = signInToken(headers);
    if (token) {
      const login = await service;
      let user: SignedInUser;
      try {
        user = await login.tokens.verifyAccess(token);
      } catch (err) {
        if (err instanceof InvalidTokenError) throw new AuthenticationError(`your Switchyard sign-in is not valid (${err.message}); run /login in Claude Code to sign in again`);
        throw err;
      }
      const id = user.email ?? user.sub;
      return { client: { id, sha256: NO_KEY, tags: {}, decision_header: null }, clientId: id, user, login };
    }
    if (!config.clients) throw new AuthenticationError(`this gateway needs a sign-in: run /login in Claude Code with ${config.login!.public_url} (or set ANTHROPIC_AUTH_TOKEN to a token from it)`);
  }
  return { ...identifyClient(headers, config.clients), user: null, login: null };
}
