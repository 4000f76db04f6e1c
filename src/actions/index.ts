/**
 * The action registry: every action a rule may use, by the name used in rule files. Adding an action is
 * adding a module here; its schema is assembled into rules.schema.json automatically.
 */
import { budget } from './budget/index.js';
import { deny } from './deny.js';
import { removeHeaders, setHeaders } from './headers.js';
import { injectCache } from './inject_cache.js';
import { routeTo } from './route_to.js';
import { tagBilling } from './tag_billing.js';
import { throttle } from './throttle/index.js';
import { transform } from './transform.js';
import type { ActionModule, EnforcingAction } from './types.js';

export const ACTIONS: ReadonlyMap<string, ActionModule<unknown>> = new Map(
  ([routeTo, injectCache, tagBilling, throttle, budget, setHeaders, removeHeaders, deny, transform] as ActionModule<never>[]).map((a) => [a.name, a as ActionModule<unknown>]),
);

/** The enforcing actions, in the order the pipeline admits them (budgets first: a spent budget takes no throttle tokens). */
export const ENFORCING: readonly EnforcingAction[] = [budget as EnforcingAction, throttle as EnforcingAction];
