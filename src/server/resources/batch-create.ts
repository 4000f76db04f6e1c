/**
 * `POST /v1/messages/batches`: every item goes through the rules as the Messages request it stands for — deny, rule
 * errors, a signed-in user's model policy, model rewrites and body edits (inject_cache, transform), tags, and each
 * budget checked against its running total plus the batch's estimated cost at the batch rate — before anything goes
 * upstream. A refusal refuses the whole batch (400, nothing sent) and names the items (`custom_id`) and why. The
 * batch is sent as the items came, less what the rules changed, to the one provider every item is routed to; it
 * must be `type: anthropic` (a batch is one object at one upstream). Throttles are not applied to items: a batch
 * runs at the upstream's own pace within 24 hours, not as interactive traffic.
 *
 * Shape (https://platform.claude.com/docs/en/api/messages/batches/create): `{"requests": [{"custom_id", "params"}]}`,
 * at most 100,000 requests and 256 MB (`limits.max_batch_bytes`).
 */
import { InvalidRequestError, ModelNotAllowedError, NotSupportedError, RequestTooLargeError } from '../../errors.js';
import { checkBudgets } from '../../actions/budget/enforce.js';
import { lazyBody, scanJsonObject, valueBytes } from '../../body/json-scan.js';
import { anthropicAdapter } from '../../upstream/providers/anthropic/index.js';
import { buildContext, type RequestContext } from '../../rules/context.js';
import type { Decision } from '../../rules/decision.js';
import { evaluate } from '../../rules/evaluate.js';
import { BATCH_ITEM_PATH, type BatchItem, batchItems } from '../../rules/batch.js';
import type { BatchCharge } from '../../upstream/affinity.js';
import { prepareUpstream, routeChain } from '../../upstream/prepare.js';
import { noUsage } from '../../usage/tap.js';
import { costUsd } from '../../usage/prices.js';
import type { Exchange } from '../pipeline/exchange.js';
import { readBody } from '../pipeline/receive.js';
import { chooseKey, relayCreated, send } from './call.js';
import { dryRunReport } from '../../rules/report.js';
import { batchItemId } from '../../usage/batch-items.js';
import { traceOf } from '../traces.js';
import { headerValue, sendJson } from '../pipeline/record.js';

/** Items of one batch whose decisions are kept for `/admin/requests/{id}` and shown by `serve --dry-run`. */
export const TRACED_ITEMS = 20;

/** Refusals named in the error message (the rest are counted). */
const NAMED_REFUSALS = 5;

/** One item after the rules: its id, the params bytes to send, and what decided them. */
interface DecidedItem {
  customId: string;
  params: Buffer;
  decision: Decision;
  rc: RequestContext;
  estimateUsd: number;
}

/**
 * The batch body's items, as lazy views over the client's bytes (json-scan.ts): an item's `params` are read only by
 * the rules that need them, and go on as the bytes the client sent. The items sit three levels down
 * (`requests[i].params`), so the batch may nest three levels deeper than a Messages body.
 * @throws InvalidRequestError naming what is wrong (not JSON, too deep, an item without custom_id or params)
 */
function parseBatch(raw: Buffer, maxDepth: number): BatchItem[] {
  return batchItems(lazyBody(scanJsonObject(raw, maxDepth + 3)));
}

/** The batch create call (see the module comment). */
export async function createBatch(x: Exchange): Promise<void> {
  const { limits } = x.config;
  const { rules, config } = x.snapshot;
  if (Number(x.req.headers['content-length']) > limits.max_inflight_body_bytes_per_client && limits.max_batch_bytes > limits.max_inflight_body_bytes_per_client) {
    throw new RequestTooLargeError(limits.max_inflight_body_bytes_per_client, "limits.max_inflight_body_bytes_per_client (a batch is read whole, so it must fit in a client's share)");
  }
  const reservation = x.deps.inflightBytes.reservation(x.clientId, { total: limits.max_inflight_body_bytes, perClient: limits.max_inflight_body_bytes_per_client });
  reservation.growTo(Math.min(Number(x.req.headers['content-length']) || 0, limits.max_batch_bytes));
  x.holdReservation(reservation.release);
  const raw = await readBody(x.req, limits.max_batch_bytes, reservation.growTo);
  const items = parseBatch(raw, limits.max_json_depth);
  const dryRun: unknown[] = [];
  const refusals: string[] = [];
  const decided: DecidedItem[] = [];
  /** Decisions kept for traces and dry-run (at most TRACED_ITEMS; refused items first). */
  const traced: Array<{ customId: string; d: Decision; refused: boolean }> = [];
  const keep = (customId: string, d: Decision, refused: boolean) => {
    if (refused) traced.unshift({ customId, d, refused });
    else traced.push({ customId, d, refused });
    if (traced.length > TRACED_ITEMS) traced.pop();
  };
  const tags: Record<string, string> = {};
  let provider: string | null = null;
  for (const item of items) {
    const bytes = valueBytes(item.params) ?? Buffer.from(JSON.stringify(item.params));
    const rc = buildContext({
      path: BATCH_ITEM_PATH,
      body: lazyBody(scanJsonObject(bytes, limits.max_json_depth, rules.bodyKeys)),
      headers: x.req.headers,
      bodyBytes: bytes.length,
      clientId: x.clientId,
      clientTags: x.client?.tags,
      groups: x.user?.groups,
      projectHeader: config.attribution.project_header,
    });
    const refuse = (why: string) => refusals.push(`"${item.custom_id}": ${why}`);
    if (x.user && x.login && rc.model) {
      const allowed = x.login.policies(config.policies).models(x.user);
      if (!allowed.allows(rc.model)) {
        refuse(new ModelNotAllowedError(rc.model, allowed.name, x.clientId).message);
        continue;
      }
    }
    const d = await evaluate(rules, rc, config.default_provider);
    const why = d.denied
      ? `denied by rule "${d.denied.rule}": ${d.denied.message}`
      : d.error
        ? `rule "${d.error.rule}" failed: ${d.error.message}`
        : provider !== null && d.route.provider !== provider
          ? `routed to provider "${d.route.provider}" while earlier items go to "${provider}"; a batch goes to one provider`
          : null;
    keep(item.custom_id, d, why !== null);
    if (x.deps.dryRun)
      dryRun.push({
        custom_id: item.custom_id,
        refused: why,
        ...dryRunReport(
          d,
          prepareUpstream(config, { endpoint: 'messages', pathAndQuery: BATCH_ITEM_PATH, headers: x.req.headers, raw: bytes, body: rc.body, decision: d, stream: rc.stream }, rc.estimate.input_tokens),
        ),
      });
    if (why) {
      refuse(why);
      continue;
    }
    provider = d.route.provider;
    for (const [k, v] of Object.entries(d.tags)) tags[k] ??= v;
    const link = routeChain(config, d.route)[0]!;
    // The item's bytes as the Anthropic adapter sends a Messages body: unchanged, the model renamed in place, or re-serialized.
    const body = anthropicAdapter.request(
      { endpoint: 'messages', pathAndQuery: BATCH_ITEM_PATH, headers: x.req.headers, raw: bytes, body: rc.body, decision: d, stream: rc.stream },
      link.provider,
      link.model,
    ).body!;
    const price = x.deps.prices.priceOf(link.model, link.provider.name);
    decided.push({ customId: item.custom_id, params: body, decision: d, rc, estimateUsd: costUsd({ ...noUsage(), input_tokens: rc.estimate.input_tokens }, price, true) ?? 0 });
  }
  if (x.deps.dryRun) {
    sendJson(x, { type: 'batch_dry_run', items_total: items.length, refused: refusals, items: dryRun });
    return;
  }
  const charges = refusals.length ? [] : await batchBudgets(x, decided, refusals);
  if (refusals.length) {
    traceItems(x, traced, x.id);
    const named = refusals.slice(0, NAMED_REFUSALS).join('; ');
    const more = refusals.length > NAMED_REFUSALS ? ` (and ${refusals.length - NAMED_REFUSALS} more)` : '';
    x.refusedBy = 'batch';
    throw new InvalidRequestError(`the batch was refused, nothing was sent: ${refusals.length} of ${items.length} items cannot go: ${named}${more}`);
  }
  const target = config.providers[provider ?? config.default_provider]!;
  if (target.type !== 'anthropic') throw new NotSupportedError(`Message Batches go only to a type: anthropic provider; the rules route this batch to "${target.name}", type: ${target.type}`);
  const out = batchBody(decided);
  x.dropBody();
  x.tags = tags;
  x.rulesVersion = rules.version;
  const key = await chooseKey(x, target, null);
  const answer = await send(x, target, key, out);
  await relayCreated(x, answer, 'batch', target, key, { tags, rules_version: rules.version, charges, project: headerValue(x.req.headers[config.attribution.project_header]) }, (batchId) =>
    traceItems(x, traced, batchId),
  );
}

/**
 * Keeps the decisions of a batch's items for `GET /admin/requests/{id}` under `<batch id>:<custom_id>` (the id of
 * the item's usage record), or `<request id>:<custom_id>` for a refused batch: at most {@link TRACED_ITEMS} per batch,
 * refused items first, so that a 100,000-item batch does not push every other request out of the ring.
 */
function traceItems(x: Exchange, traced: Array<{ customId: string; d: Decision }>, prefix: string): void {
  x.deps.traces.resize(x.config.trace.requests);
  for (const t of traced) x.deps.traces.add(traceOf(t.d, batchItemId(prefix, t.customId), x.clientId, x.log.session_id ?? null));
}

/**
 * Checks every item's budgets against its running total plus the estimated cost (input tokens at the batch rate) of
 * the items before it in the same total; an item that would pass a blocking budget is refused by name. Returns the
 * totals the batch's cost is charged to once its results are known, with the items each applies to.
 */
async function batchBudgets(x: Exchange, decided: DecidedItem[], refusals: string[]): Promise<BatchCharge[]> {
  const pending = new Map<string, number>();
  const byKey = new Map<string, { expiresAtMs: number; items: string[] }>();
  for (const item of decided) {
    const { rc } = item;
    const budgets = x.deps.spendLimits ? x.deps.spendLimits.apply(item.decision.budgets, rc) : item.decision.budgets;
    if (!budgets.length) continue;
    let checked: Awaited<ReturnType<typeof checkBudgets>>;
    try {
      checked = await checkBudgets({ ...item.decision, budgets }, rc, x.deps.state);
    } catch (err) {
      refusals.push(`"${item.customId}": ${(err as Error).message}`);
      continue;
    }
    for (const c of checked.charges) {
      const spent = (await x.deps.state.spend(c.key)) + (pending.get(c.key) ?? 0) + item.estimateUsd;
      if (c.budget.block !== false && spent > c.budget.usd) {
        refusals.push(
          `"${item.customId}": budget "${c.budget.rule}" of $${c.budget.usd} per ${c.budget.per} for ${c.budget.scope} "${c.value}" would be passed by this batch (estimated $${spent.toFixed(4)} with the items before it, input at the batch rate)`,
        );
        break;
      }
      pending.set(c.key, (pending.get(c.key) ?? 0) + item.estimateUsd);
      const entry = byKey.get(c.key) ?? { expiresAtMs: c.expiresAtMs, items: [] };
      entry.items.push(item.customId);
      byKey.set(c.key, entry);
    }
  }
  return [...byKey].map(([key, e]) => ({ key, expiresAtMs: e.expiresAtMs, items: e.items.length === decided.length ? 'all' : e.items }));
}

/** The batch body sent upstream: each item's params bytes as decided, in the client's order. */
function batchBody(items: DecidedItem[]): Buffer {
  const parts: Buffer[] = [Buffer.from('{"requests":[')];
  items.forEach((item, i) => {
    parts.push(Buffer.from(`${i ? ',' : ''}{"custom_id":${JSON.stringify(item.customId)},"params":`), item.params, Buffer.from('}'));
  });
  parts.push(Buffer.from(']}'));
  return Buffer.concat(parts);
}
