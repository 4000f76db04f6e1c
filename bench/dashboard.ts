/**
 * The dashboard (issue 19): first-load size (the page's script and stylesheet, gzip as served) and the overview
 * answered from a SQLite ledger of `records` generated rows spread over 30 days, aggregated by the database as
 * GET /admin/ui/api/overview does (overviewFromStore), wall time, ms.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import Database from 'better-sqlite3';

const { SqliteStore } = (await import('../dist/usage/sqlite.js' as string)) as typeof import('../src/usage/sqlite.js');
const { overviewFromStore } = (await import('../dist/usage/dashboard.js' as string)) as typeof import('../src/usage/dashboard.js');

const ROOT = path.resolve(import.meta.dirname, '..');
const COLS =
  'time, request_id, client_id, key_fingerprint, session_id, user_id, project, agent_id, requested_model, provider, model, rules_version, rules, facts, tags, status, outcome, error_type, retries, latency_ms, ttft_ms, input_tokens, output_tokens, cache_creation_input_tokens, cache_creation_5m_input_tokens, cache_creation_1h_input_tokens, cache_read_input_tokens, cost_usd';

export async function benchDashboard(records = 1_000_000): Promise<{ first_load_gzip_bytes: number; records: number; overview_ms: number }> {
  const manifest = JSON.parse(readFileSync(path.join(ROOT, 'dist/ui/manifest.json'), 'utf8')) as { js: string; css: string };
  const firstLoad = [manifest.js, manifest.css].reduce((n, f) => n + gzipSync(readFileSync(path.join(ROOT, 'dist/ui', f)), { level: 9 }).length, 0);
  const dir = mkdtempSync(path.join(tmpdir(), 'switchyard-bench-dashboard-'));
  try {
    const file = path.join(dir, 'usage.db');
    const store = new SqliteStore(file);
    await store.init();
    const db = new Database(file);
    const now = Date.now();
    db.exec(
      `WITH RECURSIVE seq(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM seq WHERE i < ${records - 1}) INSERT INTO usage_records (${COLS}) SELECT strftime('%Y-%m-%dT%H:%M:%fZ', (${now} - (i % 2592000) * 1000) / 1000.0, 'unixepoch'), 'sy_' || i, 'client-' || (i % 50), NULL, 's-' || (i % 20000), 'user-' || (i % 200), 'proj-' || (i % 5), NULL, 'claude-sonnet-4-6', 'anthropic', 'claude-sonnet-4-6', 'v', '["route"]', NULL, '{"team":"t"}', 200, 'ok', NULL, 0, 900, 300, 20, 400, 1000, 1000, 0, 20000, 0.0135 FROM seq`,
    );
    db.close();
    const since = new Date(now - 31 * 86_400_000).toISOString();
    const until = new Date(now + 1000).toISOString();
    await overviewFromStore(store, since, until, []); // warm the page cache, as a running gateway's is
    const t0 = performance.now();
    const o = await overviewFromStore(store, since, until, []);
    const ms = Math.round(performance.now() - t0);
    if (o.totals.requests !== records) throw new Error(`the overview counted ${o.totals.requests} of ${records} records`);
    await store.close();
    return { first_load_gzip_bytes: firstLoad, records, overview_ms: ms };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
