/**
 * The usage ledger: records are queued in memory and written off the request path in small batches
 * (every `flush_interval_ms`, default 1 s), so a crash loses at most that interval; `close()` (SIGTERM)
 * flushes everything. A store that is down never fails a request: records wait in the queue up to
 * `max_queue`, beyond which new ones are dropped and counted (`dropped`, logged).
 */
import type { Logger } from '../log.js';
import { BatchQueue } from './batch-queue.js';
import type { UsageRecord } from './record.js';
import type { WebhookExporter } from './webhook.js';

/** Where records are kept (SQLite or PostgreSQL), same schema. */
export interface LedgerStore {
  readonly kind: string;
  /** Creates or migrates the schema. */
  init(): Promise<void>;
  insert(records: UsageRecord[]): Promise<void>;
  /** Records with `since <= time < until` (ISO times). */
  query(since: string, until: string): Promise<UsageRecord[]>;
  close(): Promise<void>;
}

/** Batching writer in front of a store. */
export class Ledger {
  private readonly queue: BatchQueue<UsageRecord>;
  private timer: NodeJS.Timeout;

  constructor(
    readonly store: LedgerStore,
    private readonly log: Logger,
    private readonly opts: { flushIntervalMs: number; maxQueue: number },
    /** Optional billing export fed with every record. */
    readonly webhook: WebhookExporter | null = null,
  ) {
    this.queue = new BatchQueue((batch) => store.insert(batch), opts.maxQueue);
    this.timer = setInterval(() => void this.flush(), opts.flushIntervalMs);
    this.timer.unref();
  }

  /** Records waiting to be written. */
  get queued(): number {
    return this.queue.length;
  }

  /** Records dropped because the queue was full. */
  get dropped(): number {
    return this.queue.dropped;
  }

  /** Records written. */
  get written(): number {
    return this.queue.sent;
  }

  /** Queues a record; never throws, never waits. */
  record(r: UsageRecord): void {
    this.webhook?.push(r);
    if (!this.queue.push(r) && (this.queue.dropped === 1 || this.queue.dropped % 1000 === 0)) {
      this.log.error({ dropped: this.queue.dropped, max_queue: this.opts.maxQueue }, `usage ledger (${this.store.kind}) queue is full: usage records are being dropped`);
    }
  }

  /** Writes everything queued now; on failure the records stay queued for the next try. */
  flush(): Promise<void> {
    return this.queue.flush((err) => this.log.warn({ queued: this.queue.length, err: (err as Error).message }, `usage ledger (${this.store.kind}) write failed; records stay queued`));
  }

  /** Flushes (and the export) and closes the store. */
  async close(): Promise<void> {
    clearInterval(this.timer);
    await Promise.all([this.flush(), this.webhook?.close()]);
    if (this.queue.length) this.log.error({ lost: this.queue.length }, `usage ledger (${this.store.kind}) could not write ${this.queue.length} record(s) before shutdown`);
    await this.store.close();
  }
}
