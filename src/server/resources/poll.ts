/**
 * The gateway learns a batch's results without the client: every `batches.poll_interval_ms` (default 60 s) one
 * replica — the one that claims the round in the state store — looks at up to {@link BATCHES_PER_ROUND} batches the
 * ledger holds as not yet settled (oldest first, created in the last 30 days), asks each one's upstream with the key
 * that created it whether it ended, and reads the results of those that did, recording every item
 * (usage/batch-items.ts; the same exactly-once rules as a client's read). Each upstream call is bounded by the
 * provider's timeouts; a batch the upstream no longer knows (404: deleted, or its results archived) is settled with
 * what was recorded. Batches created with the client's own credential (a provider without `keys:`) cannot be
 * polled: their results are recorded when the client reads them.
 */
import type { ResourceOwner } from '../../upstream/affinity.js';
import { readText } from '../../upstream/client.js';
import { startTally } from '../../usage/batch-items.js';
import type { ProxyDeps } from '../pipeline/exchange.js';

/** Batches looked at per round. */
export const BATCHES_PER_ROUND = 20;

/** How far back unsettled batches are looked for, ms (results stay for 29 days). */
const LOOKBACK_MS = 30 * 86_400_000;

/** The Anthropic API version the poll speaks (https://platform.claude.com/docs/en/api/versioning). */
const API_VERSION = '2023-06-01';

/** Polls ended batches (see the module comment). */
export class BatchPoller {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<number> | null = null;

  constructor(
    private readonly deps: ProxyDeps,
    /** This replica's name in the round's claim. */
    private readonly replica: string,
  ) {}

  /** Starts polling every `intervalMs` (the timer does not keep the process alive). */
  start(intervalMs: number): void {
    this.stop();
    this.timer = setInterval(() => void this.round(intervalMs), intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /**
   * One round, when this replica claims it (the claim lasts `intervalMs`, so one replica polls per interval): the
   * number of batches settled. Never throws; a round still running when the next is due is not started twice.
   */
  round(intervalMs: number): Promise<number> {
    this.running ??= this.claimAndPoll(intervalMs)
      .catch((err: Error) => {
        this.deps.log.warn({ err: err.message }, 'batch poll round failed; the next round tries again');
        return 0;
      })
      .finally(() => {
        this.running = null;
      });
    return this.running;
  }

  private async claimAndPoll(intervalMs: number): Promise<number> {
    if (!this.deps.ledger) return 0;
    const mine = await this.deps.state.claimRecord('batch-poll:round', this.replica, Math.max(1000, intervalMs - 500)).catch(() => false);
    if (!mine) return 0;
    const batches = await this.deps.affinity.unsettledBatches(new Date(Date.now() - LOOKBACK_MS).toISOString(), BATCHES_PER_ROUND);
    let settled = 0;
    for (const b of batches) if (await this.poll(b)) settled++;
    return settled;
  }

  /** Polls one batch; true when it was settled now. */
  private async poll(owner: ResourceOwner): Promise<boolean> {
    const { deps } = this;
    const provider = deps.runtime.current.config.providers[owner.provider];
    const key = provider && owner.key ? deps.upstreams.pools.for(provider).keys.find((k) => k.fingerprint === owner.key) : undefined;
    if (!provider || !key) return false; // its key is gone (or it was made with a client's credential): nothing can ask
    const headers = { 'x-api-key': key.key, 'anthropic-version': API_VERSION };
    const path = `/v1/messages/batches/${encodeURIComponent(owner.id)}`;
    const status = await deps.upstreams.client.send(provider, { method: 'GET', pathAndQuery: path, headers, body: null, client: null });
    const text = await readText(status.body);
    if (status.statusCode === 404) {
      this.deps.log.warn({ batch: owner.id, provider: provider.name }, 'the upstream no longer knows this batch; it is settled with what was recorded');
      await deps.affinity.settled(owner, new Date().toISOString());
      return true;
    }
    if (status.statusCode !== 200 || (JSON.parse(text) as { processing_status?: string }).processing_status !== 'ended') return false;
    const tally = await startTally(deps, owner, this.replica);
    if (!tally) return false;
    let read = false;
    let settled = false;
    try {
      const results = await deps.upstreams.client.send(provider, { method: 'GET', pathAndQuery: `${path}/results`, headers, body: null, client: null });
      if (results.statusCode !== 200) {
        await readText(results.body);
        return false;
      }
      for await (const chunk of results.body as AsyncIterable<Buffer>) tally.push(chunk);
      read = true;
    } finally {
      settled = await tally.end(read);
    }
    return settled;
  }
}
