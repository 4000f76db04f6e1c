/**
 * `switchyard replay`: the recorded traffic in the usage ledger decided again — by the live rules and by a
 * candidate rule set — from each record's request facts (usage/facts.ts), and what would change: route,
 * upstream model, tags, denial, throttles and budgets, grouped and counted by kind of change with example
 * request ids, and the cost difference priced from the recorded token counts with each side's model prices.
 * A record without facts (written before ledger schema v3, or refused before the rules ran), or one that
 * reaches a rule reading message content (which the ledger never keeps), is counted as not replayable and
 * never guessed.
 */
import type { GatewayConfig } from '../config.js';
import { routeChain } from '../upstream/prepare.js';
import { ALWAYS_KEPT, factsBody } from '../usage/facts.js';
import { costUsd, type PriceTable } from '../usage/prices.js';
import type { UsageRecord } from '../usage/record.js';
import { buildContext } from './context.js';
import type { Decision } from './decision.js';
import { evaluate } from './evaluate.js';
import type { RuleSet } from './load.js';

/** What one side decided for a record, in the terms replay compares. */
interface Outcome {
  provider: string;
  model: string;
  tags: Record<string, string>;
  denied: string | null;
  /** The rule that failed on this request (answered 500), or null. */
  failed: string | null;
  throttles: string[];
  budgets: string[];
  cost: number | null;
}

/** One kind of change and the requests it affects. */
export interface ChangeGroup {
  /** `route`, `model`, `tag:NAME`, `denied`, `throttles` or `budgets`. */
  kind: string;
  from: string;
  to: string;
  count: number;
  /** Up to 3 request ids. */
  examples: string[];
}

/** The replay report. Costs in USD. */
export interface ReplayReport {
  since: string;
  until: string;
  live_version: string;
  candidate_version: string;
  records: number;
  replayed: number;
  changed: number;
  unchanged: number;
  /** Replayed requests a candidate rule fails on (each answered 500 if it went live). */
  would_fail: number;
  not_replayable: { total: number; reasons: Record<string, number> };
  changes: ChangeGroup[];
  /** Over the replayed records: priced with the live decision's models, then the candidate's. */
  cost: { live_usd: number; candidate_usd: number; delta_usd: number; unpriced: number };
}

const fmtList = (xs: string[]) => (xs.length ? xs.join(',') : '-');

/**
 * Why a decision cannot be trusted from facts alone: a rule that read message content was reached.
 * @returns the rule id, or null.
 */
function contentRuleReached(rules: RuleSet, d: Decision): string | null {
  const byId = new Map(rules.rules.map((r) => [r.id, r]));
  for (const t of d.rules) {
    const r = byId.get(t.id);
    if (!r) continue;
    if (r.reads.actionContent && t.matched) return r.id;
    if (r.reads.whenContent && (t.matched || t.reason?.startsWith('when'))) return r.id;
  }
  return null;
}

async function decideRecord(config: GatewayConfig, rules: RuleSet, prices: PriceTable, rec: UsageRecord): Promise<Outcome | { notReplayable: string }> {
  const f = rec.facts!;
  const body = factsBody(rec.requested_model, f);
  const client = config.clients?.find((c) => c.id === rec.client_id);
  const rc = buildContext({ path: f.path, body, headers: f.headers, bodyBytes: f.body_bytes, clientId: rec.client_id ?? undefined, clientTags: client?.tags, now: new Date(rec.time) });
  const d = await evaluate(rules, rc, config.default_provider);
  const reader = contentRuleReached(rules, d);
  if (reader) return { notReplayable: `rule "${reader}" reads message content` };
  const unrecorded = rules.headersRead.find((h) => !ALWAYS_KEPT.includes(h) && !f.headers_named.includes(h));
  if (unrecorded) return { notReplayable: `header ${unrecorded} was not recorded (the rules of the time did not read it)` };
  let model = d.route.model;
  try {
    model = routeChain(config, d.route)[0]!.model;
  } catch {
    // a provider the config lacks cannot happen after loading; keep the route's model
  }
  return {
    provider: d.route.provider,
    model,
    tags: d.tags,
    denied: d.denied?.rule ?? null,
    failed: d.error?.rule ?? null,
    throttles: d.throttles.map((t) => t.rule),
    budgets: d.budgets.map((b) => b.rule),
    // A request a rule fails on is answered 500 and costs nothing.
    cost: d.denied || d.error ? 0 : costUsd(rec, prices.priceOf(model, d.route.provider)),
  };
}

/**
 * Replays `records` under the live rules and the candidate.
 * @param prices the price table both sides are priced with.
 */
export async function replay(config: GatewayConfig, live: RuleSet, candidate: RuleSet, prices: PriceTable, records: UsageRecord[], since: string, until: string): Promise<ReplayReport> {
  const report: ReplayReport = {
    since,
    until,
    live_version: live.version,
    candidate_version: candidate.version,
    records: records.length,
    replayed: 0,
    changed: 0,
    unchanged: 0,
    would_fail: 0,
    not_replayable: { total: 0, reasons: {} },
    changes: [],
    cost: { live_usd: 0, candidate_usd: 0, delta_usd: 0, unpriced: 0 },
  };
  const groups = new Map<string, ChangeGroup>();
  const skip = (reason: string) => {
    report.not_replayable.total++;
    report.not_replayable.reasons[reason] = (report.not_replayable.reasons[reason] ?? 0) + 1;
  };
  for (const rec of records) {
    if (!rec.facts) {
      skip('no request facts (recorded before ledger schema v3, or refused before the rules ran)');
      continue;
    }
    const a = await decideRecord(config, live, prices, rec);
    const b = await decideRecord(config, candidate, prices, rec);
    if ('notReplayable' in a || 'notReplayable' in b) {
      skip(('notReplayable' in a ? a : (b as { notReplayable: string })).notReplayable);
      continue;
    }
    report.replayed++;
    if (a.cost === null || b.cost === null) report.cost.unpriced++;
    else {
      report.cost.live_usd += a.cost;
      report.cost.candidate_usd += b.cost;
    }
    const diffs: Array<[kind: string, from: string, to: string]> = [];
    if (a.provider !== b.provider) diffs.push(['route', a.provider, b.provider]);
    if (a.model !== b.model) diffs.push(['model', a.model, b.model]);
    for (const k of new Set([...Object.keys(a.tags), ...Object.keys(b.tags)])) {
      if (a.tags[k] !== b.tags[k]) diffs.push([`tag:${k}`, a.tags[k] ?? '(unset)', b.tags[k] ?? '(unset)']);
    }
    if (a.denied !== b.denied) diffs.push(['denied', a.denied ? `by ${a.denied}` : 'no', b.denied ? `by ${b.denied}` : 'no']);
    // A rule that fails (a runaway expression, a transform that returns no object) answers 500: a change, never "unchanged".
    if (a.failed !== b.failed) diffs.push(['fails', a.failed ? `in ${a.failed}` : 'no', b.failed ? `in ${b.failed}` : 'no']);
    if (b.failed) report.would_fail++;
    if (fmtList(a.throttles) !== fmtList(b.throttles)) diffs.push(['throttles', fmtList(a.throttles), fmtList(b.throttles)]);
    if (fmtList(a.budgets) !== fmtList(b.budgets)) diffs.push(['budgets', fmtList(a.budgets), fmtList(b.budgets)]);
    if (diffs.length === 0) {
      report.unchanged++;
      continue;
    }
    report.changed++;
    for (const [kind, from, to] of diffs) {
      const key = `${kind}\0${from}\0${to}`;
      const g = groups.get(key) ?? { kind, from, to, count: 0, examples: [] };
      groups.set(key, g);
      g.count++;
      if (g.examples.length < 3) g.examples.push(rec.request_id);
    }
  }
  report.changes = [...groups.values()].sort((x, y) => y.count - x.count || x.kind.localeCompare(y.kind));
  const round = (n: number) => Math.round(n * 1e6) / 1e6;
  report.cost.live_usd = round(report.cost.live_usd);
  report.cost.candidate_usd = round(report.cost.candidate_usd);
  report.cost.delta_usd = round(report.cost.candidate_usd - report.cost.live_usd);
  return report;
}

const usd = (n: number) => `${n < 0 ? '−' : ''}$${Math.abs(n).toFixed(Math.abs(n) < 1 ? 4 : 2)}`;

/** The human-readable report. */
export function formatReplay(r: ReplayReport): string {
  const lines = [
    `replay of ${r.records} recorded request${r.records === 1 ? '' : 's'} from ${r.since} to ${r.until}`,
    `rules: live ${r.live_version} -> candidate ${r.candidate_version}`,
    `changed ${r.changed}, unchanged ${r.unchanged}, not replayable ${r.not_replayable.total}`,
  ];
  if (r.would_fail) lines.push(`would fail: ${r.would_fail} (a candidate rule fails on them; each would be answered 500)`);
  for (const [why, n] of Object.entries(r.not_replayable.reasons)) lines.push(`  not replayable: ${n} — ${why}`);
  if (r.changes.length) {
    lines.push('', 'what would change:');
    const w = Math.max(...r.changes.map((c) => `${c.kind} ${c.from} -> ${c.to}`.length));
    for (const c of r.changes) lines.push(`  ${`${c.kind} ${c.from} -> ${c.to}`.padEnd(w)}  ${String(c.count).padStart(6)}  e.g. ${c.examples.join(', ')}`);
  }
  const pct = r.cost.live_usd ? ` (${r.cost.delta_usd >= 0 ? '+' : '−'}${Math.abs((100 * r.cost.delta_usd) / r.cost.live_usd).toFixed(1)}%)` : '';
  lines.push(
    '',
    `cost of the replayed requests: ${usd(r.cost.live_usd)} -> ${usd(r.cost.candidate_usd)}, ${r.cost.delta_usd >= 0 ? '+' : ''}${usd(r.cost.delta_usd)}${pct}${r.cost.unpriced ? `; ${r.cost.unpriced} request(s) without a price left out` : ''}`,
  );
  return lines.join('\n');
}
