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
import { LogCapture, usageRecord } from './helpers.js';

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

/** A receiver answering each POST with the next status of `statuses` (then 204), recording when and what came. */
async function receiver(statuses: number[]) {
  const got: Array<{ at: number; type: string | undefined; ids: string[] }> = [];
  const server = createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => {
      got.push({
        at: Date.now(),
        type: req.headers['content-type'],
        ids: (JSON.parse(Buffer.concat(parts).toString()) as { records: Array<{ request_id: string }> }).records.map((r) => r.request_id),
      });
      res.writeHead(statuses.shift() ?? 204).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { got, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/billing`, close: () => new Promise<void>((r) => server.close(() => r())) };
}

function captured() {
  const capture = new LogCapture();
  return { lines: capture.lines, log: createLogger({ level: 'warn', destination: capture }) };
}

test('by default three retries, backing off 400, 800 and 1,600 ms; each failure logged with its status and attempt; a 3xx is a failure', async () => {
  const rx = await receiver([500, 302, 429]);
  const { lines, log } = captured();
  const exporter = new WebhookExporter(rx.url, log, { intervalMs: 3_600_000, maxQueue: 10 });
  try {
    exporter.push(usageRecord({ time: 't', request_id: 'sy_b_1' }));
    assert.equal(await exporter.flush(), true, 'the fourth attempt succeeds');
    assert.equal(rx.got.length, 4);
    assert.ok(rx.got.every((g) => g.type === 'application/json' && g.ids.join() === 'sy_b_1'));
    const gaps = rx.got.slice(1).map((g, i) => g.at - rx.got[i]!.at);
    for (const [i, want] of [400, 800, 1600].entries()) assert.ok(gaps[i]! >= want - 20 && gaps[i]! < want + 3000, `gap ${i + 1}: ${gaps[i]} ms, want ${want}`);
    assert.deepEqual(
      lines.map((l) => [l.msg, l.status, l.attempt]),
      [
        ['billing webhook answered 500', 500, 0],
        ['billing webhook answered 302', 302, 1],
        ['billing webhook answered 429', 429, 2],
      ],
    );
  } finally {
    await exporter.close();
    await rx.close();
  }
});

test('an unreachable receiver is logged as such; the interval flushes on its own; close() sends what is left', async () => {
  const { lines, log } = captured();
  const down = new WebhookExporter('http://127.0.0.1:1/billing', log, { intervalMs: 3_600_000, maxQueue: 10, retries: 0 });
  down.push(usageRecord({ time: 't', request_id: 'sy_u_1' }));
  assert.equal(await down.flush(), false);
  assert.equal(lines[0]!.msg, 'billing webhook unreachable');
  assert.equal(lines[0]!.attempt, 0);
  assert.match(String(lines[0]!.err), /ECONNREFUSED|connect/);
  await down.close();

  const rx = await receiver([]);
  const ticking = new WebhookExporter(rx.url, log, { intervalMs: 30, maxQueue: 10 });
  ticking.push(usageRecord({ time: 't', request_id: 'sy_i_1' }));
  const t0 = Date.now();
  while (rx.got.length === 0 && Date.now() - t0 < 2000) await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(
    rx.got.map((g) => g.ids),
    [['sy_i_1']],
    'sent by the interval, without a flush call',
  );
  const closing = new WebhookExporter(rx.url, log, { intervalMs: 3_600_000, maxQueue: 10 });
  closing.push(usageRecord({ time: 't', request_id: 'sy_c_1' }));
  await closing.close();
  assert.deepEqual(rx.got.at(-1)!.ids, ['sy_c_1'], 'close() delivered the last record');
  await ticking.close();
  await rx.close();
});
