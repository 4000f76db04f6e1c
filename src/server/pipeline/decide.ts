/**
 * Stage "decide" (DESIGN §3 step 3): the request context, then the rules into a Decision (pure; the same
 * function backs dry-run). Rule warnings are logged once per rule set.
 */
import type { SecretFindingsExtra } from '../../actions/scan_secrets/index.js';
import { buildContext } from '../../rules/context.js';
import { ModelNotAllowedError } from '../../errors.js';
import { DecisionDraft, type Decision } from '../../rules/decision.js';
import { evaluate } from '../../rules/evaluate.js';
import { requestFacts } from '../../usage/facts.js';
import { decisionHeader, traceOf } from '../traces.js';
import type { Exchange, Stage } from './exchange.js';

/** The decision for endpoints rules do not apply to (GET /v1/models): the default provider, body untouched. */
function noRulesDecision(version: string, provider: string, body: Record<string, unknown>): Decision {
  return new DecisionDraft(body).finish(version, [], '', provider);
}

export const decide: Stage = async (x, next) => {
  await decideInto(x);
  return next(); // this stage holds nothing while the answer streams
};

/**
 * Keeps what explains the decision: the rules version and the request facts for the usage record (replay),
 * the full trace in the ring (/admin/requests/{id}), and the x-switchyard-decision header when it is on for
 * this client.
 */
function trace(x: Exchange, d: Decision): void {
  const { config, rules } = x.snapshot;
  x.rulesVersion = rules.version;
  if (x.deps.ledger) x.facts = requestFacts(x.rc!, x.raw?.length ?? 0, rules.headersRead);
  x.deps.traces.resize(config.trace.requests);
  x.deps.traces.add(traceOf(d, x.id, x.clientId, x.log.session_id ?? null));
  if (x.client?.decision_header ?? config.trace.decision_header) {
    const provider = config.providers[d.route.provider];
    x.res.setHeader('x-switchyard-decision', decisionHeader(d, provider?.models[d.route.model] ?? d.route.model));
  }
}

/** Builds the context and the decision into the exchange. */
async function decideInto(x: Exchange): Promise<void> {
  const { config, rules } = x.snapshot;
  const rc = (x.rc = buildContext({
    path: x.log.path,
    body: x.body,
    headers: x.req.headers,
    bodyBytes: x.raw?.length ?? 0,
    clientId: x.clientId,
    clientTags: x.client?.tags,
    groups: x.user?.groups,
    projectHeader: config.attribution.project_header,
  }));
  // A signed-in user's policy names the models they may use (login/policy.ts).
  if (x.user && x.login && rc.model && x.endpoint !== 'models') {
    const allowed = x.login.policies(config.policies).models(x.user);
    if (!allowed.allows(rc.model)) throw new ModelNotAllowedError(rc.model, allowed.name, x.clientId);
  }
  x.log.model = rc.model || undefined;
  x.requestedModel = rc.model || null;
  if (x.log.session_id === null) x.log.session_id = rc.session.id;
  // Who sent it is kept for the usage record only (parsing metadata.user_id): not read when the ledger is off.
  if (x.deps.ledger) x.userId = rc.user.id;
  const d = (x.decision = x.endpoint === 'models' ? noRulesDecision(rules.version, config.default_provider, x.body) : await evaluate(rules, rc, config.default_provider));
  for (const w of d.warnings) {
    x.deps.warnOnce(`${rules.version}\0${w.rule}`, `rule "${w.rule}": ${w.message} (logged once per rule set)`, { rule: w.rule, rules_version: rules.version });
  }
  x.rules = d.rules.filter((r) => r.matched).map((r) => r.id);
  x.tags = d.tags;
  const found = d.extra.secret_findings as SecretFindingsExtra | undefined;
  x.secretFindings = found?.counts ?? null;
  if (found && !x.deps.dryRun) void x.deps.notifier.secretsFound(found, { request_id: x.id, session_id: x.log.session_id ?? null, user_id: rc.user.id, client_id: x.clientId });
  if (x.endpoint !== 'models') trace(x, d);
  for (const [name, detail] of Object.entries(d.extra)) x.deps.log.debug({ request_id: x.id, [name]: detail }, 'action detail');
  x.log.upstream = d.route.provider;
  x.log.upstream_model = d.route.model || undefined;
}
