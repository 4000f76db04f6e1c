/**
 * The model catalogue behind `GET /v1/models`: the models a client can reach through this gateway's routes,
 * answered from the configuration without an upstream call whenever the configuration names models — the
 * exact model ids in rules' `match.model` and the requested names in providers' `models` maps. Each name is
 * put through the rules as a request from this client would be (its key, tags and headers), and listed when
 * it reaches a configured provider without being denied. When nothing names a model, the default provider's
 * own list is passed through (the gateway routes every model there unchanged). A signed-in user sees only what
 * their policy allows, and the exact names it lists.
 *
 * Shape: Anthropic's list models answer (https://platform.claude.com/docs/en/api/models/list) — `data` of
 * `{ type: "model", id, display_name, created_at }`, `has_more`, `first_id`, `last_id`; `limit` (1–1000,
 * default 20), `after_id`, `before_id`. Claude Code fills its `/model` picker from it when
 * `CLAUDE_CODE_ENABLE_GATEWAY_MODEL_DISCOVERY=1`, keeping ids that start with `claude` or `anthropic`
 * (code.claude.com/docs/en/llm-gateway-protocol, "Model discovery").
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { GatewayConfig } from '../config.js';
import { InvalidRequestError, UnknownModelError } from '../errors.js';
import { buildContext } from './context.js';
import { evaluate } from './evaluate.js';
import type { RuleSet } from './load.js';
import { displayName, type ModelInfo, modelIdOf } from '../upstream/providers/models.js';

export { displayName, type ModelInfo, modelIdOf };

/** Who is asking: the catalogue is per client (rules may match on key, tags and headers). */
export interface Asker {
  clientId?: string;
  clientTags?: Record<string, string>;
  /** A signed-in user's groups (rules may match on them). */
  groups?: string[];
  /** A signed-in user's policy: which models it allows, and the exact names it lists (candidates too). */
  policy?: { allows: (model: string) => boolean; listed: string[] };
  headers: IncomingHttpHeaders;
}

/** Model names the configuration mentions, in rule order then provider order, each once. */
export function catalogueCandidates(rules: RuleSet, config: Pick<GatewayConfig, 'providers'>): string[] {
  const names = new Set<string>();
  for (const rule of rules.rules) for (const m of rule.matchers) for (const id of m.literals ?? []) names.add(id);
  for (const p of Object.values(config.providers)) for (const id of Object.keys(p.models)) names.add(id);
  return [...names];
}

/**
 * The models `asker` can reach, or null when the configuration names none (pass the upstream's list through).
 * A name is reachable when the rules route it to a configured provider and no rule denies it.
 */
export async function reachableModels(rules: RuleSet, config: GatewayConfig, asker: Asker): Promise<ModelInfo[] | null> {
  const candidates = [...new Set([...catalogueCandidates(rules, config), ...(asker.policy?.listed ?? [])])];
  if (candidates.length === 0) return null;
  const out: ModelInfo[] = [];
  for (const id of candidates) {
    if (asker.policy && !asker.policy.allows(id)) continue;
    const body = { model: id, max_tokens: 1, messages: [] };
    const rc = buildContext({ path: '/v1/messages', body, headers: asker.headers, bodyBytes: 0, clientId: asker.clientId, clientTags: asker.clientTags, groups: asker.groups });
    const d = await evaluate(rules, rc, config.default_provider);
    if (d.denied || d.error || !config.providers[d.route.provider]) continue;
    out.push({ type: 'model', id, display_name: displayName(id), created_at: rules.loadedAt });
  }
  return out;
}

/**
 * One page of the list, as `GET /v1/models?limit=&after_id=&before_id=` asks.
 * @throws InvalidRequestError when `limit` is not an integer from 1 to 1000, or both ids are given.
 */
export function listPage(models: ModelInfo[], query: URLSearchParams): { data: ModelInfo[]; has_more: boolean; first_id: string | null; last_id: string | null } {
  const rawLimit = query.get('limit');
  const limit = rawLimit === null ? 20 : Number(rawLimit);
  if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new InvalidRequestError(`limit must be an integer from 1 to 1000, got "${rawLimit}"`);
  const after = query.get('after_id');
  const before = query.get('before_id');
  if (after !== null && before !== null) throw new InvalidRequestError('give after_id or before_id, not both');
  let data: ModelInfo[];
  let hasMore: boolean;
  if (before !== null) {
    const end = models.findIndex((m) => m.id === before);
    const upto = end === -1 ? 0 : end;
    data = models.slice(Math.max(0, upto - limit), upto);
    hasMore = upto - limit > 0;
  } else {
    const start = after === null ? 0 : models.findIndex((m) => m.id === after) + 1;
    const from = after !== null && start === 0 ? models.length : start;
    data = models.slice(from, from + limit);
    hasMore = from + limit < models.length;
  }
  return { data, has_more: hasMore, first_id: data[0]?.id ?? null, last_id: data.at(-1)?.id ?? null };
}

/**
 * The answer to `GET /v1/models[/{id}]` (path and query as the client sent them), or null to ask the upstream.
 * @throws UnknownModelError (404) for `/v1/models/{id}` that this client cannot reach.
 * @throws InvalidRequestError (400) for a bad page query.
 */
export async function modelsAnswer(rules: RuleSet, config: GatewayConfig, asker: Asker, pathAndQuery: string): Promise<unknown | null> {
  const models = await reachableModels(rules, config, asker);
  if (models === null) return null;
  const url = new URL(pathAndQuery, 'http://gateway');
  const id = modelIdOf(pathAndQuery);
  if (id !== null) {
    const found = models.find((m) => m.id === id);
    if (!found) throw new UnknownModelError(id);
    return found;
  }
  return listPage(models, url.searchParams);
}
