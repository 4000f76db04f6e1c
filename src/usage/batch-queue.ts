/**
 * A bounded in-memory queue drained in batches by one sender at a time — the shape shared by the ledger
 * writer and the billing webhook. A batch that fails stays at the head of the queue for the next flush;
 * a batch that does not settle within `timeoutMs` counts as failed, so a hung store never blocks the
 * batches after it (senders must therefore be idempotent: the ledger's inserts are keyed by request id).
 * Items beyond `maxQueue` go to `overflow` (the ledger's disk spool) or are dropped and counted.
 */
export class BatchQueue<T> {
  private items: T[] = [];
  private draining: Promise<void> | null = null;
  /** Items dropped because the queue was full and nothing took the overflow. */
  dropped = 0;
  /** Items sent. */
  sent = 0;

  /**
   * @param send delivers one batch; it throws (or returns false) when the batch was not delivered.
   * @param opts.timeoutMs longest one batch may take before it counts as failed (default: no bound).
   * @param opts.overflow takes the queued items when the queue is full (returns false to drop instead).
   */
  constructor(
    private readonly send: (batch: T[]) => Promise<boolean | void>,
    private readonly maxQueue: number,
    private readonly batchSize = 500,
    private readonly opts: { timeoutMs?: number; overflow?: (items: T[]) => boolean } = {},
  ) {}

  get length(): number {
    return this.items.length;
  }

  /** Queues an item; false when it was dropped. A full queue first hands its items to `overflow`. */
  push(item: T): boolean {
    if (this.items.length >= this.maxQueue) {
      // Everything overflows, the batch being sent included: should that batch still succeed, its items
      // are written twice, which idempotent senders ignore; losing them is the worse failure.
      if (this.opts.overflow?.(this.items)) this.items = [];
      else {
        this.dropped++;
        return false;
      }
    }
    this.items.push(item);
    return true;
  }

  /** Removes and returns everything queued (shutdown hands it to the spool). */
  takeAll(): T[] {
    const all = this.items;
    this.items = [];
    return all;
  }

  /** One batch, bounded by `timeoutMs`. */
  private sendBounded(batch: T[]): Promise<boolean | void> {
    const ms = this.opts.timeoutMs;
    if (!ms) return this.send(batch);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`a batch of ${batch.length} was not written within ${ms} ms`)), ms);
    });
    return Promise.race([this.send(batch), timeout]).finally(() => clearTimeout(timer));
  }

  /**
   * Sends everything queued, batch by batch, stopping at the first batch that fails (it stays queued).
   * Resolves true when the queue was emptied.
   */
  flush(onError: (err: unknown) => void): Promise<boolean> {
    const run = (this.draining ??= (async () => {
      while (this.items.length) {
        const batch = this.items.slice(0, this.batchSize);
        try {
          if ((await this.sendBounded(batch)) === false) return;
        } catch (err) {
          onError(err);
          return;
        }
        // Items may have been taken meanwhile (overflow, shutdown): remove only what is still there.
        if (this.items[0] === batch[0]) this.items.splice(0, batch.length);
        this.sent += batch.length;
      }
    })().finally(() => {
      this.draining = null;
    }));
    return run.then(() => this.items.length === 0);
  }
}
