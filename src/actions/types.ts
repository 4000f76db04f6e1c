/**
 * The contract every action module fulfils: its parameter schema (assembled into rules.schema.json),
 * a compile step run once at load, and an apply step run per request that writes into the decision.
 */
import type { DecisionDraft, ActionTrace } from '../rules/decision.js';
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
   * records where each occurs ({@link import('../server/json-scan.js').keyOffsets}), so the action finds them
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
