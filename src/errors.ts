/**
 * Every error the gateway itself produces, as named classes that carry the Anthropic error `type`, the
 * HTTP status and a message that names the layer (provider, endpoint, rule, throttle). The HTTP layer
 * turns them into responses in one function, {@link errorBody}.
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
  | 'overloaded_error';

/** Base class: an error answered to the client as `{"type":"error","error":{type,message}}`. */
export class GatewayError extends Error {
  /** Stable machine-readable code, e.g. `SY_UPSTREAM_CONNECT`. */
  readonly code: string;
  readonly type: AnthropicErrorType;
  /** HTTP status answered to the client. */
  readonly status: number;
  /** Extra response headers (e.g. `retry-after`). */
  readonly headers: Record<string, string>;

  constructor(
    code: string,
    type: AnthropicErrorType,
    status: number,
    message: string,
    options: { cause?: unknown; headers?: Record<string, string> } = {},
  ) {
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
      `switchyard has no route for ${method} ${path}; it serves POST /v1/messages, POST /v1/messages/count_tokens and GET /v1/models`,
    );
  }
}

/** 413: the request body is larger than `limits.max_body_bytes`. */
export class RequestTooLargeError extends GatewayError {
  constructor(limitBytes: number) {
    super(
      'SY_BODY_TOO_LARGE',
      'request_too_large',
      413,
      `request body exceeds switchyard's limit of ${limitBytes} bytes (limits.max_body_bytes in the gateway config)`,
    );
  }
}

/** A rule's `deny` action refused the request; status and message come from the rule. */
export class DeniedError extends GatewayError {
  constructor(ruleId: string, status: number, message: string) {
    super('SY_DENIED', errorTypeForStatus(status), status, `denied by rule "${ruleId}": ${message}`);
  }
}

/** 500: a rule failed while being applied (e.g. a `transform` that did not return an object). */
export class RuleError extends GatewayError {
  constructor(ruleId: string, message: string, cause?: unknown) {
    super('SY_RULE_FAILED', 'api_error', 500, `rule "${ruleId}" failed: ${message}`, { cause });
  }
}

/** 502/504: the upstream could not be reached or did not answer in time. */
export class UpstreamError extends GatewayError {
  constructor(code: string, status: 502 | 503 | 504, message: string, cause?: unknown) {
    super(code, status === 503 ? 'overloaded_error' : 'api_error', status, message, { cause });
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
    case 400: return 'invalid_request_error';
    case 401: return 'authentication_error';
    case 403: return 'permission_error';
    case 404: return 'not_found_error';
    case 413: return 'request_too_large';
    case 429: return 'rate_limit_error';
    case 529: return 'overloaded_error';
    default: return status >= 500 ? 'api_error' : 'invalid_request_error';
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
