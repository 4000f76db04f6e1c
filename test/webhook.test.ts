/**
 * The billing webhook (issue 35; docs/operations.md `ledger.webhook`): a batch that failed every attempt stays queued —
 * not lost, not counted as sent — and goes out whole once the receiver answers; the records arrive once.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { createLogger } from '../src/log.js';
import { WebhookExporter } from '../src/usage/webhook.js';
import { usageRecord } from './helpers.js';

test('a batch that failed every attempt stays undelivered and queued; it is delivered whole, once, when the receiver is back', async () => {
  let failing = true;
  const attempts: number[] = [];
  const delivered: string[] = [];
  const receiver = createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => {
      const records = (JSON.parse(Buffer.concat(parts).toString()) as { records: Array<{ request_id: string }> }).records;
      attempts.push(records.length);
      if (failing) return res.writeHead(503).end();
      delivered.push(...records.map((r) => r.request_id));
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/billing`;
  const exporter = new WebhookExporter(url, createLogger({ level: 'silent' }), { intervalMs: 3_600_000, maxQueue: 100, retries: 1 });
  try {
    const ids = ['sy_w_1', 'sy_w_2', 'sy_w_3'];
    for (const id of ids) exporter.push(usageRecord({ time: new Date().toISOString(), request_id: id }));
    assert.equal(await exporter.flush(), false, 'every attempt failed');
    assert.deepEqual(attempts, [3, 3], 'the first attempt and one retry, each with the whole batch');
    assert.deepEqual(delivered, []);
    failing = false;
    assert.equal(await exporter.flush(), true);
    assert.deepEqual(delivered, ids, 'the same batch, delivered once');
    assert.equal(await exporter.flush(), true);
    assert.deepEqual(delivered, ids, 'nothing is sent twice');
  } finally {
    await exporter.close();
    receiver.close();
  }
});
