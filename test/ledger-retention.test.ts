/**
 * Issue 34, the ledger at company scale: PostgreSQL records partitioned by month (made ahead by init, and by the writer
 * for any month a batch reaches), an older unpartitioned ledger attached as a legacy partition, and retention that drops
 * whole months (PostgreSQL) or deletes in batches (SQLite) while the hourly rollup keeps every hour.
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type pg from 'pg';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/log.js';
import { overviewFromStore } from '../src/usage/dashboard.js';
import { Ledger, type LedgerStore } from '../src/usage/ledger.js';
import { partitionName, PostgresStore } from '../src/usage/postgres.js';
import type { UsageRecord } from '../src/usage/record.js';
import { SqliteStore } from '../src/usage/sqlite.js';
import { LoadError } from '../src/validation.js';
import { freshDatabase, usageRecord, writeConfig } from './helpers.js';

/** A priced record at `time` (ISO) with a unique id. */
function record(time: string, i: number): UsageRecord {
  return usageRecord({ time, request_id: `sy_ret_${i}_${time}`, client_id: 'c', session_id: `s${i % 3}`, user_id: `u${i % 2}`, input_tokens: 100, output_tokens: 10, cost_usd: 0.01 });
}

/** `n` records spread over the hour starting at `hourIso`. */
const hourOf = (hourIso: string, n: number, from = 0) => Array.from({ length: n }, (_, i) => record(new Date(Date.parse(hourIso) + (i * 3_600_000) / n).toISOString(), from + i));

const pool = (store: PostgresStore) => (store as unknown as { pool: pg.Pool }).pool;
const partitions = async (store: PostgresStore) =>
  (await pool(store).query<{ name: string }>("SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'usage_records'::regclass ORDER BY 1")).rows.map(
    (r) => r.name,
  );
const overviewRequests = async (store: LedgerStore, since: string, until: string) => (await overviewFromStore(store, since, until, [])).totals.requests;

describe('PostgreSQL: monthly partitions', () => {
  let db: Awaited<ReturnType<typeof freshDatabase>>;
  let store: PostgresStore;
  before(async () => {
    db = await freshDatabase('switchyard_partitions');
    store = new PostgresStore(db.url);
    await store.init();
  });
  after(async () => {
    await store?.close();
    await db?.drop();
  });

  test('init makes this month and the next two; the writer makes the month of any record it writes', async () => {
    const now = new Date();
    const month = (offset: number) => partitionName(new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + offset, 1)));
    assert.deepEqual(await partitions(store), [month(0), month(1), month(2)]);
    await store.insert([...hourOf('2025-03-10T05:00:00.000Z', 30), ...hourOf('2025-04-02T23:00:00.000Z', 20, 100)]);
    assert.deepEqual(await partitions(store), ['usage_records_p202503', 'usage_records_p202504', month(0), month(1), month(2)]);
    const inMarch = await pool(store).query<{ n: string }>('SELECT count(*) AS n FROM usage_records_p202503');
    assert.equal(Number(inMarch.rows[0]!.n), 30, 'each record is in its month');
    // A retried batch (same ids, same times) is skipped: the unique key holds the partition key.
    await store.insert(hourOf('2025-03-10T05:00:00.000Z', 30));
    assert.equal((await store.query('2025-03-01T00:00:00.000Z', '2025-04-01T00:00:00.000Z')).length, 30);
  });

  test('retention drops the months that ended before the cut-off and keeps the hourly rollup', async () => {
    await store.insert(hourOf('2025-05-31T23:00:00.000Z', 10, 200));
    const before = await overviewRequests(store, '2025-03-01T00:00:00.000Z', '2025-06-01T00:00:00.000Z');
    assert.equal(before, 60);
    // 2025-05-20: March and April have ended before it, May has not.
    const pruned = await store.prune('2025-05-20T00:00:00.000Z');
    assert.deepEqual(pruned.partitions, ['usage_records_p202503', 'usage_records_p202504']);
    assert.ok(!(await partitions(store)).includes('usage_records_p202503'));
    assert.equal((await store.query('2025-03-01T00:00:00.000Z', '2025-05-01T00:00:00.000Z')).length, 0, 'the records of March and April are gone');
    assert.equal((await store.query('2025-05-01T00:00:00.000Z', '2025-06-01T00:00:00.000Z')).length, 10, "May's are kept");
    assert.equal(await overviewRequests(store, '2025-03-01T00:00:00.000Z', '2025-06-01T00:00:00.000Z'), 60, 'the overview over whole hours still counts every request');
    // A write to a month retention dropped makes it again (a late spool replay is not lost).
    await store.insert(hourOf('2025-03-11T00:00:00.000Z', 1, 300));
    assert.equal((await store.query('2025-03-01T00:00:00.000Z', '2025-04-01T00:00:00.000Z')).length, 1);
    // Another replica's retention dropped a month this one had made: the write makes it again.
    await pool(store).query('DROP TABLE usage_records_p202505');
    await store.insert(hourOf('2025-05-12T00:00:00.000Z', 2, 400));
    assert.equal((await store.query('2025-05-01T00:00:00.000Z', '2025-06-01T00:00:00.000Z')).length, 2);
  });
});

describe('PostgreSQL: an unpartitioned ledger from before is attached as a legacy partition', () => {
  let db: Awaited<ReturnType<typeof freshDatabase>>;
  let store: PostgresStore;
  const old = hourOf('2025-01-15T10:00:00.000Z', 40);
  before(async () => {
    db = await freshDatabase('switchyard_partitions_legacy');
    // A schema-5 ledger: made by today's init, then turned back into the one table and indexes v5 had.
    const first = new PostgresStore(db.url);
    await first.init();
    const q = (sql: string) => pool(first).query(sql);
    await first.insert(old); // the records and their rollup
    await q('CREATE TABLE plain (LIKE usage_records INCLUDING DEFAULTS)');
    await q('INSERT INTO plain SELECT * FROM usage_records');
    await q('DROP TABLE usage_records');
    await q('ALTER TABLE plain RENAME TO usage_records');
    await q('ALTER TABLE usage_records DROP COLUMN secret_findings'); // added in v7
    await q('ALTER TABLE usage_records DROP COLUMN kind'); // added in v8
    await q('CREATE INDEX usage_records_time ON usage_records (time)');
    await q('CREATE UNIQUE INDEX usage_records_request_id ON usage_records (request_id)');
    await q('CREATE INDEX usage_records_session ON usage_records (session_id, time)');
    await q('DELETE FROM switchyard_schema WHERE version > 5');
    await q('INSERT INTO switchyard_schema (version) VALUES (5)');
    await first.close();
    store = new PostgresStore(db.url);
    await store.init();
  });
  after(async () => {
    await store?.close();
    await db?.drop();
  });

  test('the old rows are kept in usage_records_legacy, new months get partitions, a retried old record is skipped', async () => {
    const parts = await partitions(store);
    assert.equal(parts[0], 'usage_records_legacy');
    assert.equal(parts.length, 3, `the legacy partition covers this month, the next two are made: ${parts}`);
    const { rows } = await pool(store).query<{ v: number }>('SELECT max(version) AS v FROM switchyard_schema');
    assert.equal(rows[0]!.v, 8);
    assert.equal((await store.query('2025-01-01T00:00:00.000Z', '2025-02-01T00:00:00.000Z')).length, 40);
    await store.insert(old.slice(0, 5));
    assert.equal((await store.query('2025-01-01T00:00:00.000Z', '2025-02-01T00:00:00.000Z')).length, 40, 'ids already stored are skipped');
    const indexes = await pool(store).query<{ indexname: string }>("SELECT indexname FROM pg_indexes WHERE tablename = 'usage_records' ORDER BY 1");
    assert.deepEqual(
      indexes.rows.map((r) => r.indexname),
      ['usage_records_request_id', 'usage_records_session', 'usage_records_time'],
    );
  });

  test('retention drops the legacy partition once all of it is past the cut-off', async () => {
    const far = new Date(Date.now() + 400 * 86_400_000).toISOString();
    const pruned = await store.prune(far);
    assert.ok(pruned.partitions.includes('usage_records_legacy'));
    assert.ok(pruned.records >= 0);
    assert.equal((await store.query('2025-01-01T00:00:00.000Z', '2025-02-01T00:00:00.000Z')).length, 0);
    assert.equal(await overviewRequests(store, '2025-01-15T00:00:00.000Z', '2025-01-16T00:00:00.000Z'), 40, 'the rollup keeps the hours');
  });
});

describe('SQLite: retention deletes in batches', () => {
  test('records before the cut-off are deleted (more than one batch), later ones and the rollup are kept', async () => {
    const store = new SqliteStore(path.join(mkdtempSync(path.join(tmpdir(), 'switchyard-retention-')), 'usage.db'));
    await store.init();
    await store.insert([...hourOf('2025-02-01T00:00:00.000Z', 12_000), ...hourOf('2025-03-01T00:00:00.000Z', 7, 20_000)]);
    const pruned = await store.prune('2025-02-20T00:00:00.000Z');
    assert.deepEqual(pruned, { records: 12_000, partitions: [] });
    assert.equal((await store.query('2025-01-01T00:00:00.000Z', '2025-04-01T00:00:00.000Z')).length, 7);
    assert.equal(await overviewRequests(store, '2025-02-01T00:00:00.000Z', '2025-03-02T00:00:00.000Z'), 12_007);
    await store.close();
  });
});

describe('the retention setting', () => {
  test('ledger.retention_days removes what is older than that many days, relative to now', async () => {
    const store = new SqliteStore(path.join(mkdtempSync(path.join(tmpdir(), 'switchyard-retention-')), 'usage.db'));
    await store.init();
    const now = Date.parse('2026-06-30T12:00:00.000Z');
    const day = 86_400_000;
    await store.insert([record(new Date(now - 40 * day).toISOString(), 1), record(new Date(now - 36 * day).toISOString(), 2), record(new Date(now - 34 * day).toISOString(), 3)]);
    const log = createLogger({ level: 'silent' });
    const ledger = new Ledger(store, log, { flushIntervalMs: 1000, maxQueue: 10, retentionDays: 35 });
    assert.deepEqual(await ledger.retain(now), { records: 2, partitions: [] });
    assert.deepEqual(
      (await store.query('2026-01-01T00:00:00.000Z', '2027-01-01T00:00:00.000Z')).map((r) => r.request_id),
      [record(new Date(now - 34 * day).toISOString(), 3).request_id],
    );
    const off = new Ledger(store, log, { flushIntervalMs: 1000, maxQueue: 10 });
    assert.equal(await off.retain(now), null, 'off unless set');
    await ledger.close();
    await off.close();
  });

  test('retention_days below 35 is refused (budgets recount the month to date from the records)', () => {
    const { configFile } = writeConfig({ upstream: 'http://127.0.0.1:1', extraConfig: 'ledger: { sqlite: ./u.db, retention_days: 20 }\n' });
    assert.throws(
      () => loadConfig(configFile),
      (err: Error) => err instanceof LoadError && /retention_days/.test(err.message) && /35/.test(err.message),
    );
    const ok = writeConfig({ upstream: 'http://127.0.0.1:1', extraConfig: 'ledger: { sqlite: ./u.db, retention_days: 400 }\n' });
    assert.equal(loadConfig(ok.configFile).ledger!.retention_days, 400);
  });
});
