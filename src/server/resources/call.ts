/**
 * What every resource call does with its upstream (index.ts): which provider and key, the streamed request body,
 * the call, and the answer relayed back (a create call's read first, to remember the new id).
 */
import { Readable } from 'node:stream';
import type { ProviderConfig } from '../../config.js';
import { KeysCoolingError, NoUpstreamError, NotFoundError, NotSupportedError, RequestTooLargeError, ResourceUnreachableError } from '../../errors.js';
import type { ResourceKind, ResourceOwner } from '../../upstream/affinity.js';
import { MAX_ERROR_BODY_BYTES, readAtMost, type UpstreamResponse } from '../../upstream/client.js';
import { clientResponseHeaders, credentialFor, upstreamRequestHeaders } from '../../upstream/headers.js';
import type { PooledKey } from '../../upstream/pool.js';
import type { Exchange } from '../pipeline/exchange.js';
import { round } from '../pipeline/record.js';
import { drained } from '../pipeline/relay.js';

/** The part of an upload held at once (and counted against the in-flight caps), bytes. */
export const UPLOAD_WINDOW_BYTES = 1024 * 1024;

/** Largest create answer read to learn the new id, bytes (a batch, file or skill object is a few hundred). */
const MAX_CREATE_ANSWER_BYTES = 1024 * 1024;

/**
 * The provider resource calls go to when no id names one: the default provider, which must speak the Anthropic API
 * (`type: anthropic`); Bedrock, Vertex AI and OpenAI-compatible upstreams have no Message Batches, Files or Skills.
 * @throws NotSupportedError (501) naming the provider and its type otherwise.
 */
export function resourceProvider(x: Exchange, family: ResourceKind): ProviderConfig {
  const provider = x.config.providers[x.config.default_provider]!;
  if (provider.type !== 'anthropic') {
    const api = family === 'batch' ? 'Message Batches' : family === 'file' ? 'the Files API' : 'Skills';
    throw new NotSupportedError(`${api} go only to a type: anthropic provider; the default provider "${provider.name}" is type: ${provider.type}`);
  }
  return provider;
}

/**
 * The upstream key for a call: the pinned one (its fingerprint; only it reaches the resource), else the one an
 * `x-switchyard-key` header names (its index, or its fingerprint without the leading `…` — a header value is ASCII —
 * or the 6 hex digits after `#`), else the pool's choice for this client (sticky). Null when the provider has no
 * keys (the client's own credential goes, or none).
 * @throws ResourceUnreachableError when the pinned key is gone; KeysCoolingError when the key is cooling after a
 * 429; NoUpstreamError when every key was refused.
 */
export async function chooseKey(x: Exchange, provider: ProviderConfig, pin: { key: string; what: string } | null): Promise<PooledKey | null> {
  const pool = x.deps.upstreams.pools.for(provider);
  if (!pool.keys.length) return null;
  const now = Date.now();
  const named = headerValue(x.req.headers['x-switchyard-key']);
  const wanted = pin?.key ?? named;
  if (wanted) {
    // A fingerprint (`…abcd#1a2b3c`) can only go in a header without its ellipsis: `abcd#1a2b3c`, or `1a2b3c` alone.
    const key = pin
      ? pool.keys.find((k) => k.fingerprint === wanted)
      : pool.keys.find((k) => String(k.index) === wanted || k.fingerprint.slice(1) === wanted || k.fingerprint.slice(k.fingerprint.indexOf('#') + 1) === wanted);
    if (!key) {
      if (pin) throw new ResourceUnreachableError(`${pin.what} was created with the key ${pin.key} of provider "${provider.name}", which is no longer in its keys; only that key can reach it`);
      throw new NotFoundError(
        x.log.method,
        `${x.log.path} (x-switchyard-key "${wanted}" names no key of provider "${provider.name}": give a fingerprint from /admin/providers without its leading "…" (abcd#1a2b3c, or the 6 hex digits after #) or an index from 0 to ${pool.keys.length - 1})`,
      );
    }
    const [until] = await x.deps.state.cooldowns([pool.cooldownId(key)]);
    if (until! > now)
      throw new KeysCoolingError(
        `the key ${key.fingerprint} of provider "${provider.name}" is cooling down after a rate limit; retry after ${Math.ceil((until! - now) / 1000)} s`,
        Math.max(1, Math.ceil((until! - now) / 1000)),
      );
    return key;
  }
  const cooling = await x.deps.state.cooldowns(pool.keys.map((k) => pool.cooldownId(k)));
  const choice = pool.choose(`client:${x.clientId}`, cooling, now, new Set());
  if (choice.kind === 'key') return choice.key;
  if (choice.kind === 'cooling') {
    const s = Math.max(1, Math.ceil((choice.until - now) / 1000));
    throw new KeysCoolingError(`every upstream key of "${provider.name}" is cooling down after rate limits; retry after ${s} s`, s);
  }
  throw new NoUpstreamError('SY_NO_KEYS', `provider "${provider.name}": every upstream key was refused (401/403); check the keys in the config`);
}

/** The one value of a header, or null. */
function headerValue(v: string | string[] | undefined): string | null {
  const s = Array.isArray(v) ? v[0] : v;
  return s ? s.trim() : null;
}

/**
 * The request body as a stream for the upstream call, counted against `limit` (413 before a byte goes when the
 * declared size is over it; a chunked body over it is cut and answered 413) and holding at most
 * {@link UPLOAD_WINDOW_BYTES} of the in-flight caps; null for a call without a body.
 * @throws RequestTooLargeError when the declared size is over `limit`.
 */
export function streamedBody(x: Exchange, limit: number): Readable | null {
  const declared = Number(x.req.headers['content-length']);
  const chunked = x.req.headers['transfer-encoding'] !== undefined;
  if (!chunked && !(declared > 0)) return null;
  const limitName = limit === x.config.limits.max_body_bytes ? 'limits.max_body_bytes in the gateway config' : 'limits.max_file_bytes in the gateway config';
  if (declared > limit) throw new RequestTooLargeError(limit, limitName);
  const { limits } = x.config;
  const reservation = x.deps.inflightBytes.reservation(x.clientId, { total: limits.max_inflight_body_bytes, perClient: limits.max_inflight_body_bytes_per_client });
  reservation.growTo(Math.min(declared > 0 ? declared : UPLOAD_WINDOW_BYTES, UPLOAD_WINDOW_BYTES));
  x.holdReservation(reservation.release);
  const req = x.req;
  const state = { bytes: 0 };
  bodyLimits.set(x, { limit, limitName, state });
  return Readable.from(
    (async function* () {
      for await (const chunk of req as AsyncIterable<Buffer>) {
        state.bytes += chunk.length;
        if (state.bytes > limit) throw new RequestTooLargeError(limit, limitName);
        x.touch();
        yield chunk;
      }
    })(),
    { objectMode: false },
  );
}

/** The limit each streamed body is counted against, to tell an upload cut for its size from a transport failure. */
const bodyLimits = new WeakMap<Exchange, { limit: number; limitName: string; state: { bytes: number } }>();

/**
 * Sends one call to `provider` with `key` (null: the client's credential, or none with `clients:` configured).
 * `x-switchyard-key` is the gateway's and never goes upstream. The key's in-flight count is held until the request ends.
 * @throws UpstreamError naming the provider on a transport failure; RequestTooLargeError when a streamed body went over its limit.
 */
export async function send(x: Exchange, provider: ProviderConfig, key: PooledKey | null, body: Buffer | Readable | null): Promise<UpstreamResponse> {
  const credential = credentialFor(key?.key, x.config.clients !== null || x.config.login !== null);
  const length = body === null ? null : Buffer.isBuffer(body) ? body.length : Number(x.req.headers['content-length']) || null;
  // Message Batch answers are read on the way (results_url rewritten, results recorded): asked for uncompressed.
  const set: Record<string, string> = x.log.path.startsWith('/v1/messages/batches') ? { 'accept-encoding': 'identity' } : {};
  const headers = upstreamRequestHeaders(x.req.headers, credential, { set, remove: ['x-switchyard-key'] }, length);
  if (body === null) delete headers['content-type'];
  x.log.upstream = provider.name;
  x.log.upstream_key = key?.fingerprint;
  if (key) {
    key.inFlight++;
    x.own(() => key.inFlight--);
  }
  x.attempts.attempts++;
  try {
    return await x.deps.upstreams.client.send(provider, { method: x.log.method as 'GET' | 'POST' | 'DELETE', pathAndQuery: x.pathAndQuery, headers, body, client: x, stream: false });
  } catch (err) {
    const counted = bodyLimits.get(x);
    if (counted && counted.state.bytes > counted.limit) throw new RequestTooLargeError(counted.limit, counted.limitName);
    throw err;
  }
}

/** Who made a resource, as the exchange knows them. */
export function ownerOf(x: Exchange, id: string, kind: ResourceKind, provider: ProviderConfig, key: PooledKey | null): ResourceOwner {
  return {
    id,
    kind,
    provider: provider.name,
    key: key?.fingerprint ?? null,
    client_id: x.log.client ?? x.log.client_fp ?? null,
    user_id: x.client?.id ?? x.user?.sub ?? null,
    project: null,
    session_id: x.log.session_id ?? null,
    tags: {},
    rules_version: null,
    charges: [],
    created_at: new Date().toISOString(),
    settled_at: null,
  };
}

/**
 * Relays a create call's answer after learning the new id from it: a 2xx JSON object with an `id` is remembered as
 * made by this client with this key (`extra` adds a batch's attribution). An answer that cannot be read is relayed
 * unchanged (then the id is not remembered, and later calls find it by probing).
 */
export async function relayCreated(
  x: Exchange,
  answer: UpstreamResponse,
  kind: ResourceKind,
  provider: ProviderConfig,
  key: PooledKey | null,
  extra: Partial<ResourceOwner> = {},
  onCreated?: (id: string) => void,
): Promise<void> {
  await relayJson(x, answer, provider, async (json) => {
    const id = (json as { id?: unknown } | null)?.id;
    if (typeof id === 'string' && id) {
      await x.deps.affinity.remember({ ...ownerOf(x, id, kind, provider, key), ...extra });
      onCreated?.(id);
    } else x.deps.log.warn({ request_id: x.id, provider: provider.name }, `the ${kind} create answer has no id; later calls about it will look for it key by key`);
  });
}

/**
 * Relays a small 2xx JSON answer after `see` read it, with every Message Batch's `results_url` pointed at this
 * gateway: the SDKs fetch results from that URL as it is (`messages.batches.results`), and the upstream's own would
 * send the client around the gateway with a key the upstream does not know. Any other answer is relayed unchanged.
 */
export async function relayJson(x: Exchange, answer: UpstreamResponse, provider: ProviderConfig, see?: (json: unknown) => Promise<void>): Promise<void> {
  if (answer.statusCode >= 300 || String(answer.headers['content-encoding'] ?? '') !== '') {
    await relay(x, answer);
    return;
  }
  const raw = await readAtMost(answer.body, MAX_CREATE_ANSWER_BYTES);
  if (raw === null) throw new NoUpstreamError('SY_NO_UPSTREAM', `provider "${provider.name}" answered ${x.log.method} ${x.log.path} with more than ${MAX_CREATE_ANSWER_BYTES} bytes of JSON`);
  let json: unknown;
  try {
    json = JSON.parse(raw.toString('utf8'));
  } catch {
    json = null;
  }
  await see?.(json);
  const out = json !== null && pointResultsHere(json, provider, gatewayOrigin(x)) ? Buffer.from(JSON.stringify(json)) : raw;
  const headers: UpstreamResponse['headers'] = { ...answer.headers, 'content-length': String(out.length) };
  delete headers['transfer-encoding'];
  await relay(x, { statusCode: answer.statusCode, headers, body: Readable.from([out]) });
}

/**
 * The origin the client reached the gateway at: `x-forwarded-proto` (a TLS-terminating proxy in front), else the
 * listener's scheme, and the `host` header. Used only in URLs given back to that same client.
 */
export function gatewayOrigin(x: Exchange): string {
  const proto = headerValue(x.req.headers['x-forwarded-proto'])?.split(',')[0]?.trim() || (x.config.listen.tls ? 'https' : 'http');
  return `${proto}://${headerValue(x.req.headers.host) ?? `${x.config.listen.host}:${x.config.listen.port}`}`;
}

/**
 * Points the `results_url` of a Message Batch (or of each batch in a list page) at `origin`, keeping the path below
 * the provider's base URL. True when something changed.
 */
export function pointResultsHere(json: unknown, provider: ProviderConfig, origin: string): boolean {
  const batches = Array.isArray((json as { data?: unknown }).data) ? (json as { data: unknown[] }).data : [json];
  let changed = false;
  const base = new URL(provider.base_url);
  const prefix = base.pathname.replace(/\/$/, '');
  for (const b of batches) {
    const batch = b as { type?: unknown; results_url?: unknown } | null;
    if (batch?.type !== 'message_batch' || typeof batch.results_url !== 'string') continue;
    let u: URL;
    try {
      u = new URL(batch.results_url);
    } catch {
      continue;
    }
    const path = prefix && u.pathname.startsWith(prefix) ? u.pathname.slice(prefix.length) : u.pathname;
    batch.results_url = `${origin}${path}${u.search}`;
    changed = true;
  }
  return changed;
}

/**
 * Relays an upstream answer: status, headers (less hop-by-hop ones; the gateway's request id added), then the body
 * with backpressure, each chunk shown to `observe` first. True when the whole body went to the client.
 */
export async function relay(x: Exchange, answer: UpstreamResponse, observe?: (chunk: Buffer) => void): Promise<boolean> {
  const { res } = x;
  const { headers } = clientResponseHeaders(answer.headers);
  headers['x-switchyard-request-id'] = x.id;
  if (!headers['request-id']) headers['request-id'] = x.id;
  if (answer.statusCode >= 400) x.errorType = await errorTypeOf(answer, headers);
  res.writeHead(answer.statusCode, headers);
  x.log.status = answer.statusCode;
  try {
    for await (const chunk of answer.body as AsyncIterable<Buffer>) {
      x.log.ttfb_ms ??= round(performance.now() - x.started);
      x.touch();
      observe?.(chunk);
      if (!res.write(chunk)) await drained(res);
      if (res.destroyed) break;
    }
  } catch (err) {
    if (!res.destroyed) res.destroy();
    x.log.outcome = x.clientGone ? 'client_aborted' : 'upstream_failed';
    x.log.error = x.clientGone ? 'client disconnected' : `the upstream answer failed: ${(err as Error).message}`;
    return false;
  }
  if (res.destroyed) {
    x.log.outcome = 'client_aborted';
    x.log.error = 'client disconnected';
    answer.body.destroy();
    return false;
  }
  res.end();
  x.log.outcome = 'ok';
  return true;
}

/**
 * The error type of an upstream error answer, read from its (small, JSON) body, which is then put back as the
 * answer's body; `api_error` when it cannot be read.
 */
async function errorTypeOf(answer: UpstreamResponse, headers: Record<string, string | string[]>): Promise<string> {
  const raw = (await readAtMost(answer.body, MAX_ERROR_BODY_BYTES)) ?? Buffer.from('{"type":"error","error":{"type":"api_error","message":"the upstream error body was too large to pass on"}}');
  answer.body = Readable.from([raw]);
  headers['content-length'] = String(raw.length);
  delete headers['transfer-encoding'];
  if (headers['content-encoding']) return 'api_error';
  try {
    const type = (JSON.parse(raw.toString('utf8')) as { error?: { type?: unknown } }).error?.type;
    return typeof type === 'string' ? type : 'api_error';
  } catch {
    return 'api_error';
  }
}
