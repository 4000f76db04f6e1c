/**
 * Rule evaluation: rules run top to bottom; every matching rule applies its actions; for a single-valued
 * setting the first rule that sets it wins and later ones are reported as shadowed; throttles accumulate;
 * `deny` ends evaluation; `final: true` ends it after that rule (DESIGN §4). Pure: no I/O. It is async
 * only because JSONata 2.x evaluates asynchronously. The same function backs the proxy and `dry-run`.
 */
import type { RequestContext } from './context.js';
import { DecisionDraft, type Decision, type RuleTrace } from './decision.js';
import type { CompiledRule, RuleSet } from './load.js';
import type { MatchResult } from './matchers.js';

async function firstFailure(rule: CompiledRule, rc: RequestContext): Promise<MatchResult> {
  for (const m of rule.matchers) {
    const r = m.async ? await m.test(rc) : (m.test(rc) as MatchResult);
    if (r) return r;
  }
  return null;
}

/**
 * Evaluates `rules` against one request.
 * @param defaultProvider provider used when no rule routes the request.
 * @returns the decision; `denied` or `error` set means the request must not be forwarded.
 */
export async function evaluate(rules: RuleSet, rc: RequestContext, defaultProvider: string): Promise<Decision> {
  const draft = new DecisionDraft(rc.body);
  const traces: RuleTrace[] = [];
  let endedBy: string | null = null;
  for (const rule of rules.rules) {
    const trace: RuleTrace = { id: rule.id, file: rule.file, matched: false, actions: [] };
    traces.push(trace);
    if (endedBy) {
      trace.reason = `not evaluated: ${endedBy}`;
      continue;
    }
    const failed = await firstFailure(rule, rc);
    if (failed) {
      trace.reason = failed.reason;
      if (failed.warning) draft.warnings.push({ rule: rule.id, message: failed.reason });
      continue;
    }
    trace.matched = true;
    for (const a of rule.actions) {
      if (draft.stopped) {
        trace.actions.push({ action: a.name, applied: false });
        continue;
      }
      trace.actions.push(await a.module.apply(a.compiled, rc, draft, rule.id));
    }
    if (draft.denied) endedBy = `rule "${rule.id}" denied the request`;
    else if (draft.error) endedBy = `rule "${rule.id}" failed`;
    else if (rule.final) endedBy = `rule "${rule.id}" is final`;
  }
  return draft.finish(rules.version, traces, rc.model, defaultProvider);
}
