/** The shape of a `budget` as the decision carries it (shared by the action module, its enforcer and its seed). */

/** A spending limit that every request matching its rule must be within, as the decision carries it. */
export interface BudgetSpec {
  rule: string;
  scope: string;
  /** USD per period. */
  usd: number;
  per: 'day' | 'week' | 'month';
  /** Fraction of the budget at which a warning is logged (once per period) and sent as a response header. */
  warn_at?: number;
  /** Refuse requests once the budget is spent (default true); false: only notify and shape. */
  block?: boolean;
  /** Fractions of the budget (0.5, 0.8, 1) at which `budgets.webhook` is notified, once per scope value and period. */
  notify?: number[];
  /** From `at` (a fraction) of the budget on, requests are sent to `model` instead. */
  shape?: { at: number; model: string };
}

/** The `budget` action: schema, compile, apply, and its enforcer. */
