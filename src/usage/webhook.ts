/**
 * Billing export: batches of usage records POSTed as JSON (`{"records": [...]}`) to `ledger.webhook`, on
 * the ledger's flush interval, with up to 3 retries and backoff per batch; the queue is bounded like the
 * ledger's (overflow is dropped and counted). Never on the request path.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import type { Logger } from '../log.js';
import { BatchQueue } from './batch-queue.js';
import type { UsageRecord } from './record.js';

export class WebhookExporter {
  private readonly queue: BatchQueue<UsageRecord>;
  private timer: NodeJS.Timeout;

  constructor(
    private readonly url: string,
    private readonly log: Logger,
    opts: { intervalMs: number; maxQueue: number; retries?: number },
  ) {
    this.queue = new BatchQueue((batch) => this.post(batch, opts.retries ?? 3), opts.maxQueue);
    this.timer = setInterval(() => void this.flush(), opts.intervalMs);
    this.timer.unref();
  }

  push(r: UsageRecord): void {
    this.queue.push(r);
  }

  /** One batch, retried with backoff; false when every attempt failed (the batch stays queued). */
  private async post(batch: UsageRecord[], retries: number): Promise<boolean> {
    for (let attempt = 0; attempt <= retries; attempt++) {
      if (attempt) await sleep(Math.min(5000, 200 * 2 ** attempt));
      try {
        const r = await request(this.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ records: batch }), headersTimeout: 10_000, bodyTimeout: 10_000 });
        await r.body.dump();
        if (r.statusCode >= 200 && r.statusCode < 300) return true;
        this.log.warn({ status: r.statusCode, attempt }, `billing webhook answered ${r.statusCode}`);
      } catch (err) {
        this.log.warn({ err: (err as Error).message, attempt }, 'billing webhook unreachable');
      }
    }
    return false;
  }

  flush(): Promise<boolean> {
    return this.queue.flush((err) => this.log.warn({ err: (err as Error).message }, 'billing webhook export failed'));
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.flush();
  }
}
