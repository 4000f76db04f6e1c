/**
 * Reads the output-token count from an upstream answer as it passes, without holding anything back:
 * from SSE (`message_start` and the cumulative `message_delta` usage; parsed with eventsource-parser) or
 * from a JSON body's `usage` (gzip / br / deflate decoded for the tap only; the client gets the original
 * bytes). Shapes: https://platform.claude.com/docs/en/build-with-claude/streaming.
 */
import { createParser, type EventSourceParser } from 'eventsource-parser';
import { brotliDecompressSync, gunzipSync, inflateSync } from 'node:zlib';

/** Largest JSON body the tap keeps a copy of, bytes; longer answers report 0 output tokens. */
export const MAX_TAPPED_JSON_BYTES = 4 * 1024 * 1024;

/** Watches one answer's bytes; `outputTokens()` is the latest count seen. */
export class UsageTap {
  private output = 0;
  private readonly sse: EventSourceParser | null;
  private readonly decoder = new TextDecoder();
  private json: Buffer[] | null = null;
  private jsonBytes = 0;

  /** @param contentType and `contentEncoding` are the upstream response's headers. */
  constructor(contentType: string, private readonly contentEncoding: string) {
    const isSse = contentType.startsWith('text/event-stream');
    this.sse = isSse && !contentEncoding
      ? createParser({
          onEvent: (e) => {
            if (e.event !== 'message_delta' && e.event !== 'message_start') return;
            try {
              const data = JSON.parse(e.data) as { usage?: { output_tokens?: unknown }; message?: { usage?: { output_tokens?: unknown } } };
              const n = data.usage?.output_tokens ?? data.message?.usage?.output_tokens;
              if (typeof n === 'number') this.output = n;
            } catch {
              // not JSON: not a usage event
            }
          },
        })
      : null;
    if (!isSse && contentType.includes('json')) this.json = [];
  }

  /** Feed one chunk of the body (as it is forwarded). */
  write(chunk: Buffer): void {
    if (this.sse) this.sse.feed(this.decoder.decode(chunk, { stream: true }));
    else if (this.json) {
      this.jsonBytes += chunk.length;
      if (this.jsonBytes > MAX_TAPPED_JSON_BYTES) this.json = null;
      else this.json.push(chunk);
    }
  }

  /** Output tokens reported so far (for JSON: once the body is complete). */
  outputTokens(): number {
    if (this.json) {
      try {
        let raw = Buffer.concat(this.json);
        const enc = this.contentEncoding.toLowerCase();
        if (enc === 'gzip') raw = gunzipSync(raw);
        else if (enc === 'br') raw = brotliDecompressSync(raw);
        else if (enc === 'deflate') raw = inflateSync(raw);
        const n = (JSON.parse(raw.toString('utf8')) as { usage?: { output_tokens?: unknown } }).usage?.output_tokens;
        if (typeof n === 'number') this.output = n;
      } catch {
        // incomplete or not JSON: keep what was seen
      }
      this.json = null;
    }
    return this.output;
  }
}
