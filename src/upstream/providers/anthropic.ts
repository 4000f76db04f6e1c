/**
 * `type: anthropic`: the Anthropic Messages API or a compatible endpoint. The client's path, headers and
 * bytes go through as they came (DESIGN §6), less hop-by-hop headers and the client's credential when a
 * provider key is used; the body is re-serialized only when a rule changed it or this provider knows the
 * model under another name. Answers pass through untouched.
 */
import { scannedOf, serializeBody, withMember } from '../../server/json-scan.js';
import { upstreamRequestHeaders } from '../headers.js';
import type { ProviderAdapter } from './types.js';

export const anthropicAdapter: ProviderAdapter = {
  type: 'anthropic',
  local: () => null,
  request(req, _provider, model) {
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
    return {
      method: req.endpoint === 'models' ? 'GET' : 'POST',
      pathAndQuery: req.pathAndQuery,
      body,
      headers: (credential) => upstreamRequestHeaders(req.headers, credential, decision.headers, length),
      dropped: [],
    };
  },
  answer: async (answer) => answer,
};
