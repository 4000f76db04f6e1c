/**
 * Amazon Bedrock's streaming answer (`InvokeModelWithResponseStream`, content type
 * `application/vnd.amazon.eventstream`) as Anthropic SSE, unbuffered: each binary event-stream message is
 * framed by its length prefix, decoded (headers, CRC32 checksums) by AWS's own codec (`EventStreamCodec` from
 * `@smithy/core/event-streams`) as soon as its last byte is in, and becomes one SSE event.
 *
 * Wire format (https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_InvokeModelWithResponseStream.html,
 * https://docs.aws.amazon.com/AmazonS3/latest/API/RESTSelectObjectAppendix.html for the message framing):
 * - `:message-type: event`, `:event-type: chunk`: the payload is `{"bytes":"<base64>"}` and the bytes are one
 *   Anthropic streaming event's JSON (`{"type":"message_start",...}`) → `event: <type>\ndata: <json>\n\n`.
 * - `:message-type: exception` (`:exception-type: throttlingException`, `modelStreamErrorException`,
 *   `validationException`, `internalServerException`, `serviceUnavailableException`, `modelTimeoutException`)
 *   with `{"message": ...}` → an Anthropic `event: error` (its text to the operator's log only: it can carry
 *   account ids and ARNs), then the stream ends.
 * - `:message-type: error` (`:error-code`, `:error-message`): the same.
 */
import { Transform, type TransformCallback } from 'node:stream';
import type { EventStreamCodec } from '@smithy/core/event-streams';
import { lazyModule } from '../../../lazy.js';
import type { AnthropicErrorType } from '../../../errors.js';
import { sseErrorEvent } from '../../../stream/sse-frames.js';

const eventStreams = lazyModule<typeof import('@smithy/core/event-streams')>(
  '@smithy/core/event-streams',
  "Bedrock's event stream (a type: bedrock provider, or a client calling in Bedrock's format)",
);
let shared: EventStreamCodec | undefined;
/** UTF-8 bytes to text and back, for the codec's header values and our payloads (Buffer is a Uint8Array). */
const toUtf8 = (bytes: Uint8Array): string => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8');
const fromUtf8 = (text: string): Uint8Array => Buffer.from(text, 'utf8');
/** AWS's codec, loaded with the first Bedrock stream; `decode` and `encode` keep no state between messages, so one serves every stream. */
const codec = (): EventStreamCodec => (shared ??= new (eventStreams().EventStreamCodec)(toUtf8, fromUtf8));

/** An error Bedrock reported, by its AWS name: the Anthropic status and error type it becomes. */
export interface BedrockFault {
  status: number;
  type: AnthropicErrorType;
}

/**
 * Bedrock's exceptions and the Anthropic status and `error.type` each becomes. Statuses from the InvokeModel
 * API reference's Errors section (https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_InvokeModel.html):
 * AccessDenied 403, InternalServer 500, ModelError 424, ModelNotReady 429, ModelTimeout 408, ResourceNotFound 404,
 * ServiceQuotaExceeded 400, ServiceUnavailable 503, Throttling 429, Validation 400. Answered as Anthropic's
 * statuses (https://platform.claude.com/docs/en/api/errors): a model that is not ready or a service that is
 * unavailable is `overloaded_error` 529 (Claude Code retries it), a model error `api_error` 500.
 */
export const BEDROCK_FAULTS: Record<string, BedrockFault> = {
  AccessDeniedException: { status: 403, type: 'permission_error' },
  UnrecognizedClientException: { status: 401, type: 'authentication_error' },
  ExpiredTokenException: { status: 401, type: 'authentication_error' },
  InvalidSignatureException: { status: 401, type: 'authentication_error' },
  ValidationException: { status: 400, type: 'invalid_request_error' },
  ResourceNotFoundException: { status: 404, type: 'not_found_error' },
  ServiceQuotaExceededException: { status: 429, type: 'rate_limit_error' },
  ThrottlingException: { status: 429, type: 'rate_limit_error' },
  ModelNotReadyException: { status: 529, type: 'overloaded_error' },
  ServiceUnavailableException: { status: 529, type: 'overloaded_error' },
  ModelTimeoutException: { status: 504, type: 'api_error' },
  ModelErrorException: { status: 500, type: 'api_error' },
  ModelStreamErrorException: { status: 500, type: 'api_error' },
  InternalServerException: { status: 500, type: 'api_error' },
};

/** The AWS exception name from `x-amzn-errortype` (`ThrottlingException:http://…`) or an event's `throttlingException`. */
export function bedrockFaultName(raw: string): string {
  const name = raw.split(':')[0]!.trim();
  return name.charAt(0).toUpperCase() + name.slice(1);
}

/** Called for each Bedrock exception inside a stream: its AWS name and message (for the operator's log). */
export type StreamFaultListener = (name: string, message: string) => void;

/**
 * A Transform from Bedrock event-stream bytes to Anthropic SSE bytes. Ends the SSE stream after an exception
 * message; a stream that ends in the middle of a message gets an `error` event that says so.
 */
export class EventStreamToSSE extends Transform {
  /** Bytes of a message not yet complete (a message's first 4 bytes are its total length, big-endian). */
  private pending: Buffer = Buffer.alloc(0);
  private failed = false;

  constructor(
    private readonly provider: string,
    private readonly onFault: StreamFaultListener,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    if (this.failed) {
      done();
      return;
    }
    let buf = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    try {
      while (!this.failed && buf.length >= 4) {
        const length = buf.readUInt32BE(0);
        if (length < 16) throw new Error(`a message of ${length} bytes is shorter than its framing`);
        if (buf.length < length) break;
        const message = codec().decode(buf.subarray(0, length));
        buf = buf.subarray(length);
        this.relay(message.headers, message.body);
      }
      this.pending = buf.length ? Buffer.from(buf) : Buffer.alloc(0);
    } catch (err) {
      this.fail('EventStreamDecodeError', (err as Error).message);
    }
    done();
  }

  override _flush(done: TransformCallback): void {
    if (!this.failed && this.pending.length) this.fail('EventStreamDecodeError', `the stream ended in the middle of a message (${this.pending.length} bytes left over)`);
    done();
  }

  /** Emits an Anthropic `error` event for a Bedrock fault and stops relaying. */
  fail(name: string, message: string): void {
    if (this.failed) return;
    this.failed = true;
    this.onFault(name, message);
    const fault = BEDROCK_FAULTS[bedrockFaultName(name)] ?? { status: 500, type: 'api_error' as const };
    this.push(sseErrorEvent(fault.type, `provider "${this.provider}" (Amazon Bedrock) stream failed: ${bedrockFaultName(name)}; details are in the gateway's log`));
  }

  private relay(headers: Record<string, { type: string; value: unknown }>, body: Uint8Array): void {
    const kind = String(headers[':message-type']?.value ?? '');
    if (kind === 'event') {
      if (headers[':event-type']?.value !== 'chunk') return; // initial-response and other event types carry no answer
      const payload = JSON.parse(toUtf8(body)) as { bytes?: string };
      const data = Buffer.from(payload.bytes ?? '', 'base64').toString('utf8');
      const type = (JSON.parse(data) as { type?: unknown }).type;
      this.push(`event: ${typeof type === 'string' ? type : 'message'}\ndata: ${data}\n\n`);
      return;
    }
    const name = String(headers[':exception-type']?.value ?? headers[':error-code']?.value ?? 'InternalServerException');
    let message = String(headers[':error-message']?.value ?? '');
    try {
      const m = (JSON.parse(toUtf8(body)) as { message?: unknown; Message?: unknown }) ?? {};
      message = String(m.message ?? m.Message ?? message);
    } catch {
      message ||= toUtf8(body).slice(0, 500);
    }
    this.fail(name, message);
  }
}

/** The Bedrock exception a client is sent for an Anthropic `error` event's type. */
const EXCEPTION_FOR: Record<string, string> = {
  rate_limit_error: 'throttlingException',
  overloaded_error: 'serviceUnavailableException',
  invalid_request_error: 'validationException',
};

/**
 * Anthropic SSE as Bedrock event-stream messages, for clients that called the gateway in Bedrock's format:
 * `encode` takes whole SSE events (what the relay's framer gives) and returns their messages — each event's data
 * as a `chunk` (`{"bytes":"<base64>"}`), an `error` event as an exception message (`throttlingException` for
 * `rate_limit_error`, `serviceUnavailableException` for `overloaded_error`, `validationException` for
 * `invalid_request_error`, else `internalServerException`) carrying its message. Comment lines are dropped.
 */
export function sseToEventStream(sse: Buffer): Buffer {
  const out: Uint8Array[] = [];
  for (const block of sse.toString('utf8').split('\n\n')) {
    let event = '';
    let data = '';
    for (const line of block.split('\n')) {
      if (line.startsWith('event:')) event = line.slice(6).trim();
      else if (line.startsWith('data:')) data += (data ? '\n' : '') + line.slice(line.charAt(5) === ' ' ? 6 : 5);
    }
    if (!data) continue;
    if (event === 'error') {
      const e = (JSON.parse(data) as { error?: { type?: string; message?: string } }).error ?? {};
      out.push(
        codec().encode({
          headers: {
            ':message-type': { type: 'string', value: 'exception' },
            ':exception-type': { type: 'string', value: EXCEPTION_FOR[e.type ?? ''] ?? 'internalServerException' },
            ':content-type': { type: 'string', value: 'application/json' },
          },
          body: fromUtf8(JSON.stringify({ message: e.message ?? 'the stream failed' })),
        }),
      );
      continue;
    }
    out.push(
      codec().encode({
        headers: {
          ':message-type': { type: 'string', value: 'event' },
          ':event-type': { type: 'string', value: 'chunk' },
          ':content-type': { type: 'string', value: 'application/json' },
        },
        body: fromUtf8(JSON.stringify({ bytes: Buffer.from(data).toString('base64') })),
      }),
    );
  }
  return Buffer.concat(out);
}
