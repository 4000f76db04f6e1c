/**
 * A bounded in-memory queue drained in batches by one sender at a time — the shape shared by the ledger
 * writer and the billing webhook. A batch that fails stays at the head of the queue for the next flush;
 * items beyond `maxQueue` are dropped and counted.
 */
export class BatchQueue<T> {
  private items: T[] = [];
  private draining: Promise<void> | null = null;
  /** Items dropped because the queue was full. */
  dropped = 0;
  /** Items sent. */
  sent = 0;

  /** @param send delivers one batch; it throws (or returns false) when the batch was not delivered. */
  constructor(private readonly send: (batch: T[]) => Promise<boolean | void>, private readonly maxQueue: number, private readonly batchSize = 500) {}

  get length(): number {
    return this.items.length;
  }

  /** Queues an item; false when it was dropped. */
  push(item: T): boolean {
    if (this.items.length >= this.maxQueue) {
      this.dropped++;
      return false;
    }
    this.items.push(item);
    return true;
  }

  /** Sends everything queued, batch by batch, stopping at the first batch that fails (it stays queued). */
  flush(onError: (err: unknown) => void): Promise<void> {
    this.draining ??= (async () => {
      while (this.items.length) {
        const batch = this.items.slice(0, this.batchSize);
        try {
          if ((await this.send(batch)) === false) return;
        } catch (err) {
          onError(err);
          return;
        }
        this.items.splice(0, batch.length);
        this.sent += batch.length;
      }
    })().finally(() => {
      this.draining = null;
    });
    return this.draining;
  }
}
