/**
 * The fleet ledger store: PostgreSQL through `pg`, the same schema as SQLite (tags and rules as jsonb),
 * created and migrated by the gateway (`switchyard_schema` holds the version).
 */
import pg from 'pg';
import type { LedgerStore } from './ledger.js';
import { RECORD_COLUMNS, type UsageRecord } from './record.js';

const SCHEMA_VERSION = 1;
const INTS = new Set(['status', 'retries', 'input_tokens', 'output_tokens', 'cache_creation_input_tokens', 'cache_creation_5m_input_tokens', 'cache_creation_1h_input_tokens', 'cache_read_input_tokens']);

function columnType(c: string): string {
  if (c === 'time') return 'timestamptz NOT NULL';
  if (c === 'rules' || c === 'tags') return 'jsonb NOT NULL';
  if (INTS.has(c)) return 'bigint NOT NULL';
  if (c === 'latency_ms' || c === 'ttft_ms' || c === 'cost_usd') return 'double precision';
  return 'text';
}

export class PostgresStore implements LedgerStore {
  readonly kind = 'postgres';
  private readonly pool: pg.Pool;

  /** @param url e.g. `postgres://user@127.0.0.1:5432/db`. */
  constructor(url: string) {
    this.pool = new pg.Pool({ connectionString: url, max: 4, connectionTimeoutMillis: 5000 });
    this.pool.on('error', () => {}); // surfaced by the failing query
  }

  async init(): Promise<void> {
    await this.pool.query('CREATE TABLE IF NOT EXISTS switchyard_schema (version integer NOT NULL)');
    const { rows } = await this.pool.query<{ version: number }>('SELECT max(version) AS version FROM switchyard_schema');
    if ((rows[0]?.version ?? 0) < 1) {
      await this.pool.query(`CREATE TABLE IF NOT EXISTS usage_records (${RECORD_COLUMNS.map((c) => `${c} ${columnType(c)}`).join(', ')})`);
      await this.pool.query('CREATE INDEX IF NOT EXISTS usage_records_time ON usage_records (time)');
      await this.pool.query('INSERT INTO switchyard_schema (version) VALUES ($1)', [SCHEMA_VERSION]);
    }
  }

  async insert(records: UsageRecord[]): Promise<void> {
    const values: unknown[] = [];
    const rows = records.map((r) => `(${RECORD_COLUMNS.map((c) => {
      values.push(c === 'rules' || c === 'tags' ? JSON.stringify(r[c]) : r[c]);
      return `$${values.length}`;
    }).join(', ')})`);
    await this.pool.query(`INSERT INTO usage_records (${RECORD_COLUMNS.join(', ')}) VALUES ${rows.join(', ')}`, values);
  }

  async query(since: string, until: string): Promise<UsageRecord[]> {
    const { rows } = await this.pool.query<Record<string, unknown>>('SELECT * FROM usage_records WHERE time >= $1 AND time < $2 ORDER BY time', [since, until]);
    return rows.map((r) => {
      const out: Record<string, unknown> = { ...r, time: (r.time as Date).toISOString() };
      for (const c of INTS) out[c] = Number(r[c]);
      return out as unknown as UsageRecord;
    });
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}
