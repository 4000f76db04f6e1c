/**
 * The gateway's own tokens for signed-in users (jose): short-lived access tokens — JWTs the gateway signs and
 * verifies without a database round trip, naming the user, their email and groups — and refresh tokens, JWTs
 * too, refused once the user's sign-ins are revoked (a per-user "revoked before" time in the state store).
 * Keys: private JWKs from the config, the first signing and all verifying (rotation by adding a key, then
 * moving it first); without any, one made at start-up. Verified access tokens are cached until they expire,
 * so a request pays one map lookup, not a signature check.
 *
 * Sources: RFC 7519 (JWT), RFC 8628 §3.5 (token response), the gateway protocol's bearer token section
 * (https://code.claude.com/docs/en/llm-gateway-protocol; the access token is opaque to the client).
 */
import { randomBytes } from 'node:crypto';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, type CryptoKey, type JWK, type JWTPayload, jwtVerify, SignJWT } from 'jose';
import { LRUCache } from 'lru-cache';
import type { LoginConfig } from '../config.js';
import type { StateStore } from '../state/store.js';
import { InvalidTokenError } from './errors.js';

/** Who a signed-in request is. */
export interface SignedInUser {
  /** The identity provider's subject. */
  sub: string;
  email: string | null;
  name: string | null;
  groups: string[];
}

export { InvalidTokenError };

interface SigningKey {
  kid: string;
  alg: 'ES256' | 'EdDSA';
  /** The private key (signs) and its public half (verifies). */
  key: CryptoKey | Uint8Array;
  publicKey: CryptoKey | Uint8Array;
}

/** The algorithm a private JWK signs with (EC P-256 → ES256, OKP Ed25519 → EdDSA). @throws Error for any other. */
function algorithmOf(jwk: JWK): 'ES256' | 'EdDSA' {
  if (jwk.kty === 'EC' && jwk.crv === 'P-256') return 'ES256';
  if (jwk.kty === 'OKP' && jwk.crv === 'Ed25519') return 'EdDSA';
  throw new Error(`login.signing_keys: a key must be an EC P-256 or Ed25519 private JWK (got kty ${jwk.kty} crv ${jwk.crv})`);
}

/** Makes a private JWK for `login.signing_keys` (what `switchyard login new-key` prints). */
export async function newSigningJwk(): Promise<JWK> {
  const { privateKey } = await generateKeyPair('ES256', { extractable: true });
  const jwk = await exportJWK(privateKey);
  return { ...jwk, alg: 'ES256', kid: await calculateJwkThumbprint(jwk) };
}

/** Signs and verifies the gateway's tokens for one login config. */
export class TokenService {
  private readonly verified = new LRUCache<string, { user: SignedInUser; exp: number }>({ max: 50_000 });

  private constructor(
    private readonly config: LoginConfig,
    private readonly keys: SigningKey[],
    private readonly state: StateStore,
  ) {}

  /**
   * @param ephemeral set when no key was configured (the caller warns: tokens die with the process).
   * @throws Error when a configured key is not a private EC P-256 / Ed25519 JWK.
   */
  static async create(config: LoginConfig, state: StateStore): Promise<{ tokens: TokenService; ephemeral: boolean }> {
    const texts = config.signing_keys.length ? config.signing_keys : [JSON.stringify(await newSigningJwk())];
    const keys: SigningKey[] = [];
    for (const [i, text] of texts.entries()) {
      let jwk: JWK;
      try {
        jwk = JSON.parse(text) as JWK;
      } catch {
        throw new Error(`login.signing_keys[${i}] is not a JWK (JSON); make one with \`switchyard login new-key\``);
      }
      if (!jwk.d) throw new Error(`login.signing_keys[${i}] is a public key; it needs the private part ("d")`);
      const alg = algorithmOf(jwk);
      const { d: _private, ...publicJwk } = jwk;
      keys.push({ kid: jwk.kid ?? (await calculateJwkThumbprint(jwk)), alg, key: await importJWK(jwk, alg), publicKey: await importJWK(publicJwk, alg) });
    }
    return { tokens: new TokenService(config, keys, state), ephemeral: config.signing_keys.length === 0 };
  }

  private sign(claims: JWTPayload, sub: string, ttlS: number): Promise<string> {
    const k = this.keys[0]!;
    return new SignJWT(claims)
      .setProtectedHeader({ alg: k.alg, kid: k.kid, typ: 'JWT' })
      .setSubject(sub)
      .setIssuer(this.config.public_url)
      .setAudience(this.config.public_url)
      .setIssuedAt()
      .setExpirationTime(Math.floor(Date.now() / 1000) + ttlS)
      .sign(k.key);
  }

  /**
   * The token response of RFC 6749 §5.1 for `user`: a fresh access token and refresh token.
   * @returns `{access_token, token_type: "Bearer", expires_in (s), refresh_token}`.
   */
  async issue(user: SignedInUser, family?: string): Promise<{ access_token: string; token_type: 'Bearer'; expires_in: number; refresh_token: string }> {
    const profile = { email: user.email, name: user.name, groups: user.groups };
    const access_token = await this.sign({ ...profile, use: 'access' }, user.sub, this.config.access_token_ttl_s);
    // `fam`: the sign-in every refresh token rotated from it belongs to (a reuse revokes the whole family).
    const fam = family ?? randomBytes(12).toString('base64url');
    const refresh_token = await this.sign({ ...profile, use: 'refresh', jti: randomBytes(16).toString('base64url'), fam }, user.sub, this.config.refresh_token_ttl_s);
    return { access_token, token_type: 'Bearer', expires_in: this.config.access_token_ttl_s, refresh_token };
  }

  /**
   * An access token alone, for a job that cannot sign in (CI): what `switchyard login token` prints. It verifies like
   * any access token until it expires; it has no refresh token, so it ends with its lifetime.
   * @param ttlS lifetime, seconds (1 s to {@link MAX_SERVICE_TOKEN_TTL_S}).
   * @throws Error when the lifetime is out of range.
   */
  async issueAccess(user: SignedInUser, ttlS: number): Promise<string> {
    if (!Number.isInteger(ttlS) || ttlS < 1 || ttlS > MAX_SERVICE_TOKEN_TTL_S) throw new Error(`a token lives 1 s to ${MAX_SERVICE_TOKEN_TTL_S / 86_400} days; got ${ttlS} s`);
    return this.sign({ email: user.email, name: user.name, groups: user.groups, use: 'access' }, user.sub, ttlS);
  }

  private async verifyJwt(token: string, use: 'access' | 'refresh'): Promise<{ payload: JWTPayload; user: SignedInUser }> {
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(
        token,
        async (header) => {
          const k = this.keys.find((x) => x.kid === header.kid);
          if (!k) throw new InvalidTokenError('signed by a key this gateway no longer has');
          return k.publicKey;
        },
        { issuer: this.config.public_url, audience: this.config.public_url, algorithms: ['ES256', 'EdDSA'] },
      ));
    } catch (err) {
      throw new InvalidTokenError((err as Error).message);
    }
    if (payload.use !== use || !payload.sub) throw new InvalidTokenError(`not ${use === 'access' ? 'an access' : 'a refresh'} token`);
    const groups = Array.isArray(payload.groups) ? payload.groups.filter((g): g is string => typeof g === 'string') : [];
    return { payload, user: { sub: payload.sub, email: typeof payload.email === 'string' ? payload.email : null, name: typeof payload.name === 'string' ? payload.name : null, groups } };
  }

  /**
   * The user an access token names. Cached until the token expires: a request pays a map lookup.
   * @throws InvalidTokenError when it does not verify or has expired.
   */
  async verifyAccess(token: string): Promise<SignedInUser> {
    const hit = this.verified.get(token);
    if (hit) {
      if (hit.exp > Date.now()) return hit.user;
      this.verified.delete(token);
      throw new InvalidTokenError('the access token has expired');
    }
    const { payload, user } = await this.verifyJwt(token, 'access');
    this.verified.set(token, { user, exp: (payload.exp ?? 0) * 1000 });
    return user;
  }

  /**
   * The refresh grant with rotation and reuse detection (RFC 9700 §4.14.2): a refresh token is used once and
   * answered with a new pair of the same sign-in (family); a rotated token presented again revokes the whole
   * family, so a stolen token and the one it was stolen from both stop working. Also refused when the
   * user's sign-ins were revoked after it was issued.
   * @throws InvalidTokenError (the token endpoint answers `invalid_grant`).
   */
  async refresh(token: string): Promise<Awaited<ReturnType<TokenService['issue']>>> {
    const { payload, user } = await this.verifyJwt(token, 'refresh');
    for (const who of [user.sub, user.email]) {
      if (!who) continue;
      const revokedBefore = Number((await this.state.getRecord(revocationKey(who))) ?? 0);
      if ((payload.iat ?? 0) * 1000 < revokedBefore) throw new InvalidTokenError(`the sign-ins of ${user.email ?? user.sub} were revoked`);
    }
    const fam = typeof payload.fam === 'string' ? payload.fam : null;
    const jti = typeof payload.jti === 'string' ? payload.jti : null;
    if (!fam || !jti) throw new InvalidTokenError('a refresh token from before rotation');
    const ttlMs = Math.max(1000, (payload.exp ?? 0) * 1000 - Date.now());
    if ((await this.state.getRecord(familyKey(fam))) !== null) throw new InvalidTokenError('this sign-in was revoked because one of its refresh tokens was used twice');
    if (!(await this.state.claimRecord(usedKey(jti), '1', ttlMs))) {
      await this.state.putRecord(familyKey(fam), String(Date.now()), this.config.refresh_token_ttl_s * 1000);
      throw new InvalidTokenError('this refresh token was already used (tokens rotate at every refresh); the sign-in it belongs to is revoked');
    }
    return this.issue(user, fam);
  }

  /**
   * Revokes every refresh token of a user issued until now (access tokens live out their short lifetime):
   * `who` is their email or their identity-provider subject. Kept as long as the longest refresh token lives.
   */
  async revoke(who: string): Promise<void> {
    // Tokens carry whole seconds: a token issued within this second counts as revoked too.
    await this.state.putRecord(revocationKey(who), String(Math.ceil(Date.now() / 1000) * 1000 + 1000), this.config.refresh_token_ttl_s * 1000);
  }
}

/** Longest lifetime of a token `issueAccess` makes (30 days): longer-lived access belongs to a client key. */
export const MAX_SERVICE_TOKEN_TTL_S = 30 * 86_400;

const revocationKey = (sub: string) => `login:revoked:${sub}`;
/** A refresh token (by its `jti`) that was used; kept until it would have expired. */
const usedKey = (jti: string) => `login:refresh-used:${jti}`;
/** A sign-in (a refresh-token family) revoked after a reuse. */
const familyKey = (fam: string) => `login:family-revoked:${fam}`;
