/**
 * Anthropic Messages request → OpenAI Chat Completions request, for `type: openai` providers (OpenAI,
 * OpenRouter, vLLM, Ollama, LM Studio, Groq, DeepSeek...). Shapes: Anthropic
 * https://platform.claude.com/docs/en/api/messages, OpenAI https://platform.openai.com/docs/api-reference/chat.
 * Pure; fields with no Chat Completions equivalent are dropped and listed for a debug log.
 */

type Block = Record<string, any>;
type ChatMessage = Record<string, unknown>;

/** Anthropic body fields that have a mapping below; anything else is dropped. */
const MAPPED = new Set(['model', 'messages', 'system', 'tools', 'tool_choice', 'max_tokens', 'stop_sequences', 'temperature', 'top_p', 'metadata', 'stream']);

const text = (blocks: unknown): string =>
  typeof blocks === 'string'
    ? blocks
    : Array.isArray(blocks)
      ? blocks
          .filter((b: Block) => b?.type === 'text')
          .map((b: Block) => String(b.text ?? ''))
          .join('\n\n')
      : '';

function imagePart(b: Block): Record<string, unknown> | null {
  const src = b.source as Block | undefined;
  if (src?.type === 'base64') return { type: 'image_url', image_url: { url: `data:${src.media_type};base64,${src.data}` } };
  if (src?.type === 'url') return { type: 'image_url', image_url: { url: src.url } };
  return null;
}

/** Tool result content as the string a `tool` message carries. */
function toolResultText(b: Block): string {
  const body = typeof b.content === 'string' ? b.content : text(b.content);
  return b.is_error ? `Error: ${body}` : body;
}

/**
 * Claude Code's attribution line (`x-anthropic-billing-header: cc_version=…; cc_entrypoint=…; cch=…;`), the
 * first system block of its requests; its `cch` value changes with every request (code.claude.com/docs/en/
 * llm-gateway-protocol, "System prompt attribution block").
 */
const ATTRIBUTION = /^x-anthropic-billing-header:[^\n]*(\n|$)/;

/** The system prompt without Claude Code's attribution line: a block that is only that line goes, a block that starts with it loses the line. */
export function withoutAttribution(system: unknown): unknown {
  if (typeof system === 'string') return system.replace(ATTRIBUTION, '');
  if (!Array.isArray(system)) return system;
  return system.flatMap((b: Block) => {
    if (b?.type !== 'text' || typeof b.text !== 'string' || !ATTRIBUTION.test(b.text)) return [b];
    const rest = b.text.replace(ATTRIBUTION, '');
    return rest ? [{ ...b, text: rest }] : [];
  });
}

/**
 * Chat Completions `reasoning_effort` (low | medium | high, https://platform.openai.com/docs/api-reference/chat/create)
 * for an Anthropic `thinking` setting (https://platform.claude.com/docs/en/build-with-claude/extended-thinking):
 * `enabled` by `budget_tokens` — under 8,000 low, under 24,000 medium, else high (the 8k/16k/32k budgets
 * gateways commonly pair with the three efforts); `adaptive` by `output_config.effort` (max → high; medium
 * when absent). Null when thinking is off or absent.
 */
export function reasoningEffortOf(body: Record<string, any>): 'low' | 'medium' | 'high' | null {
  const thinking = body.thinking as Block | undefined;
  if (thinking?.type === 'enabled') {
    const budget = Number(thinking.budget_tokens);
    if (!Number.isFinite(budget)) return 'medium';
    return budget < 8000 ? 'low' : budget < 24000 ? 'medium' : 'high';
  }
  if (thinking?.type === 'adaptive') {
    const effort = body.output_config?.effort;
    if (effort === 'low' || effort === 'medium' || effort === 'high') return effort;
    return effort === 'max' ? 'high' : 'medium';
  }
  return null;
}

/**
 * Translates a request body.
 * @param model the model name to send (after `route_to.model` and the provider's `models` map).
 * @param opts.stripAttribution drop Claude Code's attribution line from the system prompt (see {@link withoutAttribution}).
 * @param opts.reasoningEffort the provider takes `reasoning_effort`: `thinking` is mapped to it (see {@link reasoningEffortOf}).
 * @returns the Chat Completions body and the names of dropped fields.
 */
export function toChatCompletions(
  body: Record<string, any>,
  model: string,
  opts: { stripAttribution?: boolean; reasoningEffort?: boolean } = {},
): { body: Record<string, unknown>; dropped: string[] } {
  const messages: ChatMessage[] = [];
  const system = text(opts.stripAttribution ? withoutAttribution(body.system) : body.system);
  if (system) messages.push({ role: 'system', content: system });
  for (const m of (body.messages ?? []) as Array<{ role: string; content: unknown }>) {
    if (m.role === 'system') {
      messages.push({ role: 'system', content: text(m.content) });
    } else if (m.role === 'assistant') {
      if (typeof m.content === 'string') {
        messages.push({ role: 'assistant', content: m.content });
        continue;
      }
      const blocks = (m.content ?? []) as Block[];
      const calls = blocks.filter((b) => b.type === 'tool_use').map((b) => ({ id: b.id, type: 'function', function: { name: b.name, arguments: JSON.stringify(b.input ?? {}) } }));
      const content = text(blocks);
      messages.push({ role: 'assistant', content: content || null, ...(calls.length ? { tool_calls: calls } : {}) });
    } else {
      if (typeof m.content === 'string') {
        messages.push({ role: 'user', content: m.content });
        continue;
      }
      const blocks = (m.content ?? []) as Block[];
      // Tool results answer the previous assistant turn's tool_calls, so they come first, in order.
      for (const b of blocks) if (b.type === 'tool_result') messages.push({ role: 'tool', tool_call_id: b.tool_use_id, content: toolResultText(b) });
      const parts = blocks.flatMap((b): Array<Record<string, unknown>> => {
        if (b.type === 'text') return b.text ? [{ type: 'text', text: b.text }] : [];
        if (b.type === 'image') return [imagePart(b)].filter((p): p is Record<string, unknown> => p !== null);
        return [];
      });
      if (parts.length) messages.push({ role: 'user', content: parts.every((p) => p.type === 'text') ? parts.map((p) => p.text).join('\n\n') : parts });
    }
  }
  const out: Record<string, unknown> = { model, messages };
  if (body.max_tokens !== undefined) out.max_tokens = body.max_tokens;
  if (body.stop_sequences?.length) out.stop = body.stop_sequences;
  if (body.temperature !== undefined) out.temperature = body.temperature;
  if (body.top_p !== undefined) out.top_p = body.top_p;
  if (typeof body.metadata?.user_id === 'string') out.user = body.metadata.user_id;
  if (Array.isArray(body.tools) && body.tools.length) {
    out.tools = body.tools.filter((t: Block) => t.input_schema).map((t: Block) => ({ type: 'function', function: { name: t.name, description: t.description, parameters: t.input_schema } }));
  }
  const choice = body.tool_choice as Block | undefined;
  if (choice?.type === 'auto') out.tool_choice = 'auto';
  else if (choice?.type === 'any') out.tool_choice = 'required';
  else if (choice?.type === 'none') out.tool_choice = 'none';
  else if (choice?.type === 'tool') out.tool_choice = { type: 'function', function: { name: choice.name } };
  if (choice?.disable_parallel_tool_use === true && out.tools) out.parallel_tool_calls = false;
  if (body.stream === true) {
    out.stream = true;
    out.stream_options = { include_usage: true };
  }
  const effort = opts.reasoningEffort ? reasoningEffortOf(body) : null;
  if (effort) out.reasoning_effort = effort;
  const mapped = (k: string) => MAPPED.has(k) || (effort !== null && (k === 'thinking' || k === 'output_config'));
  return { body: out, dropped: Object.keys(body).filter((k) => !mapped(k)) };
}
