/**
 * The upstream HTTP client: undici's `dispatch` on one pooled keep-alive `Agent` per provider, with a handler of
 * our own ({@link AnswerHandler}) — not `fetch`, which is several times slower and decompresses bodies while
 * keeping `content-encoding`, nor `request`, whose per-call AsyncResource, abort-signal listener and body class
 * cost more than the little this needs. Response bodies are Node streams of the upstream's bytes, untouched.
 * Transport failures become {@link UpstreamError}s whose message names the provider, the method and URL, and
 * what went wrong.
 */
import { Readable } from 'node:stream';
import { Agent, type Dispatcher, util } from 'undici';
import type { ProviderConfig } from './providers/provider-config.js';
import { UpstreamError } from '../errors.js';
import { noteIterableBody } from '../body/pool.js';

/** One upstream call. */
export interface UpstreamCall {
  method: 'GET' | 'POST' | 'DELETE';
  /** Path and query appended to the provider's `base_url`, e.g. `/v1/messages?beta=true`. */
  pathAndQuery: string;
  headers: Record<string, string | string[]>;
  /** The body: bytes, or a stream passed on as it is read (a file upload); null for none. */
  body: Buffer | Readable | null;
  /** The client the call is made for: the call is aborted when it goes away (null: nobody waits, e.g. a probe). */
  client: ClientPresence | null;
  /** A streaming call: its response headers (the first byte) are awaited `timeouts.first_byte_ms`, not `headers_ms`. */
  stream?: boolean;
}

/** The client of a request as forwarding sees it: whether it went away, and a way to hear when it does. */
export interface ClientPresence {
  /** Why the client is gone (it closed its connection before the answer ended), or null while it waits. */
  readonly goneReason: Error | null;
  /** Calls `fn` once if the client goes away; returns the function that stops listening. */
  onGone(fn: (reason: Error) => void): () => void;
}

/** An upstream's answer: status, headers (lower-cased names; repeated ones as arrays) and the body's bytes as they come. */
export interface UpstreamResponse {
  statusCode: number;
  headers: Record<string, string | string[] | undefined>;
  body: Readable;
}

/** Largest upstream error body kept, bytes: forwarding replaces a larger one, {@link readText} cuts it. */
export const MAX_ERROR_BODY_BYTES = 64 * 1024;

/**
 * The text of a small answer body (an upstream's error), keeping at most `limitBytes` (default
 * {@link MAX_ERROR_BODY_BYTES}) and reading the rest away, so a misbehaving upstream cannot make the gateway hold a
 * huge body. `Infinity` for a whole answer that is to be translated.
 */
export async function readText(body: Readable, limitBytes = MAX_ERROR_BODY_BYTES): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of body as AsyncIterable<Buffer>) {
    size += c.length;
    if (size <= limitBytes) chunks.push(c);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * A small answer's body whole, at most `limitBytes`; null when it is larger — then the body is destroyed (the call
 * aborted) and nothing is kept, so a misbehaving upstream can neither make the gateway hold a huge body nor hold
 * its connection open.
 */
export async function readAtMost(body: Readable, limitBytes: number): Promise<Buffer | null> {
  const parts: Buffer[] = [];
  let size = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limitBytes) {
      body.destroy();
      return null;
    }
    parts.push(chunk);
  }
  return Buffer.concat(parts, size);
}

/** The full URL of a call; `base_url` may carry a path prefix (e.g. `https://host/anthropic`). */
export function upstreamUrl(provider: ProviderConfig, pathAndQuery: string): string {
  return provider.base_url + pathAndQuery;
}

/** Maps a transport error to an actionable gateway error. */
export function describeTransportError(err: unknown, provider: ProviderConfig, method: string, url: string, stream = false): UpstreamError {
  const e = err as { code?: string; message?: string; cause?: { code?: string; message?: string } };
  const code = e.code ?? e.cause?.code ?? '';
  const where = `provider "${provider.name}" (${method} ${url})`;
  const t = provider.timeouts;
  switch (code) {
    case 'ECONNREFUSED':
      return new UpstreamError('SY_UPSTREAM_CONNECT', 502, `${where}: connection refused; is the upstream running and is base_url right?`, err);
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return new UpstreamError('SY_UPSTREAM_DNS', 502, `${where}: DNS lookup failed for ${new URL(url).hostname} (${code})`, err);
    case 'UND_ERR_CONNECT_TIMEOUT':
      return new UpstreamError('SY_UPSTREAM_CONNECT_TIMEOUT', 504, `${where}: no connection within ${t.connect_ms} ms (timeouts.connect_ms)`, err);
    case 'UND_ERR_HEADERS_TIMEOUT':
      return stream
        ? new UpstreamError('SY_UPSTREAM_FIRST_BYTE_TIMEOUT', 504, `${where}: streaming request got no first byte within ${t.first_byte_ms} ms (timeouts.first_byte_ms)`, err)
        : new UpstreamError('SY_UPSTREAM_HEADERS_TIMEOUT', 504, `${where}: no response headers within ${t.headers_ms} ms (timeouts.headers_ms)`, err);
    case 'UND_ERR_BODY_TIMEOUT':
      return new UpstreamError('SY_UPSTREAM_BODY_TIMEOUT', 504, `${where}: response body stalled for ${t.body_ms} ms (timeouts.body_ms)`, err);
    case 'ECONNRESET':
    case 'UND_ERR_SOCKET':
    case 'EPIPE':
      return new UpstreamError('SY_UPSTREAM_RESET', 502, `${where}: connection closed by the upstream before it answered`, err);
    default:
      if (/CERT|TLS|SSL|SELF_SIGNED/i.test(code)) {
        return new UpstreamError('SY_UPSTREAM_TLS', 502, `${where}: TLS handshake failed (${code})`, err);
      }
      return new UpstreamError('SY_UPSTREAM_FAILED', 502, `${where}: ${e.message ?? code ?? 'request failed'}`, err);
  }
}

/**
 * The body as a one-chunk iterable that drops its reference once sent. undici keeps a request's `body`
 * until the response ends, so a Buffer body would keep every open stream's request (76 KB and up for
 * Claude Code) in memory for the whole stream. Measured in bench/ (memory section): ~20 KB per open
 * stream this way against ~40 KB with a Buffer body, for ~0.1–0.2 ms more per request — so only streaming
 * requests take this path.
 */
function releasingBody(buf: Buffer): Iterable<Buffer> {
  let pending: Buffer | null = buf;
  const body = (function* () {
    const chunk = pending!;
    pending = null;
    yield chunk;
  })();
  noteIterableBody(body, buf);
  return body;
}

/**
 * undici's dispatch handler for one call (its callback interface, which undici's own `request` implements too):
 * resolves with the status and headers, then feeds the body to a Readable with backpressure (a full stream
 * pauses the connection until read). Destroying the body before its end aborts the call, and so does the client
 * going away; nothing is allocated for either unless it happens.
 */
class AnswerHandler implements Dispatcher.DispatchHandler {
  private abortCall: ((err: Error) => void) | null = null;
  private body: Readable | null = null;
  private done = false;
  private aborted: Error | null = null;
  private readonly unwatch: (() => void) | null;

  constructor(
    private resolve: ((r: UpstreamResponse) => void) | null,
    private readonly reject: (err: Error) => void,
    client: ClientPresence | null,
  ) {
    this.unwatch = client ? client.onGone((reason) => this.abort(reason)) : null;
  }

  private abort(reason: Error): void {
    if (this.done || this.aborted) return;
    this.aborted = reason;
    if (this.body) this.body.destroy(reason);
    else this.abortCall?.(reason);
  }

  onConnect(abort: (err?: Error) => void): void {
    if (this.aborted) abort(this.aborted);
    else this.abortCall = abort;
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void): boolean {
    if (statusCode < 200) return true; // 1xx: informational, the answer follows
    const body = new Readable({
      read: () => resume(),
      destroy: (err, callback) => {
        // Not read to its end (the client left, an error body too large to keep, a shutdown): the call is aborted.
        if (!this.done) {
          this.done = true;
          this.unwatch?.();
          this.abortCall?.(err ?? new Error('the upstream answer was not read to its end'));
        }
        callback(err);
      },
    });
    this.body = body;
    const resolve = this.resolve!;
    this.resolve = null;
    resolve({ statusCode, headers: util.parseHeaders(rawHeaders) as UpstreamResponse['headers'], body });
    return true;
  }

  onData(chunk: Buffer): boolean {
    return this.body!.push(chunk);
  }

  onComplete(): void {
    this.done = true;
    this.unwatch?.();
    this.body!.push(null);
  }

  onError(err: Error): void {
    const first = !this.done;
    this.done = true;
    this.unwatch?.();
    if (this.body) {
      if (first) this.body.destroy(err);
    } else this.reject(err);
  }
}

/** A provider's `base_url` as undici's dispatch takes it: the origin, and the path prefix (empty for a bare host). */
function splitBaseUrl(baseUrl: string): { baseUrl: string; origin: string; prefix: string } {
  const u = new URL(baseUrl);
  return { baseUrl, origin: u.origin, prefix: u.pathname.replace(/\/$/, '') };
}

/** Pooled upstream connections, one keep-alive Agent per provider. */
export class UpstreamClient {
  private readonly agents = new Map<string, { connectMs: number; baseUrl: string; origin: string; prefix: string; agent: Agent }>();

  /** The Agent of a provider; recreated when its connect timeout changed in a config reload. */
  agentFor(provider: ProviderConfig): Agent {
    return this.entryFor(provider).agent;
  }

  /** The Agent of a provider with its `base_url` split into origin and path prefix (parsed once per base URL). */
  private entryFor(provider: ProviderConfig): { agent: Agent; origin: string; prefix: string } {
    const existing = this.agents.get(provider.name);
    if (existing && existing.connectMs === provider.timeouts.connect_ms) {
      if (existing.baseUrl !== provider.base_url) Object.assign(existing, splitBaseUrl(provider.base_url));
      return existing;
    }
    if (existing) void existing.agent.close();
    const agent = new Agent({
      connect: { timeout: provider.timeouts.connect_ms },
      keepAliveTimeout: 30_000,
      keepAliveMaxTimeout: 600_000,
      // Anthropic SSE streams can be long; the body timeout is per-request below.
    });
    const entry = { connectMs: provider.timeouts.connect_ms, ...splitBaseUrl(provider.base_url), agent };
    this.agents.set(provider.name, entry);
    return entry;
  }

  /**
   * Sends one call and resolves when the response headers arrive; the body is a stream to consume (destroying it
   * aborts the call). The call is aborted when `call.client` goes away.
   * @throws UpstreamError (502/504) on transport failures; the client's `goneReason` when it went away.
   */
  send(provider: ProviderConfig, call: UpstreamCall): Promise<UpstreamResponse> {
    const { agent, origin, prefix } = this.entryFor(provider);
    const { method, pathAndQuery, stream, client } = call;
    const options: Dispatcher.DispatchOptions = {
      origin,
      path: prefix + pathAndQuery,
      method,
      headers: call.headers,
      // A streaming answer can last minutes: its request body is handed over as an iterable undici lets go of once
      // sent. A non-streaming answer ends moments later, so its body goes as the Buffer it is (undici writes a Buffer
      // with the headers in one call; an iterable costs a generator and separate writes).
      body: call.body instanceof Readable ? call.body : call.body && (stream ? (releasingBody(call.body) as unknown as Readable) : call.body), // an iterable (types omit it)
      headersTimeout: stream ? provider.timeouts.first_byte_ms : provider.timeouts.headers_ms,
      bodyTimeout: provider.timeouts.body_ms,
    };
    // The handler lives as long as the answer streams: no closure here may reach `call` or `options` (the body).
    let resolve!: (r: UpstreamResponse) => void;
    let reject!: (err: Error) => void;
    const answered = new Promise<UpstreamResponse>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    const failed = (err: Error) => reject(client?.goneReason ?? describeTransportError(err, provider, method, upstreamUrl(provider, pathAndQuery), stream));
    agent.dispatch(options, new AnswerHandler(resolve, failed, client));
    return answered;
  }

  async close(): Promise<void> {
    await Promise.all([...this.agents.values()].map((a) => a.agent.close()));
    this.agents.clear();
  }
}

/**
 * The path and query to append to the provider's base URL: only ever a path, so that nothing in a request
 * (an absolute-form target such as `http://other-host/...`, a `//host` path) can choose the upstream host.
 */
export function upstreamPathAndQuery(target: string | undefined): string {
  const u = new URL(target ?? '/', 'http://switchyard.invalid');
  return u.pathname + u.search;
}

/** An upstream answer ready to relay. */
export interface UpstreamAnswer {
  statusCode: number;
  headers: UpstreamResponse['headers'];
  body: Readable;
}
