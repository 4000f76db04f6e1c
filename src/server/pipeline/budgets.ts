/**
 * Stage "budgets": every `budget` of the decision must have money left in its period (429 with
 * `x-should-retry: false` naming the budget otherwise); the budgets to charge are kept for the record stage,
 * and a budget past `warn_at` adds a warning header.
 */
import { checkBudgets } from '../admission.js';
import type { Exchange, Stage } from './exchange.js';

export const budgets: Stage = async (x, next) => {
  if (x.decision!.budgets.length) await check(x);
  return next();
};

/** Checks the budgets and keeps the ones to charge in the exchange. @throws BudgetSpentError */
async function check(x: Exchange): Promise<void> {
  const checked = await checkBudgets(x.decision!, x.rc!, x.deps.state);
  x.budgetCharges = checked.charges;
  for (const w of checked.warnings) x.deps.warnOnce(w.key, w.message, { request_id: x.id });
  if (checked.warnings.length) x.res.setHeader('x-switchyard-budget-warning', checked.warnings.map((w) => w.message).join('; '));
}
