/**
 * The upstream HTTP client: undici `request` on one pooled keep-alive `Agent` per provider (not `fetch`,
 * which is several times slower and decompresses bodies while keeping `content-encoding`). Response
 * bodies are Node streams of the upstream's bytes, untouched. Transport failures become
 * {@link UpstreamError}s whose message names the provider, the method and URL, and what went wrong.
 */
import type { Readable } from 'node:stream';
import { Agent, request, type Dispatcher } from 'undici';
import type { ProviderConfig } from '../config.js';
import { UpstreamError } from '../errors.js';

/** One upstream call. */
export interface UpstreamCall {
  method: 'GET' | 'POST';
  /** Path and query appended to the provider's `base_url`, e.g. `/v1/messages?beta=true`. */
  pathAndQuery: string;
  headers: Record<string, string | string[]>;
  body: Buffer | null;
  /** Aborts the call (client disconnect). */
  signal: AbortSignal;
  /** A streaming call: its response headers (the first byte) are awaited `timeouts.first_byte_ms`, not `headers_ms`. */
  stream?: boolean;
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
  return (function* () {
    const chunk = pending!;
    pending = null;
    yield chunk;
  })();
}

/** Pooled upstream connections, one keep-alive Agent per provider. */
export class UpstreamClient {
  private readonly agents = new Map<string, { connectMs: number; agent: Agent }>();

  /** The Agent of a provider; recreated when its connect timeout changed in a config reload. */
  agentFor(provider: ProviderConfig): Agent {
    const existing = this.agents.get(provider.name);
    if (existing && existing.connectMs === provider.timeouts.connect_ms) return existing.agent;
    if (existing) void existing.agent.close();
    const agent = new Agent({
      connect: { timeout: provider.timeouts.connect_ms },
      keepAliveTimeout: 30_000,
      keepAliveMaxTimeout: 600_000,
      // Anthropic SSE streams can be long; the body timeout is per-request below.
    });
    this.agents.set(provider.name, { connectMs: provider.timeouts.connect_ms, agent });
    return agent;
  }

  /**
   * Sends one call and resolves when the response headers arrive; the body is a stream to consume.
   * @throws UpstreamError (502/504) on transport failures; the signal's reason when aborted.
   */
  async send(provider: ProviderConfig, call: UpstreamCall): Promise<Dispatcher.ResponseData> {
    const url = upstreamUrl(provider, call.pathAndQuery);
    try {
      return await request(url, {
        dispatcher: this.agentFor(provider),
        method: call.method,
        headers: call.headers,
        // A streaming answer can last minutes: its request body is handed over as an iterable undici lets go of
        // once sent. A non-streaming answer ends moments later, so its body goes as the Buffer it is (undici
        // writes a Buffer with the headers in one call; an iterable costs a generator and separate writes).
        // undici accepts iterables for bodies (Dispatcher.DispatchOptions); request()'s types omit them.
        body: call.body && (call.stream ? (releasingBody(call.body) as unknown as Readable) : call.body),
        signal: call.signal,
        headersTimeout: call.stream ? provider.timeouts.first_byte_ms : provider.timeouts.headers_ms,
        bodyTimeout: provider.timeouts.body_ms,
      });
    } catch (err) {
      if (call.signal.aborted) throw err;
      throw describeTransportError(err, provider, call.method, url, call.stream);
    }
  }

  async close(): Promise<void> {
    await Promise.all([...this.agents.values()].map((a) => a.agent.close()));
    this.agents.clear();
  }
}
