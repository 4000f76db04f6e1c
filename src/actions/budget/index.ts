/**
 * `budget`: a spending limit in USD per calendar day, week (from Monday) or month, UTC, per scope value
 * (like throttle's scopes, plus user and project). Checked at admission against running totals kept in the
 * state store (so replicas share them), which grow by each finished request's cost. Modes: `block` (default)
 * — a spent budget answers 429 with `x-should-retry: false` (Claude Code then does not retry) and a message
 * naming the budget, the amount spent and when it resets; `notify` — a webhook at thresholds (usage/notify.ts);
 * `shape` — over a threshold, a cheaper model. `warn_at` logs once per period and adds
 * `x-switchyard-budget-warning` to answers.
 * Enforcement (admission and settlement) is in enforce.ts, the start-up seed of running totals in seed.ts.
 */
import { registerPayload } from '../../rules/decision.js';
import type { EnforcingAction } from '../types.js';
import { budgetEnforcer } from './enforce.js';
import type { BudgetSpec } from './spec.js';

export type { BudgetSpec } from './spec.js';

/** The `budget` action: schema, compile, apply, and its enforcer. */
export const budget: EnforcingAction<Omit<BudgetSpec, 'rule'>> = {
  name: 'budget',
  schema: {
    type: 'object',
    additionalProperties: false,
    required: ['scope', 'usd', 'per'],
    description: 'A spending limit per scope value and calendar period (UTC); a spent budget answers 429 with x-should-retry: false.',
    properties: {
      scope: {
        type: 'string',
        pattern: '^(key|client|user|project|session|model|global|tag:[a-z][a-z0-9_]*)$',
        description: 'What the budget is per: key / client, user, project, session, model, tag:<name>, global.',
      },
      usd: { type: 'number', exclusiveMinimum: 0, description: 'USD per period.' },
      per: { enum: ['day', 'week', 'month'], description: 'Calendar period, UTC: day, week (from Monday) or month.' },
      warn_at: {
        type: 'number',
        exclusiveMinimum: 0,
        exclusiveMaximum: 1,
        description: 'Fraction of the budget (e.g. 0.8) at which a warning is logged once per period and sent as x-switchyard-budget-warning.',
      },
      block: { type: 'boolean', description: 'Refuse requests once the budget is spent (default true: 429, x-should-retry: false); false: notify and shape only.' },
      notify: {
        type: 'array',
        minItems: 1,
        uniqueItems: true,
        items: { type: 'number', exclusiveMinimum: 0, maximum: 1, description: 'a fraction of the budget, e.g. 0.8' },
        description: 'Fractions of the budget (e.g. [0.5, 0.8, 1]) at which budgets.webhook in the gateway config gets one notification per scope value and period.',
      },
      shape: {
        type: 'object',
        additionalProperties: false,
        required: ['at', 'model'],
        description: 'From a fraction of the budget on, send requests to a cheaper model.',
        properties: {
          at: { type: 'number', exclusiveMinimum: 0, maximum: 1, description: 'The fraction of the budget from which requests are shaped, e.g. 0.9.' },
          model: { type: 'string', minLength: 1, description: 'The model requests are sent to instead (the route keeps its provider).' },
        },
      },
    },
  },
  compile: (params) => params as Omit<BudgetSpec, 'rule'>,
  settings: () => [],
  apply(c, _rc, d, rule) {
    d.payload('budgets').push({ ...c, rule });
    return {
      action: 'budget',
      applied: true,
      detail: { scope: c.scope, usd: c.usd, per: c.per, ...(c.block === false ? { block: false } : {}), ...(c.notify ? { notify: c.notify } : {}), ...(c.shape ? { shape: c.shape } : {}) },
    };
  },
  enforcer: budgetEnforcer,
};

declare module '../../rules/decision.js' {
  interface DecisionPayloads {
    /** Spending limits, checked by the budgets stage. */
    budgets: BudgetSpec;
  }
}
registerPayload('budgets');
