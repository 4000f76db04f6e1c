/**
 * The batching queue behind the ledger writer and the billing webhook (src/usage/batch-queue.ts): batches of at most
 * `batchSize` in order, a failed or hung batch stays at the head for the next flush, a full queue hands everything to
 * the overflow (the disk spool) or drops and counts, and one flush runs at a time.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BatchQueue } from '../src/usage/batch-queue.js';

test('batches of at most batchSize, in order; counts what was sent', async () => {
  const batches: number[][] = [];
  const q = new BatchQueue<number>(async (b) => void batches.push([...b]), 100, 3);
  for (let i = 0; i < 7; i++) assert.equal(q.push(i), true);
  assert.equal(q.length, 7);
  assert.equal(await q.flush(() => {}), true);
  assert.deepEqual(batches, [[0, 1, 2], [3, 4, 5], [6]]);
  assert.deepEqual([q.length, q.sent, q.dropped], [0, 7, 0]);
});

test('a batch that throws, answers false or hangs past timeoutMs stays at the head; the next flush sends it first', async () => {
  const errors: string[] = [];
  let mode: 'throw' | 'false' | 'hang' | 'ok' = 'throw';
  const sent: number[][] = [];
  const q = new BatchQueue<number>(
    async (b) => {
      if (mode === 'throw') throw new Error('store down');
      if (mode === 'false') return false;
      if (mode === 'hang') return new Promise<never>(() => {});
      sent.push([...b]);
    },
    100,
    2,
    { timeoutMs: 50 },
  );
  for (const i of [1, 2, 3]) q.push(i);
  assert.equal(await q.flush((e) => errors.push((e as Error).message)), false);
  assert.deepEqual(errors, ['store down']);
  mode = 'false';
  assert.equal(await q.flush(() => {}), false);
  mode = 'hang';
  assert.equal(await q.flush((e) => errors.push((e as Error).message)), false);
  assert.equal(errors[1], 'a batch of 2 was not written within 50 ms');
  assert.deepEqual([q.length, q.sent], [3, 0], 'nothing lost, nothing counted as sent');
  mode = 'ok';
  assert.equal(await q.flush(() => {}), true);
  assert.deepEqual(sent, [[1, 2], [3]]);
});

test('full: everything goes to the overflow, or the new item is dropped and counted', () => {
  const spooled: number[][] = [];
  const spooling = new BatchQueue<number>(async () => {}, 2, 10, {
    overflow: (items) => {
      spooled.push([...items]);
      return true;
    },
  });
  for (const i of [1, 2, 3]) spooling.push(i);
  assert.deepEqual(spooled, [[1, 2]]);
  assert.deepEqual(spooling.takeAll(), [3], 'the queue holds only what came after');
  const dropping = new BatchQueue<number>(async () => {}, 2, 10, { overflow: () => false });
  assert.deepEqual([dropping.push(1), dropping.push(2), dropping.push(3), dropping.push(4)], [true, true, false, false]);
  assert.equal(dropping.dropped, 2);
  assert.equal(dropping.length, 2);
  const plain = new BatchQueue<number>(async () => {}, 1);
  plain.push(1);
  assert.equal(plain.push(2), false);
  assert.equal(plain.dropped, 1);
});

test('one flush at a time: a second call joins the first; items taken meanwhile are not removed twice', async () => {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const batches: number[][] = [];
  const q = new BatchQueue<number>(
    async (b) => {
      batches.push([...b]);
      await gate;
    },
    100,
    10,
  );
  q.push(1);
  q.push(2);
  const a = q.flush(() => {});
  const b = q.flush(() => {});
  assert.deepEqual(q.takeAll(), [1, 2], 'shutdown takes everything while a batch is in flight');
  q.push(3);
  release();
  assert.deepEqual(await Promise.all([a, b]), [true, true], 'one drain, joined by both calls');
  assert.deepEqual(batches, [[1, 2], [3]], 'item 3 was not removed with the batch before it, and went on its own');
  assert.equal(q.length, 0);
});
