/**
 * Budgets survive restarts: at start-up, each budget's spend in its current period is recomputed from the
 * usage ledger (the records of requests its rule matched, grouped by the budget's scope value as admission
 * computes it) and put back into the state store with `seedSpend`, which never lowers a total the store
 * already holds (a Redis shared by replicas keeps its own, which counts everyone).
 */
import type { RuleSet } from '../../rules/load.js';
import type { StateStore } from '../../state/store.js';
import type { RecordStore, StoredSpendLimit } from '../../usage/ledger.js';
import { limitActive, limitBudget } from '../../usage/spend-limits.js';
import type { UsageRecord } from '../../usage/record.js';
import { recordScopeValue } from '../scope.js';
import { budgetExpiry, budgetKey, periodOf } from './enforce.js';
import type { BudgetSpec } from './spec.js';

/**
 * Recomputes every budget's current-period spend from the ledger and seeds the state store.
 * @returns the number of running totals seeded.
 * @throws what the ledger's query throws (the caller logs it and starts with the store's totals).
 */
export async function seedBudgets(rules: RuleSet, ledger: Pick<RecordStore, 'costByDay'>, state: StateStore, now = new Date(), limits: StoredSpendLimit[] = []): Promise<number> {
  const budgets: Array<Omit<BudgetSpec, 'rule'> & { rule: string; applies?: (r: UsageRecord) => boolean }> = [];
  for (const rule of rules.rules) {
    for (const a of rule.actions) if (a.name === 'budget') budgets.push({ ...(a.compiled as Omit<BudgetSpec, 'rule'>), rule: rule.id });
  }
  // Limits set through the admin API count every request of their user, project or organization.
  for (const l of limits) {
    const b = limitActive(l, now.toISOString()) ? limitBudget(l) : null;
    if (b) budgets.push({ ...b, applies: (r: UsageRecord) => l.scope_type === 'organization' || recordScopeValue(b.scope, r) === l.scope_id });
  }
  if (budgets.length === 0) return 0;
  const periods = budgets.map((b) => periodOf(b.per, now));
  const since = new Date(Math.min(...periods.map((p) => p.start.getTime())));
  // Grouped by day in the database: a month of a busy team's records is millions of rows, its groups thousands.
  const records = (await ledger.costByDay(since.toISOString())) as UsageRecord[];
  const totals = new Map<string, { usd: number; expires: number }>();
  budgets.forEach((b, i) => {
    const { start, end } = periods[i]!;
    const from = start.toISOString();
    for (const r of records) {
      if (!r.cost_usd || r.time < from || !(b.applies ? b.applies(r) : r.rules.includes(b.rule))) continue;
      const key = budgetKey(b, recordScopeValue(b.scope, r), start);
      const t = totals.get(key) ?? { usd: 0, expires: budgetExpiry(end) };
      t.usd += r.cost_usd;
      totals.set(key, t);
    }
  });
  await Promise.all([...totals].map(([key, t]) => state.seedSpend(key, t.usd, t.expires)));
  return totals.size;
}
