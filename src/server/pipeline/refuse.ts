/**
 * Stage "refuse" (DESIGN §3): answers here what must not, or need not, go upstream — `serve --dry-run`
 * (the decision and exactly what would be sent), a `deny` rule, a rule that failed, `GET /v1/models` when the
 * configuration names the models (see rules/catalogue.ts), and what the provider's adapter answers itself (a
 * token-count estimate for a provider without one).
 */
import { answerModelListFromCache } from './model-list.js';
import { DeniedError, RuleError } from '../../errors.js';
import { modelsAnswer } from '../../rules/catalogue.js';
import { dryRunReport } from '../../rules/report.js';
import { prepareUpstream } from '../../upstream/prepare.js';
import { adapterFor, type ClientRequest } from '../../upstream/providers/index.js';
import type { Exchange, Stage } from './exchange.js';
import { sendJson } from './record.js';
import { fileOwner } from './files.js';

/** What the provider adapters see of this request. */
export function clientRequest(x: Exchange): ClientRequest {
  return { endpoint: x.endpoint, pathAndQuery: x.pathAndQuery, headers: x.req.headers, raw: x.raw, body: x.body, decision: x.decision!, stream: x.rc!.stream };
}

export const refuse: Stage = async (x, next) => {
  if (await answeredHere(x)) return;
  if (x.endpoint === 'models' && (await catalogue(x))) return;
  return next();
};

/** `GET /v1/models[/{id}]` from the route table; false when the configuration names no model. */
async function catalogue(x: Exchange): Promise<boolean> {
  let policy: { allows: (model: string) => boolean; listed: string[] } | undefined;
  if (x.user && x.login) {
    const policies = x.login.policies(x.config.policies);
    const listed = policies.listedModels(x.user);
    if (listed) policy = { allows: policies.models(x.user).allows, listed };
  }
  const answer = await modelsAnswer(x.snapshot.rules, x.config, { clientId: x.clientId, clientTags: x.client?.tags, groups: x.user?.groups, policy, headers: x.req.headers }, x.pathAndQuery);
  if (answer === null) {
    // The provider's own list is the catalogue: a policy's globs filter it, from the cache or as it comes back (relay).
    if (!policy) return false;
    if (answerModelListFromCache(x, policy.allows)) return true;
    x.modelFilter = policy.allows;
    return false;
  }
  sendJson(x, answer);
  return true;
}

/** Answers the request here when it must not or need not go upstream; true when it did. */
async function answeredHere(x: Exchange): Promise<boolean> {
  const d = x.decision!;
  if (x.deps.dryRun) {
    const prepared = prepareUpstream(x.config, clientRequest(x), x.rc!.estimate.input_tokens);
    const files = await fileOwner(x);
    const report = JSON.stringify({ ...dryRunReport(d, prepared), ...(files ? { files: { ids: files.ids, provider: files.owner.provider, key: files.owner.key } } : {}) }, null, 2);
    x.res.writeHead(200, { 'content-type': 'application/json', 'x-switchyard-dry-run': 'true', 'x-switchyard-request-id': x.id });
    x.res.end(report);
    return true;
  }
  if (d.denied) throw new DeniedError(d.denied.rule, d.denied.status, d.denied.message);
  if (d.error) throw new RuleError(d.error.rule, d.error.message);
  const provider = x.config.providers[d.route.provider];
  const local = provider ? adapterFor(provider).local(clientRequest(x), x.rc!.estimate.input_tokens) : null;
  if (local) {
    // Every answer carries a request-id (code.claude.com/docs/en/llm-gateway-protocol): here the gateway's own.
    x.res.writeHead(local.status, { ...local.headers, 'request-id': x.id, 'x-switchyard-request-id': x.id });
    x.res.end(local.body);
    return true;
  }
  return false;
}
