/**
 * `type: vertex`: Claude on Google Vertex AI (https://cloud.google.com/vertex-ai/generative-ai/docs/partner-models/claude/use-claude):
 * - Messages → `POST /v1/projects/{project}/locations/{region}/publishers/anthropic/models/{model}:rawPredict`, or
 *   `:streamRawPredict` when `stream: true`; the body is the client's without `model`, with `anthropic_version`
 *   (the client's `anthropic-version` header, else `vertex-2023-10-16`, as Anthropic's Vertex SDK 1.1 does). `count_tokens` → `…/models/count-tokens:rawPredict` with the body as
 *   sent (its `model` kept) and the same `anthropic_version`. `cache_control` and every other field go as the
 *   client sent them; `anthropic-beta` goes as a header (only the `betas:` values when the provider lists them).
 * - Authorization: a Google OAuth access token (auth.ts), added just before sending; the client's own
 *   credential never goes to Google.
 * - Answers are Anthropic's format already (JSON and SSE) and pass through; errors in Google's shape
 *   (`{"error":{"code","message","status"}}`) become Anthropic errors naming the provider.
 * The same paths the Anthropic Vertex SDK uses (github.com/anthropics/anthropic-sdk-typescript
 * `packages/vertex-sdk/src/client.ts`); no model list here: `GET /v1/models` routed to Vertex answers 501.
 */
import { Readable } from 'node:stream';
import { errorBody, errorTypeForStatus, NotSupportedError } from '../../../errors.js';
import { serializeBody } from '../../../body/json-scan.js';
import { readText } from '../../client.js';
import { googleCredentialStatus, googleTokensFor } from './auth.js';
import { acceptedBetas, apiVersion } from '../anthropic/index.js';
import { type ProviderAdapter, ProviderEntryError } from '../types.js';
import { vertexBaseUrl } from './urls.js';
import path from 'node:path';

/** The `anthropic_version` Vertex AI takes in the body when the client sent no `anthropic-version` header. */
export const VERTEX_ANTHROPIC_VERSION = 'vertex-2023-10-16';

export const vertexAdapter: ProviderAdapter = {
  description: 'Claude on Google Vertex AI: rawPredict / streamRawPredict with Google OAuth tokens',
  options: ['betas', 'region', 'project', 'credentials_file'],
  cloudCredentials: true,
  settle(name, entry, configDir) {
    if (entry.region === undefined) throw new ProviderEntryError([], `provider "${name}": type: vertex needs region: (the Vertex AI location, e.g. us-east5 or global)`);
    if (entry.project === undefined) throw new ProviderEntryError([], `provider "${name}": type: vertex needs project: (the Google Cloud project id)`);
    if (entry.keys?.length) {
      throw new ProviderEntryError(
        ['keys'],
        `provider "${name}": keys: does not apply to type: vertex; the gateway signs in with Google credentials (credentials_file: or Application Default Credentials)`,
      );
    }
    const credentials_file = entry.credentials_file ? path.resolve(configDir, entry.credentials_file) : null;
    return { base_url: entry.base_url ?? vertexBaseUrl(entry.region), strip_attribution: false, bedrock: null, vertex: { region: entry.region, project: entry.project, credentials_file } };
  },
  genaiName: 'gcp.vertex_ai',
  packages: ['google-auth-library'],
  credentials(p) {
    if (!p.vertex) return null;
    return {
      ...(googleCredentialStatus()[p.name] ?? {
        source: p.vertex.credentials_file ? `google credentials file ${p.vertex.credentials_file}` : 'google application default credentials',
        expires_at: null,
      }),
    };
  },
  type: 'vertex',
  local(req) {
    if (req.endpoint !== 'models') return null;
    const err = new NotSupportedError("the route's provider is Google Vertex AI, which has no model list (GET /v1/models) through this gateway");
    return { status: err.status, headers: { 'content-type': 'application/json' }, body: errorBody(err) };
  },
  request(req, provider, model) {
    const v = provider.vertex!;
    const counting = req.endpoint === 'count_tokens';
    const { model: _model, ...rest } = req.decision.body;
    const version = apiVersion(req.headers, VERTEX_ANTHROPIC_VERSION);
    const vertexBody = counting ? { ...req.decision.body, model, anthropic_version: version } : { anthropic_version: version, ...rest };
    const body = serializeBody(vertexBody, req.body);
    const target = counting ? 'count-tokens:rawPredict' : `${encodeURIComponent(model)}:${req.stream ? 'streamRawPredict' : 'rawPredict'}`;
    const pathAndQuery = `/v1/projects/${encodeURIComponent(v.project)}/locations/${encodeURIComponent(v.region)}/publishers/anthropic/models/${target}`;
    const betas = provider.betas === null ? null : acceptedBetas(req.headers['anthropic-beta'], provider.betas);
    const tokens = googleTokensFor(provider.name, v.credentials_file);
    return {
      method: 'POST',
      pathAndQuery,
      body,
      headers: () => {
        const h: Record<string, string> = { 'content-type': 'application/json', 'content-length': String(body.length) };
        const beta = betas ? betas.kept.join(',') : req.headers['anthropic-beta'];
        if (beta) h['anthropic-beta'] = Array.isArray(beta) ? beta.join(',') : beta;
        for (const [name, value] of Object.entries(req.decision.headers.set)) h[name] = value;
        return h;
      },
      signing: () => 'google-oauth',
      sign: async (headers) => ({ ...headers, authorization: `Bearer ${await tokens.token()}` }),
      dropped: betas ? betas.dropped.map((b) => `anthropic-beta: ${b}`) : [],
    };
  },
  async answer(answer, provider) {
    if (answer.statusCode < 400) return answer;
    const raw = await readText(answer.body);
    let message = raw.slice(0, 500);
    let type = errorTypeForStatus(answer.statusCode);
    try {
      const j = JSON.parse(raw) as { type?: string; error?: { type?: string; message?: string; status?: string } } | Array<{ error?: { message?: string; status?: string } }>;
      const e = Array.isArray(j) ? j[0]?.error : j.error;
      if (e?.message) message = e.status ? `${e.status}: ${e.message}` : e.message;
      if (!Array.isArray(j) && j.type === 'error' && j.error?.type) type = j.error.type as typeof type;
    } catch {
      // not JSON: keep the text
    }
    const body = JSON.stringify({ type: 'error', error: { type, message: `provider "${provider.name}" (Google Vertex AI) answered ${answer.statusCode}: ${message}` } });
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (answer.headers['retry-after']) headers['retry-after'] = String(answer.headers['retry-after']);
    return { statusCode: answer.statusCode, headers, body: Readable.from([Buffer.from(body)]) };
  },
};
