/**
 * `type: bedrock`: Claude on Amazon Bedrock through the Bedrock Runtime API's InvokeModel endpoints
 * (https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-anthropic-claude-messages.html):
 * - `POST /model/{modelId}/invoke` (`stream` absent or false) and `/invoke-with-response-stream` (`stream: true`);
 *   the model is in the path (a Bedrock model id or inference profile, from the provider's `models:` map), the
 *   body is the Messages body without `model` and `stream`, with `anthropic_version` (the client's
 *   `anthropic-version` header, else `bedrock-2023-05-31`: what Anthropic's Bedrock SDK sends, "Bedrock takes the API
 *   version from the body", @anthropic-ai/bedrock-sdk 1.1 `client.js`), and the client's `anthropic-beta` values
 *   in `anthropic_beta` — those in the provider's `betas:` list (default
 *   {@link BEDROCK_BETAS}); the others are dropped and listed by dry-run. `cache_control` and every other field
 *   are kept as the client sent them.
 * - Signed with SigV4 (auth.ts) unless the provider has `keys:` — Bedrock API keys, sent as
 *   `Authorization: Bearer` (https://docs.aws.amazon.com/bedrock/latest/userguide/api-keys-use.html), pooled like
 *   any provider's keys. The client's own credential never goes to AWS.
 * - Answers: JSON is Anthropic's Message already; the binary event stream becomes Anthropic SSE
 *   (stream.ts); errors become Anthropic errors with the right status and type, their AWS text in the
 *   operator's log only. Bedrock has no token counting and no model list here: `count_tokens` and `/v1/models`
 *   routed to it answer 501 `not_supported_error` (Claude Code then estimates itself).
 */
import { Readable } from 'node:stream';
import type { ProviderConfig } from '../provider-config.js';
import { errorBody, NotSupportedError } from '../../../errors.js';
import type { Logger } from '../../../log.js';
import { serializeBody } from '../../../body/json-scan.js';
import { awsCredentialStatus, awsSignerFor } from './auth.js';
import { BEDROCK_FAULTS, bedrockFaultName, EventStreamToSSE } from './stream.js';
import { readText, upstreamUrl } from '../../client.js';
import type { UpstreamAnswer } from '../../client.js';
import { acceptedBetas, apiVersion } from '../anthropic/index.js';
import type { UpstreamCredential } from '../../headers.js';
import { type ProviderAdapter, ProviderEntryError } from '../types.js';
import { bedrockBaseUrl } from './urls.js';

/** The `anthropic_version` Bedrock takes in the body when the client sent no `anthropic-version` header. */
export const BEDROCK_ANTHROPIC_VERSION = 'bedrock-2023-05-31';

/**
 * The `anthropic-beta` values Bedrock accepts in `anthropic_beta`, used when a provider lists no `betas:` of its
 * own: the beta headers listed on AWS's "Anthropic Claude Messages API" request page
 * (https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-anthropic-claude-messages-request-response.html),
 * read 2026-11. Claude Code's own betas (`claude-code-20250219`, `oauth-2025-04-20`, `fine-grained-tool-streaming-…`)
 * are not among them and are dropped: Bedrock refuses a request with a beta it does not know.
 */
export const BEDROCK_BETAS: readonly string[] = [
  'computer-use-2024-10-22',
  'computer-use-2025-01-24',
  'computer-use-2025-11-24',
  'token-efficient-tools-2025-02-19',
  'interleaved-thinking-2025-05-14',
  'output-128k-2025-02-19',
  'dev-full-thinking-2025-05-14',
  'context-1m-2025-08-07',
  'context-management-2025-06-27',
  'effort-2025-11-24',
  'tool-search-tool-2025-10-19',
  'tool-examples-2025-10-29',
];

/** ARNs and 12-digit AWS account ids in a message, replaced before anything is shown to a client. */
export function redactAws(message: string): string {
  return message.replace(/arn:aws[a-z-]*:[^\s"',]*/g, '[arn]').replace(/\b\d{12}\b/g, '[account]');
}

/** AWS errors that mean the gateway's own credentials were refused (wrong, expired, missing). */
const CREDENTIAL_FAULTS = new Set(['UnrecognizedClientException', 'InvalidSignatureException', 'ExpiredTokenException', 'MissingAuthenticationTokenException', 'InvalidClientTokenId']);

/** Which credentials a provider signs with, for a message: never a secret, at most the access key id's last four characters. */
function credentialsOf(provider: ProviderConfig): string {
  if (provider.keys.length) return 'a Bedrock API key from keys:';
  const status = awsSignerFor(provider.name, provider.bedrock!.region, provider.bedrock!.profile).status;
  return `from ${status.source}${status.access_key_hint ? `, access key …${status.access_key_hint}` : ''}`;
}

/**
 * A Bedrock error answer as an Anthropic error: the status and `error.type` of {@link BEDROCK_FAULTS}, a message
 * naming the provider, the AWS exception and AWS's request id (a ValidationException's own text, which says what
 * was wrong with the request, is kept with ARNs and account ids redacted); AWS's full text goes to the log.
 */
async function bedrockError(answer: UpstreamAnswer, provider: ProviderConfig, requestId: string, log: Logger): Promise<UpstreamAnswer> {
  const raw = await readText(answer.body);
  let awsMessage = raw.slice(0, 500);
  let typeHint = String(answer.headers['x-amzn-errortype'] ?? '');
  try {
    const j = JSON.parse(raw) as { message?: unknown; Message?: unknown; __type?: unknown };
    awsMessage = String(j.message ?? j.Message ?? awsMessage);
    if (!typeHint && typeof j.__type === 'string') typeHint = j.__type.split('#').at(-1)!;
  } catch {
    // not JSON: keep the text for the log
  }
  const name = typeHint ? bedrockFaultName(typeHint) : `HTTP ${answer.statusCode}`;
  const fault = BEDROCK_FAULTS[name] ?? {
    status: answer.statusCode >= 500 ? 502 : answer.statusCode,
    type: answer.statusCode === 429 ? 'rate_limit_error' : answer.statusCode >= 500 ? 'api_error' : 'invalid_request_error',
  };
  log.warn({ provider: provider.name, status: answer.statusCode, aws_error: name, aws_message: awsMessage, aws_request_id: requestId || undefined }, 'Amazon Bedrock refused the request');
  const detail =
    name === 'ValidationException'
      ? `: ${redactAws(awsMessage)}`
      : CREDENTIAL_FAULTS.has(name)
        ? `; AWS refused the gateway's credentials (${credentialsOf(provider)}); details are in the gateway log`
        : '; details are in the gateway log';
  const message = `provider "${provider.name}" (Amazon Bedrock) answered ${answer.statusCode} ${name}${detail}${requestId ? ` (AWS request id ${requestId})` : ''}`;
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (requestId) headers['request-id'] = requestId;
  if (fault.status === 429 || fault.status === 529) headers['retry-after'] = String(answer.headers['retry-after'] ?? (fault.status === 429 ? 10 : 5));
  return { statusCode: fault.status, headers, body: Readable.from([Buffer.from(JSON.stringify({ type: 'error', error: { type: fault.type, message } }))]) };
}

export const bedrockAdapter: ProviderAdapter = {
  description: 'Claude on Amazon Bedrock: InvokeModel, SigV4-signed with the AWS credential chain, or Bedrock API keys in keys:',
  options: ['betas', 'region', 'aws_profile'],
  cloudCredentials: true,
  settle(name, entry) {
    if (entry.region === undefined) throw new ProviderEntryError([], `provider "${name}": type: bedrock needs region: (the AWS region to call and sign for, e.g. us-east-1)`);
    return { base_url: entry.base_url ?? bedrockBaseUrl(entry.region), strip_attribution: false, bedrock: { region: entry.region, profile: entry.aws_profile ?? null }, vertex: null };
  },
  genaiName: 'aws.bedrock',
  packages: ['@aws-sdk/credential-providers', '@smithy/hash-node', '@smithy/signature-v4', '@smithy/core'],
  credentials(p) {
    if (!p.bedrock || p.keys.length) return null;
    return { ...(awsCredentialStatus()[p.name] ?? { source: p.bedrock.profile ? `aws profile "${p.bedrock.profile}"` : 'aws default chain', expires_at: null, access_key_hint: null }) };
  },
  type: 'bedrock',
  local(req, _estimate) {
    if (req.endpoint === 'messages') return null;
    const what = req.endpoint === 'count_tokens' ? 'token counting (count_tokens)' : 'a model list (GET /v1/models)';
    const err = new NotSupportedError(`the route's provider is Amazon Bedrock, which has no ${what} through this gateway; route this request to an Anthropic provider to get it`);
    return { status: err.status, headers: { 'content-type': 'application/json' }, body: errorBody(err) };
  },
  request(req, provider, model) {
    const stream = req.stream;
    const betas = acceptedBetas(req.headers['anthropic-beta'], provider.betas ?? BEDROCK_BETAS);
    const { model: _model, stream: _stream, ...rest } = req.decision.body;
    const bedrockBody: Record<string, unknown> = { anthropic_version: apiVersion(req.headers, BEDROCK_ANTHROPIC_VERSION), ...rest };
    if (betas.kept.length && bedrockBody.anthropic_beta === undefined) bedrockBody.anthropic_beta = betas.kept;
    const body = req.endpoint === 'messages' ? serializeBody(bedrockBody, req.body) : null;
    const pathAndQuery = `/model/${encodeURIComponent(model)}/${stream ? 'invoke-with-response-stream' : 'invoke'}`;
    const url = upstreamUrl(provider, pathAndQuery);
    const signer = provider.bedrock ? awsSignerFor(provider.name, provider.bedrock.region, provider.bedrock.profile) : null;
    // SigV4 at send time, except with a Bedrock API key (a bearer token): dry-run shows the headers before signing.
    const signing = (c: UpstreamCredential) => (c.kind === 'key' || !signer ? null : 'aws-sigv4');
    return {
      method: 'POST',
      pathAndQuery,
      body,
      headers: (c) => {
        const h: Record<string, string> = {
          'content-type': 'application/json',
          accept: stream ? 'application/vnd.amazon.eventstream' : 'application/json',
          'content-length': String(body?.length ?? 0),
        };
        for (const [name, value] of Object.entries(req.decision.headers.set)) h[name] = value;
        if (c.kind === 'key') h.authorization = `Bearer ${c.key}`;
        return h;
      },
      signing,
      sign: (headers, c) => (signer && signing(c) ? signer.sign('POST', url, headers as Record<string, string>, body) : Promise.resolve(headers)),
      dropped: betas.dropped.map((b) => `anthropic-beta: ${b}`),
    };
  },
  async answer(answer, provider, _req, _model, log) {
    const requestId = String(answer.headers['x-amzn-requestid'] ?? '');
    if (answer.statusCode >= 400) return bedrockError(answer, provider, requestId, log);
    const base: Record<string, string> = requestId ? { 'request-id': requestId } : {};
    if (String(answer.headers['content-type'] ?? '').includes('application/vnd.amazon.eventstream')) {
      const sse = new EventStreamToSSE(provider.name, (name, message) =>
        log.warn({ provider: provider.name, aws_error: name, aws_message: message, aws_request_id: requestId || undefined }, 'Amazon Bedrock stream failed'),
      );
      answer.body.once('error', (err) => {
        sse.fail('StreamReadError', err.message);
        sse.end();
      });
      answer.body.pipe(sse);
      return { statusCode: 200, headers: { ...base, 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' }, body: sse };
    }
    return { statusCode: answer.statusCode, headers: { ...base, 'content-type': 'application/json' }, body: answer.body };
  },
};
