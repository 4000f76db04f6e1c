/**
 * The usage ledger: records are queued in memory and written off the request path in small batches
 * (every `flush_interval_ms`, default 1 s), so a crash loses at most that interval. A store that is down
 * or hung never fails or slows a request, and loses nothing within the spool's bound:
 * - each batch write is bounded (`write_timeout_ms`); a hung write counts as failed and the next flush
 *   tries again (inserts are idempotent by request id, so a late success is harmless);
 * - failed flushes back off exponentially with jitter (up to 30 s between tries);
 * - when the in-memory queue reaches `max_queue`, its records move to the disk spool, replayed once the
 *   store answers again;
 * - `close()` (SIGTERM) flushes within the time it is given and spools what is left.
 * Only a full spool drops records (counted in `dropped`, logged).
 */
import type { Logger } from '../log.js';
import { BatchQueue } from './batch-queue.js';
import type { SummaryQuery, SummaryRow } from './summary.js';
import type { UsageRecord } from './record.js';
import type { Spool } from './spool.js';
import type { WebhookExporter } from './webhook.js';
import type { ResourceStore } from '../upstream/affinity.js';

/** The usage records of the ledger database (SQLite or PostgreSQL, same schema). */
export interface RecordStore {
  readonly kind: string;
  /** Creates or migrates the schema (all three stores' tables). */
  init(): Promise<void>;
  /** Inserts records; a request id the store already holds is skipped (replays and retries are safe). */
  insert(records: UsageRecord[]): Promise<void>;
  /** Records with `since <= time < until` (ISO times). */
  query(since: string, until: string): Promise<UsageRecord[]>;
  /**
   * Cost per UTC day and per everything a budget scope can count by (client, user, project, session, model,
   * rules, tags), for `since <= time`: what recomputing budget spend at start-up reads — thousands of rows
   * where the records are millions. `time` is the day's midnight (ISO).
   */
  costByDay(since: string): Promise<DayCost[]>;
  /** Sums grouped by the database (the dashboard's overview): one row per group, in no particular order. */
  summarize(q: SummaryQuery): Promise<SummaryRow[]>;
  /**
   * Retention: removes records older than `before` (ISO) and keeps the hourly rollup. SQLite deletes them in
   * batches; PostgreSQL drops each month's partition once the whole month is older. `records`: how many went
   * (PostgreSQL: its row estimate); `partitions`: the tables dropped.
   */
  prune(before: string): Promise<{ records: number; partitions: string[] }>;
  close(): Promise<void>;
}

/** The spend limits set through the admin API, kept in the ledger database (usage/spend-limits.ts). */
export interface SpendLimitStore {
  /** Spend limits set through the admin API (usage/spend-limits.ts), oldest first. */
  spendLimits(): Promise<StoredSpendLimit[]>;
  /** Inserts or replaces the limit with the same scope and period (its id and created_at are kept). */
  putSpendLimit(limit: StoredSpendLimit): Promise<StoredSpendLimit>;
  /** Deletes a limit; false when there was none with that id. */
  deleteSpendLimit(id: string): Promise<boolean>;
}

/** Claude Code's per-session activity (commits, pull requests, lines), kept in the ledger database (login/telemetry.ts). */
export interface ActivityStore {
  /** Adds Claude Code's per-session activity counters (login/telemetry.ts) to their sessions' rows. */
  addActivity(deltas: ActivityDelta[]): Promise<void>;
  /** Session activity rows touched from `since` (ISO), most recent first. */
  activity(since: string): Promise<SessionActivity[]>;
}

/** The ledger database: its records, spend limits, session activity and remembered resources (upstream/affinity.ts) (one SQLite file or PostgreSQL database). */
export interface LedgerStore extends RecordStore, SpendLimitStore, ActivityStore, ResourceStore {}

/** What one Claude Code session produced, from its own telemetry. `updated_at` ISO; `active_time_s` seconds. */
export interface SessionActivity {
  session_id: string;
  user_id: string;
  commits: number;
  pull_requests: number;
  lines_added: number;
  lines_removed: number;
  active_time_s: number;
  updated_at: string;
}

/** The counter columns of `session_activity`, in table order. */
export const ACTIVITY_COLUMNS = ['commits', 'pull_requests', 'lines_added', 'lines_removed', 'active_time_s'] as const;

/** One group of {@link LedgerStore.costByDay}. */
export type DayCost = Pick<UsageRecord, 'time' | 'client_id' | 'user_id' | 'project' | 'session_id' | 'model' | 'rules' | 'tags' | 'cost_usd'>;

/** A spend limit as stored: amounts in cents (null: an explicit "no limit"); times ISO. */
export interface StoredSpendLimit {
  id: string;
  scope_type: 'user' | 'workspace' | 'organization';
  /** The user id or workspace (project) id; '' for the organization. */
  scope_id: string;
  period: 'daily' | 'weekly' | 'monthly';
  amount: string | null;
  /** A temporary limit stops applying at this time (a Switchyard extension); null: no expiry. */
  expires_at: string | null;
  created_at: string;
  updated_at: string;
}

/** Columns of the spend_limits table, in order. */
export const SPEND_LIMIT_COLUMNS = ['id', 'scope_type', 'scope_id', 'period', 'amount', 'expires_at', 'created_at', 'updated_at'] as const;

/** Longest pause between two flush attempts while the store keeps failing, ms. */
const MAX_BACKOFF_MS = 30_000;

/** How often retention runs (ledger.retention_days), ms; the first run is RETENTION_FIRST_MS after start. */
const RETENTION_INTERVAL_MS = 3_600_000;
const RETENTION_FIRST_MS = 60_000;

/** A write pending longer than this shows the ledger as degraded in /readyz, ms. */
const SLOW_WRITE_MS = 2_000;

/** What `/readyz` shows about the ledger. */
export interface LedgerHealth {
  kind: string;
  status: 'ok' | 'degraded';
  queued: number;
  spooled: number;
  dropped: number;
  last_error: string | null;
}

/** Batching writer in front of a store. */
export class Ledger {
  private readonly queue: BatchQueue<UsageRecord>;
  private timer: NodeJS.Timeout;
  private failures = 0;
  private nextTryAt = 0;
  private lastError: string | null = null;
  private replaying: Promise<void> | null = null;
  /** Epoch ms a flush in progress started (null: none). */
  private writingSince: number | null = null;

  constructor(
    readonly store: LedgerStore,
    private readonly log: Logger,
    /** `retentionDays`: records older than this many days are removed every hour (null or absent: kept for ever). */
    private readonly opts: { flushIntervalMs: number; maxQueue: number; writeTimeoutMs?: number; retentionDays?: number | null },
    /** Optional billing export fed with every record. */
    readonly webhook: WebhookExporter | null = null,
    /** Disk spool for what the store cannot take in time (null: overflow is dropped). */
    readonly spool: Spool | null = null,
  ) {
    this.queue = new BatchQueue((batch) => store.insert(batch), opts.maxQueue, 500, {
      timeoutMs: opts.writeTimeoutMs ?? 10_000,
      overflow: spool ? (items) => this.toSpool(items, 'queue full') : undefined,
    });
    this.timer = setInterval(() => void this.tick(), opts.flushIntervalMs);
    this.timer.unref();
    if (opts.retentionDays) {
      const first = setTimeout(() => {
        void this.retain();
        this.retention = setInterval(() => void this.retain(), RETENTION_INTERVAL_MS);
        this.retention.unref();
      }, RETENTION_FIRST_MS);
      first.unref();
      this.retention = first;
    }
  }

  private retention: NodeJS.Timeout | null = null;

  /**
   * Retention, once: removes the records older than `retentionDays` before `now` (epoch ms), keeping the hourly
   * rollup (RecordStore.prune). Runs off the request path on a timer; never throws (a failure is logged and the next
   * run tries again). @returns what was removed, or null when retention is off or the store failed.
   */
  async retain(now = Date.now()): Promise<{ records: number; partitions: string[] } | null> {
    if (!this.opts.retentionDays) return null;
    const before = new Date(now - this.opts.retentionDays * 86_400_000).toISOString();
    try {
      const pruned = await this.store.prune(before);
      if (pruned.records || pruned.partitions.length) {
        this.log.info({ before, ...pruned }, `usage ledger (${this.store.kind}): retention removed ${pruned.records} record(s) older than ${this.opts.retentionDays} days`);
      }
      return pruned;
    } catch (err) {
      this.log.warn({ before, err: (err as Error).message }, `usage ledger (${this.store.kind}): retention failed; the next run tries again`);
      return null;
    }
  }

  /** Records waiting in memory to be written. */
  get queued(): number {
    return this.queue.length;
  }

  /** Records dropped (queue full with no spool, or spool full). */
  get dropped(): number {
    return this.queue.dropped + (this.spool?.dropped ?? 0);
  }

  /** Records written. */
  get written(): number {
    return this.queue.sent;
  }

  health(): LedgerHealth {
    // A write that hangs (a black-holed database) is degraded before its timeout says so.
    const slow = this.writingSince !== null && Date.now() - this.writingSince > SLOW_WRITE_MS;
    return { kind: this.store.kind, status: this.failures || slow ? 'degraded' : 'ok', queued: this.queued, spooled: this.spool?.spooled ?? 0, dropped: this.dropped, last_error: this.lastError };
  }

  private toSpool(items: UsageRecord[], why: string): boolean {
    const ok = this.spool!.write(items);
    if (ok)
      this.log.warn(
        { records: items.length, spool: this.spool!.dir, why },
        `usage ledger (${this.store.kind}): ${items.length} record(s) written to the disk spool; they are replayed when the store answers`,
      );
    else
      this.log.error(
        { records: items.length, spool: this.spool!.dir, dropped: this.dropped },
        `usage ledger (${this.store.kind}): the spool is full or not writable; ${items.length} record(s) dropped`,
      );
    return ok;
  }

  /** Queues a record; never throws, never waits. */
  record(r: UsageRecord): void {
    this.webhook?.push(r);
    if (!this.queue.push(r) && (this.queue.dropped === 1 || this.queue.dropped % 1000 === 0)) {
      this.log.error({ dropped: this.queue.dropped, max_queue: this.opts.maxQueue }, `usage ledger (${this.store.kind}) queue is full: usage records are being dropped`);
    }
  }

  /** A timer tick: flush unless backing off. */
  private async tick(): Promise<void> {
    if (Date.now() < this.nextTryAt) return;
    await this.flush();
  }

  /**
   * Writes everything queued now, then replays the spool if it holds records. On failure the records stay
   * queued and the next timed attempt backs off.
   */
  async flush(): Promise<void> {
    const first = this.writingSince === null;
    if (first) this.writingSince = Date.now();
    let emptied: boolean;
    try {
      emptied = await this.queue.flush((err) => this.failed(err));
    } finally {
      if (first) this.writingSince = null;
    }
    if (!emptied) return;
    if (this.failures) {
      this.log.info({ after_failures: this.failures }, `usage ledger (${this.store.kind}) is writing again`);
      this.failures = 0;
      this.nextTryAt = 0;
      this.lastError = null;
    }
    if (this.spool?.pending()) await this.replaySpool();
  }

  private failed(err: unknown): void {
    this.failures++;
    this.lastError = (err as Error).message;
    const backoff = Math.min(MAX_BACKOFF_MS, this.opts.flushIntervalMs * 2 ** Math.min(this.failures, 10));
    this.nextTryAt = Date.now() + backoff / 2 + Math.random() * (backoff / 2);
    this.log.warn(
      { queued: this.queue.length, failures: this.failures, next_try_ms: Math.round(this.nextTryAt - Date.now()), err: this.lastError },
      `usage ledger (${this.store.kind}) write failed; records stay queued`,
    );
  }

  /** Replays the disk spool into the store (one replay at a time). */
  replaySpool(): Promise<void> {
    this.replaying ??= (async () => {
      try {
        const n = await this.spool!.replay((batch) => this.store.insert(batch));
        if (n) this.log.info({ records: n }, `usage ledger (${this.store.kind}): ${n} spooled record(s) replayed`);
      } catch (err) {
        this.failed(err);
      }
    })().finally(() => {
      this.replaying = null;
    });
    return this.replaying;
  }

  /**
   * Flushes (and the export) within `withinMs`, spools what is left, and closes the store. Never waits
   * longer than `withinMs` (plus the spool write) for a store that does not answer.
   */
  async close(withinMs = 10_000): Promise<void> {
    clearInterval(this.timer);
    if (this.retention) clearTimeout(this.retention);
    let timer: NodeJS.Timeout | undefined;
    const bounded = new Promise<void>((resolve) => (timer = setTimeout(resolve, withinMs)));
    await Promise.race([Promise.all([this.flush(), this.webhook?.close()]), bounded]);
    clearTimeout(timer);
    const left = this.queue.takeAll();
    if (left.length) {
      if (this.spool) this.toSpool(left, 'shutdown');
      else this.log.error({ lost: left.length }, `usage ledger (${this.store.kind}) could not write ${left.length} record(s) before shutdown and has no spool`);
    }
    await Promise.race([this.store.close().catch(() => {}), new Promise((r) => setTimeout(r, 1000).unref())]);
  }
}

/** What one session produced, as counted by its Claude Code. */
export type ActivityColumn = 'commits' | 'pull_requests' | 'lines_added' | 'lines_removed' | 'active_time_s';

/** One counter value for one session: added to the row (delta) or raising it (cumulative). */
export interface ActivityDelta {
  session_id: string;
  /** The signed-in user (the gateway's client id of the sender). */
  user_id: string;
  column: ActivityColumn;
  value: number;
  mode: 'add' | 'max';
}
