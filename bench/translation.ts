/**
 * OpenAI translation overhead: per request (a 76 KB Claude-Code-shaped body to Chat Completions, and a
 * completion back to a message) and per streamed event (Chat Completions chunks through
 * ChatToMessagesStream), µs, median and p99 — each beside what the same work costs when the provider is
 * Anthropic and the gateway passes it through, measured in the same run, and as the ratio of the two medians:
 * a request is scanned (json-scan) instead of parsed, translated and serialized; an event is framed and
 * usage-tapped as it is, instead of parsed, translated, framed and tapped.
 */
import { scanJsonObject } from '../src/body/json-scan.js';
import { SseFramer } from '../src/stream/sse-frames.js';
import { UsageTap } from '../src/usage/tap.js';
import { toChatCompletions } from '../src/upstream/providers/openai/request.js';
import { toAnthropicMessage } from '../src/upstream/providers/openai/response.js';
import { ChatToMessagesStream } from '../src/upstream/providers/openai/stream.js';
import { claudeCodeBody } from '../test/helpers.js';

const stats = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return { median_us: Math.round(s[Math.floor(s.length / 2)]! * 100) / 100, p99_us: Math.round(s[Math.floor(s.length * 0.99)]! * 100) / 100 };
};
const time = (f: () => void) => {
  const t = process.hrtime.bigint();
  f();
  return Number(process.hrtime.bigint() - t) / 1000;
};

export async function benchTranslation(): Promise<Record<string, unknown>> {
  const body = claudeCodeBody({ targetBytes: 76_000 });
  const raw = Buffer.from(JSON.stringify(body));
  const completion = {
    id: 'chatcmpl-1',
    choices: [{ message: { content: 'x'.repeat(2000), tool_calls: [{ id: 'c', function: { name: 'f', arguments: '{"a":1}' } }] }, finish_reason: 'tool_calls' }],
    usage: { prompt_tokens: 20000, completion_tokens: 500 },
  };
  const req: number[] = [];
  const reqPass: number[] = [];
  const res: number[] = [];
  for (let i = 0; i < 1200; i++) {
    const a = time(() => Buffer.from(JSON.stringify(toChatCompletions(JSON.parse(raw.toString('utf8')) as Record<string, unknown>, 'm').body)));
    const p = time(() => scanJsonObject(raw, 64));
    const b = time(() => JSON.stringify(toAnthropicMessage(completion, 'm')));
    if (i >= 200) {
      req.push(a);
      reqPass.push(p);
      res.push(b);
    }
  }
  // Per event: the relay frames and taps what it forwards; a translated stream is parsed and rewritten first.
  const stream = new ChatToMessagesStream('m');
  const framer = new SseFramer();
  const tap = new UsageTap('text/event-stream', '');
  stream.on('data', (out: Buffer | string) => {
    const b = Buffer.isBuffer(out) ? out : Buffer.from(out);
    tap.write(b);
    framer.push(b);
  });
  const chunk = Buffer.from(`data: ${JSON.stringify({ id: 'chatcmpl-1', choices: [{ index: 0, delta: { content: 'hello ' }, finish_reason: null }] })}\n\n`);
  const anthropicEvent = Buffer.from(`event: content_block_delta\ndata: ${JSON.stringify({ type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'hello ' } })}\n\n`);
  const passFramer = new SseFramer();
  const passTap = new UsageTap('text/event-stream', '');
  const perEvent: number[] = [];
  const perEventPass: number[] = [];
  for (let i = 0; i < 20_000; i++) {
    const t = time(() => stream.write(chunk));
    const p = time(() => {
      passTap.write(anthropicEvent);
      passFramer.push(anthropicEvent);
    });
    if (i >= 2000) {
      perEvent.push(t);
      perEventPass.push(p);
    }
  }
  stream.destroy();
  const ratio = (a: number[], b: number[]) => Math.round((stats(a).median_us / Math.max(0.01, stats(b).median_us)) * 10) / 10;
  return {
    request_76kb: stats(req),
    request_76kb_passthrough: stats(reqPass),
    request_ratio: ratio(req, reqPass),
    response_json: stats(res),
    stream_event: stats(perEvent),
    stream_event_passthrough: stats(perEventPass),
    stream_event_ratio: ratio(perEvent, perEventPass),
  };
}
