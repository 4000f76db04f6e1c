/**
 * The device authorization grant (RFC 8628) as Claude Code's `/login` runs it against the gateway: the client
 * asks for a device code, the developer signs in at the company's identity provider in a browser, the client
 * polls the token endpoint until the code is approved. State lives in the state store (Redis in a fleet), so a
 * code approved through one replica is redeemed through another, and a device code is handed out once.
 *
 * Sources: RFC 8628 §3.2 (device authorization response), §3.4–3.5 (polling errors authorization_pending,
 * slow_down +5 s, access_denied, expired_token), §5.1 (rate limiting), §6.1 (user codes from 20 consonants);
 * RFC 6749 §5.2 (error responses); the gateway protocol reference
 * (https://code.claude.com/docs/en/llm-gateway-protocol, and a running Claude apps gateway's GET /protocol).
 */
import { createHash, randomBytes, randomInt } from 'node:crypto';
import type { LoginConfig } from '../config.js';
import type { StateStore } from '../state/store.js';
import type { SignedInUser, TokenService } from './tokens.js';

/** RFC 8628 §6.1: base-20, no vowels (no words) and no look-alikes. */
const USER_CODE_ALPHABET = 'BCDFGHJKLMNPQRSTVWXZ';

/** An OAuth error answer (RFC 6749 §5.2): HTTP status and body. */
export class OAuthError extends Error {
  constructor(
    readonly status: number,
    readonly error: string,
    readonly description: string,
  ) {
    super(description);
  }
}

interface DeviceRecord {
  user_code: string;
  /** Epoch ms the code stops being usable. */
  expires: number;
  status: 'pending' | 'approved' | 'denied';
  user?: SignedInUser;
}

const sha = (s: string) => createHash('sha256').update(s).digest('base64url');
const deviceKey = (deviceCode: string) => `login:device:${sha(deviceCode)}`;
const pollKey = (deviceCode: string) => `login:poll:${sha(deviceCode)}`;
const userCodeKey = (userCode: string) => `login:user-code:${userCode}`;

/** `WDJB-MJHT` → `WDJBMJHT`: what people type, with dashes, spaces and lower case forgiven. */
export function normalizeUserCode(s: string): string {
  return s.toUpperCase().replace(/[^A-Z]/g, '');
}

/** The device flow's state for one login config. */
export class DeviceFlow {
  constructor(
    private readonly config: LoginConfig,
    private readonly state: StateStore,
    private readonly tokens: TokenService,
  ) {}

  /**
   * RFC 8628 §3.2: a new device code (256 random bits, base64url) and user code (8 of 20 consonants, shown as
   * XXXX-XXXX).
   */
  async authorize(): Promise<{ device_code: string; user_code: string; verification_uri: string; verification_uri_complete: string; expires_in: number; interval: number }> {
    const device_code = randomBytes(32).toString('base64url');
    const raw = Array.from({ length: 8 }, () => USER_CODE_ALPHABET[randomInt(USER_CODE_ALPHABET.length)]).join('');
    const user_code = `${raw.slice(0, 4)}-${raw.slice(4)}`;
    const ttlMs = this.config.device_code_ttl_s * 1000;
    const record: DeviceRecord = { user_code: raw, expires: Date.now() + ttlMs, status: 'pending' };
    // Kept a minute past expiry so a late poll hears expired_token rather than invalid_grant.
    await this.state.putRecord(deviceKey(device_code), JSON.stringify(record), ttlMs + 60_000);
    await this.state.putRecord(userCodeKey(raw), device_code, ttlMs);
    const verification_uri = `${this.config.public_url}/device`;
    return {
      device_code,
      user_code,
      verification_uri,
      verification_uri_complete: `${verification_uri}?user_code=${user_code}`,
      expires_in: this.config.device_code_ttl_s,
      interval: this.config.poll_interval_s,
    };
  }

  /** The device code a typed user code stands for, or null when unknown or expired. */
  async deviceCodeFor(userCode: string): Promise<string | null> {
    const normalized = normalizeUserCode(userCode);
    return normalized.length === 8 ? this.state.getRecord(userCodeKey(normalized)) : null;
  }

  /** Settles a device code after the browser step: approved for `user`, or denied (`user` null). */
  async settle(deviceCode: string, user: SignedInUser | null): Promise<boolean> {
    const raw = await this.state.getRecord(deviceKey(deviceCode));
    if (!raw) return false;
    const record = JSON.parse(raw) as DeviceRecord;
    if (record.status !== 'pending' || record.expires <= Date.now()) return false;
    const next: DeviceRecord = user ? { ...record, status: 'approved', user } : { ...record, status: 'denied' };
    await this.state.putRecord(deviceKey(deviceCode), JSON.stringify(next), record.expires - Date.now() + 60_000);
    await this.state.takeRecord(userCodeKey(record.user_code)); // the user code is spent either way
    return true;
  }

  /**
   * One poll of the token endpoint with the device-code grant (RFC 8628 §3.4).
   * @throws OAuthError authorization_pending, slow_down (the interval then grows by 5 s), access_denied,
   *   expired_token, or invalid_grant (unknown or already redeemed).
   */
  async poll(deviceCode: string): Promise<Awaited<ReturnType<TokenService['issue']>>> {
    const raw = await this.state.getRecord(deviceKey(deviceCode));
    if (!raw) throw new OAuthError(400, 'invalid_grant', 'unknown or already used device code; run /login again');
    const record = JSON.parse(raw) as DeviceRecord;
    if (record.expires <= Date.now()) throw new OAuthError(400, 'expired_token', 'the device code expired before it was approved; run /login again');
    if (record.status === 'pending') {
      // Polls are timed in their own record: a poll never writes the device record an approval writes.
      const now = Date.now();
      const last = await this.state.getRecord(pollKey(deviceCode));
      const [lastAt, interval] = last ? (JSON.parse(last) as [number, number]) : [0, this.config.poll_interval_s];
      const tooSoon = now - lastAt < interval * 1000 - 250; // 250 ms of slack for timer jitter
      await this.state.putRecord(pollKey(deviceCode), JSON.stringify([now, tooSoon ? interval + 5 : interval]), record.expires - now + 60_000);
      if (tooSoon) throw new OAuthError(400, 'slow_down', `poll at most every ${interval + 5} s`);
      throw new OAuthError(400, 'authorization_pending', 'waiting for the sign-in in the browser');
    }
    // Approved or denied: the record is taken, so a replayed device code finds nothing.
    const taken = await this.state.takeRecord(deviceKey(deviceCode));
    if (!taken) throw new OAuthError(400, 'invalid_grant', 'the device code was already used');
    if (record.status === 'denied') throw new OAuthError(400, 'access_denied', 'the sign-in was refused at the identity provider');
    return this.tokens.issue(record.user!);
  }
}
