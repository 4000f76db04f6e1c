/**
 * The embedded ledger store: SQLite through better-sqlite3, in WAL mode, schema versioned with
 * `PRAGMA user_version`. Default file: ./data/usage.db next to the config. A write waits at most
 * `busy_timeout` for a lock another process holds. Inserts skip request ids already stored (unique
 * index, `INSERT OR IGNORE`), so retries and spool replays are safe.
 */
import { ROLLUP_DIMENSIONS, ROLLUP_SUMS, type RollupRow, rollupBackfillSql, rollupDeltas, rollupFromGroups, summaryRow, summarySql, type SummaryQuery, type SummaryRow } from './summary.js';
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { ACTIVITY_COLUMNS, SPEND_LIMIT_COLUMNS, type ActivityDelta, type DayCost, type LedgerStore, type SessionActivity, type StoredSpendLimit } from './ledger.js';
import { JSON_COLUMNS, RECORD_COLUMNS, type UsageRecord } from './record.js';
import type { ResourceOwner } from '../upstream/affinity.js';

const SCHEMA_VERSION = 7;

/** Records one retention delete removes before it yields (a few ms of write lock each). */
const PRUNE_BATCH = 5000;

/** SQLite's side of a summary's SQL (summary.ts): `time` is ISO text, a condition is already 1 or 0. */
const TIME_SQL = { hour: 'substr(time, 1, 13)', day: 'substr(time, 1, 10)', bool: (c: string) => `(${c})` };

const TYPES: Partial<Record<keyof UsageRecord, string>> = {
  status: 'INTEGER NOT NULL',
  retries: 'INTEGER NOT NULL',
  latency_ms: 'REAL NOT NULL',
  ttft_ms: 'REAL',
  cost_usd: 'REAL',
  input_tokens: 'INTEGER NOT NULL',
  output_tokens: 'INTEGER NOT NULL',
  cache_creation_input_tokens: 'INTEGER NOT NULL',
  cache_creation_5m_input_tokens: 'INTEGER NOT NULL',
  cache_creation_1h_input_tokens: 'INTEGER NOT NULL',
  cache_read_input_tokens: 'INTEGER NOT NULL',
  time: 'TEXT NOT NULL',
  request_id: 'TEXT NOT NULL',
  outcome: 'TEXT NOT NULL',
  rules: 'TEXT NOT NULL',
  tags: 'TEXT NOT NULL',
};

export class SqliteStore implements LedgerStore {
  readonly kind = 'sqlite';
  private db: Database.Database;

  /** @param timeoutMs longest a write waits for a lock, ms. */
  constructor(
    private readonly file: string,
    timeoutMs = 5000,
  ) {
    mkdirSync(path.dirname(file), { recursive: true });
    this.db = new Database(file, { timeout: timeoutMs });
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
  }

  /**
   * Retention: deletes records with `time < before` (ISO) in batches of {@link PRUNE_BATCH}, yielding to the event loop
   * between batches so that requests go on (each batch holds the write lock for milliseconds, not the whole delete).
   * The hourly rollup is kept. @returns how many records were deleted.
   */
  async prune(before: string): Promise<{ records: number; partitions: string[] }> {
    const batch = this.db.prepare('DELETE FROM usage_records WHERE rowid IN (SELECT rowid FROM usage_records WHERE time < ? LIMIT ?)');
    let records = 0;
    for (;;) {
      const { changes } = batch.run(before, PRUNE_BATCH);
      records += changes;
      if (changes < PRUNE_BATCH) return { records, partitions: [] };
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  async init(): Promise<void> {
    const version = this.db.pragma('user_version', { simple: true }) as number;
    if (version < 1) {
      const cols = RECORD_COLUMNS.map((c) => `${c} ${TYPES[c] ?? 'TEXT'}`).join(', ');
      this.db.exec(`CREATE TABLE IF NOT EXISTS usage_records (${cols}); CREATE INDEX IF NOT EXISTS usage_records_time ON usage_records (time);`);
    }
    if (version < 2) {
      this.db.exec(
        'DELETE FROM usage_records WHERE rowid NOT IN (SELECT min(rowid) FROM usage_records GROUP BY request_id); CREATE UNIQUE INDEX IF NOT EXISTS usage_records_request_id ON usage_records (request_id);',
      );
    }
    if (version >= 1 && version < SCHEMA_VERSION) {
      // v3: the rules version and the request facts (switchyard replay); v4: user, project and agent
      // (attribution); v5: the rule that refused; v6: the secrets scan_secrets found; v7: the record's kind (batch items,
      // resource calls). Rows written before have none of them.
      const have = new Set((this.db.prepare('PRAGMA table_info(usage_records)').all() as Array<{ name: string }>).map((c) => c.name));
      for (const c of ['rules_version', 'facts', 'user_id', 'project', 'agent_id', 'refused_by', 'secret_findings', 'kind'])
        if (!have.has(c)) this.db.exec(`ALTER TABLE usage_records ADD COLUMN ${c} TEXT`);
    }
    if (version > SCHEMA_VERSION) throw new Error(`the ledger ${this.file} has schema version ${version}, newer than this gateway's ${SCHEMA_VERSION}; upgrade switchyard`);
    this.db.exec(
      'CREATE TABLE IF NOT EXISTS spend_limits (id TEXT PRIMARY KEY, scope_type TEXT NOT NULL, scope_id TEXT NOT NULL, period TEXT NOT NULL, amount TEXT, expires_at TEXT, created_at TEXT NOT NULL, updated_at TEXT NOT NULL, UNIQUE (scope_type, scope_id, period))',
    );
    this.initRollup();
    this.db.exec(
      'CREATE TABLE IF NOT EXISTS session_activity (session_id TEXT PRIMARY KEY, user_id TEXT NOT NULL, commits REAL NOT NULL DEFAULT 0, pull_requests REAL NOT NULL DEFAULT 0, lines_added REAL NOT NULL DEFAULT 0, lines_removed REAL NOT NULL DEFAULT 0, active_time_s REAL NOT NULL DEFAULT 0, updated_at TEXT NOT NULL)',
    );
    this.db.exec(
      'CREATE TABLE IF NOT EXISTS resources (id TEXT PRIMARY KEY, kind TEXT NOT NULL, created_at TEXT NOT NULL, settled_at TEXT, owner TEXT NOT NULL); CREATE INDEX IF NOT EXISTS resources_unsettled ON resources (kind, settled_at, created_at);',
    );
    this.db.pragma(`user_version = ${SCHEMA_VERSION}`);
  }

  async putResource(r: ResourceOwner): Promise<void> {
    this.db.prepare('INSERT OR REPLACE INTO resources (id, kind, created_at, settled_at, owner) VALUES (?, ?, ?, ?, ?)').run(r.id, r.kind, r.created_at, r.settled_at, JSON.stringify(r));
  }

  async getResource(id: string): Promise<ResourceOwner | null> {
    const row = this.db.prepare('SELECT owner, settled_at FROM resources WHERE id = ?').get(id) as { owner: string; settled_at: string | null } | undefined;
    return row ? { ...(JSON.parse(row.owner) as ResourceOwner), settled_at: row.settled_at } : null;
  }

  async unsettledBatches(since: string, limit: number): Promise<ResourceOwner[]> {
    const rows = this.db.prepare("SELECT owner FROM resources WHERE kind = 'batch' AND settled_at IS NULL AND created_at >= ? ORDER BY created_at LIMIT ?").all(since, limit) as Array<{
      owner: string;
    }>;
    return rows.map((r) => JSON.parse(r.owner) as ResourceOwner);
  }

  async settleBatch(id: string, at: string): Promise<void> {
    this.db.prepare('UPDATE resources SET settled_at = ? WHERE id = ?').run(at, id);
  }

  /**
   * The hourly rollup (summary.ts) and the session index the summaries read; a ledger from before them is rolled
   * up once, here.
   */
  private initRollup(): void {
    const existed = this.db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'usage_rollup'").get() !== undefined;
    this.db.exec(
      `CREATE TABLE IF NOT EXISTS usage_rollup (rkey TEXT PRIMARY KEY, hour TEXT NOT NULL, ${ROLLUP_DIMENSIONS.map((c) => `${c} TEXT`).join(', ')}, tags TEXT NOT NULL, ${ROLLUP_SUMS.map((c) => `${c} ${c === 'cost_usd' ? 'REAL' : 'INTEGER'} NOT NULL`).join(', ')});
       CREATE INDEX IF NOT EXISTS usage_rollup_hour ON usage_rollup (hour);
       CREATE INDEX IF NOT EXISTS usage_records_session ON usage_records (session_id, time);`,
    );
    // v7: the rollup's `kind` dimension (rows rolled up before have none: interactive calls).
    const rollupCols = new Set((this.db.prepare('PRAGMA table_info(usage_rollup)').all() as Array<{ name: string }>).map((c) => c.name));
    if (!rollupCols.has('kind')) this.db.exec('ALTER TABLE usage_rollup ADD COLUMN kind TEXT');
    if (existed) return;
    // Backfill: sums per hour and combination from SQL, keyed (canonical tags) in JS.
    const rows = this.db.prepare(rollupBackfillSql(TIME_SQL)).all() as Array<Record<string, unknown>>;
    this.db.transaction(() => this.addRollup(rollupFromGroups(rows, (stored) => JSON.parse(String(stored ?? '{}')) as Record<string, string>)))();
  }

  /** Adds rollup deltas to their rows (in the caller's transaction). */
  private addRollup(deltas: readonly RollupRow[]): void {
    const cols = ['rkey', 'hour', ...ROLLUP_DIMENSIONS, 'tags', ...ROLLUP_SUMS];
    const stmt = (this.rollupStmt ??= this.db.prepare(
      `INSERT INTO usage_rollup (${cols.join(', ')}) VALUES (${cols.map(() => '?').join(', ')}) ON CONFLICT (rkey) DO UPDATE SET ${ROLLUP_SUMS.map((c) => `${c} = ${c} + excluded.${c}`).join(', ')}`,
    ));
    for (const d of deltas) stmt.run(cols.map((c) => d[c as keyof RollupRow]));
  }

  private rollupStmt: Database.Statement | null = null;

  private readonly activityStmts = new Map<string, Database.Statement>();

  /** The upsert of one counter column, adding to it or raising it; prepared once per column and mode. */
  private activityStmt(column: ActivityDelta['column'], mode: ActivityDelta['mode']): Database.Statement {
    let stmt = this.activityStmts.get(`${column}:${mode}`);
    if (!stmt) {
      // The column name comes from ACTIVITY_COLUMNS (never from the request).
      const col = ACTIVITY_COLUMNS.find((c) => c === column)!;
      const next = mode === 'add' ? `${col} + excluded.${col}` : `max(${col}, excluded.${col})`;
      stmt = this.db.prepare(
        `INSERT INTO session_activity (session_id, user_id, ${col}, updated_at) VALUES (?, ?, ?, ?) ON CONFLICT (session_id) DO UPDATE SET ${col} = ${next}, updated_at = excluded.updated_at`,
      );
      this.activityStmts.set(`${column}:${mode}`, stmt);
    }
    return stmt;
  }

  async addActivity(deltas: ActivityDelta[]): Promise<void> {
    const now = new Date().toISOString();
    const tx = this.db.transaction((ds: ActivityDelta[]) => {
      for (const d of ds) this.activityStmt(d.column, d.mode).run(d.session_id, d.user_id, d.value, now);
    });
    tx(deltas);
  }

  async activity(since: string): Promise<SessionActivity[]> {
    return this.db.prepare('SELECT * FROM session_activity WHERE updated_at >= ? ORDER BY updated_at DESC').all(since) as SessionActivity[];
  }

  async costByDay(since: string): Promise<DayCost[]> {
    const rows = this.db
      .prepare(
        `SELECT substr(time, 1, 10) || 'T00:00:00.000Z' AS time, client_id, user_id, project, session_id, model, rules, tags, sum(cost_usd) AS cost_usd
         FROM usage_records WHERE time >= ? AND cost_usd > 0 GROUP BY 1, client_id, user_id, project, session_id, model, rules, tags`,
      )
      .all(since) as Array<Record<string, unknown>>;
    return rows.map((r) => ({ ...r, rules: JSON.parse(String(r.rules)), tags: JSON.parse(String(r.tags)) }) as DayCost);
  }

  async spendLimits(): Promise<StoredSpendLimit[]> {
    return this.db.prepare('SELECT * FROM spend_limits ORDER BY created_at, id').all() as StoredSpendLimit[];
  }

  async putSpendLimit(l: StoredSpendLimit): Promise<StoredSpendLimit> {
    const upsert = this.db.transaction((x: StoredSpendLimit) => {
      const old = this.db.prepare('SELECT id, created_at FROM spend_limits WHERE scope_type = ? AND scope_id = ? AND period = ?').get(x.scope_type, x.scope_id, x.period) as
        | { id: string; created_at: string }
        | undefined;
      const row = old ? { ...x, id: old.id, created_at: old.created_at } : x;
      this.db.prepare(`INSERT OR REPLACE INTO spend_limits (${SPEND_LIMIT_COLUMNS.join(', ')}) VALUES (${SPEND_LIMIT_COLUMNS.map(() => '?').join(', ')})`).run(SPEND_LIMIT_COLUMNS.map((c) => row[c]));
      return row;
    });
    return upsert(l);
  }

  async deleteSpendLimit(id: string): Promise<boolean> {
    return this.db.prepare('DELETE FROM spend_limits WHERE id = ?').run(id).changes > 0;
  }

  async insert(records: UsageRecord[]): Promise<void> {
    const stmt = this.db.prepare(`INSERT OR IGNORE INTO usage_records (${RECORD_COLUMNS.join(', ')}) VALUES (${RECORD_COLUMNS.map(() => '?').join(', ')})`);
    const tx = this.db.transaction((rs: UsageRecord[]) => {
      const inserted: UsageRecord[] = [];
      for (const r of rs) if (stmt.run(RECORD_COLUMNS.map((c) => (JSON_COLUMNS.has(c) ? JSON.stringify(r[c] ?? null) : ((r[c] as unknown) ?? null)))).changes) inserted.push(r);
      // Only what was inserted: a record the ledger already held (a retried batch) is not counted twice.
      this.addRollup(rollupDeltas(inserted));
    });
    tx(records);
  }

  async summarize(q: SummaryQuery): Promise<SummaryRow[]> {
    const args: string[] = [];
    const sql = summarySql(q, {
      param: (v) => {
        args.push(v);
        return '?';
      },
      tag: (name) => `json_extract(tags, '$.${name}')`,
      ...TIME_SQL,
    });
    return (this.db.prepare(sql).all(...args) as Array<Record<string, unknown>>).map(summaryRow);
  }

  async query(since: string, until: string): Promise<UsageRecord[]> {
    const rows = this.db.prepare('SELECT * FROM usage_records WHERE time >= ? AND time < ? ORDER BY time').all(since, until) as Array<Record<string, unknown>>;
    return rows.map(
      (r) =>
        ({
          ...r,
          rules: JSON.parse(String(r.rules)) as string[],
          tags: JSON.parse(String(r.tags)) as Record<string, string>,
          facts: r.facts ? JSON.parse(String(r.facts)) : null,
          secret_findings: r.secret_findings ? JSON.parse(String(r.secret_findings)) : null,
          rules_version: r.rules_version ?? null,
        }) as unknown as UsageRecord,
    );
  }

  async close(): Promise<void> {
    this.db.close();
  }
}
