/**
 * The action registry: every action a rule may use, by the name used in rule files. Adding an action is
 * adding a module here; its schema is assembled into rules.schema.json automatically. Adding an enforcing
 * action (one that admits requests and settles when they end, as throttle and budget do) is one folder and
 * one entry in {@link ENFORCING}: the pipeline (server/proxy.ts) and rule tests run them in that order.
 */
import { budget } from './budget/index.js';
import { deny } from './deny.js';
import { removeHeaders, setHeaders } from './headers.js';
import { injectCache } from './inject_cache.js';
import { routeTo } from './route_to.js';
import { scanSecrets } from './scan_secrets/index.js';
import { tagBilling } from './tag_billing.js';
import { throttle } from './throttle/index.js';
import { transform } from './transform.js';
import type { ActionModule, EnforcingAction } from './types.js';

/** The enforcing actions, in the order the pipeline admits them (budgets first: a spent budget takes no throttle tokens). */
export const ENFORCING: readonly EnforcingAction[] = [budget as EnforcingAction, throttle as EnforcingAction];

export const ACTIONS: ReadonlyMap<string, ActionModule<unknown>> = new Map(
  ([routeTo, injectCache, tagBilling, ...ENFORCING, setHeaders, removeHeaders, deny, transform, scanSecrets] as ActionModule<never>[]).map((a) => [a.name, a as ActionModule<unknown>]),
);
