/**
 * Budget enforcement: every `budget` of the decision (and every spend limit set through the admin API that
 * applies to the request) must have money left in its period, else 429 with `x-should-retry: false` naming
 * the budget. A budget past `warn_at` adds `x-switchyard-budget-warning`; one past its `shape.at` sends the
 * request to its cheaper model (a new route; `x-switchyard-budget-shaped` says so). The hold adds the
 * request's cost to each running total when it ends and notifies the thresholds it crossed.
 */
import { BudgetSpentError, BudgetsUnverifiedError } from '../../errors.js';
import type { RequestContext } from '../../rules/context.js';
import type { Decision } from '../../rules/decision.js';
import type { StateStore } from '../../state/store.js';
import { scopeValue } from '../scope.js';
import type { EnforceDeps, Enforcer, Hold } from '../types.js';
import type { BudgetSpec } from './spec.js';

/** The calendar period (UTC) containing `now`: a day, a week from Monday, or a month. */
export function periodOf(per: BudgetSpec['per'], now: Date): { start: Date; end: Date } {
  const y = now.getUTCFullYear();
  const m = now.getUTCMonth();
  const d = now.getUTCDate();
  if (per === 'month') return { start: new Date(Date.UTC(y, m, 1)), end: new Date(Date.UTC(y, m + 1, 1)) };
  if (per === 'week') {
    const sinceMonday = (now.getUTCDay() + 6) % 7;
    return { start: new Date(Date.UTC(y, m, d - sinceMonday)), end: new Date(Date.UTC(y, m, d - sinceMonday + 7)) };
  }
  return { start: new Date(Date.UTC(y, m, d)), end: new Date(Date.UTC(y, m, d + 1)) };
}

/** The state-store key of a budget's running total for one scope value and the period starting at `start`. */
export function budgetKey(b: Pick<BudgetSpec, 'rule' | 'scope'>, value: string, start: Date): string {
  return `budget:${b.rule}:${b.scope}:${value}:${start.toISOString().slice(0, 10)}`;
}

/** When a budget total for the period ending at `end` may be forgotten: a day after the period, epoch ms. */
export function budgetExpiry(end: Date): number {
  return end.getTime() + 86_400_000;
}

/** Running-total keys a request's cost is added to when it finishes, with what notifying needs. */
export interface BudgetCharge {
  key: string;
  expiresAtMs: number;
  budget: BudgetSpec;
  /** The scope value it counts under, and its current period. */
  value: string;
  period: { start: Date; end: Date };
}

const usd = (n: number) => `$${n.toFixed(n < 1 ? 4 : 2)}`;

/**
 * Checks every budget of the decision against its running total.
 * @returns the keys to charge when the request finishes, warnings for budgets past `warn_at`, and the first
 * budget past its `shape.at` (the model to send the request to instead), if any.
 * @throws BudgetSpentError (429, x-should-retry: false) naming the budget, the amount spent and the reset time.
 */
export async function checkBudgets(
  decision: Pick<Decision, 'budgets' | 'route' | 'tags'>,
  rc: RequestContext,
  store: StateStore,
  now = new Date(),
): Promise<{ charges: BudgetCharge[]; warnings: Array<{ key: string; message: string }>; shape: { rule: string; model: string; message: string } | null }> {
  const charges: BudgetCharge[] = [];
  const warnings: Array<{ key: string; message: string }> = [];
  let shape: { rule: string; model: string; message: string } | null = null;
  for (const b of decision.budgets) {
    const value = scopeValue(b.scope, rc, decision);
    const { start, end } = periodOf(b.per, now);
    const key = budgetKey(b, value, start);
    const spent = await store.spend(key);
    if (spent >= b.usd && b.block !== false) {
      throw new BudgetSpentError(
        b.rule,
        `budget "${b.rule}" of ${usd(b.usd)} per ${b.per} for ${b.scope} "${value}" is spent (${usd(spent)}); it resets at ${end.toISOString()}`,
        Math.max(1, Math.ceil((end.getTime() - now.getTime()) / 1000)),
      );
    }
    if (b.warn_at !== undefined && spent >= b.warn_at * b.usd) {
      warnings.push({ key, message: `budget "${b.rule}": ${usd(spent)} of ${usd(b.usd)} per ${b.per} spent for ${b.scope} "${value}" (${Math.round((spent / b.usd) * 100)}%)` });
    }
    if (b.shape && !shape && spent >= b.shape.at * b.usd) {
      shape = { rule: b.rule, model: b.shape.model, message: `budget "${b.rule}" at ${Math.round((spent / b.usd) * 100)}% for ${b.scope} "${value}": sent to ${b.shape.model}` };
    }
    charges.push({ key, expiresAtMs: budgetExpiry(end), budget: b, value, period: { start, end } });
  }
  return { charges, warnings, shape };
}

/**
 * The budgets a request is held to: the decision's, with the admin API's spend limits applied (read from
 * memory; never waits on the ledger). When the limits could never be read, `budgets.on_ledger_failure`
 * decides: `closed` refuses requests under a budget (503), `open` serves with the rules' budgets.
 * @throws BudgetsUnverifiedError (503) when failing closed.
 */
function budgetsOf(a: Parameters<Enforcer['admit']>[0], deps: EnforceDeps): BudgetSpec[] {
  const d = a.decision;
  if (!deps.spendLimits) return d.budgets;
  try {
    return deps.spendLimits.apply(d.budgets, a.rc);
  } catch (err) {
    if (a.config.budgets.on_ledger_failure === 'closed' && d.budgets.length) throw new BudgetsUnverifiedError(`the spend limits could not be read from the usage ledger (${(err as Error).message})`);
    deps.warnOnce('spend-limits-unreadable', 'spend limits could not be read from the usage ledger; serving without them (budgets.on_ledger_failure: open)', { err: (err as Error).message });
    return d.budgets;
  }
}

/** The budget enforcer: checks at admission; the hold adds the request's cost to the running totals and notifies. */
export function budgetEnforcer(deps: EnforceDeps): Enforcer {
  return {
    async admit(a): Promise<Hold | null> {
      const budgets = budgetsOf(a, deps);
      if (!budgets.length) return null;
      if (deps.budgetGate.unverified) throw new BudgetsUnverifiedError('the usage ledger could not be read at start-up, so the spend of the current periods is unknown');
      const checked = await checkBudgets({ ...a.decision, budgets }, a.rc, deps.state, a.now);
      for (const w of checked.warnings) deps.warnOnce(w.key, w.message, { request_id: a.requestId });
      const headers: Record<string, string> = {};
      if (checked.warnings.length) headers['x-switchyard-budget-warning'] = checked.warnings.map((w) => w.message).join('; ');
      let route: Decision['route'] | undefined;
      if (checked.shape) {
        // Shaped: the route keeps its provider (and fallbacks); the model sent changes, and the client is told.
        route = { ...a.decision.route, model: checked.shape.model };
        headers['x-switchyard-budget-shaped'] = checked.shape.message;
      }
      return {
        headers,
        route,
        async settle(end) {
          if (!end.costUsd) return;
          const cost = end.costUsd;
          await Promise.all(
            checked.charges.map((c) =>
              deps.state
                .addSpend(c.key, cost, c.expiresAtMs)
                .then((total) => (c.budget.notify ? deps.notifier.reached(c.budget, c.value, total, c.period, c.expiresAtMs) : undefined))
                .catch((err: Error) => deps.log.error({ request_id: a.requestId, err: err.message }, 'could not add to a budget total')),
            ),
          );
        },
      };
    },
  };
}
