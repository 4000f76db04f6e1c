/**
 * Starting and stopping the gateway: load config and rules (refusing to start on invalid ones), listen,
 * watch for rule changes, reload on SIGHUP, and shut down gracefully on SIGTERM/SIGINT (stop accepting,
 * let open requests and streams finish within `shutdown.grace_ms`, then cut the rest).
 */
import { startTelemetry } from '../telemetry.js';
import { LiveTail } from './live.js';
import { serve, type ServerType } from '@hono/node-server';
import { readFileSync } from 'node:fs';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createHttpServer, type RequestListener } from 'node:http';
import type { Duplex } from 'node:stream';
import type { GatewayConfig } from '../config.js';
import { errorBody, HttpProtocolError } from '../errors.js';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import type { ConfigOverrides } from '../config.js';
import { createLogger, type Logger } from '../log.js';
import { loadSnapshot, Runtime } from '../runtime.js';
import { UpstreamClient } from '../upstream/client.js';
import { BreakerRegistry, PoolRegistry } from '../upstream/forward.js';
import { missingProviderPackages } from '../upstream/providers/index.js';
import { openLedger } from '../usage/open.js';
import { seedBudgets } from '../actions/budget/seed.js';
import { loadPrices } from '../usage/prices.js';
import { Metrics, modelLabeller } from '../usage/metrics.js';
import { catalogueCandidates } from '../rules/catalogue.js';
import { MemoryStore, type StateStore } from '../state/store.js';
import { ResilientStore } from '../state/resilient.js';
import { ResourceAffinity } from '../upstream/affinity.js';
import { BatchPoller } from './resources/poll.js';
import { hostname } from 'node:os';
import { createApp, requestListener, type AppState } from './app.js';
import { LoginServices } from '../login/services.js';
import type { Exchange, OpenRelay, ProxyDeps } from './pipeline/exchange.js';
import { startWatchdog } from './watchdog.js';
import { ENFORCING } from '../actions/index.js';
import type { EnforceDeps } from '../actions/types.js';
import { LRUCache } from 'lru-cache';
import { DecisionTraces } from './traces.js';
import { BudgetNotifier } from '../usage/notify.js';
import { SpendLimits } from '../usage/spend-limits.js';
import { InflightBytes } from './overload.js';
import { newModelListCache } from './pipeline/model-list.js';

/**
 * Answers requests Node rejects before our handler runs (headers too large, request too slow, malformed
 * HTTP) in Anthropic's error shape instead of Node's bare status line.
 */
function answerClientError(err: NodeJS.ErrnoException, socket: Duplex, limits: GatewayConfig['limits']): void {
  if (err.code === 'ECONNRESET' || !socket.writable) {
    socket.destroy();
    return;
  }
  const [status, reason, gerr] =
    err.code === 'HPE_HEADER_OVERFLOW'
      ? [
          431,
          'Request Header Fields Too Large',
          new HttpProtocolError('SY_HEADERS_TOO_LARGE', 431, `request headers exceed switchyard's limit of ${limits.max_header_bytes} bytes (limits.max_header_bytes)`),
        ]
      : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? [408, 'Request Timeout', new HttpProtocolError('SY_REQUEST_TIMEOUT', 408, `the request was not received completely within ${limits.request_timeout_ms} ms (limits.request_timeout_ms)`)]
        : [400, 'Bad Request', new HttpProtocolError('SY_BAD_HTTP', 400, `malformed HTTP request (${err.code ?? 'parse error'})`)];
  const body = errorBody(gerr);
  socket.end(`HTTP/1.1 ${status} ${reason}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
}

/** How long start-up waits for the ledger to recompute budget spend, ms. */
const BUDGET_SEED_WAIT_MS = 5000;

/** Bytes of warn-once keys remembered (keys can be client-chosen, e.g. an unpriced model name): about 1 MB. */
const WARNED_MAX_BYTES = 1024 * 1024;

/** How long start-up waits for Redis before serving on the fallback, ms. */
const STATE_CONNECT_WAIT_MS = 2000;

/** The state store the config names: memory, or Redis behind its failure mode. */
async function openState(cfg: GatewayConfig['state'], log: Logger, metrics: Metrics): Promise<StateStore> {
  if (cfg === 'memory') return new MemoryStore();
  // ioredis is loaded only when the config uses Redis (~20 MB of an idle process otherwise).
  const { RedisStore } = await import('../state/redis.js');
  const redis = new RedisStore(cfg.redis, { commandTimeoutMs: cfg.command_timeout_ms, slotLeaseMs: cfg.slot_lease_ms });
  return new ResilientStore(redis, cfg.on_failure, log, cfg.retry_ms, {
    onFallback: (use, mode) => metrics.stateFallbacks.inc({ use, mode }),
    onStatus: (degraded) => metrics.stateDegraded.set(degraded ? 1 : 0),
  });
}

/**
 * Warns when state is in memory but the deployment is replicated — `replicas:` over 1, or a Kubernetes pod
 * (`KUBERNETES_SERVICE_HOST`, set in every pod) — since then each replica counts throttles, cooldowns and budgets
 * on its own and a client gets N times its limits.
 */
function warnIfReplicatedInMemory(config: GatewayConfig, log: Logger, env: NodeJS.ProcessEnv = process.env): void {
  if (config.state !== 'memory') return;
  const why = config.replicas > 1 ? `${config.replicas} replicas (replicas: in the config)` : env.KUBERNETES_SERVICE_HOST ? 'a Kubernetes pod, where Deployments run replicas' : null;
  if (!why) return;
  log.warn(
    { replicas: config.replicas },
    `state is in memory but this gateway runs as ${why}: throttles, key cooldowns and budgets are counted per replica, so each client gets its limits once per replica; share them with state: { redis: "redis://…" }`,
  );
}

/**
 * The gateway's mode in one phrase, for the start-up line: who authenticates clients (client keys, sign-in, or
 * nobody: transparent) and whose credential goes upstream (the providers' keys, or the client's own).
 */
export function gatewayMode(cfg: Pick<GatewayConfig, 'clients' | 'login' | 'providers'>): string {
  const auth = [cfg.clients ? `client keys (${cfg.clients.length})` : null, cfg.login ? 'sign-in' : null].filter(Boolean);
  const providers = Object.values(cfg.providers);
  const keyed = providers.filter((p) => p.keys.length > 0).length;
  const upstream = keyed === providers.length ? "providers' own keys" : keyed === 0 ? "the client's own credential" : "providers' own keys where configured, else the client's own credential";
  if (auth.length === 0) return keyed === 0 ? "transparent: the client's own credential is forwarded" : `no client authentication; upstream with ${upstream}`;
  // With client keys or sign-in, a client's own credential is never forwarded (upstream/headers.ts).
  const gated = keyed === providers.length ? upstream : keyed === 0 ? 'no credential (set keys on the providers)' : "providers' own keys where configured, else no credential";
  return `clients authenticate with ${auth.join(' or ')}; upstream with ${gated}`;
}

/** Options of {@link startGateway}. */
export interface GatewayOptions {
  configFile: string;
  overrides?: ConfigOverrides;
  /** Answer every proxied request with its decision instead of forwarding. */
  dryRun?: boolean;
  /** Watch the rules directory and config file for changes (default true). */
  watch?: boolean;
  /** Install SIGTERM/SIGINT/SIGHUP handlers (default false; the CLI turns it on). */
  handleSignals?: boolean;
  logger?: Logger;
}

/** A running gateway. */
export interface Gateway {
  /** Base URL, e.g. `http://127.0.0.1:8790`. */
  url: string;
  port: number;
  runtime: Runtime;
  server: Server;
  /** Graceful stop: refuse new connections, wait up to `grace_ms` for open requests, then cut them. */
  close(): Promise<void>;
  /** What the request path shares (in-flight counts, key pools, open requests): for tests and the chaos soak to inspect. */
  deps: ProxyDeps;
  /** The poll that records ended batches' results (server/resources/poll.ts). */
  batchPoller: BatchPoller;
}

/**
 * Starts the gateway.
 * @throws LoadError when the config or the initial rule set is invalid (the gateway does not start).
 * @throws MissingPackageError when the configuration needs an optional package that is not installed.
 */
export async function startGateway(opts: GatewayOptions): Promise<Gateway> {
  const snapshot = loadSnapshot(opts.configFile, opts.overrides);
  // A configuration whose optional packages are not installed does not start (the error names the npm install).
  const missing = missingProviderPackages(Object.values(snapshot.config.providers));
  if (missing) throw missing;
  // Read once at start (a reload does not switch it): the OTEL_* environment and telemetry: in the config.
  const telemetry = await startTelemetry(snapshot.config.telemetry);
  const log = opts.logger ?? createLogger({ level: process.env.LOG_LEVEL ?? snapshot.config.log.level });
  const runtime = new Runtime(opts.configFile, opts.overrides ?? {}, log, snapshot);
  const upstream = new UpstreamClient();
  const pools = new PoolRegistry();
  const prices = loadPrices(snapshot.config.prices);
  const ledger = await openLedger(snapshot.config, log);
  // The model names the configuration mentions, recomputed when the rules or config change.
  let configured: { version: string; names: ReadonlySet<string> } | null = null;
  const configuredModels = () => {
    const { rules, config } = runtime.current;
    if (configured?.version !== rules.version) configured = { version: rules.version, names: new Set(catalogueCandidates(rules, config)) };
    return configured.names;
  };
  const metrics = new Metrics(
    ledger,
    () => runtime.current.rules.version,
    modelLabeller(configuredModels, (m, p) => prices.priceOf(m, p) !== null),
  );
  const breakers = new BreakerRegistry();
  // Chosen at start: a reload that changes `state:` needs a restart (the counters would otherwise reset).
  const counters: StateStore = await openState(snapshot.config.state, log, metrics);
  warnIfReplicatedInMemory(snapshot.config, log);
  if (counters instanceof ResilientStore && !(await counters.ready(STATE_CONNECT_WAIT_MS))) {
    log.warn({ state: 'redis' }, `state store (redis) not reachable within ${STATE_CONNECT_WAIT_MS} ms at start; serving with its failure mode until it is`);
  }
  const spendLimits = ledger ? new SpendLimits(ledger.store) : null;
  // The first read of the spend limits, bounded by their read timeout; later reads happen in the background.
  await spendLimits?.refresh().catch((err: Error) => log.warn({ err: err.message }, 'spend limits could not be read at start-up; budgets.on_ledger_failure applies until they are'));
  // Budgets' spend in the current periods, recomputed from the ledger (bounded: a ledger that does not answer
  // must not hold the start-up). When it cannot be read, budgets.on_ledger_failure decides: open (they start
  // from what the state store holds) or closed (requests under a budget get 503 until it can be read).
  const budgetGate = { unverified: false };
  const seed = async (): Promise<boolean> => {
    if (!ledger) return true;
    try {
      const seeded = await Promise.race([
        (async () => seedBudgets(runtime.current.rules, ledger.store, counters, new Date(), await ledger.store.spendLimits()))(),
        new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`no answer within ${BUDGET_SEED_WAIT_MS} ms`)), BUDGET_SEED_WAIT_MS).unref()),
      ]);
      if (seeded) log.info({ totals: seeded }, 'budget spend of the current periods recomputed from the usage ledger');
      budgetGate.unverified = false;
      return true;
    } catch (err) {
      const closed = runtime.current.config.budgets.on_ledger_failure === 'closed';
      budgetGate.unverified = closed;
      log.error(
        { err: (err as Error).message, on_ledger_failure: closed ? 'closed' : 'open' },
        closed
          ? 'could not recompute budget spend from the usage ledger; budgets fail CLOSED (budgets.on_ledger_failure: closed): requests under a budget get 503 until the ledger can be read (retried every 30 s)'
          : 'could not recompute budget spend from the usage ledger; budgets fail OPEN (budgets.on_ledger_failure: open): they count from what the state store holds',
      );
      return false;
    }
  };
  let seedRetry: NodeJS.Timeout | null = null;
  if (!(await seed()) && budgetGate.unverified) {
    seedRetry = setInterval(() => void seed().then((ok) => ok && seedRetry && clearInterval(seedRetry)), 30_000);
    seedRetry.unref();
  }
  const { budgets } = snapshot.config;
  const notifier = new BudgetNotifier(budgets.webhook ? { url: budgets.webhook, timeoutMs: budgets.timeout_ms } : null, budgets.state_file, counters, log);
  const state: AppState = { shuttingDown: false };
  if (telemetry) log.info({}, 'OpenTelemetry export on');
  const warned = new LRUCache<string, true>({ maxSize: WARNED_MAX_BYTES, sizeCalculation: (_v, k) => k.length + 64 });
  const warnOnce = (key: string, message: string, fields: Record<string, unknown> = {}) => {
    if (warned.has(key)) return;
    warned.set(key, true);
    log.warn(fields, message);
  };
  const openRelays = new Set<OpenRelay>();
  const exchanges = new Set<Exchange>();
  const enforceDeps: EnforceDeps = { state: counters, log, warnOnce, spendLimits, notifier, budgetGate };
  const deps: ProxyDeps = {
    runtime,
    upstreams: { client: upstream, pools, breakers, state: counters, log, onCooldown: (provider) => metrics.cooldowns.inc({ provider }) },
    log,
    dryRun: opts.dryRun ?? false,
    inFlight: { count: 0 },
    openRelays,
    exchanges,
    enforcers: new Map(ENFORCING.map((a) => [a.name, a.enforcer(enforceDeps)])),
    inflightBytes: new InflightBytes(),
    modelLists: newModelListCache(),
    state: counters,
    ledger,
    metrics,
    prices,
    traces: new DecisionTraces(snapshot.config.trace.requests),
    live: new LiveTail(),
    telemetry,
    notifier,
    spendLimits,
    budgetGate,
    logins: new LoginServices(counters, log),
    affinity: new ResourceAffinity(counters, ledger?.store ?? null, log),
    warnOnce,
  };
  const watchdog = startWatchdog(exchanges, () => runtime.current.config.limits.stall_ms, log);
  const batchPoller = new BatchPoller(deps, `${hostname()}:${process.pid}`);
  if (ledger) batchPoller.start(snapshot.config.batches.poll_interval_ms);
  const app = createApp(deps, state);
  const { host, port, tls } = snapshot.config.listen;
  const { limits } = snapshot.config;
  const serverOptions = {
    maxHeaderSize: limits.max_header_bytes,
    // Time to receive a whole request; it never limits how long a response (a stream) may run.
    requestTimeout: limits.request_timeout_ms,
    // How often Node checks that timeout (its default, 30 s, would let a short limit run far over).
    connectionsCheckingInterval: Math.min(30_000, Math.max(250, Math.floor(limits.request_timeout_ms / 4))),
    headersTimeout: Math.min(60_000, limits.request_timeout_ms),
    keepAliveTimeout: 65_000,
    ...(tls ? { cert: readFileSync(tls.cert), key: readFileSync(tls.key) } : {}),
  };
  const server = await new Promise<ServerType>((resolve, reject) => {
    // The Messages API's endpoints skip the Hono app (requestListener); the rest goes through it.
    const createServer = (options: object, appListener: RequestListener) => {
      const listener = requestListener(deps, appListener);
      return tls ? createHttpsServer(options, listener) : createHttpServer(options, listener);
    };
    const s = serve({ fetch: app.fetch, hostname: host, port, overrideGlobalObjects: false, serverOptions, createServer: createServer as never }, () => resolve(s));
    s.once('error', reject);
  });
  const http = server as Server;
  http.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => answerClientError(err, socket, limits));
  const address = http.address() as AddressInfo;
  const hostForUrl = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `${tls ? 'https' : 'http'}://${hostForUrl}:${address.port}`;

  let closing: Promise<void> | null = null;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      state.shuttingDown = true;
      const shutdownStarted = performance.now();
      const grace = runtime.current.config.shutdown.grace_ms;
      const closed = new Promise<void>((resolve) => http.close(() => resolve()));
      http.closeIdleConnections();
      const timer = setTimeout(() => {
        log.warn({ grace_ms: grace, open_streams: openRelays.size }, 'shutdown grace period over; ending the remaining answers and closing connections');
        // Streams end with an SSE error event (retryable: overloaded_error) rather than a silent cut.
        for (const r of [...openRelays]) r.terminate('switchyard is shutting down; retry the request');
        setImmediate(() => http.closeAllConnections());
      }, grace);
      timer.unref();
      await closed;
      clearTimeout(timer);
      watchdog.stop();
      batchPoller.stop();
      await runtime.close();
      await upstream.close();
      notifier.close();
      if (seedRetry) clearInterval(seedRetry);
      await counters.close();
      // The ledger gets what is left of the grace period, less the 1 s its store may take to close, so the whole
      // shutdown stays within grace_ms even with a black-holed database; what it cannot write is spooled.
      await ledger?.close(Math.max(250, grace - (performance.now() - shutdownStarted) - 1000));
      await telemetry?.shutdown();
      log.info('switchyard stopped');
    })();
    return closing;
  };

  if (opts.handleSignals) {
    const onStop = (signal: string) => {
      log.info({ signal }, 'shutting down: no new connections; open requests may finish');
      void close().then(() => process.exit(0));
    };
    process.once('SIGTERM', onStop);
    process.once('SIGINT', onStop);
    process.on('SIGHUP', () => runtime.reload('SIGHUP'));
  }
  // The rule watcher starts after the signal handlers: the server already answers (its health check passes), so a
  // SIGTERM from here on must drain, never kill.
  if (opts.watch !== false) await runtime.watch();
  const cfg = snapshot.config;
  log.info(
    {
      url,
      config: cfg.file,
      rules_dir: cfg.rules_dir,
      rules_version: snapshot.rules.version,
      rules: snapshot.rules.rules.length,
      dry_run: opts.dryRun ?? false,
      mode: gatewayMode(cfg),
      providers: Object.fromEntries(Object.values(cfg.providers).map((p) => [p.name, p.keys.length ? `${p.type}, ${p.keys.length} key(s)` : `${p.type}, client credentials`])),
      clients: cfg.clients ? cfg.clients.length : 'none',
      sign_in: cfg.login ? 'on' : 'off',
      admin: cfg.admin.token ? 'bearer token required' : 'loopback only (no admin token set)',
      cors: cfg.cors ? cfg.cors.origins : 'off',
      state: counters.kind,
      ledger: ledger ? ledger.store.kind : 'off',
      dashboard: `${url}/admin/ui/`,
    },
    `switchyard listening on ${url}`,
  );
  return { url, port: address.port, runtime, server: http, close, deps, batchPoller };
}
