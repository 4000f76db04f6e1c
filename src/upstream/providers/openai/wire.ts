/**
 * The `type: openai` provider: Anthropic Messages requests translated to Chat Completions and the answers
 * translated back (JSON, SSE and errors), so Claude Code keeps working against OpenAI-compatible servers.
 */
import { Readable } from 'node:stream';
import type { ProviderConfig } from '../provider-config.js';
import { displayName, type ModelInfo } from '../models.js';
import { readText } from '../../client.js';
import type { UpstreamAnswer } from '../../client.js';
import type { UpstreamCredential } from '../../headers.js';
import { toAnthropicError, toAnthropicMessage } from './response.js';
import { ChatToMessagesStream } from './stream.js';

export { toChatCompletions } from './request.js';

/** Path of the Chat Completions endpoint, appended to the provider's base_url (which usually ends in /v1). */
export const CHAT_COMPLETIONS_PATH = '/chat/completions';

/**
 * Headers for an OpenAI-compatible upstream: only what it needs. The client's headers are not forwarded to
 * another vendor (they carry Anthropic credentials and beta flags it does not understand).
 */
export function openaiHeaders(credential: UpstreamCredential, body: Buffer | null, stream: boolean): Record<string, string> {
  const h: Record<string, string> = {
    'content-type': 'application/json',
    accept: stream ? 'text/event-stream' : 'application/json',
    'accept-encoding': 'identity',
    'user-agent': 'switchyard',
  };
  if (credential.kind === 'key') h.authorization = `Bearer ${credential.key}`;
  if (body) h['content-length'] = String(body.length);
  return h;
}

/** One OpenAI model object (`{ id, created }`, created in epoch seconds) as an Anthropic one. */
function anthropicModel(m: Record<string, unknown>): ModelInfo {
  const id = String(m.id ?? '');
  const created = Number(m.created);
  return { type: 'model', id, display_name: displayName(id), created_at: new Date(Number.isFinite(created) && created > 0 ? created * 1000 : 0).toISOString() };
}

/**
 * An OpenAI-compatible `GET /models` (or `/models/{id}`) answer in Anthropic's shape
 * (https://platform.openai.com/docs/api-reference/models/list → https://platform.claude.com/docs/en/api/models/list):
 * the list as one page (`has_more: false`), or the one model. Errors become Anthropic errors naming the provider.
 */
export async function modelsFromOpenAI(answer: UpstreamAnswer, provider: ProviderConfig): Promise<UpstreamAnswer> {
  const raw = await readText(answer.body, Number.POSITIVE_INFINITY); // a whole answer, not an error: never cut
  const json = (body: unknown, status = answer.statusCode): UpstreamAnswer => ({
    statusCode: status,
    headers: { 'content-type': 'application/json' },
    body: Readable.from([Buffer.from(typeof body === 'string' ? body : JSON.stringify(body))]),
  });
  if (answer.statusCode >= 400) return json(toAnthropicError(answer.statusCode, raw, provider.name));
  try {
    const parsed = JSON.parse(raw) as Record<string, unknown>;
    if (!Array.isArray(parsed.data)) return json(anthropicModel(parsed));
    const data = (parsed.data as Array<Record<string, unknown>>).map(anthropicModel);
    return json({ data, has_more: false, first_id: data[0]?.id ?? null, last_id: data.at(-1)?.id ?? null });
  } catch {
    return json(toAnthropicError(502, raw, provider.name), 502);
  }
}

/**
 * The answer of an OpenAI-compatible upstream in Anthropic's format.
 * @param model the model name the client asked for (reported back in the message).
 */
export async function fromOpenAI(answer: UpstreamAnswer, provider: ProviderConfig, model: string): Promise<UpstreamAnswer> {
  const type = String(answer.headers['content-type'] ?? '');
  // The vendor's request id when it sent one; else the relay stamps the gateway's own (never an empty header).
  const vendorId = String(answer.headers['x-request-id'] ?? answer.headers['request-id'] ?? '');
  const base: Record<string, string> = vendorId ? { 'request-id': vendorId } : {};
  if (answer.statusCode >= 400) {
    const body = toAnthropicError(answer.statusCode, await readText(answer.body), provider.name);
    return { statusCode: answer.statusCode, headers: { ...base, 'content-type': 'application/json' }, body: Readable.from([Buffer.from(body)]) };
  }
  if (type.startsWith('text/event-stream')) {
    const translated = new ChatToMessagesStream(model, undefined, { reasoningAsThinking: provider.reasoning_as_thinking });
    answer.body.pipe(translated);
    answer.body.once('error', (err) => translated.fail(`provider "${provider.name}" stream failed: ${err.message}`));
    return { statusCode: 200, headers: { ...base, 'content-type': 'text/event-stream; charset=utf-8' }, body: translated };
  }
  const raw = await readText(answer.body, Number.POSITIVE_INFINITY); // a whole answer, not an error: never cut
  let message: Record<string, unknown>;
  try {
    message = toAnthropicMessage(JSON.parse(raw) as Record<string, unknown>, model, { reasoningAsThinking: provider.reasoning_as_thinking });
  } catch {
    const body = toAnthropicError(502, raw, provider.name);
    return { statusCode: 502, headers: { 'content-type': 'application/json' }, body: Readable.from([Buffer.from(body)]) };
  }
  return { statusCode: answer.statusCode, headers: { ...base, 'content-type': 'application/json' }, body: Readable.from([Buffer.from(JSON.stringify(message))]) };
}
