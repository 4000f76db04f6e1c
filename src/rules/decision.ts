/**
 * The `Decision`: what the rules engine concluded for one request, as plain data. Only the proxy acts on
 * it; `dry-run` prints it. Built through a {@link DecisionDraft} that enforces "first writer wins" for
 * single-valued settings (the route, the model, each tag, each header) and records who shadowed whom.
 */

/** A provider to try when the ones before it failed; `model` is what it gets instead of the client's model. */
export interface FallbackTarget {
  provider: string;
  model?: string;
}

/**
 * Typed payloads that actions leave in the decision for a later stage to enforce (throttles, budgets), one
 * list per key. Empty here: each action module declares its own entry by declaration merging
 * (`declare module '../rules/decision.js' { interface DecisionPayloads { throttles: Throttle } }`), so the core
 * never casts and never names an action's private fields.
 */
// biome-ignore lint/suspicious/noEmptyInterface: filled by declaration merging in the action modules
export interface DecisionPayloads {}

/** The payload lists of a decision, typed by what the action modules declared. */
export type Payloads = { [K in keyof DecisionPayloads]: Array<DecisionPayloads[K]> };

/** What happened to one action of a matched rule. */
export interface ActionTrace {
  /** Action name, e.g. `route_to`. */
  action: string;
  /** True when the action took effect (at least one of its settings, or it accumulates). */
  applied: boolean;
  /** When not applied: the rule whose earlier action already set what this one would set. */
  shadowed_by?: string;
  /** Settings this action lost to earlier rules (`route`, `model`, `tag:team`, `header:x-foo`...). */
  shadowed?: Array<{ setting: string; by: string }>;
  /** Action-specific detail for dry-run (e.g. the tag values it set). */
  detail?: unknown;
}

/** What happened to one rule. */
export interface RuleTrace {
  id: string;
  /** The file the rule came from, relative to the rules directory. */
  file: string;
  matched: boolean;
  /** Why it did not match (the first failing condition), or why it was not evaluated. */
  reason?: string;
  actions: ActionTrace[];
}

/** The result of evaluating a rule set against one request. */
export interface Decision extends Payloads {
  /** Version (content hash) of the rule set that decided. */
  ruleset: string;
  route: {
    provider: string;
    /** The model sent upstream. */
    model: string;
    /** The model the client asked for. */
    requested_model: string;
    /** Providers to try next, in order; each gets its own `model`, else the requested model. */
    fallback: FallbackTarget[];
    /** The rule that chose the route, or null for the config's default provider. */
    rule: string | null;
  };
  rules: RuleTrace[];
  /** Billing tags (name to value). */
  tags: Record<string, string>;
  /** Changes to the upstream request headers. */
  headers: { set: Record<string, string>; remove: string[] };
  /** Set when a `deny` action refused the request. */
  denied: { rule: string; status: number; message: string } | null;
  /** Set when applying a rule failed (e.g. a transform returned a non-object); answered 500. */
  error: { rule: string; message: string } | null;
  /** Problems that did not stop evaluation (e.g. a `when` expression that threw), for logging. */
  warnings: Array<{ rule: string; message: string }>;
  /**
   * The body to forward, before the model: identical (===) to the request body when no action changed it.
   * The model sent is `route.model` (or a fallback's own), set by the provider adapter.
   */
  body: Record<string, unknown>;
  bodyChanged: boolean;
  /** Per-action extra outputs keyed by action name (e.g. `cache_breakpoints`). */
  extra: Record<string, unknown>;
}

/** A mutable decision under construction. Actions write through {@link DecisionDraft.claim}. */
export class DecisionDraft {
  private readonly claims = new Map<string, string>();
  route: { provider?: string; model?: string; fallback: FallbackTarget[]; rule: string | null } = { fallback: [], rule: null };
  readonly tags: Record<string, string> = {};
  readonly setHeaders: Record<string, string> = {};
  readonly removeHeaders: string[] = [];
  /** Payload lists, created on first use ({@link payload}). */
  private readonly payloadLists: Partial<Payloads> = {};
  readonly warnings: Array<{ rule: string; message: string }> = [];
  readonly extra: Record<string, unknown> = {};
  denied: Decision['denied'] = null;
  error: Decision['error'] = null;
  body: Record<string, unknown>;
  bodyChanged = false;

  constructor(body: Record<string, unknown>) {
    this.body = body;
  }

  /** The payload list `kind` (created empty on first use), for an action to push its payload into. */
  payload<K extends keyof DecisionPayloads>(kind: K): Array<DecisionPayloads[K]> {
    return ((this.payloadLists as Record<string, unknown[]>)[kind] ??= []) as Array<DecisionPayloads[K]>;
  }

  /** True once a deny or an error ends evaluation. */
  get stopped(): boolean {
    return this.denied !== null || this.error !== null;
  }

  /**
   * Claims single-valued settings for `rule`, first writer wins. Each entry is a setting name and the
   * write to perform if the claim succeeds.
   * @returns the action trace: applied if any setting was taken, with the ones lost to earlier rules.
   */
  claim(action: string, rule: string, writes: Array<[setting: string, write: () => void]>, detail?: unknown): ActionTrace {
    const shadowed: Array<{ setting: string; by: string }> = [];
    let applied = false;
    for (const [setting, write] of writes) {
      const owner = this.claims.get(setting);
      if (owner !== undefined) {
        shadowed.push({ setting, by: owner });
      } else {
        this.claims.set(setting, rule);
        write();
        applied = true;
      }
    }
    const trace: ActionTrace = { action, applied };
    if (!applied && shadowed.length) trace.shadowed_by = shadowed[0]!.by;
    if (shadowed.length) trace.shadowed = shadowed;
    if (detail !== undefined) trace.detail = detail;
    return trace;
  }

  /** Replaces the body to forward (copy-on-write: never mutate the request's body in place). */
  replaceBody(body: Record<string, unknown>): void {
    this.body = body;
    this.bodyChanged = true;
  }

  /** The final, immutable decision. `defaultProvider` applies when no rule routed the request. */
  finish(ruleset: string, rules: RuleTrace[], requestedModel: string, defaultProvider: string): Decision {
    const model = this.route.model ?? (typeof this.body.model === 'string' ? this.body.model : requestedModel);
    return {
      ruleset,
      route: {
        provider: this.route.provider ?? defaultProvider,
        model,
        requested_model: requestedModel,
        fallback: this.route.fallback,
        rule: this.route.rule,
      },
      rules,
      tags: this.tags,
      headers: { set: this.setHeaders, remove: this.removeHeaders },
      ...withAllPayloads(this.payloadLists),
      denied: this.denied,
      error: this.error,
      warnings: this.warnings,
      body: this.body,
      bodyChanged: this.bodyChanged,
      extra: this.extra,
    };
  }
}

/** Every payload list a decision may carry, empty where no action pushed one (readers never see undefined). */
const PAYLOAD_KINDS: Array<keyof DecisionPayloads> = [];

/** Registers a payload kind so every decision carries its list (called by the action module that declares it). */
export function registerPayload(kind: keyof DecisionPayloads): void {
  if (!PAYLOAD_KINDS.includes(kind)) PAYLOAD_KINDS.push(kind);
}

function withAllPayloads(lists: Partial<Payloads>): Payloads {
  const out = { ...lists } as Record<string, unknown[]>;
  for (const k of PAYLOAD_KINDS) out[k] ??= [];
  return out as unknown as Payloads;
}
