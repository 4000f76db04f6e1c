/**
 * The resource endpoints' parts as functions (fast: in `npm run mutate`): which call a method and path is, the
 * `file_id`s a Messages body references, where affinity looks and what it remembers, a batch's results lines as
 * usage records at the batch rate (fixtures from the API reference, test/fixtures/resources/SOURCES.md), the JSONL
 * splitter, a tally's exactly-once budget charge, `results_url` pointed at the gateway, and platform base paths.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { loadConfig } from '../src/config.js';
import { adapterFor, missingProviderPackages } from '../src/upstream/providers/index.js';
import type { IncomingMessage } from 'node:http';
import path from 'node:path';
import { describe, test } from 'node:test';
import { lazyBody, scanJsonObject } from '../src/body/json-scan.js';
import { createLogger } from '../src/log.js';
import { LogCapture, writeConfig } from './helpers.js';
import { stripPlatformPrefix } from '../src/server/app.js';
import { pointResultsHere } from '../src/server/resources/call.js';
import { fileOwner, pinnedChain } from '../src/server/pipeline/files.js';
import type { Exchange } from '../src/server/pipeline/exchange.js';
import { resourceCall } from '../src/server/resources/paths.js';
import { BATCH_ITEM_PATH, batchItemParams, batchItems, isBatchBody, MAX_BATCH_ITEMS } from '../src/rules/batch.js';
import { InvalidRequestError } from '../src/errors.js';
import { foundryAdapter, foundryBaseUrl } from '../src/upstream/providers/foundry/index.js';
import { ProviderEntryError, type ClientRequest } from '../src/upstream/providers/types.js';
import { MemoryStore } from '../src/state/store.js';
import { fileIdsOf, ResourceAffinity, resourceKindOf, type ResourceOwner, type ResourceStore } from '../src/upstream/affinity.js';
import type { ProviderConfig } from '../src/upstream/providers/provider-config.js';
import { batchItemId, batchItemRecord, JsonLines, MAX_RESULT_LINE_BYTES, startTally } from '../src/usage/batch-items.js';
import type { Ledger } from '../src/usage/ledger.js';
import { costUsd, priceTable } from '../src/usage/prices.js';
import type { UsageRecord } from '../src/usage/record.js';

const FIXTURES = path.join(import.meta.dirname, 'fixtures/resources');
const log = createLogger({ level: 'silent' });
const prices = priceTable({ models: { 'claude-sonnet-4-5*': { input: 3, output: 15 } } });

const owner = (over: Partial<ResourceOwner> = {}): ResourceOwner => ({
  id: 'msgbatch_013Zva2CMHLNnXjNJJKqJ2EF',
  kind: 'batch',
  provider: 'anthropic',
  key: '…aaaa#123456',
  client_id: 'alice',
  user_id: 'alice',
  project: 'search',
  session_id: null,
  tags: { team: 'research' },
  rules_version: 'abc',
  charges: [],
  created_at: '2026-12-07T00:00:00.000Z',
  settled_at: null,
  ...over,
});

/** A durable store in memory (the ledger's `resources` table). */
class MapStore implements ResourceStore {
  readonly rows = new Map<string, ResourceOwner>();
  fail = false;
  async putResource(r: ResourceOwner) {
    if (this.fail) throw new Error('db down');
    this.rows.set(r.id, { ...r });
  }
  async getResource(id: string) {
    if (this.fail) throw new Error('db down');
    return this.rows.get(id) ?? null;
  }
  async unsettledBatches(since: string, limit: number) {
    return [...this.rows.values()].filter((r) => r.kind === 'batch' && !r.settled_at && r.created_at >= since).slice(0, limit);
  }
  async settleBatch(id: string, at: string) {
    const r = this.rows.get(id);
    if (r) r.settled_at = at;
  }
}

describe('resource paths', () => {
  test('each endpoint of the API reference is the call it names', () => {
    assert.deepEqual(resourceCall('POST', '/v1/messages/batches'), { family: 'batch', id: null, action: 'create' });
    assert.deepEqual(resourceCall('GET', '/v1/messages/batches'), { family: 'batch', id: null, action: 'list' });
    assert.deepEqual(resourceCall('GET', '/v1/messages/batches/msgbatch_1'), { family: 'batch', id: 'msgbatch_1', action: 'retrieve' });
    assert.deepEqual(resourceCall('DELETE', '/v1/messages/batches/msgbatch_1'), { family: 'batch', id: 'msgbatch_1', action: 'delete' });
    assert.deepEqual(resourceCall('POST', '/v1/messages/batches/msgbatch_1/cancel'), { family: 'batch', id: 'msgbatch_1', action: 'cancel' });
    assert.deepEqual(resourceCall('GET', '/v1/messages/batches/msgbatch_1/results'), { family: 'batch', id: 'msgbatch_1', action: 'results' });
    assert.deepEqual(resourceCall('POST', '/v1/files'), { family: 'file', id: null, action: 'create' });
    assert.deepEqual(resourceCall('GET', '/v1/files/file_1/content'), { family: 'file', id: 'file_1', action: 'content' });
    assert.deepEqual(resourceCall('GET', '/v1/skills/skill_1/versions'), { family: 'skill', id: 'skill_1', action: 'versions' });
    assert.deepEqual(resourceCall('GET', '/v1/skills/'), { family: 'skill', id: null, action: 'list' });
    assert.deepEqual(resourceCall('GET', '/v1/filesystem'), { family: 'other', id: null, action: 'get' }, 'a prefix of a name is not the name');
    assert.deepEqual(resourceCall('GET', '/v1/files/file%5F2'), { family: 'file', id: 'file_2', action: 'retrieve' }, 'ids are decoded');
  });

  test('ids name their kind by prefix', () => {
    assert.equal(resourceKindOf('msgbatch_01'), 'batch');
    assert.equal(resourceKindOf('file_01'), 'file');
    assert.equal(resourceKindOf('skill_01'), 'skill');
    assert.equal(resourceKindOf('msg_01'), null);
  });

  test("a platform's base path is taken off; other paths are left alone", () => {
    const url = (u: string) => {
      const req = { url: u } as IncomingMessage;
      stripPlatformPrefix(req);
      return req.url;
    };
    assert.equal(url('/foundry/v1/messages?beta=true'), '/v1/messages?beta=true');
    assert.equal(url('/anthropic/v1/messages'), '/v1/messages');
    assert.equal(url('/anthropic-aws/v1/messages/count_tokens'), '/v1/messages/count_tokens');
    assert.equal(url('/v1/messages'), '/v1/messages');
    assert.equal(url('/anthropic/healthz'), '/anthropic/healthz', 'only an API path under it');
    assert.equal(url('/admin/foundry/v1/x'), '/admin/foundry/v1/x');
  });
});

describe('file references', () => {
  const body = {
    model: 'm',
    messages: [
      {
        role: 'user',
        content: [
          { type: 'document', source: { type: 'file', file_id: 'file_A' } },
          { type: 'text', text: 'the word "file_id": "file_Z" in text is not a reference' },
        ],
      },
      { role: 'assistant', content: 'ok' },
      {
        role: 'user',
        content: [
          { type: 'image', source: { type: 'file', file_id: 'file_B' } },
          { type: 'container_upload', file_id: 'file_A' },
        ],
      },
    ],
  };
  test('found through the scan of where file_id occurs, each id once, in order', () => {
    const lazy = lazyBody(scanJsonObject(Buffer.from(JSON.stringify(body)), 64, ['file_id']));
    assert.deepEqual(fileIdsOf(lazy), ['file_A', 'file_B']);
  });
  test('found by walking the messages when the body has no scan (a plain object)', () => {
    assert.deepEqual(fileIdsOf(body as Record<string, unknown>), ['file_A', 'file_B']);
  });
  test('none in a body without one', () => {
    const lazy = lazyBody(scanJsonObject(Buffer.from('{"model":"m","messages":[{"role":"user","content":"hi"}]}'), 64, ['file_id']));
    assert.deepEqual(fileIdsOf(lazy), []);
  });
});

describe('resource affinity', () => {
  test('remembered in both stores; found in the state store, else in the ledger (and put back)', async () => {
    const state = new MemoryStore();
    const durable = new MapStore();
    const a = new ResourceAffinity(state, durable, log);
    await a.remember(owner({ id: 'file_1', kind: 'file' }));
    assert.equal((await a.lookup('file_1'))?.key, '…aaaa#123456');
    assert.ok(durable.rows.has('file_1'));
    // A fresh state store (Redis restarted): the ledger still knows, and the entry goes back to the state store.
    const fresh = new MemoryStore();
    const b = new ResourceAffinity(fresh, durable, log);
    assert.equal((await b.lookup('file_1'))?.provider, 'anthropic');
    assert.ok(await fresh.getRecord('resource:file_1'));
    assert.equal(await b.lookup('file_unknown'), null);
  });
  test('a store that fails is logged, never thrown; a long id is never kept', async () => {
    const durable = new MapStore();
    durable.fail = true;
    const a = new ResourceAffinity(new MemoryStore(), durable, log);
    await a.remember(owner({ id: 'file_2' }));
    assert.equal((await a.lookup('file_2'))?.id, 'file_2', 'the state store kept it');
    assert.equal(await new ResourceAffinity(new MemoryStore(), durable, log).lookup('file_2'), null, 'a ledger that fails is not found');
    await a.remember(owner({ id: `file_${'x'.repeat(300)}` }));
    assert.equal(await a.lookup(`file_${'x'.repeat(300)}`), null);
  });
  test('settled marks both stores; unsettled batches come from the ledger', async () => {
    const durable = new MapStore();
    const a = new ResourceAffinity(new MemoryStore(), durable, log);
    await a.remember(owner({ id: 'msgbatch_1' }));
    await a.remember(owner({ id: 'msgbatch_2' }));
    await a.remember(owner({ id: 'file_3', kind: 'file' }));
    assert.deepEqual(
      (await a.unsettledBatches('2026-01-01', 10)).map((b) => b.id),
      ['msgbatch_1', 'msgbatch_2'],
    );
    await a.settled((await a.lookup('msgbatch_1'))!, '2026-12-08T00:00:00.000Z');
    assert.equal((await a.lookup('msgbatch_1'))?.settled_at, '2026-12-08T00:00:00.000Z');
    assert.deepEqual(
      (await a.unsettledBatches('2026-01-01', 10)).map((b) => b.id),
      ['msgbatch_2'],
    );
    assert.deepEqual(await new ResourceAffinity(new MemoryStore(), null, log).unsettledBatches('2026-01-01', 10), [], 'no ledger, nothing to poll');
  });
});

describe('batch results in the ledger', () => {
  const lines = readFileSync(path.join(FIXTURES, 'batch-results.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as unknown);

  test("a succeeded item: its tokens, the model's price at the batch rate, the creator's attribution", () => {
    const r = batchItemRecord(lines[0], owner(), prices, '2026-12-08T00:00:00.000Z')!;
    assert.equal(r.request_id, 'msgbatch_013Zva2CMHLNnXjNJJKqJ2EF:my-second-request');
    assert.equal(r.kind, 'batch');
    assert.equal(r.outcome, 'ok');
    assert.equal(r.status, 200);
    assert.equal(r.model, 'claude-sonnet-4-5-20250929');
    assert.equal(r.input_tokens, 11);
    assert.equal(r.output_tokens, 36);
    assert.equal(r.cost_usd, Math.round(((11 * 3 + 36 * 15) / 1e6) * 0.5 * 1e9) / 1e9);
    assert.deepEqual([r.client_id, r.user_id, r.project, r.key_fingerprint, r.provider, r.rules_version], ['alice', 'alice', 'search', '…aaaa#123456', 'anthropic', 'abc']);
    assert.deepEqual(r.tags, { team: 'research' });
    assert.equal(r.time, '2026-12-08T00:00:00.000Z');
  });

  test('errored, canceled and expired items: no tokens, no cost, the outcome and type the result says', () => {
    const [errored, canceled, expired] = lines.slice(2).map((l) => batchItemRecord(l, owner(), prices, 't')!);
    assert.deepEqual([errored!.outcome, errored!.status, errored!.error_type, errored!.cost_usd], ['failed', 400, 'invalid_request_error', 0]);
    assert.deepEqual([canceled!.outcome, canceled!.status, canceled!.error_type], ['aborted', 499, 'canceled']);
    assert.deepEqual([expired!.outcome, expired!.status, expired!.error_type], ['failed', 504, 'expired']);
    const serverError = batchItemRecord({ custom_id: 'x', result: { type: 'errored', error: { type: 'error', error: { type: 'api_error' } } } }, owner(), prices, 't')!;
    assert.deepEqual([serverError.status, serverError.error_type], [500, 'api_error']);
  });

  test('cache writes and reads are priced with their multipliers, then halved; an unknown model is null', () => {
    const usage = {
      input_tokens: 10,
      output_tokens: 5,
      cache_creation_input_tokens: 100,
      cache_read_input_tokens: 1000,
      cache_creation: { ephemeral_5m_input_tokens: 40, ephemeral_1h_input_tokens: 60 },
    };
    const line = { custom_id: 'c', result: { type: 'succeeded', message: { model: 'claude-sonnet-4-5', usage } } };
    const r = batchItemRecord(line, owner(), prices, 't')!;
    const full = costUsd(
      { input_tokens: 10, output_tokens: 5, cache_creation_input_tokens: 100, cache_creation_5m_input_tokens: 40, cache_creation_1h_input_tokens: 60, cache_read_input_tokens: 1000 },
      prices.priceOf('claude-sonnet-4-5'),
    )!;
    assert.ok(Math.abs(r.cost_usd! - full / 2) < 1e-9, `${r.cost_usd} vs ${full}`);
    assert.equal(r.cache_creation_1h_input_tokens, 60);
    const unknown = batchItemRecord({ custom_id: 'u', result: { type: 'succeeded', message: { model: 'mystery', usage } } }, owner(), prices, 't')!;
    assert.equal(unknown.cost_usd, null);
  });

  test('a line that is not a result is no record; an item id is bounded', () => {
    assert.equal(batchItemRecord({ result: {} }, owner(), prices, 't'), null);
    assert.equal(batchItemRecord(null, owner(), prices, 't'), null);
    assert.equal(batchItemId('b', 'x'.repeat(400)).length, 256);
  });
});

describe('JSONL lines', () => {
  test('lines split across chunks, several in one chunk, and a last line without a newline', () => {
    const text = '{"a":1}\n{"b":2}\n{"c":"x\\ny"}\n{"d":4}';
    for (const size of [1, 3, 7, 100]) {
      const j = new JsonLines();
      const out: unknown[] = [];
      for (let i = 0; i < text.length; i += size) out.push(...j.push(Buffer.from(text.slice(i, i + size))));
      out.push(...j.end());
      assert.deepEqual(out, [{ a: 1 }, { b: 2 }, { c: 'x\ny' }, { d: 4 }], `chunks of ${size}`);
      assert.equal(j.skipped, 0);
    }
  });
  test('a line that is not JSON, or longer than the bound, is skipped and counted; the next line is read', () => {
    const j = new JsonLines();
    const out = [...j.push(Buffer.from('not json\n\n{"ok":1}\n')), ...j.end()];
    assert.deepEqual(out, [{ ok: 1 }], 'an empty line is nothing');
    assert.equal(j.skipped, 1);
    const big = new JsonLines();
    const chunk = Buffer.alloc(1024 * 1024, 0x61);
    for (let n = 0; n <= MAX_RESULT_LINE_BYTES; n += chunk.length) assert.deepEqual(big.push(chunk), []);
    assert.deepEqual(big.push(Buffer.from('\n{"after":true}\n')), [{ after: true }]);
    assert.equal(big.skipped, 1);
  });
});

describe('a tally of one read', () => {
  const ledger = () => {
    const records: UsageRecord[] = [];
    return { records, ledger: { record: (r: UsageRecord) => records.push(r) } as unknown as Ledger };
  };
  const line = (id: string) => ({ custom_id: id, result: { type: 'succeeded', message: { model: 'claude-sonnet-4-5', usage: { input_tokens: 1000, output_tokens: 100 } } } });
  const itemCost = Math.round(((1000 * 3 + 100 * 15) / 1e6) * 0.5 * 1e9) / 1e9;

  test('a whole read charges each budget total the cost of its items once, settles the batch and gives back the claim', async () => {
    const state = new MemoryStore();
    const durable = new MapStore();
    const affinity = new ResourceAffinity(state, durable, log);
    const o = owner({
      charges: [
        { key: 'all-items', expiresAtMs: Date.now() + 1e6, items: 'all' },
        { key: 'one-item', expiresAtMs: Date.now() + 1e6, items: ['b'] },
      ],
    });
    await affinity.remember(o);
    const { records, ledger: l } = ledger();
    const deps = { ledger: l, prices, state, affinity, metrics: null, log };
    const tally = (await startTally(deps, o, 'reader-1'))!;
    assert.equal(await startTally(deps, o, 'reader-2'), null, 'one reader at a time');
    for (const id of ['a', 'b', 'c']) tally.line(line(id));
    tally.line({ not: 'a result' });
    await tally.end(true);
    await tally.end(true);
    assert.equal(records.length, 3);
    assert.ok(Math.abs((await state.spend('all-items')) - 3 * itemCost) < 1e-12);
    assert.ok(Math.abs((await state.spend('one-item')) - itemCost) < 1e-12);
    assert.ok((await affinity.lookup(o.id))?.settled_at, 'settled');
    assert.equal(await startTally(deps, (await affinity.lookup(o.id))!, 'reader-3'), null, 'a settled batch is not read again');
  });

  test('a tally reads the JSONL in pieces of any size, the last line without its newline; an unreadable line keeps the batch unsettled', async () => {
    const jsonl = `${JSON.stringify(line('a'))}\n${JSON.stringify(line('b'))}\n${JSON.stringify(line('c'))}`;
    for (const size of [1, 7, jsonl.length]) {
      const affinity = new ResourceAffinity(new MemoryStore(), new MapStore(), log);
      const { records, ledger: l } = ledger();
      const tally = (await startTally({ ledger: l, prices, state: new MemoryStore(), affinity, metrics: null, log }, owner(), 'r'))!;
      for (let i = 0; i < jsonl.length; i += size) tally.push(Buffer.from(jsonl.slice(i, i + size)));
      assert.equal(await tally.end(true), true, `settled (pieces of ${size})`);
      assert.deepEqual(
        records.map((r) => r.request_id.split(':')[1]),
        ['a', 'b', 'c'],
      );
    }
    const affinity = new ResourceAffinity(new MemoryStore(), new MapStore(), log);
    await affinity.remember(owner());
    const { records, ledger: l } = ledger();
    const broken = (await startTally({ ledger: l, prices, state: new MemoryStore(), affinity, metrics: null, log }, owner(), 'r'))!;
    broken.push(Buffer.from(`${JSON.stringify(line('a'))}\nnot json\n${JSON.stringify(line('c'))}\n`));
    assert.equal(await broken.end(true), false, 'a skipped line: not settled, so a later read records the rest');
    assert.equal(records.length, 2);
    assert.equal((await affinity.lookup(owner().id))?.settled_at ?? null, null);
    const cut = (await startTally({ ledger: l, prices, state: new MemoryStore(), affinity, metrics: null, log }, owner(), 'r'))!;
    cut.push(Buffer.from(JSON.stringify(line('z'))));
    assert.equal(await cut.end(false), false, 'not read to its end: the unfinished last line is not recorded');
    assert.equal(records.length, 2);
  });

  test('a read cut short records what it saw, charges nothing and lets the next read claim the batch', async () => {
    const state = new MemoryStore();
    const affinity = new ResourceAffinity(state, new MapStore(), log);
    const o = owner({ charges: [{ key: 'k', expiresAtMs: Date.now() + 1e6, items: 'all' }] });
    const { records, ledger: l } = ledger();
    const deps = { ledger: l, prices, state, affinity, metrics: null, log };
    const first = (await startTally(deps, o, 'r1'))!;
    first.line(line('a'));
    await first.end(false);
    assert.equal(records.length, 1);
    assert.equal(await state.spend('k'), 0);
    const second = await startTally(deps, o, 'r2');
    assert.ok(second, 'the claim was given back');
    assert.equal(await startTally({ ...deps, ledger: null }, o, 'r3'), null, 'no ledger, no tally');
  });
});

describe('results_url', () => {
  const provider = (base: string) => ({ base_url: base }) as ProviderConfig;
  test("a batch's and a list's results_url point at the gateway, below the provider's base path", () => {
    const batch = { id: 'msgbatch_1', type: 'message_batch', results_url: 'https://api.anthropic.com/v1/messages/batches/msgbatch_1/results' };
    assert.equal(pointResultsHere(batch, provider('https://api.anthropic.com'), 'http://gw:8790'), true);
    assert.equal(batch.results_url, 'http://gw:8790/v1/messages/batches/msgbatch_1/results');
    const page = {
      data: [
        { type: 'message_batch', results_url: 'https://host/prefix/v1/messages/batches/b/results?x=1' },
        { type: 'message_batch', results_url: null },
      ],
    };
    assert.equal(pointResultsHere(page, provider('https://host/prefix/'), 'https://gw'), true);
    assert.equal(page.data[0]!.results_url, 'https://gw/v1/messages/batches/b/results?x=1');
    assert.equal(page.data[1]!.results_url, null);
    assert.equal(pointResultsHere({ type: 'file', id: 'file_1' }, provider('https://api.anthropic.com'), 'http://gw'), false);
  });
});

describe('edges that a careless change would break', () => {
  test('resource paths: a method other than GET and POST, sub-paths and trailing slashes', () => {
    assert.deepEqual(resourceCall('DELETE', '/v1/files'), { family: 'file', id: null, action: 'delete' });
    assert.deepEqual(resourceCall('POST', '/v1/files/file_1'), { family: 'file', id: 'file_1', action: 'post' });
    assert.deepEqual(resourceCall('POST', '/v1/skills/skill_1/versions/v2'), { family: 'skill', id: 'skill_1', action: 'versions/v2' });
    assert.deepEqual(resourceCall('GET', '/v1/skills/skill_1/'), { family: 'skill', id: 'skill_1', action: 'retrieve' });
    assert.deepEqual(resourceCall('GET', '/v1/messages/batches/'), { family: 'batch', id: null, action: 'list' });
  });

  test('file references: at most 64 distinct ids, strings only, and the same ids from the scan and the walk', () => {
    const many = { messages: [{ role: 'user', content: Array.from({ length: 70 }, (_, i) => ({ type: 'document', source: { type: 'file', file_id: `file_${i}` } })) }] };
    const scanned = lazyBody(scanJsonObject(Buffer.from(JSON.stringify(many)), 64, ['file_id']));
    assert.equal(fileIdsOf(scanned).length, 64);
    assert.deepEqual(fileIdsOf(many), fileIdsOf(scanned));
    assert.deepEqual(fileIdsOf({ messages: [{ file_id: 7 }, { other_id: 'file_x' }, { system: [{ file_id: 'file_sys' }] }] }), ['file_sys']);
    let deep: Record<string, unknown> = { file_id: 'file_deep' };
    for (let i = 0; i < 70; i++) deep = { next: deep };
    assert.deepEqual(fileIdsOf({ messages: [deep] }), [], 'a body nested deeper than 64 levels is not walked to its end');
  });

  test('affinity: an id of 200 characters is kept, of 201 is not; a failing store is logged with the resource id', async () => {
    const state = new MemoryStore();
    const a = new ResourceAffinity(state, null, log);
    const at = (n: number) => `file_${'x'.repeat(n - 5)}`;
    await a.remember(owner({ id: at(200) }));
    await a.remember(owner({ id: at(201) }));
    assert.ok(await a.lookup(at(200)));
    assert.equal(await state.getRecord(`resource:${at(201)}`), null);
    const logs = new LogCapture();
    const captured = createLogger({ level: 'trace', destination: logs });
    const durable = new MapStore();
    durable.fail = true;
    const broken = Object.assign(new MemoryStore(), {
      putRecord: async () => {
        throw new Error('redis down');
      },
      getRecord: async () => {
        throw new Error('redis down');
      },
    });
    const b = new ResourceAffinity(broken, durable, captured);
    await b.remember(owner({ id: 'file_log' }));
    await b.lookup('file_log');
    await b.settled(owner({ id: 'file_log' }), 't');
    const messages = logs.lines.map((l) => `${l.msg} ${l.resource} ${l.err}`);
    assert.ok(messages.includes('could not remember a resource in the state store file_log redis down'), messages.join('\n'));
    assert.ok(messages.includes('could not remember a resource in the ledger file_log db down'));
    assert.ok(messages.includes('could not read a resource from the state store; trying the ledger file_log redis down'));
    assert.ok(messages.includes('could not read a resource from the ledger file_log db down'));
  });

  test('affinity: a state store that fails falls back to the ledger; a miss puts nothing back; no ledger logs nothing', async () => {
    const durable = new MapStore();
    await durable.putResource(owner({ id: 'file_in_ledger', kind: 'file' }));
    const broken = Object.assign(new MemoryStore(), {
      getRecord: async () => {
        throw new Error('redis down');
      },
    });
    assert.equal((await new ResourceAffinity(broken, durable, log).lookup('file_in_ledger'))?.id, 'file_in_ledger');
    const state = new MemoryStore();
    assert.equal(await new ResourceAffinity(state, durable, log).lookup('file_missing'), null);
    assert.equal(await state.getRecord('resource:file_missing'), null, 'nothing is put back for a miss');
    const logs = new LogCapture();
    assert.equal(await new ResourceAffinity(new MemoryStore(), null, createLogger({ level: 'trace', destination: logs })).lookup('file_nowhere'), null);
    assert.equal(logs.lines.length, 0);
  });

  test("batch items: an error given one level deep, and cache writes alone, are read as the API may send them; rules are not the create call's", () => {
    const flat = batchItemRecord({ custom_id: 'f', result: { type: 'errored', error: { type: 'invalid_request_error', message: 'x' } } }, owner(), prices, 't')!;
    assert.deepEqual([flat.status, flat.error_type], [400, 'invalid_request_error']);
    const writes = batchItemRecord(
      { custom_id: 'w', result: { type: 'succeeded', message: { model: 'claude-sonnet-4-5', usage: { input_tokens: 0, output_tokens: 0, cache_creation_input_tokens: 1000 } } } },
      owner(),
      prices,
      't',
    )!;
    assert.ok(writes.cost_usd! > 0, 'cache writes alone are priced');
    const reads = batchItemRecord(
      { custom_id: 'r', result: { type: 'succeeded', message: { model: 'claude-sonnet-4-5', usage: { input_tokens: 0, output_tokens: 0, cache_read_input_tokens: 1000 } } } },
      owner(),
      prices,
      't',
    )!;
    assert.ok(reads.cost_usd! > 0, 'cache reads alone are priced');
    assert.deepEqual(writes.rules, []);
    const noResult = batchItemRecord({ custom_id: 'n' }, owner(), prices, 't')!;
    assert.deepEqual([noResult.outcome, noResult.error_type, noResult.input_tokens], ['failed', 'api_error', 0]);
  });

  test('JSONL: a line of exactly the bound is read; past it, the gateway holds nothing more of it', () => {
    const exact = Buffer.concat([Buffer.from('"'), Buffer.alloc(MAX_RESULT_LINE_BYTES - 2, 0x61), Buffer.from('"\n')]);
    const j = new JsonLines();
    const out = j.push(exact);
    assert.equal(out.length, 1);
    assert.equal((out[0] as string).length, MAX_RESULT_LINE_BYTES - 2);
    const over = new JsonLines();
    over.push(Buffer.alloc(MAX_RESULT_LINE_BYTES, 0x62));
    over.push(Buffer.alloc(1024, 0x62));
    assert.equal(over.buffered, 0, 'an oversized line is dropped as it comes, not held');
    assert.equal(over.skipped, 0);
    over.push(Buffer.from('\n'));
    assert.equal(over.skipped, 1);
  });

  test('a tally: lines after its end are not recorded; failures to charge are logged; a failing claim starts none; a claim lapses after 10 minutes', async () => {
    const logs = new LogCapture();
    const captured = createLogger({ level: 'trace', destination: logs });
    let t = 1_000_000;
    const state = new MemoryStore(() => t);
    const affinity = new ResourceAffinity(state, new MapStore(), captured);
    const records: UsageRecord[] = [];
    const l = { record: (r: UsageRecord) => records.push(r) } as unknown as Ledger;
    const failing = Object.assign(state, {
      addSpend: async () => {
        throw new Error('no budgets today');
      },
    });
    const o = owner({ charges: [{ key: 'k', expiresAtMs: Date.now() + 1e6, items: 'all' }] });
    const tally = (await startTally({ ledger: l, prices, state: failing, affinity, metrics: null, log: captured }, o, 'r1'))!;
    tally.line({ custom_id: 'a', result: { type: 'succeeded', message: { model: 'claude-sonnet-4-5', usage: { input_tokens: 10, output_tokens: 1 } } } });
    tally.line({ custom_id: 'b', result: { type: 'canceled' } });
    assert.equal(tally.items, 2);
    await tally.end(true);
    tally.line({ custom_id: 'c', result: { type: 'canceled' } });
    assert.equal(records.length, 2, 'nothing after the end');
    assert.ok(logs.lines.some((x) => x.msg === 'could not add a batch to a budget total' && x.batch === o.id && x.err === 'no budgets today'));
    assert.ok(logs.lines.some((x) => x.msg === 'batch results recorded' && x.batch === o.id && x.items === 2));

    const noClaims = Object.assign(new MemoryStore(), {
      claimRecord: async () => {
        throw new Error('redis down');
      },
    });
    assert.equal(await startTally({ ledger: l, prices, state: noClaims, affinity, metrics: null, log }, owner({ id: 'msgbatch_x' }), 'r'), null);

    const claims = new MemoryStore(() => t);
    const deps = { ledger: l, prices, state: claims, affinity, metrics: null, log };
    const held = owner({ id: 'msgbatch_held' });
    assert.ok(await startTally(deps, held, 'dies-holding-it'));
    t += 9 * 60_000;
    assert.equal(await startTally(deps, held, 'r2'), null, 'still held after 9 minutes');
    t += 60_001;
    assert.ok(await startTally(deps, held, 'r3'), "a dead reader's claim lapses after 10 minutes");
  });
});

describe('batch bodies as the rules read them', () => {
  const item = (id: string) => ({ custom_id: id, params: { model: 'm', max_tokens: 1, messages: [] } });
  test("items are read in order; the item path is the create call's", () => {
    assert.deepEqual(
      batchItems({ requests: [item('a'), item('b')] }).map((i) => i.custom_id),
      ['a', 'b'],
    );
    assert.equal(BATCH_ITEM_PATH, '/v1/messages/batches');
    assert.deepEqual(batchItemParams({ requests: [item('a'), item('b')] }, 'b'), item('b').params);
    assert.equal(isBatchBody({ requests: [] }), true);
    assert.equal(isBatchBody({ messages: [] }), false);
    assert.equal(isBatchBody(null), false);
  });
  test('each malformed body is refused naming the item and what to write', () => {
    const refuse = (body: unknown, message: RegExp) =>
      assert.throws(
        () => batchItems(body),
        (e: unknown) => e instanceof InvalidRequestError && message.test(e.message),
        String(message),
      );
    refuse({}, /requests: a Message Batch needs a non-empty array of \{custom_id, params\}/);
    refuse({ requests: [] }, /non-empty array/);
    refuse(null, /non-empty array/);
    refuse({ requests: [{ params: {} }] }, /requests\[0\]\.custom_id: a non-empty string is required/);
    refuse({ requests: [{ custom_id: '', params: {} }] }, /requests\[0\]\.custom_id/);
    refuse({ requests: [{ custom_id: 5, params: {} }] }, /requests\[0\]\.custom_id: a non-empty string is required/);
    refuse({ requests: [null] }, /requests\[0\]\.custom_id/);
    refuse({ requests: [item('a'), { custom_id: 'b', params: [] }] }, /requests\[1\]\.params \(custom_id "b"\): a Messages request object is required/);
    refuse({ requests: [{ custom_id: 'b', params: null }] }, /requests\[0\]\.params/);
    refuse({ requests: [{ custom_id: 'b', params: 'x' }] }, /requests\[0\]\.params/);
    refuse({ requests: [item('a'), item('a')] }, /requests\[1\]\.custom_id "a" is used twice/);
    const many = { requests: Array.from({ length: MAX_BATCH_ITEMS + 1 }, (_, i) => item(`i${i}`)) };
    refuse(many, /at most 100000 requests; this one has 100001/);
    assert.equal(batchItems({ requests: many.requests.slice(0, MAX_BATCH_ITEMS) }).length, MAX_BATCH_ITEMS, 'exactly the limit is accepted');
    assert.throws(() => batchItemParams({ requests: Array.from({ length: 7 }, (_, i) => item(`i${i}`)) }, 'zz'), /the batch has no item "zz" \(its items: "i0", "i1", "i2", "i3", "i4", …\)/);
    assert.throws(() => batchItemParams({ requests: [item('only')] }, 'zz'), /\(its items: "only"\)$/);
    assert.throws(() => batchItemParams({ requests: Array.from({ length: 5 }, (_, i) => item(`i${i}`)) }, 'zz'), /"i4"\)$/, 'five items are all named, without an ellipsis');
  });
});

describe('the Foundry adapter', () => {
  const provider = (keys: string[]) =>
    ({ name: 'foundry', type: 'foundry', base_url: 'https://r.services.ai.azure.com/anthropic', keys, betas: null, workspace_id: null, models: {} }) as unknown as ProviderConfig;
  const req = (headers: Record<string, string>): ClientRequest =>
    ({
      endpoint: 'messages',
      pathAndQuery: '/v1/messages?beta=true',
      headers,
      raw: Buffer.from('{"model":"m"}'),
      body: { model: 'm' },
      decision: { body: { model: 'm' }, bodyChanged: false, headers: { set: {}, remove: [] }, route: {} },
      stream: false,
    }) as unknown as ClientRequest;
  test('its base URL is made from the resource; an entry with neither resource nor base_url is refused', () => {
    assert.equal(foundryBaseUrl('acme'), 'https://acme.services.ai.azure.com/anthropic');
    assert.equal(foundryAdapter.settle('f', { type: 'foundry', resource: 'acme' }, '/').base_url, 'https://acme.services.ai.azure.com/anthropic');
    assert.equal(foundryAdapter.settle('f', { type: 'foundry', base_url: 'http://127.0.0.1:1/anthropic', resource: 'acme' }, '/').base_url, 'http://127.0.0.1:1/anthropic', 'base_url wins');
    assert.equal(foundryAdapter.settle('f', { type: 'foundry', base_url: 'http://127.0.0.1:2/anthropic' }, '/').base_url, 'http://127.0.0.1:2/anthropic', 'base_url alone');
    assert.equal(missingProviderPackages([{ name: 'f', type: 'foundry' }]), null, 'with keys it needs no optional package');
    assert.throws(
      () => foundryAdapter.settle('f', { type: 'foundry' }, '/'),
      (e: unknown) => e instanceof ProviderEntryError && /provider "f": type: foundry needs resource:/.test(e.message),
    );
  });
  test("a key goes as api-key, never as x-api-key; the client's credential never goes; without a key the request is signed", async () => {
    const out = foundryAdapter.request(req({ 'x-api-key': 'client-own', authorization: 'Bearer client', 'anthropic-version': '2023-06-01' }), provider(['fk-1']), 'm');
    const withKey = out.headers({ kind: 'key', key: 'fk-1' });
    assert.equal(withKey['api-key'], 'fk-1');
    assert.equal(withKey['x-api-key'], undefined);
    assert.equal(withKey.authorization, undefined);
    assert.equal(withKey['anthropic-version'], '2023-06-01');
    assert.equal(out.signing!({ kind: 'key', key: 'fk-1' }), null);
    assert.deepEqual(await out.sign!({ a: 'b' }, { kind: 'key', key: 'fk-1' }), { a: 'b' }, 'a key needs no signature');
    for (const credential of [{ kind: 'client' as const }, { kind: 'none' as const }]) {
      const h = out.headers(credential);
      assert.deepEqual(
        ['x-api-key', 'authorization', 'api-key'].filter((n) => n in h),
        [],
        credential.kind,
      );
      assert.equal(out.signing!(credential), 'entra-id');
    }
    assert.equal(foundryAdapter.local(req({}), 10), null, 'Foundry answers everything itself');
    const answer = { statusCode: 200, headers: {}, body: Readable.from([]) };
    assert.equal(await foundryAdapter.answer(answer, provider([]), req({}), 'm', log), answer, "its answers are Anthropic's format already");
    assert.equal(out.pathAndQuery, '/v1/messages?beta=true');
    assert.equal(foundryAdapter.credentials!(provider(['k'])), null, 'a provider with keys has no Entra status');
    assert.equal((foundryAdapter.credentials!(provider([])) as { source: string }).source, 'microsoft entra id (DefaultAzureCredential)');
  });
});

describe('requests that use uploaded files', () => {
  const link = (name: string) => ({ provider: { name } as ProviderConfig, model: 'm' });
  const fileOf = (id: string, provider: string, key: string | null) => owner({ id, kind: 'file', provider, key });
  const exchange = (endpoint: string, body: Record<string, unknown>, affinity: ResourceAffinity) => ({ endpoint, body, deps: { affinity } }) as unknown as Exchange;
  const doc = (id: string) => ({ type: 'document', source: { type: 'file', file_id: id } });

  test('the chain is kept to the provider that holds the file, fallbacks included; none of the chain holding it is refused by name', () => {
    assert.deepEqual(
      pinnedChain([link('a'), link('b')], 'file_1', fileOf('file_1', 'a', 'k')).map((l) => l.provider.name),
      ['a'],
    );
    assert.deepEqual(
      pinnedChain([link('a'), link('b')], 'file_1', fileOf('file_1', 'b', 'k')).map((l) => l.provider.name),
      ['b'],
      'a fallback that holds it',
    );
    assert.throws(
      () => pinnedChain([link('a'), link('b')], 'file_9', fileOf('file_9', 'c', 'k')),
      (e: unknown) =>
        e instanceof InvalidRequestError &&
        e.message === 'file "file_9" was uploaded to provider "c", but this request is routed to "a", "b"; a file can only be used at the provider (and key) that holds it',
    );
  });

  test('the owner of the referenced files: unknown files are skipped, two keys are refused naming both, other endpoints are not looked at', async () => {
    const affinity = new ResourceAffinity(new MemoryStore(), null, log);
    await affinity.remember(fileOf('file_a', 'anthropic', '…aaaa#111111'));
    await affinity.remember(fileOf('file_b', 'anthropic', '…aaaa#111111'));
    await affinity.remember(fileOf('file_c', 'anthropic', '…cccc#333333'));
    await affinity.remember(fileOf('file_d', 'other', '…aaaa#111111'));
    await affinity.remember(fileOf('file_e', 'anthropic', null));
    const body = (...ids: string[]) => ({ model: 'm', messages: [{ role: 'user', content: ids.map(doc) }] });
    const found = await fileOwner(exchange('messages', body('file_unknown', 'file_a', 'file_b'), affinity));
    assert.deepEqual([found?.file, found?.ids, found?.owner.key], ['file_a', ['file_unknown', 'file_a', 'file_b'], '…aaaa#111111']);
    assert.equal((await fileOwner(exchange('count_tokens', body('file_a'), affinity)))?.file, 'file_a');
    assert.equal(await fileOwner(exchange('models', body('file_a'), affinity)), null);
    assert.equal(await fileOwner(exchange('resource', body('file_a'), affinity)), null);
    assert.equal(await fileOwner(exchange('messages', body('file_unknown'), affinity)), null);
    assert.equal(await fileOwner(exchange('messages', body(), affinity)), null);
    await assert.rejects(fileOwner(exchange('messages', body('file_a', 'file_c'), affinity)), {
      message: 'files "file_a" and "file_c" were uploaded through different upstream keys (anthropic …aaaa#111111, anthropic …cccc#333333); one request can only use files of one key',
    });
    await assert.rejects(fileOwner(exchange('messages', body('file_a', 'file_d'), affinity)), /\(anthropic …aaaa#111111, other …aaaa#111111\)/, 'the same key name at another provider is another key');
    await assert.rejects(fileOwner(exchange('messages', body('file_e', 'file_a'), affinity)), /\(anthropic client key, anthropic …aaaa#111111\)/);
  });
});

describe('Foundry providers in a config', () => {
  const config = (entry: string, extra = '') => loadConfig(writeConfig({ upstream: '', providers: `  f:\n    type: foundry\n${entry}`, extraConfig: extra }).configFile);
  test('resource: names the endpoint; options of other types are refused; it needs no keys even with client keys (Entra ID); the attribution line is kept', () => {
    const f = config('    resource: acme\n').providers.f!;
    assert.equal(f.base_url, 'https://acme.services.ai.azure.com/anthropic');
    assert.equal(f.strip_attribution, false);
    assert.throws(() => config('    resource: acme\n    passthrough: true\n'), /provider "f": passthrough applies to type: anthropic providers only/);
    assert.throws(() => config('    resource: acme\n    workspace_id: w\n'), /workspace_id applies to type: anthropic providers only/);
    const withClients = config('    resource: acme\n', `clients:\n  a: { key_sha256: "${'0'.repeat(64)}" }\n`);
    assert.equal(withClients.providers.f!.keys.length, 0, 'no keys: Entra ID, not the client keys');
    assert.equal(adapterFor(f).genaiName, 'azure.ai.inference');
  });

  test('without keys, an Entra ID token from the managed identity goes as Authorization: Bearer, fetched once', async () => {
    const asks: string[] = [];
    const identity = createServer((r, res) => {
      asks.push(r.url ?? '');
      res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ access_token: 'unit-entra-token', expires_on: String(Math.floor(Date.now() / 1000) + 3600), resource: 'https://ai.azure.com', token_type: 'Bearer' }));
    });
    await new Promise<void>((r) => identity.listen(0, '127.0.0.1', r));
    process.env.IDENTITY_ENDPOINT = `http://127.0.0.1:${(identity.address() as AddressInfo).port}/msi/token`;
    process.env.IDENTITY_HEADER = 'h';
    try {
      const provider = {
        name: 'foundry-unit',
        type: 'foundry',
        base_url: 'https://r.services.ai.azure.com/anthropic',
        keys: [],
        betas: null,
        workspace_id: null,
        models: {},
      } as unknown as ProviderConfig;
      const r = {
        endpoint: 'messages',
        pathAndQuery: '/v1/messages',
        headers: {},
        raw: Buffer.from('{"model":"m"}'),
        body: { model: 'm' },
        decision: { body: { model: 'm' }, bodyChanged: false, headers: { set: {}, remove: [] }, route: {} },
        stream: false,
      } as unknown as ClientRequest;
      const out = foundryAdapter.request(r, provider, 'm');
      for (let i = 0; i < 2; i++) assert.deepEqual(await out.sign!({ a: 'b' }, { kind: 'none' }), { a: 'b', authorization: 'Bearer unit-entra-token' });
      assert.equal(asks.length, 1);
      assert.match(asks[0]!, /resource=https%3A%2F%2Fai\.azure\.com/);
      assert.equal((foundryAdapter.credentials!(provider) as { fetched_at: string | null }).fetched_at !== null, true, 'its status says when a token was fetched');
    } finally {
      delete process.env.IDENTITY_ENDPOINT;
      delete process.env.IDENTITY_HEADER;
      identity.close();
    }
  });
});
