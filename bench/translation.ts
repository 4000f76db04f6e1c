/**
 * OpenAI translation overhead: per request (a 76 KB Claude-Code-shaped body to Chat Completions, and a
 * completion back to a message) and per streamed event (Chat Completions chunks through
 * ChatToMessagesStream), µs, median and p99.
 */
import { toChatCompletions } from '../src/upstream/openai/request.js';
import { toAnthropicMessage } from '../src/upstream/openai/response.js';
import { ChatToMessagesStream } from '../src/upstream/openai/stream.js';
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

export async function benchTranslation(): Promise<Record<string, { median_us: number; p99_us: number }>> {
  const body = claudeCodeBody({ targetBytes: 76_000 });
  const completion = {
    id: 'chatcmpl-1',
    choices: [{ message: { content: 'x'.repeat(2000), tool_calls: [{ id: 'c', function: { name: 'f', arguments: '{"a":1}' } }] }, finish_reason: 'tool_calls' }],
    usage: { prompt_tokens: 20000, completion_tokens: 500 },
  };
  const req: number[] = [];
  const res: number[] = [];
  for (let i = 0; i < 1200; i++) {
    const a = time(() => JSON.stringify(toChatCompletions(body, 'm').body));
    const b = time(() => JSON.stringify(toAnthropicMessage(completion, 'm')));
    if (i >= 200) {
      req.push(a);
      res.push(b);
    }
  }
  const stream = new ChatToMessagesStream('m');
  stream.on('data', () => {});
  const chunk = Buffer.from(`data: ${JSON.stringify({ id: 'chatcmpl-1', choices: [{ index: 0, delta: { content: 'hello ' }, finish_reason: null }] })}\n\n`);
  const perEvent: number[] = [];
  for (let i = 0; i < 20_000; i++) {
    const t = time(() => stream.write(chunk));
    if (i >= 2000) perEvent.push(t);
  }
  stream.destroy();
  return { request_76kb: stats(req), response_json: stats(res), stream_event: stats(perEvent) };
}
