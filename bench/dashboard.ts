/**
 * The dashboard (issue 19): first-load size (the page's script and stylesheet, gzip as served) and the overview
 * over a ledger of `records` generated rows spread over 30 days — SQLite and PostgreSQL — aggregated by the
 * database as GET /admin/ui/api/overview does (overviewFromStore), wall time, ms. The rows are written with SQL
 * (a million through the ledger writer would take minutes), then the store rolls them up as it does a ledger
 * from before the rollup (the backfill's time is reported too). Sessions are contiguous, 50 requests each, as
 * Claude Code's are; 200 users, 50 clients, 5 projects.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import Database from 'better-sqlite3';
import pg from 'pg';
import { freshDatabase } from '../test/helpers.js';

const { SqliteStore } = (await import('../dist/usage/sqlite.js' as string)) as typeof import('../src/usage/sqlite.js');
const { PostgresStore } = (await import('../dist/usage/postgres.js' as string)) as typeof import('../src/usage/postgres.js');
const { overviewFromStore } = (await import('../dist/usage/dashboard.js' as string)) as typeof import('../src/usage/dashboard.js');
type Store = import('../src/usage/ledger.js').LedgerStore;

const ROOT = path.resolve(import.meta.dirname, '..');
const COLS =
  'time, request_id, client_id, key_fingerprint, session_id, user_id, project, agent_id, requested_model, provider, model, rules_version, rules, facts, tags, status, outcome, error_type, retries, latency_ms, ttft_ms, input_tokens, output_tokens, cache_creation_input_tokens, cache_creation_5m_input_tokens, cache_creation_1h_input_tokens, cache_read_input_tokens, cost_usd';

/** The SELECT list of one generated record `i` (SQL shared by both databases; `ts` is its time expression). */
const generated = (ts: string) =>
  `${ts}, 'sy_' || i, 'client-' || ((i / 50) % 50), NULL, 's-' || (i / 50), 'user-' || ((i / 50) % 200), 'proj-' || ((i / 50) % 5), NULL, 'claude-sonnet-4-6', 'anthropic', 'claude-sonnet-4-6', 'v', '["route"]', NULL, '{"team":"t"}', 200, 'ok', NULL, 0, 900, 300, 20, 400, 1000, 1000, 0, 20000, 0.0135`;

/** Opens `open()` (its init rolls the generated rows up), then times the overview of the last 31 days. */
async function measure(open: () => Promise<Store>, records: number, now: number): Promise<{ rollup_ms: number; overview_ms: number }> {
  const t0 = performance.now();
  const store = await open();
  const rollupMs = Math.round(performance.now() - t0);
  try {
    const since = new Date(now - 31 * 86_400_000).toISOString();
    const until = new Date(now + 1000).toISOString();
    await overviewFromStore(store, since, until, []); // warm the page cache, as a running gateway's is
    const t1 = performance.now();
    const o = await overviewFromStore(store, since, until, []);
    const ms = Math.round(performance.now() - t1);
    if (o.totals.requests !== records) throw new Error(`the overview counted ${o.totals.requests} of ${records} records`);
    return { rollup_ms: rollupMs, overview_ms: ms };
  } finally {
    await store.close();
  }
}

export async function benchDashboard(records = 1_000_000): Promise<Record<string, number>> {
  const manifest = JSON.parse(readFileSync(path.join(ROOT, 'dist/ui/manifest.json'), 'utf8')) as { js: string; css: string };
  const firstLoad = [manifest.js, manifest.css].reduce((n, f) => n + gzipSync(readFileSync(path.join(ROOT, 'dist/ui', f)), { level: 9 }).length, 0);
  const now = Date.now();
  const dir = mkdtempSync(path.join(tmpdir(), 'switchyard-bench-dashboard-'));
  let sqlite: { rollup_ms: number; overview_ms: number };
  try {
    const file = path.join(dir, 'usage.db');
    const made = new SqliteStore(file);
    await made.init();
    await made.close();
    const db = new Database(file);
    db.exec('DROP TABLE usage_rollup');
    db.exec(
      `WITH RECURSIVE seq(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM seq WHERE i < ${records - 1}) INSERT INTO usage_records (${COLS}) SELECT ${generated(`strftime('%Y-%m-%dT%H:%M:%fZ', (${now} - (i % 2592000) * 1000) / 1000.0, 'unixepoch')`)} FROM seq`,
    );
    db.close();
    sqlite = await measure(
      async () => {
        const s = new SqliteStore(file);
        await s.init();
        return s;
      },
      records,
      now,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const database = await freshDatabase('switchyard_bench_dashboard');
  let postgres: { rollup_ms: number; overview_ms: number };
  try {
    const made = new PostgresStore(database.url);
    await made.init();
    await made.close();
    const client = new pg.Client(database.url);
    await client.connect();
    await client.query('DROP TABLE usage_rollup');
    await client.query(`INSERT INTO usage_records (${COLS}) SELECT ${generated(`to_timestamp((${now} - (i % 2592000) * 1000) / 1000.0)`)} FROM generate_series(0, ${records - 1}) AS i`);
    await client.query('ANALYZE usage_records');
    await client.end();
    postgres = await measure(
      async () => {
        const s = new PostgresStore(database.url, 600_000);
        await s.init();
        return s;
      },
      records,
      now,
    );
  } finally {
    await database.drop();
  }
  return {
    first_load_gzip_bytes: firstLoad,
    records,
    sqlite_overview_ms: sqlite.overview_ms,
    sqlite_rollup_backfill_ms: sqlite.rollup_ms,
    postgres_overview_ms: postgres.overview_ms,
    postgres_rollup_backfill_ms: postgres.rollup_ms,
  };
}
