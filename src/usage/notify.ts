/**
 * Budget threshold notifications (`budget: { notify: [0.5, 0.8, 1] }`): when a request's cost brings a budget's
 * running total to a threshold, one JSON notification is POSTed to `budgets.webhook` — once per budget, scope
 * value, period and threshold. Sending is never on the request path: notifications queue in memory and in a
 * small JSON file (`budgets.state_file`), are retried with backoff (1 s doubling to 5 min) until the receiver
 * answers 2xx, and survive a restart, as does the record of what was already sent (so a restart never sends a
 * threshold twice). With Redis as the state store, replicas also agree on what was sent (a marker per
 * notification), so the fleet sends each once.
 *
 * Payload (`content-type: application/json`):
 * `{ "type": "budget.threshold", "id", "budget", "scope", "value", "period", "period_start", "resets_at",
 *    "limit_usd", "spent_usd", "threshold", "time" }` — `threshold` a fraction (0.8 = 80 %), amounts in USD.
 *
 * The same webhook, queue and retries carry `scan_secrets`' findings ({@link SecretNotification}): one notification
 * per request in which a secret was first seen — a secret the history resends on later turns is not notified again
 * (per session and placeholder, for a day; replicas sharing Redis agree). Never the secret's value.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { request } from 'undici';
import type { Logger } from '../log.js';
import type { StateStore } from '../state/store.js';

/** One notification as POSTed. */
export interface BudgetNotification {
  type: 'budget.threshold';
  /** Stable per budget, scope value, period and threshold: receivers can deduplicate on it. */
  id: string;
  budget: string;
  scope: string;
  value: string;
  period: 'day' | 'week' | 'month';
  period_start: string;
  resets_at: string;
  limit_usd: number;
  spent_usd: number;
  threshold: number;
  time: string;
}

/** Secrets `scan_secrets` found for the first time in a request (type `secret.found`). */
export interface SecretNotification {
  type: 'secret.found';
  /** `secret:<request id>`. */
  id: string;
  /** The Switchyard rule whose scan_secrets found them, and what it did. */
  rule: string;
  on_find: 'block' | 'redact' | 'report';
  request_id: string;
  session_id: string | null;
  user_id: string | null;
  client_id: string | null;
  /** Each secret: gitleaks rule id, where in the request, block type and its placeholder (never the value). */
  findings: Array<{ rule: string; where: string; block: string; placeholder: string }>;
  time: string;
}

/** What the webhook receives. */
export type Notification = BudgetNotification | SecretNotification;

/** How long a secret once notified for a session is not notified again, ms. */
const SECRET_QUIET_MS = 24 * 3_600_000;

interface Pending {
  n: Notification;
  attempts: number;
  /** Epoch ms of the next attempt. */
  next: number;
}

interface Saved {
  /** Notification ids already delivered (or queued), with when they may be forgotten (epoch ms). */
  sent: Record<string, number>;
  /** When each was reached (ISO), for the dashboard; absent in state files from before it. */
  reachedAt?: Record<string, string>;
  pending: Pending[];
}

/** A threshold notification of one budget, scope value and period, as the dashboard shows it. */
export interface SentNotification {
  /** Fraction of the limit (0.8 = 80 %). */
  threshold: number;
  /** When this gateway saw the threshold reached (ISO), or null when another replica did and sent it. */
  time: string | null;
  /** False while the webhook has not yet answered 2xx (retried with backoff). */
  delivered: boolean;
}

const MAX_BACKOFF_MS = 5 * 60_000;

/** Queues, persists and delivers budget notifications. */
export class BudgetNotifier {
  private saved: Saved = { sent: {}, pending: [] };
  private timer: NodeJS.Timeout | null = null;
  private sending = false;

  /**
   * @param webhook where notifications go (null: thresholds are only logged).
   * @param file the state file (null: memory only).
   */
  constructor(
    private readonly webhook: { url: string; timeoutMs: number } | null,
    private readonly file: string | null,
    private readonly state: StateStore,
    private readonly log: Logger,
  ) {
    if (file) {
      try {
        this.saved = JSON.parse(readFileSync(file, 'utf8')) as Saved;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') log.error({ file, err: (err as Error).message }, 'budget notification state unreadable; starting empty');
      }
    }
    const now = Date.now();
    for (const [id, until] of Object.entries(this.saved.sent)) if (until < now) delete this.saved.sent[id];
    for (const id of Object.keys(this.saved.reachedAt ?? {})) if (!(id in this.saved.sent)) delete this.saved.reachedAt![id];
    if (this.saved.pending.length) this.schedule(0);
  }

  /**
   * Notifies each threshold of a budget that `spentUsd` has reached, unless already sent this period.
   * @param expiresAtMs when the period's markers may be forgotten (epoch ms).
   */
  async reached(
    b: { rule: string; scope: string; usd: number; per: 'day' | 'week' | 'month'; notify?: number[] },
    value: string,
    spentUsd: number,
    period: { start: Date; end: Date },
    expiresAtMs: number,
  ): Promise<void> {
    for (const t of b.notify ?? []) {
      // In micro-dollars: threshold × limit in doubles can land a hair above the exact amount (0.1 × 3 is 0.30000000000000004).
      if (Math.round(spentUsd * 1e6) < Math.round(t * b.usd * 1e6)) continue;
      const id = `${b.rule}:${b.scope}:${value}:${period.start.toISOString().slice(0, 10)}:${t}`;
      if (id in this.saved.sent) continue;
      (this.saved.reachedAt ??= {})[id] = new Date().toISOString();
      if (!(await this.firstToSend(id, expiresAtMs))) continue;
      const n: BudgetNotification = {
        type: 'budget.threshold',
        id,
        budget: b.rule,
        scope: b.scope,
        value,
        period: b.per,
        period_start: period.start.toISOString(),
        resets_at: period.end.toISOString(),
        limit_usd: b.usd,
        spent_usd: Math.round(spentUsd * 1e6) / 1e6,
        threshold: t,
        time: new Date().toISOString(),
      };
      this.log.warn({ budget: b.rule, scope: b.scope, value, threshold: t, spent_usd: n.spent_usd, limit_usd: b.usd }, `budget "${b.rule}" reached ${Math.round(t * 100)}% for ${b.scope} "${value}"`);
      this.enqueue(n);
    }
  }

  /**
   * Remembers `id` as sent until `until` (epoch ms) and tells whether this gateway sends it: replicas sharing Redis
   * agree through a marker — the first to count it sends, the others only remember it.
   */
  private async firstToSend(id: string, until: number): Promise<boolean> {
    this.saved.sent[id] = until;
    return (await this.state.addSpend(`notified:${id}`, 1, until)) === 1;
  }

  /** Queues `n` for the webhook (when there is one), saves the state and starts sending. */
  private enqueue(n: Notification): void {
    if (this.webhook) this.saved.pending.push({ n, attempts: 0, next: Date.now() });
    this.persist();
    this.schedule(0);
  }

  /**
   * Notifies the secrets of one request that were first seen in it (`first_seen`), each at most once per session
   * (or request, without one) and placeholder for a day. Never throws.
   */
  async secretsFound(
    found: { rule: string; on_find: SecretNotification['on_find']; findings: Array<{ rule: string; where: string; block: string; placeholder: string; first_seen: boolean }> },
    who: { request_id: string; session_id: string | null; user_id: string | null; client_id: string | null },
  ): Promise<void> {
    try {
      const until = Date.now() + SECRET_QUIET_MS;
      const fresh: SecretNotification['findings'] = [];
      for (const f of found.findings) {
        if (!f.first_seen) continue;
        const id = `secret:${who.session_id ?? who.request_id}:${f.placeholder}`;
        if (id in this.saved.sent || !(await this.firstToSend(id, until))) continue;
        fresh.push({ rule: f.rule, where: f.where, block: f.block, placeholder: f.placeholder });
      }
      if (fresh.length === 0) return;
      const n: SecretNotification = { type: 'secret.found', id: `secret:${who.request_id}`, rule: found.rule, on_find: found.on_find, ...who, findings: fresh, time: new Date().toISOString() };
      this.log.warn(
        { rule: found.rule, request_id: who.request_id, session_id: who.session_id, user_id: who.user_id, secret_rules: [...new Set(fresh.map((f) => f.rule))] },
        `scan_secrets found ${fresh.length} secret(s) (${found.on_find})`,
      );
      this.enqueue(n);
    } catch (err) {
      this.log.error({ err: (err as Error).message, request_id: who.request_id }, 'could not queue the secret.found notification');
    }
  }

  private schedule(ms: number): void {
    if (!this.webhook || this.sending) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.drain(), ms);
    this.timer.unref();
  }

  private async drain(): Promise<void> {
    this.timer = null;
    this.sending = true;
    try {
      const now = Date.now();
      for (const p of [...this.saved.pending]) {
        if (p.next > now) continue;
        if (await this.post(p.n)) this.saved.pending.splice(this.saved.pending.indexOf(p), 1);
        else {
          p.attempts++;
          p.next = Date.now() + Math.min(MAX_BACKOFF_MS, 1000 * 2 ** (p.attempts - 1));
        }
        this.persist();
      }
    } finally {
      this.sending = false;
    }
    if (this.saved.pending.length) this.schedule(Math.max(0, Math.min(...this.saved.pending.map((p) => p.next)) - Date.now()));
  }

  private async post(n: Notification): Promise<boolean> {
    const { url, timeoutMs } = this.webhook!;
    try {
      const r = await request(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(n), headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
      await r.body.dump();
      if (r.statusCode >= 200 && r.statusCode < 300) return true;
      this.log.warn({ status: r.statusCode, notification: n.id }, `notification webhook answered ${r.statusCode}; retrying`);
    } catch (err) {
      this.log.warn({ err: (err as Error).message, notification: n.id }, 'notification webhook unreachable; retrying');
    }
    return false;
  }

  private persist(): void {
    if (!this.file) return;
    try {
      mkdirSync(path.dirname(this.file), { recursive: true });
      writeFileSync(`${this.file}.tmp`, JSON.stringify(this.saved));
      renameSync(`${this.file}.tmp`, this.file);
    } catch (err) {
      this.log.error({ file: this.file, err: (err as Error).message }, 'could not save budget notification state');
    }
  }

  /**
   * The thresholds of a budget's scope value notified in the period starting `periodStart`, lowest first
   * (those this gateway knows of: its own, and those it found another replica had sent).
   */
  notified(rule: string, scope: string, value: string, periodStart: Date): SentNotification[] {
    const prefix = `${rule}:${scope}:${value}:${periodStart.toISOString().slice(0, 10)}:`;
    const pending = new Set(this.saved.pending.map((p) => p.n.id));
    return Object.keys(this.saved.sent)
      .filter((id) => id.startsWith(prefix))
      .map((id) => ({ threshold: Number(id.slice(prefix.length)), time: this.saved.reachedAt?.[id] ?? null, delivered: !pending.has(id) }))
      .sort((a, b) => a.threshold - b.threshold);
  }

  /** Notifications not yet delivered. */
  get pending(): number {
    return this.saved.pending.length;
  }

  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.persist();
  }
}
