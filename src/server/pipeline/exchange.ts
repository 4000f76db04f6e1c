/**
 * The exchange: one object per proxied request that every pipeline stage reads and writes — the request,
 * the identity, the body, the decision, the upstream answer, timings, usage and outcome — and the
 * long-lived dependencies the stages use. The body, its parsed form, the request context and the decision
 * are dropped (`dropBody`) as soon as the upstream answered, so an open stream costs only its sockets and
 * buffers, not a copy of a 76 KB+ request.
 */
import type { RequestTrace, Telemetry } from '../../telemetry.js';
import type { LRUCache } from 'lru-cache';
import type { LiveTail } from '../live.js';
import type { Ingress } from '../ingress.js';
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ClientConfig } from '../../config.js';
import type { Logger } from '../../log.js';
import { boundedId, type RequestContext } from '../../rules/context.js';
import type { Decision } from '../../rules/decision.js';
import type { Runtime, Snapshot } from '../../runtime.js';
import type { StateStore } from '../../state/store.js';
import type { Upstreams } from '../../upstream/forward.js';
import { type ClientPresence, type UpstreamAnswer, upstreamPathAndQuery } from '../../upstream/client.js';
import type { Endpoint } from '../../upstream/providers/index.js';
import type { Ledger } from '../../usage/ledger.js';
import type { Metrics } from '../../usage/metrics.js';
import type { PriceTable } from '../../usage/prices.js';
import type { UsageTap } from '../../usage/tap.js';
import type { Enforcer, Hold } from '../../actions/types.js';
import type { InflightBytes } from '../overload.js';
import { bodyPool } from '../../body/pool.js';
import type { DecisionTraces } from '../traces.js';
import type { RequestFacts } from '../../usage/facts.js';
import type { BudgetNotifier } from '../../usage/notify.js';
import type { SpendLimits } from '../../usage/spend-limits.js';
import type { LoginService } from '../../login/service.js';
import type { LoginServices } from '../../login/services.js';
import type { SignedInUser } from '../../login/tokens.js';
import type { ResourceAffinity } from '../../upstream/affinity.js';
import type { RecordKind } from '../../usage/record.js';

/** An answer being relayed, as the shutdown sees it. */
export interface OpenRelay {
  /** Ends the answer now: an SSE stream gets an `event: error` after its last whole event; other answers are cut. */
  terminate(message: string): void;
}

/** Everything the pipeline needs from the server (lives as long as the gateway). */
/** A provider's `GET /v1/models` answer as parsed: `data` and the page fields (model-list.ts). */
export type ModelList = { data: Array<{ id?: unknown }> } & Record<string, unknown>;

export interface ProxyDeps {
  runtime: Runtime;
  /** Upstream client, key pools, circuit breakers. */
  upstreams: Upstreams;
  log: Logger;
  /** `serve --dry-run`: answer each request with its decision instead of forwarding. */
  dryRun: boolean;
  /** Throttle counters, cooldowns, budget totals (memory, or Redis behind its failure mode). */
  state: StateStore;
  /** The usage ledger (null when off) and the price table for its costs. */
  ledger: Ledger | null;
  metrics: Metrics;
  prices: PriceTable;
  /** Proxied requests in flight (checked against limits.max_concurrent_requests). */
  inFlight: { count: number };
  /** Request-body bytes in flight, capped by limits.max_inflight_body_bytes (the overload manager). */
  inflightBytes: InflightBytes;
  /** Providers' own model lists, kept a minute for signed-in users' filtered `/v1/models` (model-list.ts). */
  modelLists: LRUCache<string, ModelList>;
  /** Answers being relayed now (the shutdown ends each with an SSE error event when its grace runs out). */
  openRelays: Set<OpenRelay>;
  /** Requests between arrival and their end: the watchdog ends those that make no progress (watchdog.ts). */
  exchanges: Set<Exchange>;
  /** The enforcers of enforcing actions (throttle, budget), by action name, made once per gateway. */
  enforcers: ReadonlyMap<string, Enforcer>;
  /** Decision traces of recent requests (GET /admin/requests/{id}). */
  traces: DecisionTraces;
  /** Finished requests' summaries for the dashboard's live view. */
  live: LiveTail;
  /** OpenTelemetry traces and metrics; null when off (then nothing of it runs per request). */
  telemetry: Telemetry | null;
  /** Budget threshold notifications (budgets.webhook). */
  notifier: BudgetNotifier;
  /** Spend limits set through the admin API (null when the ledger is off). */
  spendLimits: SpendLimits | null;
  /** True while budgets fail closed because the ledger could not be read at start-up. */
  budgetGate: { unverified: boolean };
  /** Claude Code's sign-in services (login/), made when the config turns `login:` on. */
  logins: LoginServices | null;
  /** Which upstream key holds each batch, file and skill (upstream/affinity.ts). */
  affinity: ResourceAffinity;
  /** Logs `message` at warn level the first time `key` is seen (rule evaluation problems, unknown prices). */
  warnOnce: (key: string, message: string, fields?: Record<string, unknown>) => void;
}

/** How a request ended, in the log line. `gateway_error`: the gateway itself failed; never counted against a provider. */
export type LogOutcome = 'ok' | 'client_aborted' | 'upstream_failed' | 'refused' | 'gateway_error';

/** The one log line each request gets (never bodies or credentials). */
export interface RequestLog {
  request_id: string;
  /** Configured client id (never a secret). */
  client?: string;
  /** In transparent mode: the fingerprint of the client's credential. */
  client_fp?: string;
  method: string;
  path: string;
  status?: number;
  model?: string;
  upstream?: string;
  /** Fingerprint of the upstream key (never the key). */
  upstream_key?: string;
  /** Attempts after the first (other keys, backoff, fallback providers). */
  retries?: number;
  upstream_model?: string;
  rules_version?: string;
  session_id?: string | null;
  agent_id?: string;
  latency_ms?: number;
  ttfb_ms?: number;
  error?: string;
  outcome?: LogOutcome;
}

const ID_PREFIX = 'sy_' + randomBytes(6).toString('hex');
let idCounter = 0;

/** A unique request id: `sy_`, 12 random hex digits fixed per process, and a counter (no syscall per request). */
export function newRequestId(): string {
  return `${ID_PREFIX}${(idCounter++).toString(36).padStart(6, '0')}`;
}

/** One proxied request as it moves through the stages. */
export class Exchange implements ClientPresence {
  readonly id = newRequestId();
  /** performance.now() at arrival. */
  readonly started = performance.now();
  readonly log: RequestLog;
  /** The config and rules this request uses from start to end. */
  readonly snapshot: Snapshot;
  /** The client's path and query, for the upstream URL (only ever a path). */
  readonly pathAndQuery: string;

  /** The configured client (null in transparent mode), and the id rules and limits see. */
  client: ClientConfig | null = null;
  clientId = 'anonymous';
  /** The signed-in user (Claude Code's sign-in) and the login service that verified them; null otherwise. */
  user: SignedInUser | null = null;
  login: LoginService | null = null;
  /** The client's body bytes and their parsed form (null for GET, and once dropped). */
  raw: Buffer | null = null;
  body: Record<string, unknown> = {};
  rc: RequestContext | null = null;
  decision: Decision | null = null;
  /** Ids of the rules that matched, billing tags, requested model: kept after the decision is dropped. */
  rules: string[] = [];
  tags: Record<string, string> = {};
  requestedModel: string | null = null;
  /** The version of the rule set that decided (null until decided), and the request facts kept for replay. */
  rulesVersion: string | null = null;
  facts: RequestFacts | null = null;
  /** Who sent it (rc.user.id: the configured client, else the account in metadata.user_id); null until decided. */
  userId: string | null = null;
  /** What enforcing actions admitted the request with, settled once when it ends (record.ts `finish`). */
  readonly holds: Hold[] = [];
  answer: UpstreamAnswer | null = null;
  tap: UsageTap | null = null;
  /** The request's span (null when telemetry is off). */
  trace: RequestTrace | null = null;
  /** Upstream attempts made (filled in by forwarding, also when it fails). */
  readonly attempts = { attempts: 0 };
  /** Anthropic error type of a failed request. */
  errorType: string | null = null;
  /** A signed-in user's model policy that the upstream's model list is filtered by (model-list.ts); null: none. */
  modelFilter: ((model: string) => boolean) | null = null;
  /** The rule action that refused it (`throttle:<rule>`, …), for the usage record. */
  refusedBy: string | null = null;
  /** What the usage record is of: a Messages call, or a call about a batch, file or skill, or one passed through. */
  kind: RecordKind = 'message';
  /** Secrets `scan_secrets` found, counted by rule id (null: none, or no scan). */
  secretFindings: Record<string, number> | null = null;
  /** Gives back what the receive stage reserved; set while a reservation is held. */
  private releaseReservation: (() => void) | null = null;
  /** The body's buffer from the body pool, given back when the body is dropped. */
  private pooled: Buffer | null = null;
  private gone: Error | null = null;
  /** Resources taken on the request's path and not yet given back (see {@link own}). */
  private readonly owned = new Set<() => void>();
  /** True once the request ended (its log line and usage record written): it ends exactly once. */
  ended = false;
  /** performance.now() of the last progress (a stage reached, a chunk relayed); the watchdog reads it. */
  lastProgress = this.started;
  /** The stage the request is in (for the watchdog's message). */
  stage = 'record';

  constructor(
    readonly req: IncomingMessage,
    readonly res: ServerResponse,
    readonly endpoint: Endpoint,
    readonly deps: ProxyDeps,
    /** Set when the client spoke Bedrock's or Vertex AI's format (ingress.ts); null for the Anthropic API. */
    readonly ingress: Ingress | null = null,
  ) {
    this.snapshot = deps.runtime.current;
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    this.log = {
      request_id: this.id,
      method: req.method ?? 'GET',
      path: q < 0 ? url : url.slice(0, q),
      session_id: boundedId((req.headers['x-claude-code-session-id'] as string | undefined) ?? null),
      agent_id: boundedId((req.headers['x-claude-code-agent-id'] as string | undefined) ?? null) ?? undefined,
      rules_version: this.snapshot.rules.version,
    };
    // A Bedrock or Vertex client's request goes on as the Messages API call it is.
    this.pathAndQuery = ingress ? (endpoint === 'count_tokens' ? '/v1/messages/count_tokens' : '/v1/messages') : upstreamPathAndQuery(url);
  }

  /**
   * Why the client is gone — it closed its connection before the answer ended — or null while it waits
   * ({@link ClientPresence}: forwarding stops between attempts and the upstream call in flight is aborted).
   */
  get goneReason(): Error | null {
    if (!this.gone && this.res.destroyed && !this.res.writableFinished) this.gone = new Error('client disconnected');
    // A request ended before its answer (the watchdog) counts as gone, whatever its response did.
    return this.gone;
  }

  /**
   * Calls `fn` once if the client goes away before the answer ended — also when it is gone already (its
   * `close` event has fired, so listening alone would wait for ever); returns the function that stops listening.
   */
  onGone(fn: (reason: Error) => void): () => void {
    const res = this.res;
    let off = false;
    if (res.destroyed) {
      queueMicrotask(() => {
        const reason = this.goneReason;
        if (!off && reason) fn(reason);
      });
      return () => {
        off = true;
      };
    }
    const onClose = () => {
      const reason = this.goneReason;
      if (reason) fn(reason);
    };
    res.once('close', onClose);
    return () => res.off('close', onClose);
  }

  /**
   * Takes ownership of a resource the request holds (a concurrency count, a key's in-flight slot, a body
   * reservation): `release` runs exactly once, when the returned function is called (by the stage that took
   * it, in its `finally`) or when the request ends, whichever comes first — so an exchange the watchdog ends
   * gives back everything its stuck stages held.
   */
  own(release: () => void): () => void {
    let done = false;
    const once = () => {
      if (done) return;
      done = true;
      this.owned.delete(once);
      release();
    };
    this.owned.add(once);
    return once;
  }

  /** Gives back every resource still owned (record.ts calls it when the request ends). */
  releaseAll(): void {
    for (const release of [...this.owned]) release();
  }

  /** Notes progress: a stage reached or a chunk relayed (the watchdog ends requests that make none). */
  touch(stage?: string): void {
    this.lastProgress = performance.now();
    if (stage) this.stage = stage;
  }

  /**
   * Marks the client as gone for the stages still running (the watchdog ended the request): forwarding stops
   * and the upstream call in flight is aborted, as when the client hangs up.
   */
  markGone(reason: Error): void {
    this.gone ??= reason;
  }

  /** True once the client went away. */
  get clientGone(): boolean {
    return this.goneReason !== null;
  }

  /** Holds a reservation until {@link dropBody} (or the receive stage's own cleanup) gives it back. */
  holdReservation(release: () => void): void {
    this.releaseReservation = this.own(release);
  }

  /** Notes that the body was received into `buf`, a buffer of the body pool; returns it. */
  receivedInto(buf: Buffer): Buffer {
    this.pooled = buf;
    return buf;
  }

  /**
   * Drops the body, its parsed form, the context and the decision, gives back the reservation and the body's
   * pooled buffer (nothing may read the body after this: the buffer may hold another request's body). Idempotent.
   */
  dropBody(): void {
    if (this.pooled) {
      bodyPool.give(this.pooled);
      this.pooled = null;
    }
    this.raw = null;
    this.body = {};
    this.rc = null;
    this.decision = null;
    const release = this.releaseReservation;
    this.releaseReservation = null;
    release?.();
  }

  /** The current config. */
  get config(): Snapshot['config'] {
    return this.snapshot.config;
  }
}

/** A pipeline stage: does its part, calls `next` for the rest, and gives back what it took before returning. */
export type Stage = (x: Exchange, next: () => Promise<void>) => Promise<void>;

/** Composes stages in order (as Hono's `compose`): the first stage wraps all the others. Reaching a stage is progress. */
export function compose(stages: readonly Stage[]): (x: Exchange) => Promise<void> {
  return (x) => {
    const run = (i: number): Promise<void> => {
      if (i >= stages.length) return Promise.resolve();
      const stage = stages[i]!;
      x.touch(stage.name);
      return stage(x, () => run(i + 1));
    };
    return run(0);
  };
}
