/**
 * `budget`: a spending limit in USD per calendar day, week (from Monday) or month, UTC, per scope value
 * (like throttle's scopes). Checked at admission against running totals kept in the state store (so
 * replicas share them), which grow by each finished request's cost. A spent budget answers 429 with
 * `x-should-retry: false` (Claude Code then does not retry) and a message naming the budget, the amount
 * spent and when it resets; `warn_at` logs once per period and adds `x-switchyard-budget-warning` to answers.
 * Admission is in src/server/admission.ts.
 */
import { registerPayload } from '../rules/decision.js';

/** A spending limit that every request matching its rule must be within, as the decision carries it. */
export interface BudgetSpec {
  rule: string;
  scope: string;
  /** USD per period. */
  usd: number;
  per: 'day' | 'week' | 'month';
  /** Fraction of the budget at which a warning is logged (once per period) and sent as a response header. */
  warn_at?: number;
}
import { defineAction } from './types.js';

export const budget = defineAction<Omit<BudgetSpec, 'rule'>>({
  name: 'budget',
  schema: {
    type: 'object',
    additionalProperties: false,
    required: ['scope', 'usd', 'per'],
    description: 'A spending limit per scope value and calendar period (UTC); a spent budget answers 429 with x-should-retry: false.',
    properties: {
      scope: {
        type: 'string',
        pattern: '^(key|client|session|model|global|tag:[a-z][a-z0-9_]*)$',
        description: 'What the budget is per: key / client, session, model, tag:<name>, global (as for throttle).',
      },
      usd: { type: 'number', exclusiveMinimum: 0, description: 'USD per period.' },
      per: { enum: ['day', 'week', 'month'], description: 'Calendar period, UTC: day, week (from Monday) or month.' },
      warn_at: {
        type: 'number',
        exclusiveMinimum: 0,
        exclusiveMaximum: 1,
        description: 'Fraction of the budget (e.g. 0.8) at which a warning is logged once per period and sent as x-switchyard-budget-warning.',
      },
    },
  },
  compile: (params) => params as Omit<BudgetSpec, 'rule'>,
  settings: () => [],
  apply(c, _rc, d, rule) {
    d.payload('budgets').push({ ...c, rule });
    return { action: 'budget', applied: true, detail: { scope: c.scope, usd: c.usd, per: c.per } };
  },
});

declare module '../rules/decision.js' {
  interface DecisionPayloads {
    /** Spending limits, checked by the budgets stage. */
    budgets: BudgetSpec;
  }
}
registerPayload('budgets');
