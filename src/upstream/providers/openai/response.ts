/**
 * OpenAI Chat Completions answers → Anthropic Messages answers: a JSON completion to a `message`, and an
 * error body to Anthropic's error shape. `finish_reason` maps stop→end_turn, length→max_tokens,
 * tool_calls→tool_use, content_filter→refusal; usage maps prompt_tokens (less cached) → input_tokens,
 * `prompt_tokens_details.cached_tokens` → cache_read_input_tokens, completion_tokens → output_tokens.
 */
import { randomBytes } from 'node:crypto';
import { errorTypeForStatus } from '../../../errors.js';

/**
 * A tool_use id for a call the vendor sent without one (or with `""`): Claude Code pairs each tool_result with
 * its tool_use by id, so every call needs a non-empty id, unique in the answer. Same shape as Anthropic's.
 */
export function synthesizeToolId(): string {
  return `toolu_sy${randomBytes(11).toString('hex')}`;
}

/** The id a vendor's tool call carries, or a synthesized one when it is missing or blank. */
export function toolIdOf(id: unknown): string {
  return typeof id === 'string' && id.trim() !== '' ? id : synthesizeToolId();
}

/**
 * The stop_reason of an answer: from `finish_reason`, except that an answer holding a tool call stops for
 * `tool_use` whatever the vendor said (Ollama and others end tool-calling turns with "stop"; Claude Code runs
 * tools only on `tool_use`) unless it was cut by the token limit.
 */
export function answerStopReason(finish: unknown, hasToolCall: boolean): string {
  const r = stopReason(finish);
  return hasToolCall && r !== 'max_tokens' ? 'tool_use' : r;
}

/** Anthropic `stop_reason` for an OpenAI `finish_reason`. */
export function stopReason(finish: unknown): string {
  if (finish === 'length') return 'max_tokens';
  if (finish === 'tool_calls' || finish === 'function_call') return 'tool_use';
  if (finish === 'content_filter') return 'refusal';
  return 'end_turn';
}

/**
 * An Anthropic usage object (numbers, never nulls) from an OpenAI one. Reasoning tokens are output tokens:
 * OpenAI counts them inside `completion_tokens`; vendors that report them outside it (xAI:
 * `completion_tokens_details.reasoning_tokens` with `total_tokens = prompt + completion + reasoning`) get
 * them added, so the ledger prices every token the vendor bills.
 */
export function anthropicUsage(u: Record<string, any> | null | undefined): Record<string, number> {
  const cached = Number(u?.prompt_tokens_details?.cached_tokens ?? 0) || 0;
  const prompt = Number(u?.prompt_tokens ?? 0) || 0;
  const completion = Number(u?.completion_tokens ?? 0) || 0;
  const reasoning = Number(u?.completion_tokens_details?.reasoning_tokens ?? 0) || 0;
  const total = Number(u?.total_tokens ?? 0) || 0;
  const reasoningOutside = reasoning > 0 && total > 0 && total - prompt - completion === reasoning;
  return {
    input_tokens: Math.max(0, prompt - cached),
    output_tokens: completion + (reasoningOutside ? reasoning : 0),
    cache_creation_input_tokens: 0,
    cache_read_input_tokens: cached,
  };
}

function parseArguments(args: unknown): unknown {
  if (typeof args !== 'string' || args === '') return {};
  try {
    return JSON.parse(args);
  } catch {
    return { _raw_arguments: args };
  }
}

/**
 * A Chat Completion → an Anthropic message. `model` is the model name the client asked for;
 * `opts.reasoningAsThinking` puts the vendor's reasoning first as an (unsigned) `thinking` block.
 */
export function toAnthropicMessage(c: Record<string, any>, model: string, opts: { reasoningAsThinking?: boolean } = {}): Record<string, unknown> {
  const choice = c.choices?.[0] ?? {};
  const msg = choice.message ?? {};
  const content: unknown[] = [];
  const reasoning = msg.reasoning_content ?? msg.reasoning;
  if (opts.reasoningAsThinking && typeof reasoning === 'string' && reasoning) content.push({ type: 'thinking', thinking: reasoning, signature: '' });
  if (typeof msg.content === 'string' && msg.content) content.push({ type: 'text', text: msg.content });
  for (const tc of msg.tool_calls ?? []) content.push({ type: 'tool_use', id: toolIdOf(tc.id), name: tc.function?.name, input: parseArguments(tc.function?.arguments) });
  return {
    id: `msg_${String(c.id ?? 'openai').replace(/^chatcmpl-/, '')}`,
    type: 'message',
    role: 'assistant',
    model,
    content,
    stop_reason: answerStopReason(
      choice.finish_reason,
      content.some((b) => (b as { type: string }).type === 'tool_use'),
    ),
    stop_sequence: null,
    usage: anthropicUsage(c.usage),
  };
}

/** An OpenAI-style error body (`{"error": {"message", "type", "code"}}`, or anything) → Anthropic's shape. */
export function toAnthropicError(status: number, raw: string, provider: string): string {
  let message = raw.slice(0, 500);
  try {
    const j = JSON.parse(raw) as { error?: { message?: unknown } | string; message?: unknown };
    const m = typeof j.error === 'string' ? j.error : (j.error?.message ?? j.message);
    if (typeof m === 'string') message = m;
  } catch {
    // not JSON: keep the text
  }
  return JSON.stringify({ type: 'error', error: { type: errorTypeForStatus(status), message: `provider "${provider}" answered ${status}: ${message}` } });
}
