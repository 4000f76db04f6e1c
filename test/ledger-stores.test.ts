/**
 * The ledger database contract (`usage/ledger.ts` interfaces), checked on both stores — SQLite (`usage/sqlite.ts`)
 * and PostgreSQL (`usage/postgres.ts`, a real server at DATABASE_URL) — function-level: records inserted once
 * whatever the retries, read back whole in their time range; cost per day as budgets recount it; sums grouped by
 * the database; spend limits upserted by scope and period; session activity added or raised per counter; remembered
 * resources and the batches still to settle; a schema newer than the gateway's refused.
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import pg from 'pg';
import type { LedgerStore, StoredSpendLimit } from '../src/usage/ledger.js';
import { PostgresStore } from '../src/usage/postgres.js';
import type { UsageRecord } from '../src/usage/record.js';
import { SqliteStore } from '../src/usage/sqlite.js';
import { freshDatabase, usageRecord, withClosing } from './helpers.js';

const drops: Array<() => Promise<void>> = [];
let pgUrl: string | null = null;
after(async () => {
  for (const d of drops) await d();
});

const kinds: Array<[string, () => Promise<LedgerStore>]> = [
  ['sqlite', async () => new SqliteStore(path.join(mkdtempSync(path.join(tmpdir(), 'sy-ledger-')), 'data', 'usage.db'))],
  [
    'postgres',
    async () => {
      // One database for the file, emptied before each test (creating a database takes about a second).
      if (!pgUrl) {
        const db = await freshDatabase('switchyard_contract');
        drops.push(db.drop);
        pgUrl = db.url;
      }
      const admin = new pg.Client({ connectionString: pgUrl });
      await admin.connect();
      await admin.query('DROP SCHEMA public CASCADE; CREATE SCHEMA public');
      await admin.end();
      return new PostgresStore(pgUrl);
    },
  ],
];

const rec = (i: number, over: Partial<UsageRecord> = {}): UsageRecord =>
  usageRecord({
    time: `2026-12-0${1 + (i % 5)}T10:0${i % 10}:00.000Z`,
    request_id: `sy_c_${i}`,
    client_id: i % 2 ? 'alice' : 'bob',
    model: i % 3 ? 'claude-sonnet-4-6' : 'claude-haiku-4-5',
    input_tokens: 100 * i,
    output_tokens: 10 * i,
    cost_usd: 0.01 * i,
    rules: ['default'],
    tags: { team: i % 2 ? 'infra' : 'search' },
    ...over,
  });

/** Opens a store, creates its schema, runs `fn`, and closes it whatever happens. */
const withStore = (make: () => Promise<LedgerStore>, fn: (s: LedgerStore) => Promise<void>) =>
  withClosing(make, async (s) => {
    await s.init();
    await fn(s);
  });

for (const [kind, make] of kinds) {
  describe(`ledger store contract (${kind})`, () => {
    test('records: a retried batch and a replayed record are inserted once; a range reads back whole records, in time order', async () => {
      await withStore(make, async (s) => {
        await s.init(); // init twice (a restart) changes nothing
        const batch = [1, 2, 3, 4, 5, 6].map((i) =>
          rec(i, { facts: { path: '/v1/messages', stream: true, body_bytes: 9, messages: 1, tools: 0, max_tokens: 5, metadata: null, headers: {}, headers_named: [] } as never }),
        );
        await s.insert(batch);
        await s.insert([batch[0]!, batch[3]!, rec(7)]);
        await s.insert([]);
        const all = await s.query('2026-12-01T00:00:00.000Z', '2026-12-31T00:00:00.000Z');
        assert.deepEqual(
          all.map((r) => r.request_id),
          ['sy_c_5', 'sy_c_1', 'sy_c_6', 'sy_c_2', 'sy_c_7', 'sy_c_3', 'sy_c_4'],
          'each once, by time',
        );
        const one = all.find((r) => r.request_id === 'sy_c_3')!;
        assert.deepEqual(
          [one.client_id, one.model, one.input_tokens, one.output_tokens, one.rules, one.tags, one.facts?.max_tokens],
          ['alice', 'claude-haiku-4-5', 300, 30, ['default'], { team: 'infra' }, 5],
        );
        assert.ok(Math.abs(one.cost_usd! - 0.03) < 1e-9);
        const range = await s.query('2026-12-02T00:00:00.000Z', '2026-12-03T00:00:00.000Z');
        assert.deepEqual(
          range.map((r) => r.request_id),
          ['sy_c_1', 'sy_c_6'],
          'since inclusive, until exclusive',
        );
        assert.deepEqual(
          (await s.query('2026-12-02T10:01:00.000Z', '2026-12-02T10:06:00.000Z')).map((r) => r.request_id),
          ['sy_c_1'],
          'a record exactly at since is in; one exactly at until is out',
        );
      });
    });

    test('cost per day: grouped by day and by what a budget scope counts, priced records only, from `since`', async () => {
      await withStore(make, async (s) => {
        await s.insert([
          rec(1, { time: '2026-12-03T01:00:00.000Z' }),
          rec(3, { time: '2026-12-03T23:00:00.000Z' }),
          rec(5, { time: '2026-12-04T08:00:00.000Z' }),
          rec(7, { time: '2026-12-03T05:00:00.000Z', cost_usd: 0 }),
          rec(9, { time: '2026-12-01T05:00:00.000Z' }),
        ]);
        const days = (await s.costByDay('2026-12-02T00:00:00.000Z')).map((d) => ({ ...d, cost_usd: Math.round(d.cost_usd! * 1e6) / 1e6 }));
        days.sort((a, b) => a.time.localeCompare(b.time) || String(a.model).localeCompare(String(b.model)));
        assert.deepEqual(
          days.map((d) => [d.time, d.client_id, d.model, d.rules, d.tags, d.cost_usd]),
          [
            ['2026-12-03T00:00:00.000Z', 'alice', 'claude-haiku-4-5', ['default'], { team: 'infra' }, 0.03],
            ['2026-12-03T00:00:00.000Z', 'alice', 'claude-sonnet-4-6', ['default'], { team: 'infra' }, 0.01],
            ['2026-12-04T00:00:00.000Z', 'alice', 'claude-sonnet-4-6', ['default'], { team: 'infra' }, 0.05],
          ],
        );
      });
    });

    test('sums grouped by the database: requests, tokens and cost per model within the range and filters', async () => {
      await withStore(make, async (s) => {
        await s.insert([1, 2, 3, 4, 5, 6].map((i) => rec(i)));
        const rows = await s.summarize({ since: '2026-12-01T00:00:00.000Z', until: '2026-12-31T00:00:00.000Z', filters: [{ by: 'client', value: 'alice' }] as never, group: 'model' });
        const byModel = Object.fromEntries(rows.map((r) => [r.key, [r.requests, r.input_tokens, r.output_tokens, Math.round(r.cost_usd * 1e6) / 1e6]]));
        // alice: requests 1 and 5 on sonnet, 3 on haiku
        assert.deepEqual(byModel, { 'claude-sonnet-4-6': [2, 600, 60, 0.06], 'claude-haiku-4-5': [1, 300, 30, 0.03] });
        const none = await s.summarize({ since: '2026-12-01T00:00:00.000Z', until: '2026-12-02T00:00:00.000Z', filters: [], group: 'none' });
        assert.deepEqual(
          none.map((r) => r.requests),
          [1],
          'record 5 only (December 1st)',
        );
      });
    });

    test('summaries across whole hours (the rollup) and partial hours (the records) equal sums over the records themselves', async () => {
      await withStore(make, async (s) => {
        const base = Date.parse('2026-12-05T08:00:00.000Z');
        const records = Array.from({ length: 48 }, (_, i) =>
          rec(100 + i, {
            time: new Date(base + i * 7 * 60_000 + 13_000).toISOString(), // every 7 minutes over ~5.6 hours
            session_id: i % 4 ? `s${i % 3}` : null,
            project: i % 5 ? 'p1' : null,
            cost_usd: i % 7 ? 0.001 * (i + 1) : (null as never),
            cache_read_input_tokens: 10 * i,
            outcome: i % 9 ? 'ok' : 'failed',
            tags: i % 2 ? { team: 'infra' } : {},
          }),
        );
        await s.insert(records);
        const cases: Array<[string, string, Array<{ by: string; value: string }>, string]> = [
          ['2026-12-05T08:20:00.000Z', '2026-12-05T12:40:00.000Z', [], 'none'],
          ['2026-12-05T08:20:00.000Z', '2026-12-05T12:40:00.000Z', [], 'hour'],
          ['2026-12-05T08:20:00.000Z', '2026-12-05T12:40:00.000Z', [], 'model'],
          ['2026-12-05T09:00:00.000Z', '2026-12-05T11:00:00.000Z', [{ by: 'project', value: '(none)' }], 'client'],
          ['2026-12-05T08:00:00.000Z', '2026-12-06T00:00:00.000Z', [{ by: 'tag:team', value: 'infra' }], 'day'],
          ['2026-12-05T08:20:00.000Z', '2026-12-05T12:40:00.000Z', [], 'session'],
          ['2026-12-05T08:20:00.000Z', '2026-12-05T08:50:00.000Z', [], 'none'],
          ['2026-12-05T08:20:00.000Z', '2026-12-05T12:40:00.000Z', [{ by: 'tag:team', value: '(untagged)' }], 'hour'],
        ];
        for (const [since, until, filters, group] of cases) {
          const rows = await s.summarize({ since, until, filters: filters as never, group: group as never });
          const inRange = records.filter(
            (r) =>
              r.time >= since && r.time < until && filters.every((f) => (f.by === 'project' ? r.project === null : f.value === '(untagged)' ? r.tags.team === undefined : r.tags.team === f.value)),
          );
          const keyOf = (r: UsageRecord) =>
            group === 'none' ? null : group === 'hour' ? r.time.slice(0, 13) : group === 'day' ? r.time.slice(0, 10) : group === 'model' ? r.model : group === 'client' ? r.client_id : r.session_id;
          const want = new Map<string | null, number[]>();
          for (const r of inRange) {
            const w = want.get(keyOf(r)) ?? [0, 0, 0, 0, 0];
            w[0]! += 1;
            w[1]! += r.input_tokens;
            w[2]! += r.cache_read_input_tokens;
            w[3]! += r.cost_usd ?? 0;
            w[4]! += r.cost_usd === null ? 1 : 0;
            want.set(keyOf(r), w);
          }
          const got = new Map(
            rows.map((r) => [
              r.key === null ? null : group === 'hour' ? r.key.slice(0, 13) : group === 'day' ? r.key.slice(0, 10) : r.key,
              [r.requests, r.input_tokens, r.cache_read_tokens, r.cost_usd, r.unpriced],
            ]),
          );
          const round = (m: Map<string | null, number[]>) => [...m].map(([k, v]) => [k, ...v.map((x) => Math.round(x * 1e6) / 1e6)]).sort((a, b) => String(a[0]).localeCompare(String(b[0])));
          assert.deepEqual(round(got), round(want), `${since}..${until} ${JSON.stringify(filters)} by ${group}`);
        }
        await assert.rejects(s.summarize({ since: '2026-12-05T00:00:00.000Z', until: '2026-12-06T00:00:00.000Z', filters: [], group: 'rule' as never }), /a summary cannot group or filter by rule/);
      });
    });

    test('spend limits: one per scope and period, replaced in place keeping its id and creation time; deleted by id', async () => {
      await withStore(make, async (s) => {
        const limit = (id: string, amount: string | null, at: string): StoredSpendLimit => ({
          id,
          scope_type: 'user',
          scope_id: 'alice',
          period: 'monthly',
          amount,
          expires_at: null,
          created_at: at,
          updated_at: at,
        });
        assert.deepEqual(await s.spendLimits(), []);
        const first = await s.putSpendLimit(limit('lim_1', '5000', '2026-12-01T00:00:00.000Z'));
        assert.equal(first.id, 'lim_1');
        const replaced = await s.putSpendLimit(limit('lim_2', '9000', '2026-12-05T00:00:00.000Z'));
        assert.deepEqual([replaced.id, replaced.created_at, replaced.amount, replaced.updated_at], ['lim_1', '2026-12-01T00:00:00.000Z', '9000', '2026-12-05T00:00:00.000Z']);
        await s.putSpendLimit({ ...limit('lim_3', null, '2026-12-02T00:00:00.000Z'), scope_type: 'organization', scope_id: '', period: 'daily', expires_at: '2027-01-01T00:00:00.000Z' });
        const all = await s.spendLimits();
        assert.deepEqual(
          all.map((l) => [l.id, l.scope_type, l.amount, l.expires_at]),
          [
            ['lim_1', 'user', '9000', null],
            ['lim_3', 'organization', null, '2027-01-01T00:00:00.000Z'],
          ],
          'oldest first',
        );
        assert.equal(await s.deleteSpendLimit('lim_1'), true);
        assert.equal(await s.deleteSpendLimit('lim_1'), false);
        assert.deepEqual(
          (await s.spendLimits()).map((l) => l.id),
          ['lim_3'],
        );
      });
    });

    test('session activity: counters add or rise to the highest value reported, per session, most recent first', async () => {
      await withStore(make, async (s) => {
        const since = new Date(Date.now() - 60_000).toISOString();
        await s.addActivity([
          { session_id: 's1', user_id: 'alice', column: 'commits', mode: 'add', value: 2 },
          { session_id: 's1', user_id: 'alice', column: 'commits', mode: 'add', value: 1 },
          { session_id: 's1', user_id: 'alice', column: 'active_time_s', mode: 'max', value: 300 },
          { session_id: 's1', user_id: 'alice', column: 'active_time_s', mode: 'max', value: 120 },
        ] as never);
        await new Promise((r) => setTimeout(r, 5));
        await s.addActivity([{ session_id: 's2', user_id: 'bob', column: 'lines_added', mode: 'add', value: 40 }] as never);
        const rows = await s.activity(since);
        assert.deepEqual(
          rows.map((r) => [r.session_id, r.user_id, Number(r.commits), Number(r.active_time_s), Number(r.lines_added)]),
          [
            ['s2', 'bob', 0, 0, 40],
            ['s1', 'alice', 3, 300, 0],
          ],
        );
        assert.deepEqual(await s.activity(new Date(Date.now() + 60_000).toISOString()), [], 'nothing touched since then');
      });
    });

    test('resources: an owner is remembered whole; batches not yet settled are listed oldest first, within the limit', async () => {
      await withStore(make, async (s) => {
        const owner = (id: string, created_at: string, k = 'batch') =>
          ({
            id,
            kind: k,
            provider: 'anthropic',
            key: '…abc#123456',
            client_id: 'alice',
            user_id: null,
            project: 'p',
            session_id: 's',
            tags: { team: 'x' },
            rules_version: 'v1',
            charges: [],
            created_at,
            settled_at: null,
          }) as never;
        await s.putResource(owner('msgbatch_2', '2026-12-02T00:00:00.000Z'));
        await s.putResource(owner('msgbatch_1', '2026-12-01T00:00:00.000Z'));
        await s.putResource(owner('file_1', '2026-12-01T00:00:00.000Z', 'file'));
        await s.putResource(owner('msgbatch_old', '2026-10-01T00:00:00.000Z'));
        const got = await s.getResource('msgbatch_1');
        assert.deepEqual(got, owner('msgbatch_1', '2026-12-01T00:00:00.000Z'));
        assert.equal(await s.getResource('missing'), null);
        assert.deepEqual(
          (await s.unsettledBatches('2026-11-01T00:00:00.000Z', 10)).map((r) => r.id),
          ['msgbatch_1', 'msgbatch_2'],
        );
        assert.deepEqual(
          (await s.unsettledBatches('2026-11-01T00:00:00.000Z', 1)).map((r) => r.id),
          ['msgbatch_1'],
        );
        await s.settleBatch('msgbatch_1', '2026-12-07T00:00:00.000Z');
        assert.equal((await s.getResource('msgbatch_1'))?.settled_at, '2026-12-07T00:00:00.000Z');
        assert.deepEqual(
          (await s.unsettledBatches('2026-11-01T00:00:00.000Z', 10)).map((r) => r.id),
          ['msgbatch_2'],
        );
      });
    });
  });
}

test('a SQLite ledger with a newer schema than this gateway is refused with what to do', async () => {
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'sy-ledger-')), 'usage.db');
  const db = new Database(file);
  db.pragma('user_version = 999');
  db.close();
  const s = new SqliteStore(file);
  try {
    await assert.rejects(s.init(), /has schema version 999, newer than this gateway's \d+; upgrade switchyard/);
  } finally {
    await s.close();
  }
});
