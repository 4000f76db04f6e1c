/**
 * The request context: the one object that rules' matchers and JSONata expressions see (DESIGN §4).
 * Built once per request from the parsed body, the headers and the identified client.
 */
import { createHash } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { CREDENTIAL_HEADERS } from '../log.js';

/** What matchers and JSONata (`when`, `tag_billing.expr`, `transform`) see. */
export interface RequestContext {
  /** The endpoint path without the query, e.g. `/v1/messages`. */
  path: string;
  /** `body.model`, or '' when absent. */
  model: string;
  /** `body.stream === true`. */
  stream: boolean;
  /** The parsed request body (a JSON object). Never mutate it: actions copy on write. */
  body: Record<string, unknown>;
  /** Alias of `body.messages` ([] when absent), so `$count(messages)` reads naturally. */
  messages: unknown[];
  /** Request headers with lower-cased names; credential headers (x-api-key, authorization...) are left out. */
  headers: Record<string, string>;
  /** The client: its id (a configured client id, a signed-in user's email, or a fingerprint of its credential), tags and (signed in) groups. */
  client: { id: string; tags: Record<string, string>; groups: string[] };
  /** The Claude Code session: `x-claude-code-session-id`, else `session_id` from `metadata.user_id`. */
  session: { id: string | null };
  /** Who: the configured client's id, else the account (or device) id in `metadata.user_id`, else the client id. */
  user: { id: string };
  /** The project header's value (`attribution.project_header`, default `x-project`), or null. */
  project: string | null;
  /** Cheap estimates; `input_tokens` is request bytes / 4 (not a tokenizer count). */
  estimate: { input_tokens: number };
  /** Request time, UTC: `hour` 0–23, `weekday` 0 (Sunday)–6, `iso` timestamp. */
  time: { hour: number; weekday: number; iso: string };
}

/** Characters per token used by the cheap estimates (English prose and JSON run 3.5–4.5). */
export const CHARS_PER_TOKEN = 4;

/**
 * What Claude Code's `metadata.user_id` says: a JSON *string* holding `device_id`, `account_uuid` and
 * `session_id`, or (older versions) `user_<hash>_account_<uuid>_session_<uuid>`. One parse for the session and
 * the account.
 */
function metadataUserId(body: Record<string, unknown>): { session: string | null; account: string | null } {
  const userId = (body.metadata as { user_id?: unknown } | undefined)?.user_id;
  if (typeof userId !== 'string' || !userId) return { session: null, account: null };
  if (userId.startsWith('{')) {
    try {
      const parsed = JSON.parse(userId) as { session_id?: unknown; account_uuid?: unknown; device_id?: unknown };
      const account = parsed.account_uuid || parsed.device_id;
      return { session: typeof parsed.session_id === 'string' ? parsed.session_id : null, account: typeof account === 'string' && account ? account : null };
    } catch {
      return { session: null, account: null };
    }
  }
  const legacy = /^user_([0-9a-f]+)(?:_account_([0-9a-fA-F-]+))?/.exec(userId);
  return { session: /_session_([0-9a-fA-F-]{8,})$/.exec(userId)?.[1] ?? null, account: legacy ? (legacy[2] ?? legacy[1]!) : null };
}

/** Session id from `metadata.user_id` (either of its forms), or null. */
export function sessionIdFromMetadata(body: Record<string, unknown>): string | null {
  return metadataUserId(body).session;
}

/**
 * The account behind a Claude Code request, from `metadata.user_id`: `account_uuid` (else `device_id`) of the
 * JSON form, or the account uuid (else the user hash) of the older form; null when absent.
 */
export function accountFromMetadata(body: Record<string, unknown>): string | null {
  return metadataUserId(body).account;
}

/** Longest client-chosen id (session, account) kept as is, characters; Claude Code's are 36-64. */
export const MAX_ID_CHARS = 128;

/**
 * A client-chosen id (a session id, an account id) bounded in size: as is up to {@link MAX_ID_CHARS}
 * characters, else its first 100 characters, `…` and 16 hex digits of its SHA-256 — still unique per id, so
 * that everything keyed by it (sticky sessions, throttle buckets, traces, usage records) is bounded in bytes
 * whatever a client sends (DESIGN §11.4).
 */
export function boundedId(id: string): string;
export function boundedId(id: string | null): string | null;
export function boundedId(id: string | null): string | null {
  if (id === null || id.length <= MAX_ID_CHARS) return id;
  return `${id.slice(0, 100)}…${createHash('sha256').update(id).digest('hex').slice(0, 16)}`;
}

/** Recent credentials' fingerprints: a team's clients send a handful of keys, each on every request. */
const fingerprints = new LRUCache<string, string>({ max: 1024 });

/** A stable, non-reversible id for a credential: `fp-` and 10 hex digits of its SHA-256 (cached per credential). */
export function credentialFingerprint(secret: string): string {
  let fp = fingerprints.get(secret);
  if (fp === undefined) fingerprints.set(secret, (fp = 'fp-' + createHash('sha256').update(secret).digest('hex').slice(0, 10)));
  return fp;
}

/** The client credential a request carries: `x-api-key`, else the token of `Authorization: Bearer`. */
export function clientCredential(headers: Record<string, string | string[] | undefined>): string | null {
  const apiKey = headers['x-api-key'];
  if (typeof apiKey === 'string' && apiKey) return apiKey;
  const auth = headers.authorization;
  if (typeof auth === 'string') {
    const m = /^Bearer\s+(.+)$/i.exec(auth);
    if (m) return m[1]!.trim();
  }
  return null;
}

/** Inputs of {@link buildContext}. */
export interface ContextInput {
  path: string;
  body: Record<string, unknown>;
  /** Raw request headers as Node gives them (lower-cased names). */
  headers: Record<string, string | string[] | undefined>;
  /** Request body size in bytes (for the token estimate). */
  bodyBytes: number;
  /** Client id when already known (configured clients, `dry-run --key`); else derived from the credential. */
  clientId?: string;
  clientTags?: Record<string, string>;
  /** A signed-in user's identity-provider groups. */
  groups?: string[];
  now?: Date;
  /** The header naming the project (default `x-project`). */
  projectHeader?: string;
}

const CREDENTIALS = new Set(CREDENTIAL_HEADERS);

/** Makes `rc[name]` an enumerable member computed by `make` on first read and kept. */
function onFirstRead<K extends keyof RequestContext>(rc: RequestContext, name: K, make: () => RequestContext[K]): void {
  let value: RequestContext[K] | undefined;
  Object.defineProperty(rc, name, { enumerable: true, get: () => (value ??= make()) });
}

/** Builds the request context. Pure apart from reading `now`. */
export function buildContext(input: ContextInput): RequestContext {
  const raw = input.headers;
  // A header's value as rules see it (repeated ones joined); credentials never.
  const header = (name: string): string | undefined => {
    const v = raw[name];
    return v === undefined || CREDENTIALS.has(name) ? undefined : Array.isArray(v) ? v.join(', ') : v;
  };
  const credential = clientCredential(raw);
  const body = input.body;
  const rc = {
    path: input.path,
    model: typeof body.model === 'string' ? body.model : '',
    stream: body.stream === true,
    body,
    messages: undefined, // accessors below, in this order (dry-run prints the context)
    headers: undefined,
    client: { id: input.clientId ?? (credential ? credentialFingerprint(credential) : 'anonymous'), tags: input.clientTags ?? {}, groups: input.groups ?? [] },
    session: { id: boundedId(header('x-claude-code-session-id') || sessionIdFromMetadata(body)) },
    user: undefined,
    project: header(input.projectHeader ?? 'x-project') || null,
    estimate: { input_tokens: Math.ceil(input.bodyBytes / CHARS_PER_TOKEN) },
    time: undefined,
  } as unknown as RequestContext;
  // Made on first read: most rule sets never look at the headers (credentials left out), the time or who sent it
  // (parsing metadata.user_id); the history (most of a Claude Code body) is the body's own, read through every time.
  onFirstRead(rc, 'headers', () => {
    const headers: Record<string, string> = {};
    for (const name in raw) {
      const value = header(name);
      if (value !== undefined) headers[name] = value;
    }
    return headers;
  });
  onFirstRead(rc, 'time', () => {
    const now = input.now ?? new Date();
    return { hour: now.getUTCHours(), weekday: now.getUTCDay(), iso: now.toISOString() };
  });
  Object.defineProperty(rc, 'messages', { enumerable: true, get: () => (Array.isArray(body.messages) ? body.messages : []) });
  onFirstRead(rc, 'user', () => ({ id: input.clientTags !== undefined && input.clientId ? input.clientId : (boundedId(accountFromMetadata(body)) ?? rc.client.id) }));
  return rc;
}
