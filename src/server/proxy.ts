/**
 * The request pipeline for the proxied endpoints (DESIGN §3) as a short list of stages over one
 * request: receive (read and parse the body once), build the context, evaluate the rules into a
 * Decision, refuse (deny/error) or forward, and stream the upstream answer back byte for byte.
 * Works on Node's request/response objects directly: no buffering, no compression, backpressure kept.
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { asGatewayError, DeniedError, errorBody, GatewayError, InvalidRequestError, RequestTooLargeError, RuleError, UpstreamError } from '../errors.js';
import { authenticateClient } from './auth.js';
import { jsonDepthExceeds } from './json-depth.js';
import type { InflightBytes } from './overload.js';
import { admit as admitThrottles, checkBudgets, ThrottledError, type BudgetCharge, type Ticket } from './admission.js';
import type { Metrics } from '../usage/metrics.js';
import type { StateStore } from '../state/store.js';
import type { Ledger } from '../usage/ledger.js';
import { costUsd, type PriceTable } from '../usage/prices.js';
import type { Outcome, UsageRecord } from '../usage/record.js';
import { noUsage, UsageTap } from '../usage/tap.js';
import { SseFramer, sseErrorEvent } from '../stream/sse-frames.js';
import type { Logger } from '../log.js';
import { buildContext, clientCredential, credentialFingerprint } from '../rules/context.js';
import type { Decision } from '../rules/decision.js';
import { evaluate } from '../rules/evaluate.js';
import { dryRunReport } from '../rules/report.js';
import type { Runtime } from '../runtime.js';
import { forward, type UpstreamAnswer, type Upstreams } from '../upstream/forward.js';
import { CHAT_COMPLETIONS_PATH, fromOpenAI, openaiHeaders, toChatCompletions } from '../upstream/openai/index.js';
import { upstreamRequestHeaders } from '../upstream/headers.js';
import { clientResponseHeaders } from '../upstream/headers.js';
import { prepareUpstream, routeChain, upstreamBody } from '../upstream/prepare.js';

/** Everything the pipeline needs from the server. */
export interface ProxyDeps {
  runtime: Runtime;
  /** Upstream client, key pools, circuit breakers. */
  upstreams: Upstreams;
  log: Logger;
  /** `serve --dry-run`: answer each request with its decision instead of forwarding. */
  dryRun: boolean;
  /** Throttle counters (memory or Redis). */
  state: StateStore;
  /** The usage ledger (null when off) and the price table for its costs. */
  ledger: Ledger | null;
  metrics: Metrics;
  prices: PriceTable;
  /** Proxied requests in flight (checked against limits.max_concurrent_requests). */
  inFlight: { count: number };
  /** Request-body bytes in flight, capped by limits.max_inflight_body_bytes (the overload manager). */
  inflightBytes: InflightBytes;
  /** Answers being relayed now (the shutdown ends each with an SSE error event when its grace runs out). */
  openRelays: Set<OpenRelay>;
  /** Logs `message` at warn level the first time `key` is seen (rule evaluation problems, unknown prices). */
  warnOnce: (key: string, message: string, fields?: Record<string, unknown>) => void;
}

const ID_PREFIX = 'sy_' + randomBytes(6).toString('hex');
let idCounter = 0;

/** A unique request id: `sy_`, 12 random hex digits fixed per process, and a counter (no syscall per request). */
export function newRequestId(): string {
  return `${ID_PREFIX}${(idCounter++).toString(36).padStart(6, '0')}`;
}

/**
 * Reads the whole request body, refusing early when it exceeds `limit` bytes. `onSize` sees the bytes read
 * so far after each chunk and may throw to stop reading (the overload manager's reservation).
 * @throws RequestTooLargeError (413) when over the limit; what `onSize` throws.
 */
export function readBody(req: IncomingMessage, limit: number, onSize?: (bytesSoFar: number) => void): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) return Promise.reject(new RequestTooLargeError(limit));
  return new Promise((resolve, reject) => {
    let chunks: Buffer[] = [];
    let size = 0;
    // Listeners are removed when done: `req` lives as long as the response, and must not keep the body.
    const done = (err: Error | null) => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', done);
      const got = chunks;
      chunks = [];
      if (err) {
        req.resume();
        reject(err);
      } else resolve(got.length === 1 ? got[0]! : Buffer.concat(got, size));
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) return done(new RequestTooLargeError(limit));
      try {
        onSize?.(size);
      } catch (err) {
        return done(err as Error);
      }
      chunks.push(chunk);
    };
    const onEnd = () => done(null);
    req.on('data', onData);
    req.once('end', onEnd);
    req.once('error', done);
  });
}

/**
 * The path and query to append to the provider's base URL: only ever a path, so that nothing in a request
 * (an absolute-form target such as `http://other-host/...`, a `//host` path) can choose the upstream host.
 */
export function upstreamPathAndQuery(target: string | undefined): string {
  const u = new URL(target ?? '/', 'http://switchyard.invalid');
  return u.pathname + u.search;
}

/**
 * Parses a Messages API body: it must be a JSON object nested at most `maxDepth` deep.
 * @throws InvalidRequestError (400) for invalid JSON, a non-object, or nesting deeper than `maxDepth`.
 */
export function parseJsonBody(raw: Buffer, maxDepth = Infinity): Record<string, unknown> {
  if (maxDepth !== Infinity && jsonDepthExceeds(raw, maxDepth)) {
    throw new InvalidRequestError(`request body nests arrays and objects deeper than ${maxDepth} levels (limits.max_json_depth in the gateway config)`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw.toString('utf8'));
  } catch (err) {
    throw new InvalidRequestError(`request body is not valid JSON: ${(err as Error).message}`, err);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new InvalidRequestError('request body must be a JSON object');
  }
  return parsed as Record<string, unknown>;
}

/** Writes a gateway error in Anthropic's shape, unless the response has already started. */
export function sendError(res: ServerResponse, err: GatewayError, requestId: string, extraHeaders: Record<string, string> = {}): void {
  if (res.headersSent || res.destroyed) {
    res.destroy();
    return;
  }
  const body = errorBody(err, requestId);
  res.writeHead(err.status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    'x-switchyard-request-id': requestId,
    ...err.headers,
    ...extraHeaders,
  });
  res.end(body);
}

/** Per-request facts for the one log line each request gets. */
interface RequestLog {
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
  /** `gateway_error`: the gateway itself failed (a rule that ran away, a bug); never counted against a provider. */
  outcome?: 'ok' | 'client_aborted' | 'upstream_failed' | 'refused' | 'gateway_error';
}

/**
 * Handles one proxied request end to end: {@link admit} (body, context, decision, upstream call), then
 * {@link relay} (stream the answer). The two are separate functions so that the request body, its parsed
 * form and the decision are unreachable while a long stream is relayed: an open stream costs only its
 * sockets and buffers, not a copy of a 76 KB+ request.
 * @param endpoint which API endpoint this is; `models` is a GET without a body or rule evaluation.
 */
export async function proxyRequest(
  req: IncomingMessage,
  res: ServerResponse,
  endpoint: 'messages' | 'count_tokens' | 'models',
  deps: ProxyDeps,
): Promise<void> {
  const started = performance.now();
  const requestId = newRequestId();
  const entry: RequestLog = {
    request_id: requestId,
    method: req.method ?? 'GET',
    path: (req.url ?? '/').split('?')[0]!,
    session_id: (req.headers['x-claude-code-session-id'] as string | undefined) ?? null,
    agent_id: req.headers['x-claude-code-agent-id'] as string | undefined,
  };
  const acct: Accounting = { rules: [], tags: {}, tap: null, budgetCharges: [], errorType: null, requestedModel: null, attempts: { attempts: 0 } };
  const scope: RequestScope = {
    entry,
    started,
    acct,
    finish(status, extra = {}) {
      Object.assign(entry, extra, { status, latency_ms: round(performance.now() - started) });
      const level = status >= 500 ? 'error' : status >= 400 || entry.outcome === 'client_aborted' ? 'warn' : 'info';
      deps.log[level](entry, 'request');
      const record = usageRecord(entry, acct, deps);
      deps.metrics.observe(record);
      deps.ledger?.record(record);
      const cost = record.cost_usd;
      if (cost) {
        for (const c of acct.budgetCharges) {
          deps.state.addSpend(c.key, cost, c.expiresAtMs).catch((err: Error) => deps.log.error({ request_id: entry.request_id, err: err.message }, 'could not add to a budget total'));
        }
      }
    },
  };

  const limit = deps.runtime.current.config.limits.max_concurrent_requests;
  if (deps.inFlight.count >= limit) {
    const err = new GatewayError('SY_TOO_MANY_REQUESTS', 'overloaded_error', 529, `switchyard is at its limit of ${limit} concurrent requests (limits.max_concurrent_requests); retry shortly`);
    req.resume();
    sendError(res, err, requestId, { 'retry-after': '1' });
    scope.finish(529, { outcome: 'refused', error: `${err.code}: ${err.message}` });
    return;
  }
  deps.inFlight.count++;
  try {
    await runStages(req, res, endpoint, deps, scope);
  } finally {
    deps.inFlight.count--;
  }
}

/** One request's log entry, start time and the function that writes its log line and usage record. */
interface RequestScope {
  entry: RequestLog;
  /** performance.now() at arrival. */
  started: number;
  acct: Accounting;
  finish(status: number, extra?: Partial<RequestLog>): void;
}

/** What the usage record needs beyond the log line. */
interface Accounting {
  /** Ids of the rules that matched. */
  rules: string[];
  tags: Record<string, string>;
  tap: UsageTap | null;
  /** Budget running totals to add this request's cost to. */
  budgetCharges: BudgetCharge[];
  /** Anthropic error type of a failed request. */
  errorType: string | null;
  requestedModel: string | null;
  /** Upstream attempts made (filled in by forwarding, also when it fails). */
  attempts: { attempts: number };
  /** Body bytes reserved with the overload manager, given back when admission is over. */
  reserved?: { client: string; bytes: number };
}

const OUTCOMES: Record<NonNullable<RequestLog['outcome']>, Outcome> = { ok: 'ok', client_aborted: 'aborted', upstream_failed: 'failed', refused: 'refused', gateway_error: 'error' };

/** How an error answer counts: the upstream's fault, a refusal (4xx, throttles, budgets), or the gateway's own. */
function errorOutcome(err: GatewayError): NonNullable<RequestLog['outcome']> {
  if (err instanceof UpstreamError || err.code === 'SY_KEYS_COOLING') return 'upstream_failed';
  return err.status < 500 || err.type === 'overloaded_error' ? 'refused' : 'gateway_error';
}

/** The usage record of a finished request (tokens from the tap; cost from the price table). */
function usageRecord(entry: RequestLog, acct: Accounting, deps: ProxyDeps): UsageRecord {
  const usage = acct.tap ? acct.tap.finish() : noUsage();
  const streamError = acct.tap?.streamError ?? null;
  let outcome = OUTCOMES[entry.outcome ?? 'ok'];
  if (outcome === 'ok' && (streamError || (entry.status ?? 0) >= 400)) outcome = 'failed';
  if (outcome === 'ok' && acct.tap && !acct.tap.completed && String(entry.path).startsWith('/v1/messages') && entry.path !== '/v1/messages/count_tokens') outcome = 'aborted';
  const model = entry.upstream_model ?? entry.model ?? null;
  let cost: number | null = 0;
  if (usage.input_tokens + usage.output_tokens + usage.cache_creation_input_tokens + usage.cache_read_input_tokens > 0) {
    const price = model ? deps.prices.priceOf(model) : null;
    if (!price && model) deps.warnOnce(`price\0${model}`, `no price for model "${model}" in the price table; its usage is recorded with cost null (logged once per model)`, { model });
    cost = costUsd(usage, price);
  }
  return {
    time: new Date(Date.now() - (entry.latency_ms ?? 0)).toISOString(),
    request_id: entry.request_id,
    client_id: entry.client ?? entry.client_fp ?? null,
    key_fingerprint: entry.upstream_key ?? null,
    session_id: entry.session_id ?? null,
    requested_model: acct.requestedModel,
    provider: entry.upstream ?? null,
    model,
    rules: acct.rules,
    tags: acct.tags,
    status: entry.status ?? 0,
    outcome,
    error_type: acct.errorType ?? streamError,
    retries: entry.retries ?? 0,
    latency_ms: entry.latency_ms ?? 0,
    ttft_ms: entry.ttfb_ms ?? null,
    ...usage,
    cost_usd: cost,
  };
}

/** Admit, then relay; every outcome ends in exactly one log line. */
async function runStages(
  req: IncomingMessage,
  res: ServerResponse,
  endpoint: 'messages' | 'count_tokens' | 'models',
  deps: ProxyDeps,
  { entry, started, acct, finish }: RequestScope,
): Promise<void> {
  const requestId = entry.request_id;
  // A client that goes away aborts the upstream call (and its socket) at once.
  const abort = new AbortController();
  res.once('close', () => {
    if (!res.writableFinished) abort.abort(new Error('client disconnected'));
  });

  let admitted: Admitted | null;
  try {
    admitted = await admit(req, res, endpoint, deps, entry, acct, abort.signal);
  } catch (err) {
    releaseReserved(deps, acct);
    if (abort.signal.aborted) {
      finish(499, { outcome: 'client_aborted', error: 'client disconnected before the answer' });
      return;
    }
    const gerr = asGatewayError(err);
    if (acct.attempts.attempts > 0) entry.retries = acct.attempts.attempts - 1;
    sendError(res, gerr, requestId);
    acct.errorType = gerr.type;
    if (err instanceof ThrottledError) deps.metrics.throttled.inc({ rule: err.rule });
    finish(gerr.status, { outcome: errorOutcome(gerr), error: `${gerr.code}: ${gerr.message}` });
    return;
  }
  releaseReserved(deps, acct); // the body and its parsed form are unreachable from here on
  if (!admitted) {
    finish(res.statusCode, { outcome: 'ok' }); // answered without an upstream (dry-run)
    return;
  }
  const { upstream, ticket } = admitted;
  // Usage is read on the way for the ledger, metrics and output-token throttles alike.
  const tap = new UsageTap(String(upstream.headers['content-type'] ?? ''), String(upstream.headers['content-encoding'] ?? ''));
  acct.tap = tap;
  const outcome = await relay(upstream, res, requestId, started, abort.signal, tap, deps.openRelays);
  admitted.release();
  // An upstream that refused before doing any work (429/529) does not spend the client's throttles.
  if (ticket) await settle(ticket, upstream.statusCode === 429 || upstream.statusCode === 529 ? null : tap.outputTokens(), deps.log, requestId);
  finish(upstream.statusCode, outcome);
}

/** Gives back the request's reservation with the overload manager (once). */
function releaseReserved(deps: ProxyDeps, acct: Accounting): void {
  if (!acct.reserved) return;
  deps.inflightBytes.release(acct.reserved.client, acct.reserved.bytes);
  acct.reserved = undefined;
}

/** An upstream answer and, when throttles apply, the ticket to settle when it is over. */
interface Admitted {
  upstream: UpstreamAnswer;
  ticket: Ticket | null;
  /** Frees the upstream key's in-flight slot. */
  release(): void;
}

/**
 * Settles a throttle ticket: `outputTokens` charged, or null to refund what admission took (no work was
 * done). A state store failure here is logged, never thrown at the client.
 */
async function settle(ticket: Ticket, outputTokens: number | null, log: Logger, requestId: string): Promise<void> {
  try {
    await (outputTokens === null ? ticket.refund() : ticket.done(outputTokens));
  } catch (err) {
    log.error({ request_id: requestId, err: (err as Error).message }, 'could not settle throttle counters');
  }
}

/**
 * Stages 1–4: read and parse the body once, build the context, evaluate the rules, and send the
 * upstream request. Resolves with the upstream response once its headers arrived, or null when the
 * request was answered here (`serve --dry-run`).
 * @throws GatewayError for anything answered with an error (400, 413, deny, rule failure, 502/504).
 */
async function admit(
  req: IncomingMessage,
  res: ServerResponse,
  endpoint: 'messages' | 'count_tokens' | 'models',
  deps: ProxyDeps,
  entry: RequestLog,
  acct: Accounting,
  signal: AbortSignal,
): Promise<Admitted | null> {
  const snapshot = deps.runtime.current;
  const { config } = snapshot;
  const url = upstreamPathAndQuery(req.url);
  entry.rules_version = snapshot.rules.version;
  // Nothing is read or forwarded for a client without a valid key.
  const client = config.clients ? authenticateClient(req.headers, config.clients) : null;
  if (client) entry.client = client.id;
  const credential = client ? null : clientCredential(req.headers);
  const clientId = client?.id ?? (credential ? credentialFingerprint(credential) : 'anonymous');
  let raw: Buffer | null = null;
  let body: Record<string, unknown> = {};
  if (endpoint !== 'models') {
    // Memory in flight is capped: the declared size is reserved before a byte is read (529 when over).
    const { limits } = config;
    const caps = { total: limits.max_inflight_body_bytes, perClient: limits.max_inflight_body_bytes_per_client };
    const declared = Math.min(Number(req.headers['content-length']) || 0, limits.max_body_bytes);
    deps.inflightBytes.reserve(clientId, declared, caps);
    acct.reserved = { client: clientId, bytes: declared };
    raw = await readBody(req, limits.max_body_bytes, (size) => {
      if (size <= acct.reserved!.bytes) return;
      deps.inflightBytes.reserve(clientId, size - acct.reserved!.bytes, caps);
      acct.reserved!.bytes = size;
    });
    body = parseJsonBody(raw, limits.max_json_depth);
  }
  const rc = buildContext({ path: entry.path, body, headers: req.headers, bodyBytes: raw?.length ?? 0, clientId, clientTags: client?.tags });
  entry.model = rc.model || undefined;
  acct.requestedModel = rc.model || null;
  if (!client) entry.client_fp = rc.client.id;
  if (entry.session_id === null) entry.session_id = rc.session.id;
  const decision = endpoint === 'models'
    ? noRulesDecision(snapshot.rules.version, config.defaultProvider, body)
    : await evaluate(snapshot.rules, rc, config.defaultProvider);
  for (const w of decision.warnings) {
    deps.warnOnce(`${snapshot.rules.version}\0${w.rule}`, `rule "${w.rule}": ${w.message} (logged once per rule set)`, { rule: w.rule, rules_version: snapshot.rules.version });
  }
  acct.rules = decision.rules.filter((r) => r.matched).map((r) => r.id);
  acct.tags = decision.tags;
  if (decision.extra.cache_breakpoints) deps.log.debug({ request_id: entry.request_id, cache_breakpoints: decision.extra.cache_breakpoints }, 'inject_cache');
  entry.upstream = decision.route.provider;
  entry.upstream_model = decision.route.model || undefined;

  if (deps.dryRun) {
    const prepared = prepareUpstream(config, decision, req.headers, raw, url);
    const report = JSON.stringify(dryRunReport(decision, prepared.url, prepared.headers, prepared.chain), null, 2);
    res.writeHead(200, { 'content-type': 'application/json', 'x-switchyard-dry-run': 'true', 'x-switchyard-request-id': entry.request_id });
    res.end(report);
    return null;
  }
  if (decision.denied) throw new DeniedError(decision.denied.rule, decision.denied.status, decision.denied.message);
  if (decision.error) throw new RuleError(decision.error.rule, decision.error.message);
  if (endpoint === 'count_tokens' && config.providers[decision.route.provider]?.type === 'openai') {
    // Chat Completions has no token counting endpoint: an estimate (bytes / 4), documented as one.
    const estimate = JSON.stringify({ input_tokens: rc.estimate.input_tokens });
    res.writeHead(200, { 'content-type': 'application/json', 'x-switchyard-estimate': 'true', 'x-switchyard-request-id': entry.request_id });
    res.end(estimate);
    return null;
  }
  if (decision.budgets.length) {
    let checked: Awaited<ReturnType<typeof checkBudgets>>;
    try {
      checked = await checkBudgets(decision, rc, deps.state);
    } catch (err) {
      if (err instanceof GatewayError) throw err;
      throw new GatewayError('SY_STATE_DOWN', 'overloaded_error', 503, `budget state store (${deps.state.kind}) failed: ${(err as Error).message}`, { cause: err });
    }
    acct.budgetCharges = checked.charges;
    for (const w of checked.warnings) deps.warnOnce(w.key, w.message, { request_id: entry.request_id });
    if (checked.warnings.length) res.setHeader('x-switchyard-budget-warning', checked.warnings.map((w) => w.message).join('; '));
  }
  let ticket: Ticket | null = null;
  if (decision.throttles.length) {
    try {
      ticket = await admitThrottles(decision, rc, deps.state, deps.log, entry.request_id);
    } catch (err) {
      if (err instanceof GatewayError) throw err;
      throw new GatewayError('SY_STATE_DOWN', 'overloaded_error', 503, `throttle state store (${deps.state.kind}) failed: ${(err as Error).message}`, { cause: err });
    }
  }
  try {
    const body = upstreamBody(decision, raw);
    const links = routeChain(config, decision.route);
    const modelOf = new Map(links.map((l) => [l.provider, l.model]));
    const chain = links.map((l) => l.provider);
    const sent = await forward(deps.upstreams, {
      chain,
      method: endpoint === 'models' ? 'GET' : 'POST',
      // An OpenAI-compatible base_url ends in /v1: its endpoints are /chat/completions and /models.
      pathFor: (p) => (p.type !== 'openai' ? url : endpoint === 'models' ? '/models' : CHAT_COMPLETIONS_PATH),
      bodyFor: (p) => {
        const model = modelOf.get(p)!;
        if (p.type === 'openai' && endpoint === 'messages') {
          const translated = toChatCompletions(decision.body, model);
          if (translated.dropped.length) deps.log.debug({ request_id: entry.request_id, provider: p.name, dropped: translated.dropped }, 'fields without a Chat Completions equivalent were dropped');
          return Buffer.from(JSON.stringify(translated.body));
        }
        return body && model !== decision.route.model ? Buffer.from(JSON.stringify({ ...decision.body, model })) : body;
      },
      headersFor: (p, credential, b) =>
        p.type === 'openai'
          ? openaiHeaders(credential.kind === 'client' ? { kind: 'none' } : credential, b, rc.stream)
          : upstreamRequestHeaders(req.headers, credential, decision.headers, b === null ? null : b.length),
      clientsConfigured: config.clients !== null,
      session: rc.session.id ?? `client:${rc.client.id}`,
      signal,
      requestId: entry.request_id,
      started: performance.now(),
      stream: rc.stream,
      stats: acct.attempts,
    });
    entry.upstream = sent.provider;
    entry.upstream_key = sent.key ?? undefined;
    entry.retries = sent.retries;
    const provider = config.providers[sent.provider]!;
    const answer = provider.type === 'openai' && endpoint === 'messages' ? await fromOpenAI(sent.answer, provider, rc.model) : sent.answer;
    return { upstream: answer, ticket, release: sent.release };
  } catch (err) {
    // Nothing reached the client: the throttle tokens this request took are given back.
    if (ticket) await settle(ticket, null, deps.log, entry.request_id);
    throw err;
  }
}

/** An answer being relayed, as the shutdown sees it. */
export interface OpenRelay {
  /** Ends the answer now: an SSE stream gets an `event: error` after its last whole event; other answers are cut. */
  terminate(message: string): void;
}

/** Waits until `res` can take more bytes, or is gone. */
function drained(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

/**
 * Stage 5: the upstream's status and headers, then its body as it arrives (SSE events, pings and comment
 * lines included), with backpressure. An SSE stream is forwarded up to its last complete event; when the
 * upstream fails mid-stream, closes mid-event, or the gateway shuts down, the client gets an Anthropic
 * `event: error` (`api_error` / `overloaded_error`) after the last whole event instead of a silent cut, so
 * SDKs can tell an interruption from a finished answer. Never throws.
 */
async function relay(
  upstream: UpstreamAnswer,
  res: ServerResponse,
  requestId: string,
  started: number,
  signal: AbortSignal,
  tap: UsageTap,
  open: Set<OpenRelay>,
): Promise<Partial<RequestLog>> {
  const { headers, sse } = clientResponseHeaders(upstream.headers);
  headers['x-switchyard-request-id'] = requestId;
  res.writeHead(upstream.statusCode, headers);
  if (sse) res.flushHeaders(); // the client sees the stream open before the first event
  // Compressed SSE cannot be framed (nor an event appended): it passes through as bytes.
  const framer = sse && !upstream.headers['content-encoding'] ? new SseFramer() : null;
  let ttfb: number | undefined;
  let terminated: string | null = null;
  const endWithError = (type: 'overloaded_error' | 'api_error', message: string) => {
    if (framer && !res.destroyed && !res.writableEnded) res.end(sseErrorEvent(type, message, requestId));
    else if (!res.destroyed) res.destroy();
  };
  let endedAfterStop = false;
  const handle: OpenRelay = {
    terminate(message) {
      if (terminated || endedAfterStop) return;
      if (tap.completed) {
        // message_stop already went out: the answer is whole, only the upstream's end is missing.
        endedAfterStop = true;
        res.end();
      } else {
        terminated = message;
        endWithError('overloaded_error', message);
      }
      upstream.body.destroy();
    },
  };
  open.add(handle);
  try {
    for await (const chunk of upstream.body as AsyncIterable<Buffer>) {
      ttfb ??= round(performance.now() - started);
      tap.write(chunk);
      const out = framer ? framer.push(chunk) : chunk;
      if (out.length && !res.write(out)) await drained(res);
      if (res.destroyed) break;
    }
    if (endedAfterStop) return { ttfb_ms: ttfb, outcome: 'ok' };
    if (terminated) return { ttfb_ms: ttfb, outcome: 'client_aborted', error: terminated };
    if (res.destroyed) return { ttfb_ms: ttfb, outcome: 'client_aborted', error: 'client disconnected' };
    if (framer?.pending) {
      const message = `the upstream closed the stream in the middle of an event (${framer.pending} bytes of it were dropped)`;
      endWithError('api_error', message);
      return { ttfb_ms: ttfb, outcome: 'upstream_failed', error: message };
    }
    res.end();
    return { ttfb_ms: ttfb, outcome: 'ok' };
  } catch (err) {
    if (endedAfterStop) return { ttfb_ms: ttfb, outcome: 'ok' };
    if (terminated) return { ttfb_ms: ttfb, outcome: 'client_aborted', error: terminated };
    if (signal.aborted || res.destroyed) {
      if (!res.destroyed) res.destroy();
      return { ttfb_ms: ttfb, outcome: 'client_aborted', error: 'client disconnected' };
    }
    const message = `the upstream stream failed: ${(err as Error).message}`;
    endWithError('api_error', message);
    return { ttfb_ms: ttfb, outcome: 'upstream_failed', error: message };
  } finally {
    open.delete(handle);
  }
}

/** The decision for endpoints rules do not apply to (GET /v1/models): the default provider, body untouched. */
function noRulesDecision(version: string, provider: string, body: Record<string, unknown>): Decision {
  return {
    ruleset: version,
    route: { provider, model: '', requested_model: '', fallback: [], rule: null },
    rules: [],
    tags: {},
    headers: { set: {}, remove: [] },
    throttles: [],
    budgets: [],
    denied: null,
    error: null,
    warnings: [],
    body,
    bodyChanged: false,
    extra: {},
  };
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}
