/**
 * OpenAI Chat Completions SSE → Anthropic Messages SSE, event by event as chunks arrive: `message_start`
 * (always with a complete numeric usage), a `text` block for content deltas and one `tool_use` block per tool
 * call (id and name from its first chunk), `content_block_stop` when the next block starts, then `message_delta` (stop_reason from finish_reason, usage from the final
 * usage chunk) and `message_stop`. A failure mid-stream becomes an SSE `error` event. While the upstream is
 * silent (slow prefill on a local model) a `ping` goes out every `pingMs`, since Claude Code gives up after
 * 300 s of silence.
 *
 * Tool calls: the first call of a message streams live (`input_json_delta` for each argument fragment).
 * Later calls are held whole and sent, each as one block with one `input_json_delta`, just before
 * `message_delta`: an Anthropic stream has one open block at a time, while vendors may interleave the
 * fragments of parallel calls (`index` 0, 1, 0, 1, …), and a fragment for a block already stopped would be
 * lost to a client that finalizes a tool's input at `content_block_stop`.
 */
import { createParser } from 'eventsource-parser';
import { Transform, type TransformCallback } from 'node:stream';
import { anthropicUsage, answerStopReason, toolIdOf } from './response.js';

const event = (name: string, data: unknown) => `event: ${name}\ndata: ${JSON.stringify(data)}\n\n`;

/** Silence before a ping, ms. */
export const PING_AFTER_MS = 15_000;

/** The translating stream: OpenAI SSE bytes in, Anthropic SSE text out. */
/**
 * The answer text of a delta's `content`: a string, or (Mistral's reasoning models) an array of parts whose
 * `text` parts are the answer and whose `thinking` parts are reasoning, which is not answer text.
 */
function contentText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  return content.map((p: Record<string, unknown>) => (p?.type === 'text' && typeof p.text === 'string' ? p.text : '')).join('');
}

/** A delta's reasoning text: `reasoning_content` (DeepSeek, xAI, Qwen) or `reasoning` (Cerebras, OpenRouter, vLLM). */
export function reasoningText(delta: Record<string, any>): string {
  const r = delta.reasoning_content ?? delta.reasoning;
  return typeof r === 'string' ? r : '';
}

/** A `tool_calls` entry that only carries more arguments: no index, no non-blank id, no name. */
function isContinuation(tc: Record<string, any>): boolean {
  return typeof tc.index !== 'number' && !(typeof tc.id === 'string' && tc.id.trim() !== '') && !tc.function?.name;
}

export class ChatToMessagesStream extends Transform {
  private readonly parser = createParser({ onEvent: (e) => this.onData(e.data) });
  private readonly decoder = new TextDecoder();
  private started = false;
  private ended = false;
  private nextIndex = 0;
  private open: { index: number; kind: 'text' | 'tool' | 'thinking' } | null = null;
  /** The call streaming live (key as `toolKey` gives it) and its block index. */
  private live: { key: string; index: number } | null = null;
  /** Later calls, held whole until the message ends, in the order they started. */
  private readonly held = new Map<string, { id: string; name: string; args: string }>();
  private lastToolKey: string | null = null;
  /** Keys of the calls in the order they started. */
  private readonly callOrder: string[] = [];
  private anonymousCalls = 0;
  private finish: unknown = null;
  private usage: Record<string, number> = anthropicUsage(null);
  private lastWrite = Date.now();
  private readonly pinger: NodeJS.Timeout;

  /**
   * @param model the model name the client asked for.
   * @param pingMs silence before a `ping`, ms.
   * @param opts.reasoningAsThinking vendor reasoning deltas (`reasoning_content`, `reasoning`) become `thinking`
   *   blocks (unsigned, so they are for display only; the request translation never sends them back upstream).
   */
  constructor(
    private readonly model: string,
    pingMs = PING_AFTER_MS,
    private readonly opts: { reasoningAsThinking?: boolean } = {},
  ) {
    super();
    this.pinger = setInterval(
      () => {
        if (Date.now() - this.lastWrite >= pingMs && !this.ended) this.emitEvent('ping', { type: 'ping' });
      },
      Math.max(10, Math.floor(pingMs / 3)),
    );
    this.pinger.unref();
  }

  private emitEvent(name: string, data: unknown): void {
    this.lastWrite = Date.now();
    this.push(event(name, data));
  }

  private start(id: string): void {
    if (this.started) return;
    this.started = true;
    this.emitEvent('message_start', {
      type: 'message_start',
      message: { id: `msg_${id.replace(/^chatcmpl-/, '')}`, type: 'message', role: 'assistant', model: this.model, content: [], stop_reason: null, stop_sequence: null, usage: anthropicUsage(null) },
    });
  }

  private closeOpen(): void {
    if (!this.open) return;
    this.emitEvent('content_block_stop', { type: 'content_block_stop', index: this.open.index });
    this.open = null;
  }

  private onData(data: string): void {
    if (this.ended) return; // after an error event or the message's end, nothing more goes out
    if (data === '[DONE]') {
      this.finishMessage();
      return;
    }
    let chunk: Record<string, any>;
    try {
      chunk = JSON.parse(data) as Record<string, any>;
    } catch {
      return;
    }
    if (chunk.error) {
      this.start('error');
      this.emitEvent('error', { type: 'error', error: { type: 'api_error', message: String(chunk.error.message ?? chunk.error) } });
      this.ended = true;
      return;
    }
    this.start(String(chunk.id ?? 'openai'));
    if (chunk.usage) this.usage = anthropicUsage(chunk.usage);
    for (const choice of chunk.choices ?? []) {
      const delta = choice.delta ?? {};
      const reasoning = this.opts.reasoningAsThinking ? reasoningText(delta) : '';
      if (reasoning) {
        if (this.open?.kind !== 'thinking') {
          this.closeOpen();
          this.open = { index: this.nextIndex++, kind: 'thinking' };
          this.emitEvent('content_block_start', { type: 'content_block_start', index: this.open.index, content_block: { type: 'thinking', thinking: '', signature: '' } });
        }
        this.emitEvent('content_block_delta', { type: 'content_block_delta', index: this.open.index, delta: { type: 'thinking_delta', thinking: reasoning } });
      }
      const content = contentText(delta.content);
      if (content) {
        if (this.open?.kind !== 'text') {
          this.closeOpen();
          this.open = { index: this.nextIndex++, kind: 'text' };
          this.emitEvent('content_block_start', { type: 'content_block_start', index: this.open.index, content_block: { type: 'text', text: '' } });
        }
        this.emitEvent('content_block_delta', { type: 'content_block_delta', index: this.open.index, delta: { type: 'text_delta', text: content } });
      }
      const entries = (delta.tool_calls ?? []) as Array<Record<string, any>>;
      const continuations = entries.filter(isContinuation);
      let nth = 0;
      for (const tc of entries) {
        const key = isContinuation(tc) ? this.continued(nth++, continuations.length) : this.toolKey(tc);
        if (!this.callOrder.includes(key)) this.callOrder.push(key);
        this.lastToolKey = key;
        const args = typeof tc.function?.arguments === 'string' ? tc.function.arguments : '';
        if (this.live === null) {
          this.closeOpen();
          this.live = { key, index: this.nextIndex++ };
          this.open = { index: this.live.index, kind: 'tool' };
          this.emitEvent('content_block_start', {
            type: 'content_block_start',
            index: this.live.index,
            content_block: { type: 'tool_use', id: toolIdOf(tc.id), name: tc.function?.name ?? '', input: {} },
          });
        }
        if (key === this.live.key) {
          if (args) this.emitEvent('content_block_delta', { type: 'content_block_delta', index: this.live.index, delta: { type: 'input_json_delta', partial_json: args } });
          continue;
        }
        let call = this.held.get(key);
        if (!call) {
          call = { id: toolIdOf(tc.id), name: '', args: '' };
          this.held.set(key, call);
        }
        if (!call.name && typeof tc.function?.name === 'string') call.name = tc.function.name;
        call.args += args;
      }
      if (choice.finish_reason) this.finish = choice.finish_reason;
    }
  }

  /**
   * Which call a `tool_calls` entry that names itself belongs to: by `index` (OpenAI's reference); else by a
   * non-blank `id` (Gemini's endpoint omits `index` on parallel calls); else (a name only) a new call.
   */
  private toolKey(tc: Record<string, any>): string {
    if (typeof tc.index === 'number') return `i:${tc.index}`;
    if (typeof tc.id === 'string' && tc.id.trim() !== '') return `id:${tc.id}`;
    return `n:${this.anonymousCalls++}`;
  }

  /**
   * The call the `nth` of `count` entries with neither index, id nor name continues: one such entry continues
   * the last call; several in one delta continue the last `count` calls in order (Moonshot's endpoint sends
   * the argument fragments of parallel calls side by side, without index or id).
   */
  private continued(nth: number, count: number): string {
    if (count > 1 && this.callOrder.length >= count) return this.callOrder[this.callOrder.length - count + nth]!;
    return this.lastToolKey ?? `n:${this.anonymousCalls++}`;
  }

  private finishMessage(): void {
    if (this.ended) return;
    this.start('openai');
    this.closeOpen();
    for (const call of this.held.values()) {
      const index = this.nextIndex++;
      this.emitEvent('content_block_start', { type: 'content_block_start', index, content_block: { type: 'tool_use', id: call.id, name: call.name, input: {} } });
      if (call.args) this.emitEvent('content_block_delta', { type: 'content_block_delta', index, delta: { type: 'input_json_delta', partial_json: call.args } });
      this.emitEvent('content_block_stop', { type: 'content_block_stop', index });
    }
    this.emitEvent('message_delta', { type: 'message_delta', delta: { stop_reason: answerStopReason(this.finish, this.live !== null), stop_sequence: null }, usage: this.usage });
    this.emitEvent('message_stop', { type: 'message_stop' });
    this.ended = true;
  }

  /** The upstream failed mid-stream: an SSE `error` event, then the end. */
  fail(message: string): void {
    if (!this.ended) {
      this.start('error');
      this.emitEvent('error', { type: 'error', error: { type: 'api_error', message } });
      this.ended = true;
    }
    this.end();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.parser.feed(this.decoder.decode(chunk, { stream: true }));
    cb();
  }

  override _flush(cb: TransformCallback): void {
    clearInterval(this.pinger);
    // An upstream that ends without [DONE] still gets a well-formed ending when it sent a finish_reason.
    if (!this.ended && this.finish !== null) this.finishMessage();
    else if (!this.ended) this.emitEvent('error', { type: 'error', error: { type: 'api_error', message: 'the upstream stream ended before it finished' } });
    cb();
  }

  override _destroy(err: Error | null, cb: (error?: Error | null) => void): void {
    clearInterval(this.pinger);
    cb(err);
  }
}
