import type { AnthropicErrorType } from '../errors.js';
/**
 * SSE event boundaries. The relay forwards a stream up to its last complete event and holds back the
 * unfinished tail, so a stream that is cut (an upstream that closes mid-event, a shutdown) never hands the
 * client half an event, and an `event: error` can be appended cleanly. Upstreams send whole events per
 * chunk, so in practice nothing is held: the tail is empty after every chunk.
 * An event ends with a blank line: `\n\n`, `\r\n\r\n` or `\r\r` (WHATWG HTML, "Parsing an event stream").
 */

const LF = 0x0a;
const CR = 0x0d;

/** The index just past the last event boundary in `buf`, or 0 when it has none. */
export function lastBoundary(buf: Buffer): number {
  // Stryker disable next-line ArithmeticOperator,EqualityOperator: equivalent — a byte past the end, or before the start, is no line end.
  for (let i = buf.length - 1; i > 0; i--) {
    const c = buf[i];
    // Stryker disable next-line ConditionalExpression: equivalent — the checks below match line ends only; this skips other bytes sooner.
    if (c !== LF && c !== CR) continue;
    const p = buf[i - 1];
    if (c === LF && p === LF) return i + 1; // \n\n
    if (c === CR && p === CR) return i + 1; // \r\r
    if (c === LF && p === CR && i >= 3 && buf[i - 2] === LF && buf[i - 3] === CR) return i + 1; // \r\n\r\n
  }
  return 0;
}

/** Splits a byte stream into whole events: `push` returns what may be forwarded now. */
export class SseFramer {
  private held: Buffer | null = null;

  /** The bytes of complete events so far (possibly empty); the unfinished tail is kept. */
  push(chunk: Buffer): Buffer {
    const buf = this.held ? Buffer.concat([this.held, chunk]) : chunk;
    const end = lastBoundary(buf);
    // Stryker disable next-line ConditionalExpression: equivalent — an empty tail held is no tail; the whole buffer is its own subarray.
    this.held = end === buf.length ? null : buf.subarray(end);
    // Stryker disable next-line ConditionalExpression: equivalent — see above.
    return end === buf.length ? buf : buf.subarray(0, end);
  }

  /** Bytes of an event that never finished (0 when the stream ended on a boundary). */
  get pending(): number {
    return this.held?.length ?? 0;
  }
}

/**
 * An Anthropic SSE `error` event (https://platform.claude.com/docs/en/build-with-claude/streaming, "Error
 * events"): `event: error` with `{"type":"error","error":{"type":...,"message":...}}`.
 */
export function sseErrorEvent(type: AnthropicErrorType, message: string, requestId?: string): string {
  const data: Record<string, unknown> = { type: 'error', error: { type, message } };
  // Stryker disable next-line ConditionalExpression: equivalent — JSON.stringify leaves out an undefined request_id.
  if (requestId) data.request_id = requestId;
  return `event: error\ndata: ${JSON.stringify(data)}\n\n`;
}
