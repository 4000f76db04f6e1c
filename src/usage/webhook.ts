/**
 * Billing export: batches of usage records POSTed as JSON (`{"records": [...]}`) to `ledger.webhook`, on
 * the ledger's flush interval, with up to 3 retries and backoff per batch; the queue is bounded like the
 * ledger's (overflow is dropped and counted). Never on the request path.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import type { Logger } from '../log.js';
import type { UsageRecord } from './record.js';

export class WebhookExporter {
  private queue: UsageRecord[] = [];
  private timer: NodeJS.Timeout;
  private sending: Promise<void> | null = null;
  dropped = 0;
  sent = 0;

  constructor(private readonly url: string, private readonly log: Logger, private readonly opts: { intervalMs: number; maxQueue: number; retries?: number }) {
    this.timer = setInterval(() => void this.flush(), opts.intervalMs);
    this.timer.unref();
  }

  push(r: UsageRecord): void {
    if (this.queue.length >= this.opts.maxQueue) this.dropped++;
    else this.queue.push(r);
  }

  /** Posts what is queued, batch by batch; a batch that still fails after the retries stays queued. */
  flush(): Promise<void> {
    this.sending ??= (async () => {
      while (this.queue.length) {
        const batch = this.queue.slice(0, 500);
        let ok = false;
        for (let attempt = 0; attempt <= (this.opts.retries ?? 3) && !ok; attempt++) {
          if (attempt) await sleep(Math.min(5000, 200 * 2 ** attempt));
          try {
            const r = await request(this.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ records: batch }), headersTimeout: 10_000, bodyTimeout: 10_000 });
            await r.body.dump();
            ok = r.statusCode >= 200 && r.statusCode < 300;
            if (!ok) this.log.warn({ status: r.statusCode, attempt }, `billing webhook answered ${r.statusCode}`);
          } catch (err) {
            this.log.warn({ err: (err as Error).message, attempt }, 'billing webhook unreachable');
          }
        }
        if (!ok) return;
        this.queue.splice(0, batch.length);
        this.sent += batch.length;
      }
    })().finally(() => {
      this.sending = null;
    });
    return this.sending;
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.flush();
  }
}
