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

/**
 * The first condition of `rule` that does not hold, or null. Synchronous unless a condition needs jsonata
 * itself; most answer synchronously, and then evaluation costs no promise per rule.
 */
function firstFailure(rule: CompiledRule, rc: RequestContext, from = 0): MatchResult | Promise<MatchResult> {
  for (let i = from; i < rule.matchers.length; i++) {
    const t = rule.matchers[i]!.test(rc);
    if (t instanceof Promise) return t.then((r) => r ?? firstFailure(rule, rc, i + 1));
    if (t) return t;
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
    const pending = firstFailure(rule, rc);
    const failed = pending instanceof Promise ? await pending : pending;
    if (failed) {
      trace.reason = failed.reason;
      if (failed.fatal) {
        draft.error = { rule: rule.id, message: failed.reason };
        endedBy = `rule "${rule.id}" failed`;
      } else if (failed.warning) draft.warnings.push({ rule: rule.id, message: failed.reason });
      continue;
    }
    trace.matched = true;
    for (const a of rule.actions) {
      if (draft.stopped) {
        trace.actions.push({ action: a.name, applied: false });
        continue;
      }
      const applied = a.module.apply(a.compiled, rc, draft, rule.id);
      trace.actions.push(applied instanceof Promise ? await applied : applied);
    }
    if (draft.denied) endedBy = `rule "${rule.id}" denied the request`;
    else if (draft.error) endedBy = `rule "${rule.id}" failed`;
    else if (rule.final) endedBy = `rule "${rule.id}" is final`;
  }
  return draft.finish(rules.version, traces, rc.model, defaultProvider);
}
