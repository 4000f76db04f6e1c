/**
 * Usage extraction and cost as functions: token counts from JSON (plain and gzip) and SSE answers split at
 * any byte, cut-off streams, mid-stream errors, the cache-write TTL split, and cost per token kind.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { costUsd, priceTable } from '../src/usage/prices.js';
import { noUsage, UsageTap } from '../src/usage/tap.js';

const sse = (event: string, data: unknown) => `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;

describe('usage extraction', () => {
  test('SSE: message_start counts, cumulative message_delta, split across chunks at any byte', () => {
    const text =
      sse('message_start', {
        type: 'message_start',
        message: {
          usage: {
            input_tokens: 12,
            output_tokens: 1,
            cache_creation_input_tokens: 300,
            cache_read_input_tokens: 4000,
            cache_creation: { ephemeral_5m_input_tokens: 100, ephemeral_1h_input_tokens: 200 },
          },
        },
      }) +
      sse('ping', { type: 'ping' }) +
      sse('message_delta', { type: 'message_delta', delta: { stop_reason: 'end_turn' }, usage: { output_tokens: 40 } }) +
      sse('message_delta', { type: 'message_delta', delta: {}, usage: { output_tokens: 57 } }) +
      sse('message_stop', { type: 'message_stop' });
    const bytes = Buffer.from(text);
    for (const step of [1, 7, 64, bytes.length]) {
      const tap = new UsageTap('text/event-stream', '');
      for (let i = 0; i < bytes.length; i += step) tap.write(bytes.subarray(i, i + step));
      assert.deepEqual(tap.finish(), {
        input_tokens: 12,
        output_tokens: 57,
        cache_creation_input_tokens: 300,
        cache_creation_5m_input_tokens: 100,
        cache_creation_1h_input_tokens: 200,
        cache_read_input_tokens: 4000,
      });
      assert.equal(tap.completed, true);
    }
  });

  test('a stream cut off mid-way keeps what was seen; a mid-stream error event is reported', () => {
    const cut = new UsageTap('text/event-stream; charset=utf-8', '');
    cut.write(Buffer.from(sse('message_start', { message: { usage: { input_tokens: 9, output_tokens: 1 } } }) + 'event: message_delta\ndata: {"usage":{"output_tok'));
    assert.equal(cut.finish().input_tokens, 9);
    assert.equal(cut.completed, false);
    const failed = new UsageTap('text/event-stream', '');
    failed.write(Buffer.from(sse('message_start', { message: { usage: { input_tokens: 5 } } }) + sse('error', { type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } })));
    failed.finish();
    assert.equal(failed.streamError, 'overloaded_error');
  });

  test('JSON, plain and gzip; cache writes without a split count as 5m', () => {
    const body = JSON.stringify({ type: 'message', usage: { input_tokens: 3, output_tokens: 4, cache_creation_input_tokens: 50, cache_read_input_tokens: 60 } });
    for (const [enc, bytes] of [
      ['', Buffer.from(body)],
      ['gzip', gzipSync(body)],
    ] as const) {
      const tap = new UsageTap('application/json', enc);
      tap.write(bytes.subarray(0, 5));
      tap.write(bytes.subarray(5));
      assert.deepEqual(tap.finish(), {
        input_tokens: 3,
        output_tokens: 4,
        cache_creation_input_tokens: 50,
        cache_creation_5m_input_tokens: 50,
        cache_creation_1h_input_tokens: 0,
        cache_read_input_tokens: 60,
      });
    }
  });
});

test('cost: each token kind at its price; 5m writes 1.25×, 1h writes 2×, reads 0.1×; unknown model null', () => {
  const table = priceTable({ models: { 'claude-sonnet-4-6*': { input: 3, output: 15 }, 'special-*': { input: 10, output: 20, cache_read: 0.5 } } });
  const M = 1_000_000;
  const one = (k: string) => ({ ...noUsage(), [k]: M });
  const sonnet = table.priceOf('claude-sonnet-4-6')!;
  assert.equal(costUsd(one('input_tokens'), sonnet), 3);
  assert.equal(costUsd(one('output_tokens'), sonnet), 15);
  assert.equal(costUsd(one('cache_creation_5m_input_tokens'), sonnet), 3.75);
  assert.equal(costUsd(one('cache_creation_1h_input_tokens'), sonnet), 6);
  assert.equal(costUsd(one('cache_read_input_tokens'), sonnet), 0.3);
  assert.equal(costUsd(one('cache_read_input_tokens'), table.priceOf('special-x')), 5, 'per-model multiplier override');
  assert.equal(costUsd(one('input_tokens'), table.priceOf('gpt-unknown')), null);
});

test('prices: the first matching pattern wins, default multipliers unless overridden, lookups cached, unknown null', () => {
  const table = priceTable({
    multipliers: { cache_read: 0.2 },
    models: { 'claude-opus-*': { input: 15, output: 75 }, 'claude-*': { input: 3, output: 15, cache_write_1h: 3 } },
  });
  assert.deepEqual(table.priceOf('claude-opus-4-1'), { input: 15, output: 75, cache_write_5m: 1.25, cache_write_1h: 2, cache_read: 0.2, batch: 0.5 });
  assert.deepEqual(table.priceOf('claude-sonnet-4-6'), { input: 3, output: 15, cache_write_5m: 1.25, cache_write_1h: 3, cache_read: 0.2, batch: 0.5 });
  assert.equal(table.priceOf('claude-sonnet-4-6'), table.priceOf('claude-sonnet-4-6'), 'the same object from the cache');
  assert.equal(table.priceOf('gpt-4o'), null);
  assert.equal(table.priceOf('gpt-4o'), null, 'an unknown model stays unknown');
  assert.equal(priceTable({}).priceOf('claude-sonnet-4-6'), null);
  assert.equal(costUsd({ ...noUsage(), input_tokens: 1 }, null), null);
  // Rounded to 1e-9 USD: one input token of a $3/MTok model.
  assert.equal(costUsd({ ...noUsage(), input_tokens: 1 }, table.priceOf('claude-sonnet-4-6')), 0.000003);
});

test("a provider's own price (<provider>/<model glob>) comes before the model's; plain globs never match across the provider", () => {
  // The plain glob first: were it to match "bedrock-eu/claude-…", it would win.
  const table = priceTable({ models: { 'claude-*': { input: 3, output: 15 }, 'bedrock-eu/claude-sonnet-4-5*': { input: 3.3, output: 16.5 } } });
  assert.equal(table.priceOf('claude-sonnet-4-5-20250929', 'bedrock-eu')!.input, 3.3);
  assert.equal(table.priceOf('claude-sonnet-4-5-20250929', 'anthropic')!.input, 3, 'another provider: the model price');
  assert.equal(table.priceOf('claude-sonnet-4-5-20250929')!.input, 3, 'no provider: the model price');
  assert.equal(table.priceOf('claude-haiku-4-5', 'bedrock-eu')!.input, 3, 'a model the provider entry does not name: the model price');
  const any = priceTable({ models: { '*': { input: 1, output: 1 }, 'p/*': { input: 2, output: 2 } } });
  assert.deepEqual([any.priceOf('m', 'p')!.input, any.priceOf('m', 'q')!.input], [2, 1]);
});

test('loadPrices: the bundled prices.yaml loads; a missing or broken file names itself', async () => {
  const { loadPrices } = await import('../src/usage/prices.js');
  const { mkdtempSync, writeFileSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const path = await import('node:path');
  const bundled = loadPrices(path.join(import.meta.dirname, '..', 'prices.yaml'));
  assert.ok(bundled.priceOf('claude-sonnet-4-6'), 'the bundled table prices Sonnet');
  const dir = mkdtempSync(path.join(tmpdir(), 'sy-prices-'));
  const broken = path.join(dir, 'p.yaml');
  writeFileSync(broken, 'models: [unclosed');
  assert.throws(() => loadPrices(broken), new RegExp(`^Error: cannot load prices from ${broken.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: `));
  assert.throws(() => loadPrices(path.join(dir, 'none.yaml')), /cannot load prices from .*none\.yaml: ENOENT/);
});

describe('usage tap edges', () => {
  const json = (o: unknown) => Buffer.from(JSON.stringify(o));
  test('JSON bodies: br and deflate too; an error body names its type; plain text or an oversized body counts nothing', async () => {
    const { brotliCompressSync, deflateSync } = await import('node:zlib');
    const answer = json({ type: 'message', usage: { input_tokens: 9, output_tokens: 2 } });
    for (const [enc, bytes] of [
      ['br', brotliCompressSync(answer)],
      ['deflate', deflateSync(answer)],
      ['GZIP', gzipSync(answer)],
    ] as const) {
      const t = new UsageTap('application/json', enc);
      t.write(bytes);
      assert.equal(t.finish().input_tokens, 9, enc);
      assert.equal(t.completed, true);
      assert.equal(t.outputTokens(), 2);
    }
    const err = new UsageTap('application/json; charset=utf-8', '');
    err.write(json({ type: 'error', error: { type: 'overloaded_error', message: 'x' } }));
    err.finish();
    assert.equal(err.streamError, 'overloaded_error');
    const notError = new UsageTap('application/json', '');
    notError.write(json({ type: 'message', error: { type: 'weird' }, usage: { input_tokens: 1 } }));
    notError.finish();
    assert.equal(notError.streamError, null, 'only an error body sets the error');
    const text = new UsageTap('text/plain', '');
    text.write(Buffer.from('{"usage":{"input_tokens":5}}'));
    assert.equal(text.finish().input_tokens, 0, 'a body that is neither JSON nor SSE is not read');
    const big = new UsageTap('application/json', '');
    const pad = 'x'.repeat(1024 * 1024);
    for (let i = 0; i < 5; i++) big.write(Buffer.from(i === 0 ? `{"usage":{"input_tokens":7},"pad":"${pad}` : pad));
    big.write(Buffer.from('"}'));
    assert.equal(big.finish().input_tokens, 0, 'a JSON body over 4 MB is not held to be parsed');
    const cut = new UsageTap('application/json', '');
    cut.write(Buffer.from('{"usage":{"input_tokens":3'));
    assert.equal(cut.finish().input_tokens, 0);
    assert.equal(cut.completed, false);
  });

  test('SSE: an error event without a type, usage fields that are not numbers, events the tap ignores', () => {
    const t = new UsageTap('text/event-stream', '');
    t.write(
      Buffer.from(
        sse('message_start', { message: { usage: { input_tokens: 4, output_tokens: 'x', cache_read_input_tokens: Number.NaN, cache_creation: null } } }) +
          sse('content_block_delta', { usage: { output_tokens: 999 } }) +
          'event: message_delta\ndata: not json\n\n' +
          sse('message_delta', { usage: { output_tokens: 6, cache_creation: { ephemeral_1h_input_tokens: 10 } } }) +
          sse('error', { type: 'error', error: { message: 'no type' } }),
      ),
    );
    const u = t.finish();
    assert.equal(u.input_tokens, 4);
    assert.equal(u.output_tokens, 6, 'content_block_delta carries no usage; a later message_delta wins');
    assert.equal(u.cache_read_input_tokens, 0);
    assert.equal(u.cache_creation_1h_input_tokens, 10);
    assert.equal(u.cache_creation_5m_input_tokens, 0);
    assert.equal(t.streamError, 'error');
    assert.equal(t.completed, false);
  });
});
