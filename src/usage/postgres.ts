/**
 * The fleet ledger store: PostgreSQL through `pg`, the same schema as SQLite (tags and rules as jsonb),
 * created and migrated by the gateway (`switchyard_schema` holds the version). Every statement is bounded
 * (`statement_timeout` on the server, `query_timeout` on the client, which also discards the connection),
 * and connections use TCP keepalive, so a database that stops answering without closing the connection (a
 * failover, a partition) fails a write within the bound instead of holding it forever. Inserts skip request
 * ids already stored (`ON CONFLICT DO NOTHING` on a unique index), so retries and spool replays are safe.
 *
 * `usage_records` is partitioned by month (declarative range partitioning on `time`, schema v6): one table per UTC
 * month, `usage_records_pYYYYMM`, made ahead by `init` (this month and the next two: `switchyard migrate` or a
 * gateway's start) and by the writer for any month a batch reaches that it has not made yet. A ledger from before v6
 * becomes the partition `usage_records_legacy` (everything before the month after the upgrade), so nothing is copied.
 * Retention (`prune`) drops whole partitions whose month ended before the cut-off: constant time, no vacuum, and the
 * hourly rollup (what the overview and `usage` read for whole hours) keeps every hour.
 * https://www.postgresql.org/docs/current/ddl-partitioning.html
 */
import { ROLLUP_DIMENSIONS, ROLLUP_SUMS, type RollupRow, rollupBackfillSql, rollupDeltas, rollupFromGroups, summaryRow, summarySql, type SummaryQuery, type SummaryRow } from './summary.js';
import pg from 'pg';
import { ACTIVITY_COLUMNS, SPEND_LIMIT_COLUMNS, type ActivityDelta, type DayCost, type LedgerStore, type SessionActivity, type StoredSpendLimit } from './ledger.js';
import { JSON_COLUMNS, RECORD_COLUMNS, type UsageRecord } from './record.js';
import type { ResourceOwner } from '../upstream/affinity.js';

const SCHEMA_VERSION = 8;

/** Months of partitions `init` makes ahead of the current one. */
const MONTHS_AHEAD = 2;

/** PostgreSQL's side of a summary's SQL (summary.ts): UTC hours and days of a timestamptz, conditions as 1 or 0. */
const UTC = "time AT TIME ZONE 'UTC'";
const TIME_SQL = { hour: `to_char(${UTC}, 'YYYY-MM-DD"T"HH24')`, day: `to_char(${UTC}, 'YYYY-MM-DD')`, bool: (c: string) => `CASE WHEN ${c} THEN 1 ELSE 0 END` };
const INTS = new Set([
  'status',
  'retries',
  'input_tokens',
  'output_tokens',
  'cache_creation_input_tokens',
  'cache_creation_5m_input_tokens',
  'cache_creation_1h_input_tokens',
  'cache_read_input_tokens',
]);

function columnType(c: string): string {
  if (c === 'time') return 'timestamptz NOT NULL';
  if (c === 'facts') return 'jsonb';
  // Added in v7 to tables that had rows already: null in those.
  if (c === 'secret_findings') return 'jsonb';
  if (JSON_COLUMNS.has(c as keyof UsageRecord)) return 'jsonb NOT NULL';
  if (INTS.has(c)) return 'bigint NOT NULL';
  if (c === 'latency_ms' || c === 'ttft_ms' || c === 'cost_usd') return 'double precision';
  return 'text';
}

/** First instant of the UTC month `offset` months after the one holding `t` (epoch ms). */
function monthStart(t: number, offset = 0): Date {
  const d = new Date(t);
  return new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + offset, 1));
}

/** `usage_records_pYYYYMM`, the partition of the month starting at `start`. */
export function partitionName(start: Date): string {
  return `usage_records_p${start.toISOString().slice(0, 7).replace('-', '')}`;
}

/** Adds rollup deltas to their rows, 500 per statement (in the caller's transaction). */
async function addRollup(client: pg.PoolClient, deltas: readonly RollupRow[]): Promise<void> {
  const cols = ['rkey', 'hour', ...ROLLUP_DIMENSIONS, 'tags', ...ROLLUP_SUMS] as const;
  for (let i = 0; i < deltas.length; i += 500) {
    const values: unknown[] = [];
    const rows = deltas.slice(i, i + 500).map((d) => `(${cols.map((c) => `$${values.push(d[c as keyof RollupRow])}`).join(', ')})`);
    await client.query(
      `INSERT INTO usage_rollup (${cols.join(', ')}) VALUES ${rows.join(', ')} ON CONFLICT (rkey) DO UPDATE SET ${ROLLUP_SUMS.map((c) => `${c} = usage_rollup.${c} + excluded.${c}`).join(', ')}`,
      values,
    );
  }
}

export class PostgresStore implements LedgerStore {
  readonly kind = 'postgres';
  private readonly pool: pg.Pool;

  /**
   * @param url e.g. `postgres://user@127.0.0.1:5432/db`.
   * @param timeoutMs bound of one statement and of a connection attempt, ms.
   */
  constructor(url: string, timeoutMs = 10_000) {
    this.pool = new pg.Pool({
      connectionString: url,
      max: 4,
      connectionTimeoutMillis: Math.min(5000, timeoutMs),
      statement_timeout: timeoutMs,
      query_timeout: timeoutMs + 1000,
      keepAlive: true,
      keepAliveInitialDelayMillis: 10_000,
      idleTimeoutMillis: 30_000,
    });
    // An idle connection's error is surfaced by the next failing query. A connection reset while a query is in
    // flight (a healed partition, a failover, a restarted pgbouncer) makes its Client emit 'error' too, also while
    // checked out, when the pool's own listener is off it: without a listener of its own on every client that
    // event is unhandled and ends the process. The query in flight rejects with the same error.
    this.pool.on('error', () => {});
    this.pool.on('connect', (client) => client.on('error', () => {}));
  }

  async init(): Promise<void> {
    await this.pool.query('CREATE TABLE IF NOT EXISTS switchyard_schema (version integer NOT NULL)');
    const { rows } = await this.pool.query<{ version: number }>('SELECT max(version) AS version FROM switchyard_schema');
    const version = rows[0]?.version ?? 0;
    if (version > SCHEMA_VERSION) throw new Error(`the ledger database has schema version ${version}, newer than this gateway's ${SCHEMA_VERSION}; upgrade switchyard`);
    if (version < 1) {
      // A new ledger is partitioned from the start (v6); the steps below then have nothing to do.
      await this.transaction(async (client) => {
        await client.query('SELECT pg_advisory_xact_lock(7469777)');
        const { rows: again } = await client.query<{ t: string | null }>("SELECT to_regclass('usage_records') AS t");
        if (again[0]?.t) return; // another replica made it while this one waited
        await this.createPartitioned(client);
        await client.query('INSERT INTO switchyard_schema (version) VALUES ($1)', [SCHEMA_VERSION]);
      });
    }
    if (version >= 1 && version < 2) {
      // v2: one row per request id (idempotent inserts); duplicates from before are dropped first.
      await this.pool.query('DELETE FROM usage_records a USING usage_records b WHERE a.ctid < b.ctid AND a.request_id = b.request_id');
      await this.pool.query('CREATE UNIQUE INDEX IF NOT EXISTS usage_records_request_id ON usage_records (request_id)');
      await this.pool.query('INSERT INTO switchyard_schema (version) VALUES ($1)', [2]);
    }
    if (version >= 1 && version < 5) {
      // v3: the rules version and the request facts (switchyard replay); v4: user, project and agent
      // (attribution). Rows written before have none of them.
      await this.pool.query(
        'ALTER TABLE usage_records ADD COLUMN IF NOT EXISTS rules_version text, ADD COLUMN IF NOT EXISTS facts jsonb, ADD COLUMN IF NOT EXISTS user_id text, ADD COLUMN IF NOT EXISTS project text, ADD COLUMN IF NOT EXISTS agent_id text, ADD COLUMN IF NOT EXISTS refused_by text',
      );
      await this.pool.query('INSERT INTO switchyard_schema (version) VALUES ($1)', [5]);
    }
    if (version >= 1 && version < 6) await this.partitionLegacy();
    if (version >= 1 && version < 7) {
      // v7: the secrets scan_secrets found (counts by rule id); rows written before have none.
      await this.pool.query('ALTER TABLE usage_records ADD COLUMN IF NOT EXISTS secret_findings jsonb');
      await this.pool.query('INSERT INTO switchyard_schema (version) VALUES ($1)', [7]);
    }
    if (version >= 1 && version < 8) {
      // v8: the record's kind (batch items, resource calls); rows written before have none.
      await this.pool.query('ALTER TABLE usage_records ADD COLUMN IF NOT EXISTS kind text');
      await this.pool.query('INSERT INTO switchyard_schema (version) VALUES ($1)', [8]);
    }
    await this.pool.query('CREATE TABLE IF NOT EXISTS resources (id text PRIMARY KEY, kind text NOT NULL, created_at timestamptz NOT NULL, settled_at timestamptz, owner jsonb NOT NULL)');
    await this.pool.query('CREATE INDEX IF NOT EXISTS resources_unsettled ON resources (kind, settled_at, created_at)');
    await this.pool.query(
      'CREATE TABLE IF NOT EXISTS spend_limits (id text PRIMARY KEY, scope_type text NOT NULL, scope_id text NOT NULL, period text NOT NULL, amount text, expires_at timestamptz, created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL, UNIQUE (scope_type, scope_id, period))',
    );
    await this.initRollup();
    await this.pool.query(
      'CREATE TABLE IF NOT EXISTS session_activity (session_id text PRIMARY KEY, user_id text NOT NULL, commits double precision NOT NULL DEFAULT 0, pull_requests double precision NOT NULL DEFAULT 0, lines_added double precision NOT NULL DEFAULT 0, lines_removed double precision NOT NULL DEFAULT 0, active_time_s double precision NOT NULL DEFAULT 0, updated_at timestamptz NOT NULL)',
    );
    const now = Date.now();
    await this.ensureMonths(Array.from({ length: MONTHS_AHEAD + 1 }, (_, i) => monthStart(now, i)));
  }

  /** The partitioned `usage_records` and its indexes (the unique key holds the partition key, as PostgreSQL requires). */
  private async createPartitioned(client: pg.PoolClient): Promise<void> {
    await client.query(`CREATE TABLE usage_records (${RECORD_COLUMNS.map((c) => `${c} ${columnType(c)}`).join(', ')}) PARTITION BY RANGE (time)`);
    await client.query('CREATE INDEX usage_records_time ON usage_records (time)');
    await client.query('CREATE UNIQUE INDEX usage_records_request_id ON usage_records (request_id, time)');
    await client.query('CREATE INDEX usage_records_session ON usage_records (session_id, time)');
  }

  /**
   * v6: the unpartitioned table of an older ledger becomes the partition `usage_records_legacy` of a new partitioned
   * `usage_records`, for every time before the month after this one (a check constraint proves the bound first, so
   * attaching it does not scan the table twice). Its indexes are renamed so the new table's take their names.
   */
  private async partitionLegacy(): Promise<void> {
    await this.transaction(async (client) => {
      await client.query('SELECT pg_advisory_xact_lock(7469777)');
      const { rows } = await client.query<{ version: number }>('SELECT max(version) AS version FROM switchyard_schema');
      if ((rows[0]?.version ?? 0) >= 6) return; // another replica did it while this one waited
      const bound = monthStart(Date.now(), 1).toISOString();
      await client.query('ALTER TABLE usage_records RENAME TO usage_records_legacy');
      for (const index of ['usage_records_time', 'usage_records_request_id', 'usage_records_session'])
        await client.query(`ALTER INDEX IF EXISTS ${index} RENAME TO ${index.replace('usage_records', 'usage_records_legacy')}`);
      await client.query(`ALTER TABLE usage_records_legacy ADD CONSTRAINT usage_records_legacy_bound CHECK (time < '${bound}')`);
      await client.query('ALTER TABLE usage_records_legacy ADD COLUMN IF NOT EXISTS secret_findings jsonb, ADD COLUMN IF NOT EXISTS kind text');
      await this.createPartitioned(client);
      await client.query(`ALTER TABLE usage_records ATTACH PARTITION usage_records_legacy FOR VALUES FROM (MINVALUE) TO ('${bound}')`);
      await client.query('INSERT INTO switchyard_schema (version) VALUES ($1)', [6]);
    });
  }

  /** Months (their first instants) whose partitions this process made or found. */
  private readonly months = new Set<number>();

  /**
   * Makes the partitions of these months where they are missing (under a lock, so replicas do not race). A month an
   * older ledger's legacy partition already covers is skipped.
   */
  private async ensureMonths(starts: Date[]): Promise<void> {
    const missing = starts.filter((s) => !this.months.has(s.getTime()));
    if (!missing.length) return;
    await this.transaction(async (client) => {
      await client.query('SELECT pg_advisory_xact_lock(7469777)');
      const bounds = await this.partitionBounds(client);
      for (const start of missing) {
        const end = monthStart(start.getTime(), 1);
        const covered = bounds.some((b) => (b.from === null || b.from <= start.getTime()) && b.to !== null && b.to >= end.getTime());
        if (!covered) await client.query(`CREATE TABLE IF NOT EXISTS ${partitionName(start)} PARTITION OF usage_records FOR VALUES FROM ('${start.toISOString()}') TO ('${end.toISOString()}')`);
      }
    });
    for (const s of missing) this.months.add(s.getTime());
  }

  /**
   * Makes the partitions of every month from `since` to `until` (ISO) where missing: for a bulk load that writes
   * around the store (a benchmark, an import with COPY).
   */
  async prepareMonths(since: string, until: string): Promise<void> {
    const months: Date[] = [];
    for (let m = monthStart(Date.parse(since)); m.getTime() <= Date.parse(until); m = monthStart(m.getTime(), 1)) months.push(m);
    await this.ensureMonths(months);
  }

  /** Each partition of `usage_records` with its range (epoch ms; null: MINVALUE / MAXVALUE). */
  private async partitionBounds(client: pg.PoolClient | pg.Pool): Promise<Array<{ name: string; from: number | null; to: number | null }>> {
    const { rows } = await client.query<{ name: string; bound: string }>(
      "SELECT c.relname AS name, pg_get_expr(c.relpartbound, c.oid) AS bound FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'usage_records'::regclass",
    );
    const at = (v: string | undefined) => (v === undefined || v === 'MINVALUE' || v === 'MAXVALUE' ? null : Date.parse(v.replace(/^'|'$/g, '')));
    return rows.map((r) => {
      const m = /FROM \((.+?)\) TO \((.+?)\)/.exec(r.bound);
      return { name: r.name, from: at(m?.[1]), to: at(m?.[2]) };
    });
  }

  /**
   * Retention: drops every partition whose range ends at or before `before` (ISO) — whole months, so a record is kept
   * until its month has passed the cut-off. The hourly rollup is kept.
   * @returns the partitions dropped and their records (PostgreSQL's row estimate, not a count).
   */
  async prune(before: string): Promise<{ records: number; partitions: string[] }> {
    const cut = Date.parse(before);
    const old = (await this.partitionBounds(this.pool)).filter((b) => b.to !== null && b.to <= cut);
    let records = 0;
    for (const p of old) {
      const { rows } = await this.pool.query<{ n: number }>('SELECT greatest(reltuples, 0)::bigint AS n FROM pg_class WHERE relname = $1', [p.name]);
      records += Number(rows[0]?.n ?? 0);
      await this.pool.query(`DROP TABLE IF EXISTS ${p.name}`);
      if (p.from !== null) this.months.delete(p.from);
    }
    return { records, partitions: old.map((p) => p.name) };
  }

  async insert(records: UsageRecord[]): Promise<void> {
    if (!records.length) return;
    const values: unknown[] = [];
    const rows = records.map(
      (r) =>
        `(${RECORD_COLUMNS.map((c) => {
          values.push(JSON_COLUMNS.has(c) ? JSON.stringify(r[c] ?? null) : r[c]);
          return `$${values.length}`;
        }).join(', ')})`,
    );
    const months = [...new Set(records.map((r) => monthStart(Date.parse(r.time)).getTime()))].map((t) => new Date(t));
    await this.ensureMonths(months);
    try {
      await this.insertRows(records, rows, values);
    } catch (err) {
      // 23514 "no partition of relation found for row": another replica's retention dropped a month this one had
      // made (a late spool replay); make it again and write once more.
      if ((err as { code?: string }).code !== '23514') throw err;
      for (const m of months) this.months.delete(m.getTime());
      await this.ensureMonths(months);
      await this.insertRows(records, rows, values);
    }
  }

  /** One INSERT of the batch and its rollup deltas, in one transaction. */
  private async insertRows(records: UsageRecord[], rows: string[], values: unknown[]): Promise<void> {
    await this.transaction(async (client) => {
      const { rows: inserted } = await client.query<{ request_id: string }>(
        `INSERT INTO usage_records (${RECORD_COLUMNS.join(', ')}) VALUES ${rows.join(', ')} ON CONFLICT (request_id, time) DO NOTHING RETURNING request_id`,
        values,
      );
      // Only what was inserted: a record the ledger already held (a retried batch) is not counted twice.
      const ids = new Set(inserted.map((r) => r.request_id));
      await addRollup(client, rollupDeltas(records.filter((r) => ids.has(r.request_id))));
    });
  }

  async summarize(q: SummaryQuery): Promise<SummaryRow[]> {
    const args: string[] = [];
    const param = (v: string) => `$${args.push(v)}`;
    const sql = summarySql(q, {
      param,
      tag: (name) => `(tags ->> ${param(name)})`,
      ...TIME_SQL,
    });
    const { rows } = await this.pool.query<Record<string, unknown>>(sql, args);
    return rows.map(summaryRow);
  }

  async query(since: string, until: string): Promise<UsageRecord[]> {
    const { rows } = await this.pool.query<Record<string, unknown>>('SELECT * FROM usage_records WHERE time >= $1 AND time < $2 ORDER BY time', [since, until]);
    return rows.map((r) => {
      const out: Record<string, unknown> = { ...r, time: (r.time as Date).toISOString() };
      for (const c of INTS) out[c] = Number(r[c]);
      return out as unknown as UsageRecord;
    });
  }

  async costByDay(since: string): Promise<DayCost[]> {
    const { rows } = await this.pool.query<Record<string, unknown>>(
      `SELECT to_char(time AT TIME ZONE 'UTC', 'YYYY-MM-DD') || 'T00:00:00.000Z' AS time, client_id, user_id, project, session_id, model, rules, tags, sum(cost_usd) AS cost_usd
       FROM usage_records WHERE time >= $1 AND cost_usd > 0 GROUP BY 1, client_id, user_id, project, session_id, model, rules, tags`,
      [since],
    );
    return rows.map((r) => ({ ...r, cost_usd: Number(r.cost_usd) }) as DayCost);
  }

  async spendLimits(): Promise<StoredSpendLimit[]> {
    const { rows } = await this.pool.query<Record<string, unknown>>('SELECT * FROM spend_limits ORDER BY created_at, id');
    return rows.map((r) => ({
      ...(r as unknown as StoredSpendLimit),
      expires_at: r.expires_at ? (r.expires_at as Date).toISOString() : null,
      created_at: (r.created_at as Date).toISOString(),
      updated_at: (r.updated_at as Date).toISOString(),
    }));
  }

  async putSpendLimit(l: StoredSpendLimit): Promise<StoredSpendLimit> {
    const cols = SPEND_LIMIT_COLUMNS.filter((c) => c !== 'id' && c !== 'created_at' && c !== 'scope_type' && c !== 'scope_id' && c !== 'period');
    const { rows } = await this.pool.query<{ id: string; created_at: Date }>(
      `INSERT INTO spend_limits (${SPEND_LIMIT_COLUMNS.join(', ')}) VALUES (${SPEND_LIMIT_COLUMNS.map((_, i) => `$${i + 1}`).join(', ')})
       ON CONFLICT (scope_type, scope_id, period) DO UPDATE SET ${cols.map((c) => `${c} = EXCLUDED.${c}`).join(', ')} RETURNING id, created_at`,
      SPEND_LIMIT_COLUMNS.map((c) => l[c]),
    );
    return { ...l, id: rows[0]!.id, created_at: rows[0]!.created_at.toISOString() };
  }

  async deleteSpendLimit(id: string): Promise<boolean> {
    return ((await this.pool.query('DELETE FROM spend_limits WHERE id = $1', [id])).rowCount ?? 0) > 0;
  }

  async putResource(r: ResourceOwner): Promise<void> {
    await this.pool.query(
      'INSERT INTO resources (id, kind, created_at, settled_at, owner) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO UPDATE SET kind = EXCLUDED.kind, created_at = EXCLUDED.created_at, settled_at = EXCLUDED.settled_at, owner = EXCLUDED.owner',
      [r.id, r.kind, r.created_at, r.settled_at, JSON.stringify(r)],
    );
  }

  async getResource(id: string): Promise<ResourceOwner | null> {
    const { rows } = await this.pool.query<{ owner: ResourceOwner; settled_at: Date | null }>('SELECT owner, settled_at FROM resources WHERE id = $1', [id]);
    const row = rows[0];
    return row ? { ...row.owner, settled_at: row.settled_at ? row.settled_at.toISOString() : null } : null;
  }

  async unsettledBatches(since: string, limit: number): Promise<ResourceOwner[]> {
    const { rows } = await this.pool.query<{ owner: ResourceOwner }>("SELECT owner FROM resources WHERE kind = 'batch' AND settled_at IS NULL AND created_at >= $1 ORDER BY created_at LIMIT $2", [
      since,
      limit,
    ]);
    return rows.map((r) => r.owner);
  }

  async settleBatch(id: string, at: string): Promise<void> {
    await this.pool.query('UPDATE resources SET settled_at = $1 WHERE id = $2', [at, id]);
  }

  /**
   * The hourly rollup (summary.ts) and the session index the summaries read; a ledger from before them is rolled
   * up once, here (in one transaction: a replica that starts at the same time waits for it).
   */
  private async initRollup(): Promise<void> {
    await this.transaction(async (client) => {
      await client.query('SELECT pg_advisory_xact_lock(7469776)'); // one replica creates and backfills
      const { rows: exists } = await client.query<{ t: string | null }>("SELECT to_regclass('usage_rollup') AS t");
      await client.query(
        `CREATE TABLE IF NOT EXISTS usage_rollup (rkey text PRIMARY KEY, hour text NOT NULL, ${ROLLUP_DIMENSIONS.map((c) => `${c} text`).join(', ')}, tags jsonb NOT NULL, ${ROLLUP_SUMS.map((c) => `${c} ${c === 'cost_usd' ? 'double precision' : 'bigint'} NOT NULL`).join(', ')})`,
      );
      await client.query('CREATE INDEX IF NOT EXISTS usage_rollup_hour ON usage_rollup (hour)');
      // v8: the rollup's `kind` dimension (rows rolled up before have none: interactive calls).
      await client.query('ALTER TABLE usage_rollup ADD COLUMN IF NOT EXISTS kind text');
      await client.query('CREATE INDEX IF NOT EXISTS usage_records_session ON usage_records (session_id, time)');
      if (!exists[0]?.t) {
        const { rows } = await client.query<Record<string, unknown>>(rollupBackfillSql(TIME_SQL));
        await addRollup(
          client,
          rollupFromGroups(rows, (stored) => (stored ?? {}) as Record<string, string>),
        );
      }
    });
  }

  /**
   * Runs `fn` in one transaction on one pooled connection; rolls back on failure. A connection that failed
   * mid-transaction (a timeout, a reset) is dropped, not handed to the next write.
   */
  private async transaction<T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    let broken: Error | undefined;
    try {
      await client.query('BEGIN');
      const out = await fn(client);
      await client.query('COMMIT');
      return out;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      broken = err as Error;
      throw err;
    } finally {
      client.release(broken);
    }
  }

  async addActivity(deltas: ActivityDelta[]): Promise<void> {
    for (const d of deltas) {
      // The column name comes from ACTIVITY_COLUMNS (never from the request).
      const col = ACTIVITY_COLUMNS.find((c) => c === d.column)!;
      const next = d.mode === 'add' ? `session_activity.${col} + excluded.${col}` : `greatest(session_activity.${col}, excluded.${col})`;
      await this.pool.query(
        `INSERT INTO session_activity (session_id, user_id, ${col}, updated_at) VALUES ($1, $2, $3, now()) ON CONFLICT (session_id) DO UPDATE SET ${col} = ${next}, updated_at = now()`,
        [d.session_id, d.user_id, d.value],
      );
    }
  }

  async activity(since: string): Promise<SessionActivity[]> {
    const { rows } = await this.pool.query<SessionActivity & { updated_at: Date }>('SELECT * FROM session_activity WHERE updated_at >= $1 ORDER BY updated_at DESC', [since]);
    return rows.map((r) => ({ ...r, updated_at: new Date(r.updated_at).toISOString() }));
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}
