/**
 * Stage "budgets": every `budget` of the decision must have money left in its period (429 with
 * `x-should-retry: false` naming the budget otherwise); the budgets to charge are kept for the record stage,
 * a budget past `warn_at` adds a warning header, and one past its `shape.at` sends the request to its cheaper
 * model (`x-switchyard-budget-shaped` says so).
 */
import { BudgetsUnverifiedError } from '../../errors.js';
import { checkBudgets } from '../admission.js';
import type { Exchange, Stage } from './exchange.js';

export const budgets: Stage = async (x, next) => {
  const d = x.decision!;
  if (x.deps.spendLimits && x.endpoint !== 'models') {
    try {
      d.budgets = await x.deps.spendLimits.apply(d.budgets, x.rc!);
    } catch (err) {
      if (x.config.budgets.on_ledger_failure === 'closed' && d.budgets.length) throw new BudgetsUnverifiedError(`the spend limits could not be read from the usage ledger (${(err as Error).message})`);
      x.deps.warnOnce('spend-limits-unreadable', 'spend limits could not be read from the usage ledger; serving without them (budgets.on_ledger_failure: open)', { err: (err as Error).message });
    }
  }
  if (d.budgets.length) {
    if (x.deps.budgetGate.unverified) throw new BudgetsUnverifiedError('the usage ledger could not be read at start-up, so the spend of the current periods is unknown');
    await check(x);
  }
  return next();
};

/** Checks the budgets and keeps the ones to charge in the exchange. @throws BudgetSpentError */
async function check(x: Exchange): Promise<void> {
  const checked = await checkBudgets(x.decision!, x.rc!, x.deps.state);
  x.budgetCharges = checked.charges;
  for (const w of checked.warnings) x.deps.warnOnce(w.key, w.message, { request_id: x.id });
  if (checked.warnings.length) x.res.setHeader('x-switchyard-budget-warning', checked.warnings.map((w) => w.message).join('; '));
  if (checked.shape) {
    // Shaped: the route keeps its provider (and fallbacks); the model sent changes, and the client is told.
    const d = x.decision!;
    d.route = { ...d.route, model: checked.shape.model };
    x.log.upstream_model = checked.shape.model;
    x.res.setHeader('x-switchyard-budget-shaped', checked.shape.message);
  }
}
