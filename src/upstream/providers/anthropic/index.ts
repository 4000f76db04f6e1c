/**
 * `type: anthropic`: the Anthropic Messages API or a compatible endpoint. The client's path, headers and
 * bytes go through as they came (DESIGN §6), less hop-by-hop headers and the client's credential when a
 * provider key is used; the body is re-serialized only when a rule changed it or this provider knows the
 * model under another name. Answers pass through untouched. A provider with `betas:` (an Anthropic-compatible
 * upstream that rejects unknown betas) gets only the listed `anthropic-beta` values; the others are reported
 * as dropped, so dry-run shows them.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { scannedOf, serializeBody, withMember } from '../../../body/json-scan.js';
import { upstreamRequestHeaders } from '../../headers.js';
import { type ProviderAdapter, requiredBaseUrl } from '../types.js';

/** Splits the client's `anthropic-beta` values (comma-separated, possibly repeated) into accepted and dropped. */
export function acceptedBetas(header: string | string[] | undefined, accepted: readonly string[]): { kept: string[]; dropped: string[] } {
  const values = (Array.isArray(header) ? header : [header ?? ''])
    .flatMap((h) => h.split(','))
    .map((b) => b.trim())
    .filter(Boolean);
  const allow = new Set(accepted);
  return { kept: values.filter((b) => allow.has(b)), dropped: values.filter((b) => !allow.has(b)) };
}

/** The client's `anthropic-version` header (the API version a cloud provider takes in the body), else `fallback`. */
export function apiVersion(headers: IncomingHttpHeaders, fallback: string): string {
  const v = headers['anthropic-version'];
  return (Array.isArray(v) ? v[0] : v) || fallback;
}

export const anthropicAdapter: ProviderAdapter = {
  description: 'the Anthropic Messages API or a compatible endpoint',
  options: ['betas', 'passthrough', 'workspace_id'],
  cloudCredentials: false,
  settle: (name, entry) => ({ base_url: requiredBaseUrl(name, entry), strip_attribution: entry.strip_attribution ?? false, bedrock: null, vertex: null }),
  genaiName: 'anthropic',
  type: 'anthropic',
  local: () => null,
  request(req, provider, model) {
    const { decision } = req;
    let body: Buffer | null = req.raw;
    if (body !== null) {
      const scanned = scannedOf(decision.body);
      if (!decision.bodyChanged && scanned) {
        // Only the model's bytes change: every other byte goes as the client sent it.
        if (decision.body.model !== model) body = withMember(scanned, 'model', model);
      } else if (decision.bodyChanged || decision.body.model !== model) {
        body = serializeBody(decision.body.model === model ? decision.body : { ...decision.body, model }, req.body);
      }
    }
    const length = body === null ? null : body.length;
    const betas = provider.betas === null ? null : acceptedBetas(req.headers['anthropic-beta'], provider.betas);
    return {
      method: req.endpoint === 'models' ? 'GET' : 'POST',
      pathAndQuery: req.pathAndQuery,
      body,
      headers: (credential) => {
        const headers = upstreamRequestHeaders(req.headers, credential, decision.headers, length);
        // Claude Platform on AWS takes the workspace on every request; the provider's keys belong to this one.
        if (provider.workspace_id) headers['anthropic-workspace-id'] = provider.workspace_id;
        if (betas && !decision.headers.set['anthropic-beta']) {
          if (betas.kept.length) headers['anthropic-beta'] = betas.kept.join(',');
          else delete headers['anthropic-beta'];
        }
        return headers;
      },
      dropped: betas ? betas.dropped.map((b) => `anthropic-beta: ${b}`) : [],
    };
  },
  answer: async (answer) => answer,
};
