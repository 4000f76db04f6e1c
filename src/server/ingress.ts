/**
 * Clients that speak Amazon Bedrock's or Google Vertex AI's format to the gateway — Claude Code with
 * `CLAUDE_CODE_USE_BEDROCK=1` and `ANTHROPIC_BEDROCK_BASE_URL`, or `CLAUDE_CODE_USE_VERTEX=1` and
 * `ANTHROPIC_VERTEX_BASE_URL` (with `CLAUDE_CODE_SKIP_BEDROCK_AUTH` / `CLAUDE_CODE_SKIP_VERTEX_AUTH`: the gateway
 * holds the cloud credentials; code.claude.com "LLM gateway configuration") — and the Anthropic Bedrock and Vertex
 * SDKs. The request becomes an Anthropic Messages request before the rules see it, so the same rules, throttles,
 * budgets and ledger apply and the route can be any provider; a Bedrock stream is re-encoded as Bedrock event-stream
 * messages on the way out (upstream/providers/bedrock/stream.ts). Vertex answers are Anthropic's format already.
 *
 * Paths (as the SDKs send them: github.com/anthropics/anthropic-sdk-typescript `packages/bedrock-sdk/src/client.ts`,
 * `packages/vertex-sdk/src/client.ts`):
 * - Bedrock: `POST /model/{modelId}/invoke`, `POST /model/{modelId}/invoke-with-response-stream`.
 * - Vertex: `POST /v1/projects/{project}/locations/{location}/publishers/anthropic/models/{model}:rawPredict`,
 *   `…:streamRawPredict`, and `…/models/count-tokens:rawPredict` (the model in the body).
 */
import type { IncomingHttpHeaders } from 'node:http';
import { InvalidRequestError } from '../errors.js';

/** The wire format a client spoke, with what its path said. */
export interface Ingress {
  dialect: 'bedrock' | 'vertex';
  /** The model from the path (a Bedrock model id, inference profile or ARN; a Vertex model), null when the body has it. */
  model: string | null;
  /** Streaming by the path (Bedrock), or null: as the body says (Vertex). */
  stream: boolean | null;
}

/** The Anthropic API version sent upstream when a cloud client named none (its body's `anthropic_version` is the platform's). */
const DEFAULT_API_VERSION = '2023-06-01';

/**
 * The Anthropic model name behind a Bedrock or Vertex model id, so rules, prices and Anthropic upstreams see one
 * name: `us.anthropic.claude-sonnet-4-5-20250929-v1:0` (and its ARN forms) → `claude-sonnet-4-5-20250929`;
 * `claude-sonnet-4-5@20250929` → `claude-sonnet-4-5-20250929`. An id that names no Anthropic model (an application
 * inference profile ARN) is kept as it is: a rule can still match it.
 */
export function anthropicModelName(dialect: Ingress['dialect'], id: string): string {
  if (dialect === 'vertex') return id.replace('@', '-');
  const last = id.slice(id.lastIndexOf('/') + 1);
  const m = /^(?:[a-z]+\.)?anthropic\.(.+?)(?:-v\d+(?::\d+)?)?$/.exec(last);
  return m ? m[1]! : id;
}

/**
 * The client's body as an Anthropic Messages body: `model` from the path (normalized), `stream` from the Bedrock
 * path, `anthropic_version` and `anthropic_beta` taken out — they become the `anthropic-version` (when the client's
 * was an Anthropic API date) and `anthropic-beta` headers, set on `headers`.
 * @throws InvalidRequestError when the body is not a JSON object.
 */
export function messagesBody(ingress: Ingress, raw: Buffer, headers: IncomingHttpHeaders): Buffer {
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(raw.toString('utf8')) as Record<string, unknown>;
  } catch (err) {
    throw new InvalidRequestError(`the ${ingress.dialect === 'bedrock' ? 'Bedrock' : 'Vertex AI'} request body is not valid JSON: ${(err as Error).message}`);
  }
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new InvalidRequestError('the request body must be a JSON object');
  const { anthropic_version: version, anthropic_beta: betas, model: bodyModel, stream: bodyStream, ...rest } = body;
  const model = ingress.model ?? (typeof bodyModel === 'string' ? bodyModel : '');
  const out: Record<string, unknown> = { model: anthropicModelName(ingress.dialect, model), ...rest };
  const stream = ingress.stream ?? bodyStream;
  if (stream !== undefined) out.stream = stream;
  headers['anthropic-version'] = typeof version === 'string' && /^\d{4}-\d{2}-\d{2}$/.test(version) ? version : DEFAULT_API_VERSION;
  if (Array.isArray(betas) && betas.length && !headers['anthropic-beta']) headers['anthropic-beta'] = betas.map(String).join(',');
  return Buffer.from(JSON.stringify(out));
}

/** The ingress of a Vertex AI `{model}:{method}` path segment, or null when the method is not one served here. */
export function vertexIngress(modelAndMethod: string): { ingress: Ingress; endpoint: 'messages' | 'count_tokens' } | null {
  const at = modelAndMethod.lastIndexOf(':');
  const model = modelAndMethod.slice(0, at);
  const method = modelAndMethod.slice(at + 1);
  if (at < 1 || (method !== 'rawPredict' && method !== 'streamRawPredict')) return null;
  if (model === 'count-tokens') return method === 'rawPredict' ? { ingress: { dialect: 'vertex', model: null, stream: null }, endpoint: 'count_tokens' } : null;
  return { ingress: { dialect: 'vertex', model, stream: method === 'streamRawPredict' ? true : null }, endpoint: 'messages' };
}
