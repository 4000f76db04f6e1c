/**
 * Claude Code's sign-in to Switchyard, one object per login config: the token service, the device flow, the
 * per-group policies and the gateway's OAuth client at the company's OpenID Connect identity provider
 * (openid-client: discovery, authorization code with PKCE, ID-token validation). Built on first use and kept
 * while the login config is unchanged (a rules reload or an unrelated config change keeps everyone signed in).
 */
import * as oidc from 'openid-client';
import type { LoginConfig, PolicyConfig } from '../config.js';
import type { Logger } from '../log.js';
import type { StateStore } from '../state/store.js';
import { DeviceFlow, OAuthError } from './device.js';
import { Policies } from './policy.js';
import { type SignedInUser, TokenService } from './tokens.js';

/** A pending browser sign-in at the identity provider (kept in the state store under its `state`). */
interface AuthRequest {
  device_code: string;
  verifier: string;
  nonce: string;
}

const authKey = (state: string) => `login:auth:${state}`;
const AUTH_REQUEST_TTL_MS = 10 * 60_000;

export class LoginService {
  private oidcConfig: Promise<oidc.Configuration> | null = null;

  private readonly compiledPolicies = new WeakMap<readonly PolicyConfig[], Policies>();

  private constructor(
    readonly config: LoginConfig,
    readonly tokens: TokenService,
    readonly device: DeviceFlow,
    private readonly state: StateStore,
  ) {}

  /** The compiled form of a config's `policies:` (compiled once per config object). */
  policies(policies: readonly PolicyConfig[]): Policies {
    let p = this.compiledPolicies.get(policies);
    if (!p) this.compiledPolicies.set(policies, (p = new Policies(policies, this.config)));
    return p;
  }

  /** @throws Error when a signing key is unusable (named in the message). */
  static async create(config: LoginConfig, state: StateStore, log: Logger): Promise<LoginService> {
    const { tokens, ephemeral } = await TokenService.create(config, state);
    if (ephemeral) {
      log.warn(
        { login: config.public_url },
        'login: no signing_keys configured, so this process made its own: a restart signs everyone out and other replicas refuse its tokens; set login.signing_keys (switchyard login new-key)',
      );
    }
    return new LoginService(config, tokens, new DeviceFlow(config, state, tokens), state);
  }

  /** The identity provider's metadata and the gateway's client there (discovered once, retried after a failure). */
  private idp(): Promise<oidc.Configuration> {
    if (!this.oidcConfig) {
      const { issuer, client_id, client_secret } = this.config.oidc;
      const url = new URL(issuer);
      const loopback = /^(127\.|localhost$|\[::1\]$)/.test(url.hostname);
      this.oidcConfig = oidc
        .discovery(url, client_id, client_secret ?? undefined, client_secret ? oidc.ClientSecretPost(client_secret) : oidc.None(), {
          // http:// is allowed for an identity provider on loopback only (development and tests).
          execute: url.protocol === 'http:' && loopback ? [oidc.allowInsecureRequests] : [],
          timeout: 10,
        })
        .catch((err: unknown) => {
          this.oidcConfig = null;
          throw new OAuthError(502, 'server_error', `the identity provider ${issuer} could not be reached or described itself wrongly: ${(err as Error).message}`);
        });
    }
    return this.oidcConfig;
  }

  /** Where the identity provider sends the browser back. */
  get callbackUrl(): string {
    return `${this.config.public_url}/oauth/callback`;
  }

  /**
   * Starts the browser sign-in for a device code: an authorization URL at the identity provider (code flow,
   * S256 PKCE, state and nonce), and the state to bind to the browser's cookie.
   */
  async beginSignIn(deviceCode: string): Promise<{ url: URL; state: string }> {
    const config = await this.idp();
    const verifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState();
    const nonce = oidc.randomNonce();
    const request: AuthRequest = { device_code: deviceCode, verifier, nonce };
    await this.state.putRecord(authKey(state), JSON.stringify(request), AUTH_REQUEST_TTL_MS);
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: this.callbackUrl,
      scope: this.config.oidc.scopes.join(' '),
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state,
      nonce,
    });
    return { url, state };
  }

  /**
   * Finishes the browser sign-in: exchanges the code (checking state, PKCE and nonce), reads the user from
   * the ID token, and approves the device code — or denies it when the identity provider refused.
   * @param callback the full callback URL as the browser requested it (query included).
   * @throws OAuthError when the state is unknown or used, or the exchange fails.
   */
  async finishSignIn(callback: URL): Promise<SignedInUser> {
    const state = callback.searchParams.get('state') ?? '';
    const raw = state ? await this.state.takeRecord(authKey(state)) : null;
    if (!raw) throw new OAuthError(400, 'invalid_request', 'this sign-in link is unknown, used or older than 10 minutes; start again with /login');
    const request = JSON.parse(raw) as AuthRequest;
    const idpError = callback.searchParams.get('error');
    if (idpError) {
      await this.device.settle(request.device_code, null);
      throw new OAuthError(403, 'access_denied', `the identity provider refused the sign-in: ${callback.searchParams.get('error_description') ?? idpError}`);
    }
    const config = await this.idp();
    let claims: oidc.IDToken | undefined;
    try {
      const tokens = await oidc.authorizationCodeGrant(config, callback, { pkceCodeVerifier: request.verifier, expectedState: state, expectedNonce: request.nonce, idTokenExpected: true });
      claims = tokens.claims();
    } catch (err) {
      throw new OAuthError(502, 'server_error', `the identity provider did not complete the sign-in: ${(err as Error).message}`);
    }
    if (!claims?.sub) throw new OAuthError(502, 'server_error', 'the identity provider returned no ID token subject');
    const groupsClaim = claims[this.config.oidc.groups_claim];
    const user: SignedInUser = {
      sub: claims.sub,
      email: typeof claims.email === 'string' ? claims.email : null,
      name: typeof claims.name === 'string' ? claims.name : null,
      groups: Array.isArray(groupsClaim) ? groupsClaim.filter((g): g is string => typeof g === 'string') : [],
    };
    if (!(await this.device.settle(request.device_code, user))) throw new OAuthError(400, 'expired_token', 'the device code expired or was already used; run /login again');
    return user;
  }
}
