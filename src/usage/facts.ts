/**
 * Request facts: what the rules may read of a request, kept in its usage record so that `switchyard replay`
 * can decide it again under another rule set — the path, the stream flag, sizes, message and tool counts,
 * `max_tokens`, `metadata`, and the values of the headers the rules name (plus a few Claude Code sends that
 * say which client it was). Never message text, prompts, tool definitions or credentials.
 */
import { CREDENTIAL_HEADERS } from '../log.js';
import type { RequestContext } from '../rules/context.js';
import { memberLength, plainCopy } from '../body/json-scan.js';

/** The facts of one request. Sizes in bytes; counts of elements. */
export interface RequestFacts {
  /** Endpoint path, e.g. `/v1/messages`. */
  path: string;
  stream: boolean;
  body_bytes: number;
  /** Number of messages and of tool definitions. */
  messages: number;
  tools: number;
  max_tokens: number | null;
  /** The request's `metadata` (Claude Code's holds device, account and session ids). */
  metadata: Record<string, unknown> | null;
  /** Values of the headers the rules name, and of {@link ALWAYS_KEPT}, when present (never credentials). */
  headers: Record<string, string>;
  /** The headers the rules of the time named: one of them absent from `headers` was absent from the request. */
  headers_named: string[];
}

/** Headers kept whatever the rules name: which client and API features a request used. */
export const ALWAYS_KEPT = ['anthropic-beta', 'anthropic-version', 'user-agent', 'x-app', 'x-claude-code-session-id'];

const CREDENTIALS = new Set(CREDENTIAL_HEADERS);

/**
 * The facts of a request from its context.
 * @param headersRead lower-cased names of the headers the rule set reads.
 */
export function requestFacts(rc: RequestContext, bodyBytes: number, headersRead: readonly string[]): RequestFacts {
  const headers: Record<string, string> = {};
  for (const name of [...ALWAYS_KEPT, ...headersRead]) {
    const v = rc.headers[name];
    if (v !== undefined && !CREDENTIALS.has(name)) headers[name] = v;
  }
  const metadata = rc.body.metadata;
  const maxTokens = rc.body.max_tokens;
  return {
    path: rc.path,
    stream: rc.stream,
    body_bytes: bodyBytes,
    messages: memberLength(rc.body, 'messages'),
    tools: memberLength(rc.body, 'tools'),
    max_tokens: typeof maxTokens === 'number' ? maxTokens : null,
    metadata: metadata && typeof metadata === 'object' && !Array.isArray(metadata) ? (plainCopy(metadata) as Record<string, unknown>) : null,
    headers,
    headers_named: [...headersRead],
  };
}

/**
 * A request body with the same facts, for replay: model, stream, max_tokens, metadata, and as many
 * placeholder messages and tools as the request had (what `$count(messages)` and the size estimate read).
 */
export function factsBody(model: string | null, f: RequestFacts): Record<string, unknown> {
  const body: Record<string, unknown> = {
    model: model ?? '',
    messages: Array.from({ length: f.messages }, () => ({ role: 'user', content: '' })),
  };
  if (f.stream) body.stream = true;
  if (f.max_tokens !== null) body.max_tokens = f.max_tokens;
  if (f.metadata) body.metadata = f.metadata;
  if (f.tools) body.tools = Array.from({ length: f.tools }, (_, i) => ({ name: `tool_${i}`, input_schema: { type: 'object' } }));
  return body;
}
