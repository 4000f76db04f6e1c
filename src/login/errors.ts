/**
 * The sign-in's error that the request path needs without loading the token machinery (`jose`, `openid-client`):
 * those modules load only when a config turns `login:` on (login/services.ts), so a gateway without sign-in
 * carries none of them.
 */

/** An access or refresh token that does not verify (expired, wrong signature, audience or issuer, wrong use). */
export class InvalidTokenError extends Error {}
