/**
 * OpenAI Chat Completions answers → Anthropic Messages answers: a JSON completion to a `message`, and an
 * error body to Anthropic's error shape. `finish_reason` maps stop→end_turn, length→max_tokens,
 * tool_calls→tool_use, content_filter→refusal; usage maps prompt_tokens (less cached) → input_tokens,
 * `prompt_tokens_details.cached_tokens` → cache_read_input_tokens, completion_tokens → output_tokens.
 */
import { errorTypeForStatus } from '../../errors.js';

/** Anthropic `stop_reason` for an OpenAI `finish_reason`. */
export function stopReason(finish: unknown): string {
  if (finish === 'length') return 'max_tokens';
  if (finish === 'tool_calls' || finish === 'function_call') return 'tool_use';
  if (finish === 'content_filter') return 'refusal';
  return 'end_turn';
}

/** An Anthropic usage object (numbers, never nulls) from an OpenAI one. */
export function anthropicUsage(u: Record<string, any> | null | undefined): Record<string, number> {
  const cached = Number(u?.prompt_tokens_details?.cached_tokens ?? 0) || 0;
  return {
    input_tokens: Math.max(0, (Number(u?.prompt_tokens ?? 0) || 0) - cached),
    output_tokens: Number(u?.completion_tokens ?? 0) || 0,
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

/** A Chat Completion → an Anthropic message. `model` is the model name the client asked for. */
export function toAnthropicMessage(c: Record<string, any>, model: string): Record<string, unknown> {
  const choice = c.choices?.[0] ?? {};
  const msg = choice.message ?? {};
  const content: unknown[] = [];
  if (typeof msg.content === 'string' && msg.content) content.push({ type: 'text', text: msg.content });
  for (const tc of msg.tool_calls ?? []) content.push({ type: 'tool_use', id: tc.id, name: tc.function?.name, input: parseArguments(tc.function?.arguments) });
  return {
    id: `msg_${String(c.id ?? 'openai').replace(/^chatcmpl-/, '')}`,
    type: 'message',
    role: 'assistant',
    model,
    content,
    stop_reason: stopReason(choice.finish_reason),
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
