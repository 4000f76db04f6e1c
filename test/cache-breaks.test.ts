/**
 * Cache-break causes (issue 35; docs/operations.md "Cache analytics"): an idle gap is the cause only when it is longer
 * than the lifetime the prefix was written with — 1 hour for a prefix written with the 1h TTL, even when the requests
 * between only read it (a read refreshes the entry, it does not rewrite it with another TTL).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cacheBreaks } from '../src/usage/cache.js';
import type { UsageRecord } from '../src/usage/record.js';
import { usageRecord } from './helpers.js';

const t0 = Date.parse('2026-12-07T10:00:00Z');
/** A session's request at `min` minutes: writes `w5` / `w1h` tokens with the 5m / 1h TTL and reads `read`. */
const turn = (min: number, read: number, w5: number, w1h: number, i: number): UsageRecord =>
  usageRecord({
    time: new Date(t0 + min * 60_000).toISOString(),
    request_id: `sy_cb_${i}`,
    session_id: 'sess-1h',
    latency_ms: 1000,
    cache_read_input_tokens: read,
    cache_creation_input_tokens: w5 + w1h,
    cache_creation_5m_input_tokens: w5,
    cache_creation_1h_input_tokens: w1h,
  });

test('a prefix written with the 1h TTL and then only read: a 10-minute gap is not the cause, a 70-minute one is', () => {
  const tenMinutes = cacheBreaks([turn(0, 0, 0, 20_000, 1), turn(1, 20_000, 0, 0, 2), turn(12, 0, 0, 20_000, 3)]);
  assert.equal(tenMinutes.length, 1);
  assert.match(tenMinutes[0]!.cause, /prompt prefix changed/, tenMinutes[0]!.cause);
  const seventy = cacheBreaks([turn(0, 0, 0, 20_000, 1), turn(1, 20_000, 0, 0, 2), turn(72, 0, 0, 20_000, 3)]);
  assert.match(seventy[0]!.cause, /idle for 71 min, longer than the 1-hour cache lifetime/);
});

test('a prefix written with the 5m TTL: a 10-minute gap is the cause', () => {
  const b = cacheBreaks([turn(0, 0, 20_000, 0, 1), turn(1, 20_000, 0, 0, 2), turn(12, 0, 20_000, 0, 3)]);
  assert.match(b[0]!.cause, /idle for 11 min, longer than the 5-minute cache lifetime/);
});
