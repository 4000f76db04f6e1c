/**
 * The ledger's disk spool (`usage/spool.ts`), function-level: records written are replayed whole and in order, in
 * batches of the size asked; the byte bound drops (and counts) what would pass it; a failed batch keeps its file
 * for the next replay; a line cut by a crash is skipped; records spooled during a replay go to a new file; an
 * unwritable spool counts drops instead of throwing.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import type { UsageRecord } from '../src/usage/record.js';
import { DEFAULT_SPOOL_MAX_BYTES, Spool } from '../src/usage/spool.js';

const rec = (i: number) => ({ request_id: `req-${i}`, model: 'claude-sonnet-4-6', input_tokens: i }) as unknown as UsageRecord;
const dir = () => mkdtempSync(path.join(tmpdir(), 'sy-spool-'));

test('records written are replayed whole, in order, in batches of the size asked; the files are then gone', async () => {
  const s = new Spool(path.join(dir(), 'nested', 'spool'));
  assert.equal(s.pending(), false);
  assert.equal(s.bytes(), 0);
  assert.equal(s.write([]), true, 'nothing to write is a success');
  assert.equal(s.pending(), false, 'and writes no file');
  assert.equal(s.write([rec(1), rec(2), rec(3)]), true);
  assert.equal(s.write([rec(4), rec(5)]), true);
  assert.equal(s.spooled, 5);
  assert.equal(s.pending(), true);
  const text = [1, 2, 3, 4, 5].map((i) => `${JSON.stringify(rec(i))}\n`).join('');
  assert.equal(s.bytes(), Buffer.byteLength(text), 'bytes() is the size of the JSON lines');
  const batches: string[][] = [];
  const n = await s.replay(async (b) => void batches.push(b.map((r) => r.request_id)), 2);
  assert.equal(n, 5);
  assert.deepEqual(batches, [['req-1', 'req-2'], ['req-3', 'req-4'], ['req-5']]);
  assert.equal(s.pending(), false);
  assert.equal(s.bytes(), 0);
  assert.equal(await s.replay(async () => assert.fail('nothing left to replay')), 0);
});

test('the byte bound: a write that would pass it is dropped whole and counted; smaller ones still fit', () => {
  const one = Buffer.byteLength(`${JSON.stringify(rec(1))}\n`);
  const s = new Spool(dir(), one * 2);
  assert.equal(s.write([rec(1)]), true);
  assert.equal(s.write([rec(2), rec(3)]), false, 'two more would pass the bound');
  assert.equal(s.dropped, 2);
  assert.equal(s.write([rec(4)]), true, 'exactly at the bound fits');
  assert.equal(s.bytes(), one * 2);
  assert.equal(s.write([rec(5)]), false);
  assert.deepEqual([s.spooled, s.dropped], [2, 3]);
  assert.equal(DEFAULT_SPOOL_MAX_BYTES, 256 * 1024 * 1024);
});

test('a failed batch stops the replay and keeps its file; the next replay delivers every record once', async () => {
  const s = new Spool(dir());
  s.write([rec(1), rec(2), rec(3), rec(4)]);
  let calls = 0;
  await assert.rejects(
    s.replay(async (b) => {
      calls++;
      if (b[0]!.request_id === 'req-3') throw new Error('store down');
    }, 2),
    /store down/,
  );
  assert.equal(calls, 2);
  assert.equal(s.pending(), true, 'the file stays for the next replay');
  assert.ok(
    readdirSync(s.dir).every((f) => f.endsWith('.replaying')),
    'renamed while replaying',
  );
  const got: string[] = [];
  assert.equal(await s.replay(async (b) => void got.push(...b.map((r) => r.request_id)), 2), 4);
  assert.deepEqual(got, ['req-1', 'req-2', 'req-3', 'req-4'], 'replayed again from its start (the stores skip ids they hold)');
  assert.equal(s.pending(), false);
});

test('a line cut by a crash and blank lines are skipped; other spool files in the directory are replayed; other files are left', async () => {
  const d = dir();
  writeFileSync(path.join(d, 'spool-1-2-0.jsonl'), `${JSON.stringify(rec(1))}\n\n{"request_id":"req-cut","mod\n${JSON.stringify(rec(2))}\n`);
  writeFileSync(path.join(d, 'spool-1-2-1.jsonl.replaying'), `${JSON.stringify(rec(3))}\n`);
  writeFileSync(path.join(d, 'notes.txt'), 'not a spool file\n');
  const s = new Spool(d);
  assert.equal(s.pending(), true, 'files from an earlier run are pending');
  const got: string[] = [];
  assert.equal(await s.replay(async (b) => void got.push(...b.map((r) => r.request_id))), 3);
  assert.deepEqual(got.sort(), ['req-1', 'req-2', 'req-3']);
  assert.deepEqual(readdirSync(d), ['notes.txt']);
});

test('records spooled while a replay runs go to a new file and are not lost', async () => {
  const s = new Spool(dir());
  s.write([rec(1)]);
  const got: string[] = [];
  await s.replay(async (b) => {
    got.push(...b.map((r) => r.request_id));
    s.write([rec(9)]);
  });
  assert.deepEqual(got, ['req-1']);
  assert.equal(s.pending(), true);
  const files = readdirSync(s.dir);
  assert.equal(files.length, 1);
  assert.equal(readFileSync(path.join(s.dir, files[0]!), 'utf8'), `${JSON.stringify(rec(9))}\n`);
});

test('an unwritable spool counts the records dropped instead of throwing', () => {
  const d = dir();
  const s = new Spool(d);
  rmSync(d, { recursive: true }); // the directory is gone under the gateway (a disk cleaned up, a volume unmounted)
  assert.equal(s.write([rec(1), rec(2)]), false);
  assert.deepEqual([s.spooled, s.dropped], [0, 2]);
  assert.equal(s.pending(), false, 'a directory that cannot be listed holds nothing pending');
  assert.equal(s.bytes(), 0);
});
