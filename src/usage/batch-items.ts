/**
 * Message Batch items in the ledger: one usage record per item once its result is known, priced at the batch rate
 * (prices.ts `batch`), attributed to whoever created the batch (upstream/affinity.ts `ResourceOwner`). Results come
 * as JSONL (`GET /v1/messages/batches/{id}/results`, one `{"custom_id", "result": {"type", "message"|"error"}}`
 * per line: https://platform.claude.com/docs/en/api/messages/batches/results), read either as they pass to a client
 * or by the gateway's own poll (server/resources/poll.ts).
 *
 * Exactly once: an item's record id is `<batch id>:<custom_id>`, and the ledger skips an id it holds, so a second
 * read records nothing twice. Budget totals are charged once per batch, when one read went through every line: a
 * read takes a claim in the state store first (one reader per batch across replicas), and a batch read whole is
 * marked settled, after which no read records or charges anything.
 */
import type { Logger } from '../log.js';
import type { StateStore } from '../state/store.js';
import type { ResourceAffinity, ResourceOwner } from '../upstream/affinity.js';
import type { Ledger } from './ledger.js';
import type { Metrics } from './metrics.js';
import { costUsd, type PriceTable } from './prices.js';
import type { Outcome, UsageRecord } from './record.js';
import { mergeUsage, noUsage } from './tap.js';

/** Longest results line read, bytes (a line holds one whole message; a longer one is passed on, not recorded). */
export const MAX_RESULT_LINE_BYTES = 16 * 1024 * 1024;

/** How long one reader holds a batch's claim, ms (a read of 100,000 results fits; a dead reader's claim lapses). */
const CLAIM_MS = 10 * 60_000;

/** One line of a batch's results, as the API writes it. */
interface ResultLine {
  custom_id?: unknown;
  result?: { type?: unknown; message?: { model?: unknown; usage?: unknown }; error?: { type?: unknown; error?: { type?: unknown } } };
}

/**
 * How each result type is recorded: its outcome and a status. `succeeded` is the Messages answer (200); `errored`
 * is the item's error (400 for an invalid request, else 500); `canceled` 499 (the batch was canceled before it ran);
 * `expired` 504 (not run within the batch's 24 hours).
 */
function outcomeOf(line: ResultLine): { outcome: Outcome; status: number; error: string | null } {
  const r = line.result;
  switch (r?.type) {
    case 'succeeded':
      return { outcome: 'ok', status: 200, error: null };
    case 'canceled':
      return { outcome: 'aborted', status: 499, error: 'canceled' };
    case 'expired':
      return { outcome: 'failed', status: 504, error: 'expired' };
    default: {
      const type = typeof r?.error?.error?.type === 'string' ? r.error.error.type : typeof r?.error?.type === 'string' ? r.error.type : 'api_error';
      return { outcome: 'failed', status: type === 'invalid_request_error' ? 400 : 500, error: type };
    }
  }
}

/** The record id of a batch item (bounded: a custom_id is at most 64 characters in the API, a client's may be longer). */
export function batchItemId(batchId: string, customId: string): string {
  return `${batchId}:${customId}`.slice(0, 256);
}

/**
 * The usage record of one results line, or null when the line is not a result (no `custom_id`).
 * @param time ISO time recorded (when the gateway learned the result).
 */
export function batchItemRecord(line: unknown, owner: ResourceOwner, prices: PriceTable, time: string): UsageRecord | null {
  const l = line as ResultLine;
  if (!l || typeof l !== 'object' || typeof l.custom_id !== 'string') return null;
  const usage = noUsage();
  const message = l.result?.type === 'succeeded' ? l.result.message : undefined;
  mergeUsage(usage, message?.usage as Parameters<typeof mergeUsage>[1]);
  const model = typeof message?.model === 'string' ? message.model : null;
  const { outcome, status, error } = outcomeOf(l);
  const priced = usage.input_tokens + usage.output_tokens + usage.cache_creation_input_tokens + usage.cache_read_input_tokens > 0;
  return {
    time,
    request_id: batchItemId(owner.id, l.custom_id),
    client_id: owner.client_id,
    key_fingerprint: owner.key,
    session_id: owner.session_id,
    user_id: owner.user_id,
    project: owner.project,
    agent_id: null,
    requested_model: model,
    provider: owner.provider,
    model,
    rules_version: owner.rules_version,
    rules: [],
    facts: null,
    tags: owner.tags,
    status,
    outcome,
    error_type: error,
    refused_by: null,
    secret_findings: null,
    kind: 'batch',
    retries: 0,
    latency_ms: 0,
    ttft_ms: null,
    ...usage,
    cost_usd: priced ? costUsd(usage, model ? prices.priceOf(model, owner.provider) : null, true) : 0,
  };
}

/**
 * Splits a JSONL byte stream into parsed lines. A line longer than {@link MAX_RESULT_LINE_BYTES} or not JSON is
 * counted in `skipped` and left out.
 */
export class JsonLines {
  private parts: Buffer[] = [];
  private size = 0;
  private oversized = false;
  skipped = 0;

  /** Bytes of the current, unfinished line held (never over {@link MAX_RESULT_LINE_BYTES}). */
  get buffered(): number {
    return this.size;
  }

  /** The whole lines `chunk` completes, parsed. */
  push(chunk: Buffer): unknown[] {
    const out: unknown[] = [];
    let from = 0;
    for (let nl = chunk.indexOf(10); nl >= 0; nl = chunk.indexOf(10, from)) {
      this.add(chunk.subarray(from, nl));
      this.line(out);
      from = nl + 1;
    }
    // Stryker disable next-line ConditionalExpression,EqualityOperator: equivalent — an empty rest adds nothing.
    if (from < chunk.length) this.add(chunk.subarray(from));
    return out;
  }

  /** The last line, when the stream did not end with a newline. */
  end(): unknown[] {
    const out: unknown[] = [];
    // Stryker disable next-line ConditionalExpression: equivalent — an empty, not oversized line yields nothing.
    if (this.size || this.oversized) this.line(out);
    return out;
  }

  private add(b: Buffer): void {
    if (this.oversized) return;
    if (this.size + b.length > MAX_RESULT_LINE_BYTES) {
      this.oversized = true;
      this.parts = [];
      this.size = 0;
      return;
    }
    // Stryker disable next-line ConditionalExpression: equivalent — an empty piece joins to nothing.
    if (b.length) this.parts.push(Buffer.from(b));
    this.size += b.length;
  }

  private line(out: unknown[]): void {
    if (this.oversized) this.skipped++;
    else if (this.size) {
      try {
        out.push(JSON.parse(Buffer.concat(this.parts, this.size).toString('utf8')));
      } catch {
        this.skipped++;
      }
    }
    this.parts = [];
    this.size = 0;
    this.oversized = false;
  }
}

/** What accounting a batch needs, lives as long as the gateway. */
export interface BatchAccountingDeps {
  ledger: Ledger | null;
  prices: PriceTable;
  state: StateStore;
  affinity: ResourceAffinity;
  metrics: Metrics | null;
  log: Logger;
}

/** One read of a batch's results that records what it sees (see the module comment). */
export class BatchTally {
  /** Items recorded in this read, and their cost per budget total (USD). */
  items = 0;
  private readonly charged = new Map<string, number>();
  private readonly lines = new JsonLines();
  private done = false;

  constructor(
    private readonly deps: BatchAccountingDeps,
    private readonly owner: ResourceOwner,
    private readonly claim: string,
  ) {}

  /** Records the results lines `chunk` (a piece of the JSONL, as it comes) completes. */
  push(chunk: Buffer): void {
    for (const l of this.lines.push(chunk)) this.line(l);
  }

  /** Records one results line (anything not a result is ignored). */
  line(line: unknown): void {
    if (this.done) return;
    const r = batchItemRecord(line, this.owner, this.deps.prices, new Date().toISOString());
    if (!r) return;
    this.items++;
    // Stryker disable next-line OptionalChaining: equivalent — a tally is only started with a ledger (startTally).
    this.deps.ledger?.record(r);
    this.deps.metrics?.observe(r);
    // Stryker disable next-line ConditionalExpression: equivalent — a cost of 0 or null adds 0 to the totals.
    if (!r.cost_usd) return;
    const customId = (line as { custom_id: string }).custom_id;
    for (const c of this.owner.charges) if (c.items === 'all' || c.items.includes(customId)) this.charged.set(c.key, (this.charged.get(c.key) ?? 0) + r.cost_usd);
  }

  /**
   * Ends the read. When the results were read to their end (`read`) the last line is recorded, and when no line had
   * to be skipped (unreadable, or over {@link MAX_RESULT_LINE_BYTES}) the batch's cost goes to its budget totals and
   * the batch is marked settled; either way the claim is given back. Idempotent.
   * @returns whether the batch was settled now.
   */
  async end(read: boolean): Promise<boolean> {
    if (this.done) return false;
    if (read) for (const l of this.lines.end()) this.line(l);
    this.done = true;
    const whole = read && this.lines.skipped === 0;
    const { state, affinity, log } = this.deps;
    try {
      if (whole) {
        await Promise.all(
          this.owner.charges.map((c) =>
            state.addSpend(c.key, this.charged.get(c.key) ?? 0, c.expiresAtMs).catch((err: Error) => log.error({ batch: this.owner.id, err: err.message }, 'could not add a batch to a budget total')),
          ),
        );
        await affinity.settled(this.owner, new Date().toISOString());
        log.info({ batch: this.owner.id, items: this.items }, 'batch results recorded');
      }
    } finally {
      await state.takeRecord(this.claim).catch(() => null);
    }
    return whole;
  }
}

/**
 * Starts recording a read of `owner`'s results: null when there is nothing to do — the batch was settled already, the
 * ledger is off, or another read (here or on another replica) holds the claim.
 */
export async function startTally(deps: BatchAccountingDeps, owner: ResourceOwner, reader: string): Promise<BatchTally | null> {
  if (!deps.ledger || owner.settled_at) return null;
  const claim = `batch-tally:${owner.id}`;
  const ok = await deps.state.claimRecord(claim, reader, CLAIM_MS).catch(() => false);
  return ok ? new BatchTally(deps, owner, claim) : null;
}
