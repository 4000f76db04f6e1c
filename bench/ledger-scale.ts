/**
 * `npm run bench -- ledger-scale`: the ledger at company scale (issue 34). 1,000 developers send ~1,000,000 requests a
 * day; this fills a SQLite and a PostgreSQL ledger with BENCH_LEDGER_RECORDS records (default 10,000,000: ten such days)
 * and measures, per store:
 *   insert      records/s through the store's own insert in batches of 500 (what one replica's writer does), 100,000 records
 *   bulk        records/s of the rest, generated inside the database (the fill, not a gateway figure)
 *   rollup      rebuilding the hourly rollup from every record (what an upgrade from before the rollup does once), s
 *   overview    the dashboard's overview (hourly buckets over 24 h, daily over 7 days), ms (median of 3)
 *   usage       `switchyard usage --by user` over the last hour and the last 24 h (reads the records), ms (median of 3)
 *   prune       retention of the oldest day (SQLite, batched delete) or the oldest month's partition (PostgreSQL), ms
 *   bytes       on disk per record, records and indexes (PostgreSQL: every partition; SQLite: the file)
 * PostgreSQL from DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test), in a database of its own, dropped after.
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { freshDatabase, usageRecord } from '../test/helpers.js';
import { RECORD_COLS, recordSelect } from './ledger-rows.js';

const { SqliteStore } = (await import('../dist/usage/sqlite.js' as string)) as typeof import('../src/usage/sqlite.js');
const { PostgresStore } = (await import('../dist/usage/postgres.js' as string)) as typeof import('../src/usage/postgres.js');
const { overviewFromStore } = (await import('../dist/usage/dashboard.js' as string)) as typeof import('../src/usage/dashboard.js');
const { runUsageQuery } = (await import('../dist/usage/usage-query.js' as string)) as typeof import('../src/usage/usage-query.js');
type Store = import('../src/usage/ledger.js').LedgerStore;

const PER_DAY = 1_000_000;
const USERS = 1000;
const INSERTED = 100_000;
const DAY_MS = 86_400_000;

/** Median wall time of `runs` calls, ms. */
async function median(runs: number, fn: () => Promise<unknown>): Promise<number> {
  const ms: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    await fn();
    ms.push(performance.now() - t);
  }
  return Math.round(ms.sort((a, b) => a - b)[Math.floor(runs / 2)]!);
}

/** Records like a gateway writes them, for the insert figure (ids apart from the generated ones). */
function records(n: number, now: number): import('../src/usage/record.js').UsageRecord[] {
  return Array.from({ length: n }, (_, i) =>
    usageRecord({
      time: new Date(now - (i % 3600) * 1000).toISOString(),
      request_id: `sy_insert_${i}`,
      client_id: `client-${i % 50}`,
      session_id: `s-${i % 100_000}`,
      user_id: `user-${i % USERS}`,
      project: `proj-${i % 5}`,
      rules: ['team'],
      tags: { team: `team-${i % 10}` },
    }),
  );
}

/** The figures every store reports, measured the same way. */
async function measure(store: Store, now: number, fill: () => Promise<void>, rebuildRollup: () => Promise<void>, prune: () => Promise<unknown>, bytes: () => Promise<number>, total: number) {
  const batch = records(INSERTED, now);
  let t = performance.now();
  for (let i = 0; i < batch.length; i += 500) await store.insert(batch.slice(i, i + 500));
  const insertPerS = Math.round(INSERTED / ((performance.now() - t) / 1000));
  t = performance.now();
  await fill();
  const bulkPerS = Math.round((total - INSERTED) / ((performance.now() - t) / 1000));
  t = performance.now();
  await rebuildRollup();
  const rollupS = Math.round((performance.now() - t) / 100) / 10;
  const iso = (ms: number) => new Date(ms).toISOString();
  const until = iso(now + 1000);
  const overview24h = await median(3, () => overviewFromStore(store, iso(now - DAY_MS), until, []));
  const overview7d = await median(3, () => overviewFromStore(store, iso(now - 7 * DAY_MS), until, []));
  const usage = (since: number) => runUsageQuery({ view: 'usage', by: ['user'], since: iso(since), until, where: [] }, store, { models: {} } as never, now);
  const usage1h = await median(3, () => usage(now - 3_600_000));
  const usage24h = await median(1, () => usage(now - DAY_MS));
  const size = await bytes();
  t = performance.now();
  const pruned = await prune();
  const pruneMs = Math.round(performance.now() - t);
  return {
    records: total,
    insert_records_per_s: insertPerS,
    bulk_records_per_s: bulkPerS,
    rollup_rebuild_s: rollupS,
    overview_24h_ms: overview24h,
    overview_7d_ms: overview7d,
    usage_by_user_1h_ms: usage1h,
    usage_by_user_24h_ms: usage24h,
    bytes_per_record: Math.round(size / total),
    prune_ms: pruneMs,
    pruned,
  };
}

export async function benchLedgerScale(): Promise<Record<string, unknown>> {
  const total = Number(process.env.BENCH_LEDGER_RECORDS ?? 10_000_000);
  const days = Math.max(1, Math.ceil(total / PER_DAY));
  const spanS = days * 86_400;
  const now = Date.now();
  const out: Record<string, unknown> = { records: total, days, users: USERS };

  // SQLite: the rest generated by a recursive CTE in one transaction.
  const dir = mkdtempSync(path.join(tmpdir(), 'switchyard-bench-scale-'));
  const file = path.join(dir, 'usage.db');
  const sqlite = new SqliteStore(file);
  await sqlite.init();
  try {
    out.sqlite = await measure(
      sqlite,
      now,
      async () => {
        const db = new Database(file);
        db.exec(
          `WITH RECURSIVE seq(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM seq WHERE i < ${total - INSERTED - 1}) INSERT INTO usage_records (${RECORD_COLS}) ${recordSelect({ now, spanS, users: USERS, time: (e) => `strftime('%Y-%m-%dT%H:%M:%fZ', (${e}) / 1000.0, 'unixepoch')` })} FROM seq`,
        );
        db.exec('ANALYZE');
        db.close();
      },
      async () => {
        const db = new Database(file);
        db.exec('DROP TABLE usage_rollup');
        db.close();
        await sqlite.init();
      },
      () => sqlite.prune(new Date(now - (days - 1) * DAY_MS).toISOString()),
      async () => statSync(file).size + (statSync(`${file}-wal`, { throwIfNoEntry: false })?.size ?? 0),
      total,
    );
    console.log('ledger-scale sqlite', JSON.stringify(out.sqlite));
  } finally {
    await sqlite.close();
    rmSync(dir, { recursive: true, force: true });
  }

  // PostgreSQL: generate_series in a database of its own (none reachable: no PostgreSQL figures).
  const db = await freshDatabase('switchyard_scale').catch(() => null);
  if (!db) {
    out.postgres = null;
    return out;
  }
  try {
    const store = new PostgresStore(db.url, 3_600_000);
    await store.init();
    await store.prepareMonths(new Date(now - spanS * 1000 - DAY_MS).toISOString(), new Date(now).toISOString());
    const c = new pg.Client({ connectionString: db.url });
    c.on('error', () => {});
    await c.connect();
    const oldest = new Date(now - spanS * 1000);
    const oldestMonthEnd = new Date(Date.UTC(oldest.getUTCFullYear(), oldest.getUTCMonth() + 1, 1));
    out.postgres = await measure(
      store,
      now,
      async () => {
        await c.query(
          `INSERT INTO usage_records (${RECORD_COLS}) ${recordSelect({ now, spanS, users: USERS, time: (e) => `to_timestamp((${e}) / 1000.0)`, json: (e) => `${e}::jsonb` })} FROM generate_series(0, ${total - INSERTED - 1}) AS i`,
        );
        await c.query('ANALYZE usage_records');
      },
      async () => {
        await c.query('DROP TABLE usage_rollup');
        await store.init();
      },
      // The partition of the oldest month, dropped whole (when the records span two months).
      () => store.prune(oldestMonthEnd.toISOString()),
      async () => Number((await c.query<{ n: string }>("SELECT sum(pg_total_relation_size(inhrelid)) AS n FROM pg_inherits WHERE inhparent = 'usage_records'::regclass")).rows[0]!.n),
      total,
    );
    console.log('ledger-scale postgres', JSON.stringify(out.postgres));
    await c.end();
    await store.close();
  } finally {
    await db.drop().catch(() => {});
  }
  return out;
}
