/**
 * Decision traces: for the most recent requests, why each went where it went — every rule, matched or not
 * and why, what each action claimed or lost to an earlier rule — kept in a bounded in-memory ring
 * (`trace.requests` entries, oldest dropped first; lru-cache) for `GET /admin/requests/{request-id}`, and the
 * short `x-switchyard-decision` response header. No bodies, no prompts, no credentials: rule ids, reasons
 * and settings only.
 */
import { LRUCache } from 'lru-cache';
import type { Decision, RuleTrace } from '../rules/decision.js';

/** What `/admin/requests/{id}` returns for one request. */
export interface DecisionTrace {
  request_id: string;
  /** ISO time the request was decided. */
  time: string;
  rules_version: string;
  client_id: string;
  session_id: string | null;
  requested_model: string;
  route: Decision['route'];
  /** Every rule of the set, in evaluation order: matched or not (and why), each action applied or shadowed. */
  rules: RuleTrace[];
  tags: Record<string, string>;
  /** Rule ids of the throttles and budgets that applied. */
  throttles: string[];
  budgets: string[];
  denied: Decision['denied'];
  error: Decision['error'];
  warnings: Decision['warnings'];
  /** Files API ids the request references and the provider and key (fingerprint) that hold them (resource affinity); absent when none. */
  files?: { ids: string[]; provider: string; key: string | null };
  /** Filled in when the request ends. */
  status: number | null;
  outcome: string | null;
}

/** The ring of recent traces. */
export class DecisionTraces {
  private ring: LRUCache<string, DecisionTrace> | null;

  /** @param size entries kept (0: none). */
  constructor(size: number) {
    this.ring = size > 0 ? new LRUCache({ max: size }) : null;
  }

  /** Applies a new `trace.requests` after a config reload (keeps the newest entries that still fit). */
  resize(size: number): void {
    if ((this.ring?.max ?? 0) === size) return;
    const old = this.ring;
    this.ring = size > 0 ? new LRUCache({ max: size }) : null;
    if (old && this.ring) for (const [k, v] of [...old.entries()].reverse()) this.ring.set(k, v);
  }

  /** Keeps the trace of a decided request. */
  add(t: DecisionTrace): void {
    this.ring?.set(t.request_id, t);
  }

  /** Records how a traced request ended. */
  finish(requestId: string, status: number, outcome: string): void {
    const t = this.ring?.peek(requestId);
    if (t) {
      t.status = status;
      t.outcome = outcome;
    }
  }

  get(requestId: string): DecisionTrace | undefined {
    return this.ring?.peek(requestId);
  }
}

/** The trace of a decision. */
export function traceOf(d: Decision, requestId: string, clientId: string, sessionId: string | null): DecisionTrace {
  return {
    request_id: requestId,
    time: new Date().toISOString(),
    rules_version: d.ruleset,
    client_id: clientId,
    session_id: sessionId,
    requested_model: d.route.requested_model,
    route: d.route,
    rules: d.rules,
    tags: d.tags,
    throttles: d.throttles.map((t) => t.rule),
    budgets: d.budgets.map((b) => b.rule),
    denied: d.denied,
    error: d.error,
    warnings: d.warnings,
    status: null,
    outcome: null,
  };
}

/**
 * The `x-switchyard-decision` header: `rules=a,b; route=PROVIDER; model=MODEL; version=V` (and `denied=RULE`),
 * ASCII only (rule ids and provider names are; a model name that is not is percent-encoded).
 * @param upstreamModel the model sent to the route's provider, after its `models:` rename.
 */
export function decisionHeader(d: Decision, upstreamModel: string): string {
  const matched = d.rules.filter((r) => r.matched).map((r) => r.id);
  const parts = [`rules=${matched.join(',') || '-'}`, `route=${d.route.provider}`, `model=${encodeURI(upstreamModel)}`, `version=${d.ruleset}`];
  if (d.denied) parts.push(`denied=${d.denied.rule}`);
  return parts.join('; ');
}
