/**
 * Cache-break causes (issue 35; docs/operations.md "Cache analytics"): an idle gap is the cause only when it is longer
 * than the lifetime the prefix was written with — 1 hour for a prefix written with the 1h TTL, even when the requests
 * between only read it (a read refreshes the entry, it does not rewrite it with another TTL).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
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

describe('the cache report', async () => {
  const path = await import('node:path');
  const { buildCacheReport, renderCacheReport } = await import('../src/usage/cache.js');
  const { loadPrices } = await import('../src/usage/prices.js');
  const prices = loadPrices(path.join(import.meta.dirname, '..', 'prices.yaml'));
  const sonnetInput = prices.priceOf('claude-sonnet-4-6', 'anthropic')!.input / 1e6; // USD per token
  // Sonnet, the default record: 20,000 read, 1,000 written (5m); one 1h writer; one unpriced model; one without a session.
  const records = [
    usageRecord({ time: '2026-12-07T10:00:00.000Z', request_id: 'a', session_id: 's1', user_id: 'u1' }),
    usageRecord({
      time: '2026-12-07T10:01:00.000Z',
      request_id: 'b',
      session_id: 's1',
      user_id: 'u1',
      cache_read_input_tokens: 0,
      cache_creation_input_tokens: 4000,
      cache_creation_5m_input_tokens: 0,
      cache_creation_1h_input_tokens: 4000,
    }),
    usageRecord({ time: '2026-12-08T09:00:00.000Z', request_id: 'c', session_id: null, user_id: null, model: 'vendor-unpriced-model' }),
  ];

  test('rows by session, user, model and day; hit share, saved USD net of the write premium, breaks and totals', () => {
    const bySession = buildCacheReport(records, 'session', prices, 's', 'u');
    const s1 = bySession.rows.find((r) => r.group === 's1')!;
    const savedA = 20_000 * sonnetInput * 0.9 - 1000 * sonnetInput * 0.25;
    const savedB = -4000 * sonnetInput * 1;
    assert.equal(s1.saved_usd, Math.round((savedA + savedB) * 1e6) / 1e6);
    assert.equal(s1.requests, 2);
    assert.equal(s1.cache_write_1h_tokens, 4000);
    assert.equal(s1.cache_write_5m_tokens, 1000);
    assert.equal(s1.hit_share, Math.round((20_000 / (40 + 1000 + 4000 + 20_000)) * 10_000) / 10_000);
    assert.equal(s1.breaks, 1, 'b found a warm prefix cold and wrote it again');
    const none = bySession.rows.find((r) => r.group === '(none)')!;
    assert.equal(none.saved_usd, 0, 'an unpriced model saves nothing the report can price');
    assert.deepEqual(
      bySession.rows.map((r) => r.group),
      ['s1', '(none)'],
      'most saved first (s1 saved $0.04125, the unpriced row $0)',
    );
    assert.equal(bySession.totals.requests, 3);
    assert.equal(bySession.totals.breaks, 1);
    assert.equal(bySession.breaks[0]!.request_id, 'b');
    assert.deepEqual(
      buildCacheReport(records, 'user', prices, 's', 'u')
        .rows.map((r) => r.group)
        .sort(),
      ['(none)', 'u1'],
    );
    assert.deepEqual(
      buildCacheReport(records, 'model', prices, 's', 'u')
        .rows.map((r) => r.group)
        .sort(),
      ['claude-sonnet-4-6', 'vendor-unpriced-model'],
    );
    assert.deepEqual(
      buildCacheReport(records, 'day', prices, 's', 'u')
        .rows.map((r) => [r.group, r.requests])
        .sort(),
      [
        ['2026-12-07', 2],
        ['2026-12-08', 1],
      ],
    );
    assert.equal(buildCacheReport([], 'user', prices, 's', 'u').totals.hit_share, 0);
  });

  test('rendered as a table with the breaks, as CSV and as JSON', () => {
    const report = buildCacheReport(records, 'session', prices, '2026-12-07', '2026-12-09');
    const table = renderCacheReport(report, 'table');
    assert.match(table, /^cache 2026-12-07 \.\. 2026-12-09\nsession +requests +input_tokens/);
    assert.match(table, /\ns1 +2 +/);
    assert.match(table, /\nTOTAL +3 +/);
    assert.match(table, /cache breaks \(1\):\n {2}2026-12-07T10:01:00\.000Z {2}session s1 \(u1\) {2}read 20000 -> 0 tokens {2}b: /);
    const csv = renderCacheReport(report, 'csv').split('\n');
    assert.equal(csv[0], 'session,requests,input_tokens,cache_write_5m_tokens,cache_write_1h_tokens,cache_read_tokens,hit_share,saved_usd,breaks');
    assert.equal(csv.length, 4);
    assert.deepEqual(JSON.parse(renderCacheReport(report, 'json')), report);
    assert.match(renderCacheReport(buildCacheReport([], 'user', prices, 'a', 'b'), 'table'), /cache breaks: none/);
  });
});

test('causes beyond idle time: a model switch, the tools changed, the prefix changed', () => {
  const warm = (over: Partial<UsageRecord>) => usageRecord({ time: '2026-12-07T10:00:00.000Z', request_id: 'w', session_id: 's', ...over });
  const cold = (over: Partial<UsageRecord>) =>
    usageRecord({ time: '2026-12-07T10:01:00.000Z', request_id: 'c', session_id: 's', cache_read_input_tokens: 0, cache_creation_input_tokens: 20_000, ...over });
  const facts = (tools: number) => ({ path: '/v1/messages', stream: true, body_bytes: 1, messages: 2, tools, max_tokens: 1, metadata: null, headers: {}, headers_named: [] });
  assert.match(cacheBreaks([warm({}), cold({ model: 'claude-opus-4-1' })])[0]!.cause, /model switched from claude-sonnet-4-6 to claude-opus-4-1/);
  assert.match(cacheBreaks([warm({ facts: facts(24) }), cold({ facts: facts(25) })])[0]!.cause, /tools changed \(24 -> 25 definitions\)/);
  assert.match(cacheBreaks([warm({ facts: facts(24) }), cold({ facts: facts(24) })])[0]!.cause, /prompt prefix changed/);
  assert.deepEqual(cacheBreaks([warm({}), cold({ cache_read_input_tokens: 5000 })]), [], 'a quarter of the prefix still read is not a break');
  assert.deepEqual(cacheBreaks([warm({}), cold({ cache_creation_input_tokens: 0 })]), [], 'nothing written again: not a break');
  assert.deepEqual(cacheBreaks([warm({ outcome: 'failed' }), cold({})]), [], 'failed requests do not count');
  assert.deepEqual(cacheBreaks([warm({ agent_id: 'sub' }), cold({})]), [], "a subagent's cache is its own");
});
