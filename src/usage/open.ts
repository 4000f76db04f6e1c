/** Opens the ledger the config names (SQLite or PostgreSQL) behind the batching writer. */
import type { GatewayConfig } from '../config.js';
import type { Logger } from '../log.js';
import { Ledger, type LedgerStore } from './ledger.js';
import { Spool } from './spool.js';
import { WebhookExporter } from './webhook.js';

/** The store for a config's `ledger:`, not yet initialised; null when the ledger is off. */
export async function ledgerStore(config: GatewayConfig): Promise<LedgerStore | null> {
  if (!config.ledger) return null;
  // Each store's driver is loaded only when the config uses it (pg alone adds ~15 MB to an idle process).
  if (config.ledger.postgres) return new (await import('./postgres.js')).PostgresStore(config.ledger.postgres, config.ledger.write_timeout_ms);
  return new (await import('./sqlite.js')).SqliteStore(config.ledger.sqlite!, config.ledger.write_timeout_ms);
}

/**
 * Opens and initialises the ledger. A store that cannot be initialised (PostgreSQL down) does not stop the
 * gateway: it logs and the writer keeps records queued until the store answers.
 */
export async function openLedger(config: GatewayConfig, log: Logger): Promise<Ledger | null> {
  const store = await ledgerStore(config);
  if (!store || !config.ledger) return null;
  let ready = false;
  const init = async () => {
    try {
      await store.init();
      ready = true;
    } catch (err) {
      log.error({ err: (err as Error).message }, `usage ledger (${store.kind}) is not reachable; records are queued until it is`);
    }
  };
  await init();
  // The store as it is, but inserts wait for the schema: a store that was down at start is initialised first.
  const insert = async (records: Parameters<LedgerStore['insert']>[0]) => {
    if (!ready) {
      await init();
      if (!ready) throw new Error('ledger not initialised');
    }
    await store.insert(records);
  };
  const gated = new Proxy(store, {
    get(target, name) {
      if (name === 'insert') return insert;
      const v = Reflect.get(target, name, target) as unknown;
      return typeof v === 'function' ? (v as (...args: unknown[]) => unknown).bind(target) : v;
    },
  });
  const opts = {
    flushIntervalMs: config.ledger.flush_interval_ms,
    maxQueue: config.ledger.max_queue,
    writeTimeoutMs: config.ledger.write_timeout_ms,
    retentionDays: config.ledger.retention_days,
  };
  const webhook = config.ledger.webhook ? new WebhookExporter(config.ledger.webhook, log, { intervalMs: opts.flushIntervalMs, maxQueue: opts.maxQueue }) : null;
  let spool: Spool | null = null;
  if (config.ledger.spool) {
    try {
      spool = new Spool(config.ledger.spool.dir, config.ledger.spool.max_bytes);
    } catch (err) {
      log.error({ spool: config.ledger.spool.dir, err: (err as Error).message }, 'usage ledger spool directory cannot be created; records that overflow the queue will be dropped');
    }
  }
  const ledger = new Ledger(gated, log, opts, webhook, spool);
  // Records spooled by an earlier run (an outage, a shutdown during one) go in now, off the start path.
  if (ready && spool?.pending()) void ledger.replaySpool();
  return ledger;
}
