/**
 * Every error the gateway itself produces, as named classes in this one file (as undici's
 * `lib/core/errors.js`), each with a stable `code` ({@link ErrorCode}), the Anthropic error `type`, the HTTP
 * status and a message that names the layer (provider, endpoint, rule, throttle). The HTTP layer turns them
 * into responses in one function, {@link errorBody}.
 *
 * Error types and statuses follow Anthropic's error reference
 * (https://platform.claude.com/docs/en/api/errors): 400 invalid_request_error, 401 authentication_error,
 * 403 permission_error, 404 not_found_error, 413 request_too_large, 429 rate_limit_error, 500 api_error,
 * 529 overloaded_error. Upstream failures use 502/504 with `api_error` and 503 with `overloaded_error`.
 */

/** The `error.type` values of Anthropic's error shape that the gateway emits. */
export type AnthropicErrorType =
  | 'invalid_request_error'
  | 'authentication_error'
  | 'permission_error'
  | 'not_found_error'
  | 'request_too_large'
  | 'rate_limit_error'
  | 'api_error'
  | 'overloaded_error'
  | 'not_supported_error';

/** The stable codes of the gateway's errors (in logs as `error: "<code>: <message>"`). */
export type ErrorCode =
  | 'SY_INVALID_REQUEST'
  | 'SY_NOT_FOUND'
  | 'SY_UNKNOWN_MODEL'
  | 'SY_BODY_TOO_LARGE'
  | 'SY_HEADERS_TOO_LARGE'
  | 'SY_REQUEST_TIMEOUT'
  | 'SY_BAD_HTTP'
  | 'SY_UNAUTHENTICATED'
  | 'SY_ADMIN_UNAUTHENTICATED'
  | 'SY_ADMIN_FORBIDDEN'
  | 'SY_CROSS_SITE'
  | 'SY_ADMIN_BACKOFF'
  | 'SY_LEDGER_OFF'
  | 'SY_NO_TRACE'
  | 'SY_BUDGETS_UNVERIFIED'
  | 'SY_NO_SPEND_LIMIT'
  | 'SY_BAD_QUERY'
  | 'SY_DENIED'
  | 'SY_RULE_FAILED'
  | 'SY_THROTTLED'
  | 'SY_BUDGET_SPENT'
  | 'SY_TOO_MANY_REQUESTS'
  | 'SY_OVERLOADED'
  | 'SY_STATE_DOWN'
  | 'SY_KEYS_COOLING'
  | 'SY_NO_KEYS'
  | 'SY_CIRCUIT_OPEN'
  | 'SY_NO_UPSTREAM'
  | 'SY_UPSTREAM_CREDENTIALS'
  | 'SY_NOT_SUPPORTED'
  | 'SY_RESOURCE_UNREACHABLE'
  | 'SY_MODEL_NOT_ALLOWED'
  | 'SY_NO_POLICY'
  | UpstreamErrorCode
  | 'SY_WATCHDOG'
  | 'SY_INTERNAL';

/** Codes of {@link UpstreamError}: transport failures, each naming provider, method and URL. */
export type UpstreamErrorCode =
  | 'SY_UPSTREAM_CONNECT'
  | 'SY_UPSTREAM_DNS'
  | 'SY_UPSTREAM_CONNECT_TIMEOUT'
  | 'SY_UPSTREAM_FIRST_BYTE_TIMEOUT'
  | 'SY_UPSTREAM_HEADERS_TIMEOUT'
  | 'SY_UPSTREAM_BODY_TIMEOUT'
  | 'SY_UPSTREAM_RESET'
  | 'SY_UPSTREAM_TLS'
  | 'SY_UPSTREAM_FAILED'
  | 'SY_UPSTREAM_UNREADABLE';

/** Base class: an error answered to the client as `{"type":"error","error":{type,message}}`. */
export class GatewayError extends Error {
  /** Stable machine-readable code, e.g. `SY_UPSTREAM_CONNECT`. */
  readonly code: ErrorCode;
  readonly type: AnthropicErrorType;
  /** HTTP status answered to the client. */
  readonly status: number;
  /** Extra response headers (e.g. `retry-after`). */
  readonly headers: Record<string, string>;

  constructor(code: ErrorCode, type: AnthropicErrorType, status: number, message: string, options: { cause?: unknown; headers?: Record<string, string> } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.type = type;
    this.status = status;
    this.headers = options.headers ?? {};
  }
}

/** 400: the request body is not valid JSON or not a JSON object. */
export class InvalidRequestError extends GatewayError {
  constructor(message: string, cause?: unknown) {
    super('SY_INVALID_REQUEST', 'invalid_request_error', 400, message, { cause });
  }
}

/** 404: no route for this method and path. */
export class NotFoundError extends GatewayError {
  constructor(method: string, path: string) {
    super(
      'SY_NOT_FOUND',
      'not_found_error',
      404,
      `switchyard has no route for ${method} ${path}; it serves POST /v1/messages, POST /v1/messages/count_tokens, GET /v1/models[/{id}], /v1/messages/batches[/{id}[/cancel|/results]], /v1/files[/{id}[/content]] and /v1/skills[/...], and in Bedrock's and Vertex AI's formats POST /model/{model}/invoke[-with-response-stream] and POST /v1/projects/{project}/locations/{location}/publishers/anthropic/models/{model}:rawPredict|:streamRawPredict (other /v1/... paths go upstream only from a provider with passthrough: true)`,
    );
  }
}

/** 404: `GET /v1/models/{id}` for a model this client cannot reach through the gateway's routes. */
export class UnknownModelError extends GatewayError {
  constructor(id: string) {
    super('SY_UNKNOWN_MODEL', 'not_found_error', 404, `model "${id}" is not reachable through this switchyard gateway's routes for this client; GET /v1/models lists the ones that are`);
  }
}

/** 413: the request body is larger than `limits.max_body_bytes` (or the fixed bound `limit` names). */
export class RequestTooLargeError extends GatewayError {
  constructor(limitBytes: number, limit = 'limits.max_body_bytes in the gateway config') {
    super('SY_BODY_TOO_LARGE', 'request_too_large', 413, `request body exceeds switchyard's limit of ${limitBytes} bytes (${limit})`);
  }
}

/** A rule's `deny` action refused the request; status and message come from the rule. */
export class DeniedError extends GatewayError {
  constructor(
    readonly rule: string,
    status: number,
    message: string,
  ) {
    super('SY_DENIED', errorTypeForStatus(status), status, `denied by rule "${rule}": ${message}`);
  }
}

/** 500: a rule failed while being applied (e.g. a `transform` that did not return an object). */
export class RuleError extends GatewayError {
  constructor(ruleId: string, message: string, cause?: unknown) {
    super('SY_RULE_FAILED', 'api_error', 500, `rule "${ruleId}" failed: ${message}`, { cause });
  }
}

/** 502/504: the upstream could not be reached or did not answer in time (the message names provider, method and URL). */
export class UpstreamError extends GatewayError {
  constructor(code: UpstreamErrorCode, status: 502 | 504, message: string, cause?: unknown) {
    super(code, 'api_error', status, message, { cause });
  }
}

/** 503: no provider of the route could be tried — every key refused (401/403), every circuit open, or none at all. */
export class NoUpstreamError extends GatewayError {
  constructor(code: 'SY_NO_KEYS' | 'SY_CIRCUIT_OPEN' | 'SY_NO_UPSTREAM', message: string) {
    super(code, 'overloaded_error', 503, message);
  }
}

/** 429: every upstream key of the route is cooling down after rate limits; `retry-after` is the earliest end. */
export class KeysCoolingError extends GatewayError {
  constructor(message: string, retryAfterS: number) {
    super('SY_KEYS_COOLING', 'rate_limit_error', 429, message, { headers: { 'retry-after': String(retryAfterS) } });
  }
}

/** 401 `authentication_error`: a missing or unknown client key. */
export class AuthenticationError extends GatewayError {
  constructor(message: string) {
    super('SY_UNAUTHENTICATED', 'authentication_error', 401, message);
  }
}

/** 400 `invalid_request_error`: a signed-in user asked for a model their group's policy does not allow (the gateway protocol's "denied model"). */
export class ModelNotAllowedError extends GatewayError {
  constructor(model: string, policy: string, user: string) {
    super(
      'SY_MODEL_NOT_ALLOWED',
      'invalid_request_error',
      400,
      `model "${model}" is not allowed for ${user} by policy "${policy}"; GET /v1/models lists the models you may use, or ask the gateway's operator`,
    );
  }
}

/** 404 `not_found_error` at GET /managed/settings: no policy applies to this user (not the same as an empty policy, which is `200 {}`). */
export class NoPolicyError extends GatewayError {
  constructor(user: string) {
    super('SY_NO_POLICY', 'not_found_error', 404, `no managed-settings policy applies to ${user}`);
  }
}

/** 401/403 on admin routes: the admin token is missing or wrong, or the caller is not on loopback while none is set. */
export class AdminAccessError extends GatewayError {
  constructor(kind: 'token' | 'loopback') {
    super(
      kind === 'token' ? 'SY_ADMIN_UNAUTHENTICATED' : 'SY_ADMIN_FORBIDDEN',
      kind === 'token' ? 'authentication_error' : 'permission_error',
      kind === 'token' ? 401 : 403,
      kind === 'token'
        ? 'admin routes need Authorization: Bearer <admin token> (admin.token / SWITCHYARD_ADMIN_TOKEN)'
        : 'admin routes are served on loopback only while no admin token is set (admin.token / SWITCHYARD_ADMIN_TOKEN)',
    );
  }
}

/**
 * 403/415 on admin writes another web page could forge (DESIGN §11.5): a cross-site `Origin` or
 * `Sec-Fetch-Site`, or a body that is not `application/json` (what an HTML form or a no-CORS fetch can send).
 */
export class CrossSiteError extends GatewayError {
  constructor(message: string) {
    super('SY_CROSS_SITE', 'permission_error', 403, message);
  }
}

/** 429 on admin routes: too many wrong admin tokens from this address; `retry-after` says when to try again. */
export class AdminBackoffError extends GatewayError {
  constructor(retryAfterS: number) {
    super('SY_ADMIN_BACKOFF', 'rate_limit_error', 429, `too many wrong admin tokens from this address; retry after ${retryAfterS} s`, { headers: { 'retry-after': String(retryAfterS) } });
  }
}

/** 400/404 on admin queries: a bad parameter, or a report asked of a ledger that is off. */
export class AdminQueryError extends GatewayError {
  constructor(kind: 'bad_query' | 'ledger_off' | 'no_trace' | 'no_spend_limit', message: string) {
    const code = kind === 'bad_query' ? 'SY_BAD_QUERY' : kind === 'ledger_off' ? 'SY_LEDGER_OFF' : kind === 'no_trace' ? 'SY_NO_TRACE' : 'SY_NO_SPEND_LIMIT';
    super(code, kind === 'bad_query' ? 'invalid_request_error' : 'not_found_error', kind === 'bad_query' ? 400 : 404, message);
  }
}

/** 408/431/400: what Node refuses before the handler runs — a slow request, oversized headers, malformed HTTP. */
export class HttpProtocolError extends GatewayError {
  constructor(code: 'SY_HEADERS_TOO_LARGE' | 'SY_REQUEST_TIMEOUT' | 'SY_BAD_HTTP', status: 400 | 408 | 431, message: string) {
    super(code, 'invalid_request_error', status, message);
  }
}

/** 429 from a throttle, naming the rule and the limit, with `retry-after`. */
export class ThrottledError extends GatewayError {
  constructor(
    readonly rule: string,
    message: string,
    retryAfterS: number,
  ) {
    super('SY_THROTTLED', 'rate_limit_error', 429, message, { headers: { 'retry-after': String(retryAfterS) } });
  }
}

/** 429 for a spent budget: `x-should-retry: false`, so Claude Code does not retry. */
export class BudgetSpentError extends GatewayError {
  constructor(
    readonly rule: string,
    message: string,
    retryAfterS: number,
  ) {
    super('SY_BUDGET_SPENT', 'rate_limit_error', 429, message, { headers: { 'retry-after': String(retryAfterS), 'x-should-retry': 'false' } });
  }
}

/** 503: budgets fail closed (`budgets.on_ledger_failure: closed`) while the ledger cannot be read. */
export class BudgetsUnverifiedError extends GatewayError {
  constructor(why: string) {
    super('SY_BUDGETS_UNVERIFIED', 'api_error', 503, `budgets cannot be checked: ${why}; requests under a budget are refused until it can (budgets.on_ledger_failure: closed)`, {
      headers: { 'retry-after': '30' },
    });
  }
}

/** 529 with `retry-after`: too many requests in flight (`limits.max_concurrent_requests`). */
export class TooManyRequestsError extends GatewayError {
  constructor(limit: number) {
    super('SY_TOO_MANY_REQUESTS', 'overloaded_error', 529, `switchyard is at its limit of ${limit} concurrent requests (limits.max_concurrent_requests); retry shortly`, {
      headers: { 'retry-after': '1' },
    });
  }
}

/** 529 with `retry-after`: the gateway (or this client) holds as many request-body bytes as it is allowed to. */
export class OverloadedError extends GatewayError {
  constructor(message: string) {
    super('SY_OVERLOADED', 'overloaded_error', 529, message, { headers: { 'retry-after': '1' } });
  }
}

/** 503 while the shared state store (Redis) is unavailable and the use is configured `deny`. */
export class StateUnavailableError extends GatewayError {
  constructor(use: 'throttles' | 'cooldowns' | 'budgets', cause: unknown) {
    super(
      'SY_STATE_DOWN',
      'overloaded_error',
      503,
      `the shared state store (redis) is unavailable and state.on_failure.${use} is "deny": ${(cause as Error)?.message ?? String(cause)}; retry shortly`,
      { cause, headers: { 'retry-after': '1' } },
    );
  }
}

/**
 * 502: the gateway could not get credentials of its own for a cloud provider (AWS for `type: bedrock`, Google
 * for `type: vertex`): expired, missing or refused. Names the provider and where credentials were looked for,
 * never a secret. Forwarding moves on to the route's fallback providers.
 */
export class UpstreamCredentialsError extends GatewayError {
  constructor(provider: string, source: string, why: string, cause?: unknown) {
    super('SY_UPSTREAM_CREDENTIALS', 'api_error', 502, `provider "${provider}": no usable credentials from ${source}: ${why}`, { cause });
  }
}

/** 501: an endpoint the route's provider has no equivalent for (e.g. count_tokens on Amazon Bedrock). */
export class NotSupportedError extends GatewayError {
  constructor(message: string) {
    super('SY_NOT_SUPPORTED', 'not_supported_error', 501, message);
  }
}

/**
 * 404: a batch, file or skill the gateway knows was created through an upstream key (or provider) that is no longer
 * configured, so no key it has can reach it (resource affinity, upstream/affinity.ts).
 */
export class ResourceUnreachableError extends GatewayError {
  constructor(message: string) {
    super('SY_RESOURCE_UNREACHABLE', 'not_found_error', 404, message);
  }
}

/** 504: the watchdog ended a request that made no progress for `limits.stall_ms` (the message names the stage). */
export class StalledError extends GatewayError {
  constructor(message: string) {
    super('SY_WATCHDOG', 'api_error', 504, message);
  }
}

/** 500: anything unexpected inside the gateway. The message never includes request data. */
export class InternalError extends GatewayError {
  constructor(message: string, cause?: unknown) {
    super('SY_INTERNAL', 'api_error', 500, `switchyard internal error: ${message}`, { cause });
  }
}

/** The Anthropic error type that matches an HTTP status (for statuses chosen by an operator's rule). */
export function errorTypeForStatus(status: number): AnthropicErrorType {
  switch (status) {
    case 400:
      return 'invalid_request_error';
    case 401:
      return 'authentication_error';
    case 403:
      return 'permission_error';
    case 404:
      return 'not_found_error';
    case 413:
      return 'request_too_large';
    case 429:
      return 'rate_limit_error';
    case 529:
      return 'overloaded_error';
    default:
      return status >= 500 ? 'api_error' : 'invalid_request_error';
  }
}

/**
 * The JSON body of an error answer, in Anthropic's shape:
 * `{"type":"error","error":{"type":...,"message":...},"request_id":...}`.
 */
export function errorBody(err: GatewayError, requestId?: string): string {
  const body: Record<string, unknown> = { type: 'error', error: { type: err.type, message: err.message } };
  if (requestId) body.request_id = requestId;
  return JSON.stringify(body);
}

/** Wraps anything thrown into a GatewayError (unknown errors become 500 `api_error`). */
export function asGatewayError(err: unknown): GatewayError {
  if (err instanceof GatewayError) return err;
  return new InternalError(err instanceof Error ? err.message : String(err), err);
}
