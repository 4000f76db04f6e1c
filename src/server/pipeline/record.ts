/**
 * Stage "record" (DESIGN §3 step 7), the outermost stage so that it sees every outcome: it turns an error
 * thrown by any later stage into Anthropic's error shape, then writes the request's one log line, its usage
 * record (ledger, metrics) and its cost into the budgets it was charged to.
 */
import type { ServerResponse } from 'node:http';
import { asGatewayError, BudgetSpentError, DeniedError, errorBody, type GatewayError, StalledError, ThrottledError, UpstreamError } from '../../errors.js';
import { costUsd } from '../../usage/prices.js';
import type { Outcome, UsageRecord } from '../../usage/record.js';
import { noUsage } from '../../usage/tap.js';
import type { Exchange, LogOutcome, Stage } from './exchange.js';

/** Answers `x` here with 200 and `out` as JSON (request ids in the headers), logged as ok. */
export function sendJson(x: Exchange, out: unknown): void {
  const body = JSON.stringify(out);
  x.log.status = 200;
  x.log.outcome = 'ok';
  if (x.res.destroyed) return;
  x.res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'request-id': x.id, 'x-switchyard-request-id': x.id });
  x.res.end(body);
}

/** Writes a gateway error in Anthropic's shape, unless the response has already started (then it is cut). */
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

/** How an error answer counts: the upstream's fault, a refusal (4xx, throttles, budgets, overload), or the gateway's own. */
function errorOutcome(err: GatewayError): LogOutcome {
  if (err instanceof UpstreamError || err.code === 'SY_KEYS_COOLING') return 'upstream_failed';
  return err.status < 500 || err.type === 'overloaded_error' ? 'refused' : 'gateway_error';
}

export const record: Stage = async (x, next) => {
  x.deps.exchanges.add(x);
  if (x.deps.telemetry) x.trace = x.deps.telemetry.startRequest(x.req.headers, x.log.method, x.log.path, performance.timeOrigin + x.started);
  try {
    await next();
  } catch (err) {
    x.dropBody(); // the body and its reservation go at once, whatever stage failed
    if (x.clientGone) {
      finish(x, 499, { outcome: 'client_aborted', error: 'client disconnected before the answer' });
      return;
    }
    const gerr = asGatewayError(err);
    x.req.resume(); // an unread body is drained, never held
    sendError(x.res, gerr, x.id);
    x.errorType = gerr.type;
    if (err instanceof ThrottledError) x.deps.metrics.throttled.inc({ rule: err.rule });
    x.refusedBy = refusal(err);
    finish(x, gerr.status, { outcome: errorOutcome(gerr), error: `${gerr.code}: ${gerr.message}` });
    return;
  }
  x.dropBody(); // answered without an upstream (dry-run, a local answer): the reservation goes back now
  finish(x, x.log.status ?? x.res.statusCode, {});
};

/** The rule action that refused a request (`deny:<rule>`, `throttle:<rule>`, `budget:<rule>`), or null. */
function refusal(err: unknown): string | null {
  if (err instanceof DeniedError) return `deny:${err.rule}`;
  if (err instanceof ThrottledError) return `throttle:${err.rule}`;
  if (err instanceof BudgetSpentError) return `budget:${err.rule}`;
  return null;
}

/**
 * Ends a request the watchdog found making no progress for `stalledMs` (DESIGN §11.1): the client gets a 504
 * in Anthropic's shape (or, once the answer started, its connection is cut), the upstream call is aborted,
 * and the request ends now — its log line, its usage record (outcome `error`), everything it held given back.
 * Its stuck stages may still wake later; the request has ended and they change nothing.
 */
export function abandon(x: Exchange, stalledMs: number): void {
  if (x.ended) return;
  const message = `switchyard ended the request after ${Math.round(stalledMs)} ms without progress in stage "${x.stage}" (limits.stall_ms)`;
  x.deps.metrics.watchdogEnded.inc({ stage: x.stage });
  // The stages still running see the client as gone: forwarding stops, the upstream call is aborted (on `close`).
  x.markGone(new StalledError(message));
  x.errorType = 'api_error';
  if (!x.res.headersSent && !x.res.destroyed) {
    x.req.resume();
    sendError(x.res, new StalledError(message), x.id);
  } else if (!x.res.destroyed) x.res.destroy();
  x.answer?.body.destroy();
  finish(x, x.log.status ?? 504, { outcome: 'gateway_error', error: `SY_WATCHDOG: ${message}` });
}

/**
 * Ends a request, exactly once (later calls do nothing): the log line, the usage record, then every hold of
 * an enforcing action settled with how it ended and every resource the exchange still owns given back.
 */
function finish(x: Exchange, status: number, extra: Partial<Exchange['log']>): void {
  if (x.ended) return;
  x.ended = true;
  x.deps.exchanges.delete(x);
  const { deps, log } = x;
  Object.assign(log, extra, { status, latency_ms: round(performance.now() - x.started) });
  // Every upstream attempt counts, whether forwarding answered, failed or the client left meanwhile.
  if (x.attempts.attempts > 0) log.retries = x.attempts.attempts - 1;
  log.outcome ??= 'ok';
  const level = status >= 500 ? 'error' : status >= 400 || log.outcome === 'client_aborted' ? 'warn' : 'info';
  deps.log[level](log, 'request');
  const r = usageRecord(x);
  deps.traces.finish(x.id, status, r.outcome);
  deps.metrics.observe(r);
  deps.ledger?.record(r);
  if (deps.live.active) deps.live.publish(r);
  x.trace?.end(r, r.provider ? (x.config.providers[r.provider]?.type ?? null) : null);
  // A request did work when the upstream answered with anything but a rate limit or an overload.
  const answered = x.answer?.statusCode;
  const end = { worked: answered !== undefined && answered !== 429 && answered !== 529, outputTokens: r.output_tokens, costUsd: r.cost_usd };
  for (const hold of x.holds) void hold.settle(end);
  x.releaseAll();
}

const OUTCOMES: Record<LogOutcome, Outcome> = { ok: 'ok', client_aborted: 'aborted', upstream_failed: 'failed', refused: 'refused', gateway_error: 'error' };

/** The usage record of a finished request (tokens from the tap; cost from the price table). */
function usageRecord(x: Exchange): UsageRecord {
  const { log, tap, deps } = x;
  const usage = tap ? tap.finish() : noUsage();
  const streamError = tap?.streamError ?? null;
  let outcome = OUTCOMES[log.outcome ?? 'ok'];
  if (outcome === 'ok' && (streamError || (log.status ?? 0) >= 400)) outcome = 'failed';
  const model = log.upstream_model ?? log.model ?? null;
  let cost: number | null = 0;
  if (usage.input_tokens + usage.output_tokens + usage.cache_creation_input_tokens + usage.cache_read_input_tokens > 0) {
    const price = model ? deps.prices.priceOf(model, log.upstream) : null;
    // Once per model (the warn-once set is bounded in bytes, so client-chosen names cannot grow it for ever).
    if (!price && model)
      deps.warnOnce(`price\0${model}`, `no price for model "${model.slice(0, 128)}" in the price table; its usage is recorded with cost null (logged once per model)`, { model: model.slice(0, 128) });
    cost = costUsd(usage, price);
  }
  return {
    time: new Date(Date.now() - (log.latency_ms ?? 0)).toISOString(),
    request_id: x.id,
    client_id: log.client ?? log.client_fp ?? null,
    key_fingerprint: log.upstream_key ?? null,
    session_id: log.session_id ?? null,
    user_id: x.client?.id ?? x.userId,
    project: headerValue(x.req.headers[x.config.attribution.project_header]),
    agent_id: log.agent_id ?? null,
    requested_model: x.requestedModel,
    provider: log.upstream ?? null,
    model,
    rules_version: x.rulesVersion,
    rules: x.rules,
    facts: x.facts,
    tags: x.tags,
    status: log.status ?? 0,
    outcome,
    error_type: x.errorType ?? streamError,
    refused_by: x.refusedBy,
    secret_findings: x.secretFindings,
    kind: x.kind,
    retries: log.retries ?? 0,
    latency_ms: log.latency_ms ?? 0,
    ttft_ms: log.ttfb_ms ?? null,
    ...usage,
    cost_usd: cost,
  };
}

/** A header's value as one string (repeated headers joined), or null; capped so a client cannot bloat the ledger. */
export function headerValue(v: string | string[] | undefined): string | null {
  if (v === undefined) return null;
  const s = Array.isArray(v) ? v.join(', ') : v;
  return s ? s.slice(0, 200) : null;
}

/** ms rounded to 0.01. */
export function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}
