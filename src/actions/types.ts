/**
 * The contract every action module fulfils: its parameter schema (assembled into rules.schema.json),
 * a compile step run once at load, and an apply step run per request that writes into the decision.
 */
import type { DecisionDraft, ActionTrace, Decision } from '../rules/decision.js';
import type { GatewayConfig } from '../config.js';
import type { Logger } from '../log.js';
import type { StateStore } from '../state/store.js';
import type { RequestContext } from '../rules/context.js';
import type { CompileContext } from '../rules/compile-context.js';

export type { CompileContext };

/** A single-valued setting an action writes; `always` is false when it may not write it (an expression). */
export interface SettingWrite {
  setting: string;
  always: boolean;
}

/** One action: `- name: params` in a rule's `actions` list. */
export interface ActionModule<C = unknown> {
  /** The key used in rule files, e.g. `route_to`. */
  name: string;
  /** JSON Schema (2020-12) of the parameters; every field has a description. */
  schema: Record<string, unknown>;
  /** Validates what the schema cannot and prepares the per-request work; report problems through `cx.error`. */
  compile(params: unknown, cx: CompileContext): C;
  /** Settings this action writes (first writer wins); empty for actions that accumulate. Used for dead-rule warnings. */
  settings(compiled: C): SettingWrite[];
  /**
   * Member names this action looks for anywhere in a request body (e.g. `cache_control`): the body's one scan
   * records where each occurs ({@link import('../body/json-scan.js').keyOffsets}), so the action finds them
   * without reading every block.
   */
  bodyKeys?: readonly string[];
  /** Applies the action to the draft decision. Pure: no I/O. */
  apply(compiled: C, rc: RequestContext, draft: DecisionDraft, rule: string): ActionTrace | Promise<ActionTrace>;
}

/** Helper to keep an action's compiled type while storing it in the registry. */
export function defineAction<C>(mod: ActionModule<C>): ActionModule<C> {
  return mod;
}

/**
 * How a request ended, as an enforcing action settles it: whether it did work (the upstream answered with
 * something other than 429/529; a refusal anywhere, a failed forward or a rate-limited key did none), the
 * output tokens the upstream reported (0 when unknown) and the request's cost in USD (null: not priced).
 */
export interface RequestEnd {
  worked: boolean;
  outputTokens: number;
  costUsd: number | null;
}

/** What an enforcing action admitted a request with; `settle` runs exactly once when the request ends. */
export interface Hold {
  /** Response headers to add (a budget's warning, a shaping notice). */
  headers?: Record<string, string>;
  /** A new route: the Decision is replaced with this route, never mutated (a budget's shaping). */
  route?: Decision['route'];
  /** Gives back or charges what admission took (tokens refunded or charged, slots freed, spend added). Never throws. */
  settle(end: RequestEnd): Promise<void>;
}

/** One request at admission: its decision (final for this stage), context, id and time. */
export interface Admission {
  decision: Decision;
  rc: RequestContext;
  requestId: string;
  /** Evaluation time (rule tests pass the case's time). */
  now: Date;
  /** The gateway config this request runs under (failure modes read per request, so a reload applies). */
  config: { budgets: Pick<GatewayConfig['budgets'], 'on_ledger_failure'> };
}

/**
 * The enforcement half of an enforcing action (the shape of an Envoy HTTP filter): made once per gateway from
 * long-lived dependencies; `admit` runs before forwarding for every request (including ones whose decision has
 * none of this action's payload: it then returns null at once).
 */
export interface Enforcer {
  /**
   * Admits the request or throws a GatewayError (429 with retry-after, 503 when a dependency's failure mode is
   * to refuse). What it took before refusing it gives back itself.
   * @returns the hold to settle when the request ends, or null when this action took nothing.
   */
  admit(a: Admission): Promise<Hold | null>;
}

/** A budget as the decision carries it (actions/budget). */
type BudgetSpec = Decision['budgets'][number];

/** The long-lived dependencies an enforcer is made from. */
export interface EnforceDeps {
  state: StateStore;
  log: Logger;
  /** Logs `message` once per `key`. */
  warnOnce(key: string, message: string, fields?: Record<string, unknown>): void;
  /** Spend limits set through the admin API (null when the ledger is off). */
  spendLimits: SpendLimitSource | null;
  /** Budget threshold notifications. */
  notifier: { reached(budget: BudgetSpec, value: string, totalUsd: number, period: { start: Date; end: Date }, expiresAtMs: number): Promise<void> | void };
  /** True while budgets fail closed because the ledger could not be read at start-up. */
  budgetGate: { unverified: boolean };
}

/** Where spend limits set through the admin API come from: read from memory, refreshed in the background. */
export interface SpendLimitSource {
  /** The budgets that apply to a request: the rules' own plus the spend limits' (never waits on the ledger). @throws when the limits could never be read */
  apply(budgets: BudgetSpec[], rc: RequestContext): BudgetSpec[];
}

/** An action that also enforces: its module carries the factory of its enforcer. */
export interface EnforcingAction<C = unknown> extends ActionModule<C> {
  enforcer(deps: EnforceDeps): Enforcer;
}
