/**
 * `type: openai`: an OpenAI-compatible Chat Completions server. Messages requests are translated to
 * `POST <base_url>/chat/completions` with a bearer key and only the headers such a server needs; answers
 * (JSON, SSE, errors) are translated back. `GET /v1/models[/{id}]` goes to `<base_url>/models[/{id}]` and the
 * list comes back in Anthropic's shape. Chat Completions
 * has no token counting, so `count_tokens` is answered here with an estimate that says it is one.
 */
import { CHAT_COMPLETIONS_PATH, fromOpenAI, modelsFromOpenAI, openaiHeaders, toChatCompletions } from './wire.js';
import { modelIdOf } from '../models.js';
import { type ProviderAdapter, requiredBaseUrl } from '../types.js';

export const openaiAdapter: ProviderAdapter = {
  description: 'an OpenAI-compatible Chat Completions server; requests and answers are translated',
  options: ['strip_attribution', 'reasoning_effort', 'reasoning_as_thinking'],
  cloudCredentials: false,
  // Claude Code's attribution line defeats an OpenAI-compatible server's prefix cache: dropped unless told otherwise.
  settle: (name, entry) => ({ base_url: requiredBaseUrl(name, entry), strip_attribution: entry.strip_attribution ?? true, bedrock: null, vertex: null }),
  genaiName: 'openai',
  type: 'openai',
  local(req, estimateTokens) {
    if (req.endpoint !== 'count_tokens') return null;
    return { status: 200, headers: { 'content-type': 'application/json', 'x-switchyard-estimate': 'true' }, body: JSON.stringify({ input_tokens: estimateTokens }) };
  },
  request(req, provider, model) {
    if (req.endpoint === 'models') {
      const id = modelIdOf(req.pathAndQuery);
      return {
        method: 'GET',
        pathAndQuery: id === null ? '/models' : `/models/${encodeURIComponent(id)}`,
        body: null,
        headers: (c) => openaiHeaders(c.kind === 'client' ? { kind: 'none' } : c, null, false),
        dropped: [],
      };
    }
    const translated = toChatCompletions(req.decision.body, model, { stripAttribution: provider.strip_attribution, reasoningEffort: provider.reasoning_effort });
    const body = Buffer.from(JSON.stringify(translated.body));
    return {
      method: 'POST',
      pathAndQuery: CHAT_COMPLETIONS_PATH,
      body,
      // The client's own credential is an Anthropic key: never sent to another vendor.
      headers: (c) => openaiHeaders(c.kind === 'client' ? { kind: 'none' } : c, body, req.stream),
      dropped: translated.dropped,
    };
  },
  answer: (answer, provider, req, requestedModel) =>
    req.endpoint === 'messages' ? fromOpenAI(answer, provider, requestedModel) : req.endpoint === 'models' ? modelsFromOpenAI(answer, provider) : Promise.resolve(answer),
};
