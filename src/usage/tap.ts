/**
 * Reads token usage from an upstream answer as it passes, without holding anything back: from SSE
 * (`message_start` carries input and cache counts; `message_delta` carries cumulative counts, output at
 * least; an `error` event marks a failed stream; parsed with eventsource-parser) or from a JSON body's
 * `usage` (gzip / br / deflate decoded for the tap only; the client gets the original bytes).
 * Shapes: https://platform.claude.com/docs/en/build-with-claude/streaming and
 * https://platform.claude.com/docs/en/api/messages (the `usage` object, including `cache_creation`
 * split into `ephemeral_5m_input_tokens` / `ephemeral_1h_input_tokens`).
 */
import { createParser, type EventSourceParser } from 'eventsource-parser';
import { brotliDecompressSync, gunzipSync, inflateSync } from 'node:zlib';

/** Largest JSON body the tap keeps a copy of, bytes; longer answers report no usage. */
export const MAX_TAPPED_JSON_BYTES = 4 * 1024 * 1024;

/** Token counts of one answer. Cache-write tokens are split by TTL when the upstream reports the split. */
export interface Usage {
  input_tokens: number;
  output_tokens: number;
  cache_creation_input_tokens: number;
  cache_creation_5m_input_tokens: number;
  cache_creation_1h_input_tokens: number;
  cache_read_input_tokens: number;
}

/** An all-zero usage. */
export const noUsage = (): Usage => ({
  input_tokens: 0,
  output_tokens: 0,
  cache_creation_input_tokens: 0,
  cache_creation_5m_input_tokens: 0,
  cache_creation_1h_input_tokens: 0,
  cache_read_input_tokens: 0,
});

interface RawUsage {
  input_tokens?: unknown;
  output_tokens?: unknown;
  cache_creation_input_tokens?: unknown;
  cache_read_input_tokens?: unknown;
  cache_creation?: { ephemeral_5m_input_tokens?: unknown; ephemeral_1h_input_tokens?: unknown };
}

const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

/**
 * Merges reported counts into `u` (later reports are cumulative, so they replace). Without a TTL split,
 * cache writes count as 5m writes, the default TTL.
 */
export function mergeUsage(u: Usage, raw: RawUsage | undefined | null): void {
  if (!raw || typeof raw !== 'object') return;
  u.input_tokens = num(raw.input_tokens) ?? u.input_tokens;
  u.output_tokens = num(raw.output_tokens) ?? u.output_tokens;
  u.cache_read_input_tokens = num(raw.cache_read_input_tokens) ?? u.cache_read_input_tokens;
  const creation = num(raw.cache_creation_input_tokens);
  const m5 = num(raw.cache_creation?.ephemeral_5m_input_tokens);
  const h1 = num(raw.cache_creation?.ephemeral_1h_input_tokens);
  if (creation !== undefined) u.cache_creation_input_tokens = creation;
  if (m5 !== undefined || h1 !== undefined) {
    u.cache_creation_5m_input_tokens = m5 ?? 0;
    u.cache_creation_1h_input_tokens = h1 ?? 0;
  } else if (creation !== undefined) {
    u.cache_creation_5m_input_tokens = creation;
    u.cache_creation_1h_input_tokens = 0;
  }
}

/** Watches one answer's bytes. */
export class UsageTap {
  readonly usage: Usage = noUsage();
  /** Set when the stream carried an SSE `error` event (its `error.type`). */
  streamError: string | null = null;
  /** True once `message_stop` (SSE) was seen. */
  completed = false;
  private readonly sse: EventSourceParser | null;
  /** SSE only: chunks may split a character. */
  private readonly decoder: TextDecoder | null;
  private json: Buffer[] | null = null;
  private jsonBytes = 0;

  /** @param contentType and `contentEncoding` are the upstream response's headers. */
  constructor(
    contentType: string,
    private readonly contentEncoding: string,
  ) {
    const isSse = contentType.startsWith('text/event-stream');
    this.sse =
      isSse && !contentEncoding
        ? createParser({
            onEvent: (e) => {
              if (e.event === 'message_stop') {
                this.completed = true;
                return;
              }
              if (e.event !== 'message_delta' && e.event !== 'message_start' && e.event !== 'error') return;
              try {
                const data = JSON.parse(e.data) as { usage?: RawUsage; message?: { usage?: RawUsage }; error?: { type?: unknown } };
                if (e.event === 'error') this.streamError = typeof data.error?.type === 'string' ? data.error.type : 'error';
                else mergeUsage(this.usage, e.event === 'message_start' ? data.message?.usage : data.usage);
              } catch {
                // not JSON: nothing to count
              }
            },
          })
        : null;
    this.decoder = this.sse ? new TextDecoder() : null;
    if (!isSse && contentType.includes('json')) this.json = [];
  }

  /** Feed one chunk of the body (as it is forwarded). */
  write(chunk: Buffer): void {
    if (this.sse) this.sse.feed(this.decoder!.decode(chunk, { stream: true }));
    else if (this.json) {
      this.jsonBytes += chunk.length;
      if (this.jsonBytes > MAX_TAPPED_JSON_BYTES) this.json = null;
      else this.json.push(chunk);
    }
  }

  /** Call once the body ended (or was cut); parses a JSON body. Returns the usage seen. */
  finish(): Usage {
    if (this.json) {
      try {
        let raw = Buffer.concat(this.json);
        const enc = this.contentEncoding.toLowerCase();
        if (enc === 'gzip') raw = gunzipSync(raw);
        else if (enc === 'br') raw = brotliDecompressSync(raw);
        else if (enc === 'deflate') raw = inflateSync(raw);
        const parsed = JSON.parse(raw.toString('utf8')) as { usage?: RawUsage; type?: unknown; error?: { type?: unknown } };
        mergeUsage(this.usage, parsed.usage);
        if (parsed.type === 'error' && typeof parsed.error?.type === 'string') this.streamError = parsed.error.type;
        this.completed = true;
      } catch {
        // incomplete or not JSON: keep what was seen
      }
      this.json = null;
    }
    return this.usage;
  }

  /** Output tokens reported so far. */
  outputTokens(): number {
    return this.finish().output_tokens;
  }
}
