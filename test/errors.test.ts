/**
 * The gateway's errors (`errors.ts`): every class answers with its documented status, Anthropic error type, code,
 * headers (`retry-after`, `x-should-retry`) and a message a person can act on; the JSON body is Anthropic's error
 * shape (https://platform.claude.com/docs/en/api/errors); a rule's status maps to the type of the same meaning;
 * anything else thrown becomes a 500 that keeps its cause.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as E from '../src/errors.js';

type Row = [E.GatewayError, string, string, number, Record<string, string>, string | RegExp];
const cause = new Error('ECONNREFUSED');
const rows: Row[] = [
  [new E.InvalidRequestError('bad json', cause), 'SY_INVALID_REQUEST', 'invalid_request_error', 400, {}, 'bad json'],
  [new E.NotFoundError('PUT', '/v2/x'), 'SY_NOT_FOUND', 'not_found_error', 404, {}, /^switchyard has no route for PUT \/v2\/x; it serves POST \/v1\/messages, .*passthrough: true\)$/],
  [
    new E.UnknownModelError('claude-x'),
    'SY_UNKNOWN_MODEL',
    'not_found_error',
    404,
    {},
    `model "claude-x" is not reachable through this switchyard gateway's routes for this client; GET /v1/models lists the ones that are`,
  ],
  [new E.RequestTooLargeError(1024), 'SY_BODY_TOO_LARGE', 'request_too_large', 413, {}, "request body exceeds switchyard's limit of 1024 bytes (limits.max_body_bytes in the gateway config)"],
  [new E.RequestTooLargeError(9, 'limits.max_file_bytes'), 'SY_BODY_TOO_LARGE', 'request_too_large', 413, {}, "request body exceeds switchyard's limit of 9 bytes (limits.max_file_bytes)"],
  [new E.DeniedError('no-opus', 403, 'ask your lead'), 'SY_DENIED', 'permission_error', 403, {}, 'denied by rule "no-opus": ask your lead'],
  [new E.RuleError('tx', 'returned a string', cause), 'SY_RULE_FAILED', 'api_error', 500, {}, 'rule "tx" failed: returned a string'],
  [new E.UpstreamError('SY_UPSTREAM_CONNECT', 502, 'provider "a" refused', cause), 'SY_UPSTREAM_CONNECT', 'api_error', 502, {}, 'provider "a" refused'],
  [new E.UpstreamError('SY_UPSTREAM_TIMEOUT' as never, 504, 'slow'), 'SY_UPSTREAM_TIMEOUT', 'api_error', 504, {}, 'slow'],
  [new E.NoUpstreamError('SY_CIRCUIT_OPEN', 'every circuit open'), 'SY_CIRCUIT_OPEN', 'overloaded_error', 503, {}, 'every circuit open'],
  [new E.KeysCoolingError('all cooling', 17), 'SY_KEYS_COOLING', 'rate_limit_error', 429, { 'retry-after': '17' }, 'all cooling'],
  [new E.AuthenticationError('unknown key'), 'SY_UNAUTHENTICATED', 'authentication_error', 401, {}, 'unknown key'],
  [
    new E.ModelNotAllowedError('claude-opus-4-1', 'interns', 'ann@example.com'),
    'SY_MODEL_NOT_ALLOWED',
    'invalid_request_error',
    400,
    {},
    `model "claude-opus-4-1" is not allowed for ann@example.com by policy "interns"; GET /v1/models lists the models you may use, or ask the gateway's operator`,
  ],
  [new E.NoPolicyError('ann@example.com'), 'SY_NO_POLICY', 'not_found_error', 404, {}, 'no managed-settings policy applies to ann@example.com'],
  [new E.AdminAccessError('token'), 'SY_ADMIN_UNAUTHENTICATED', 'authentication_error', 401, {}, 'admin routes need Authorization: Bearer <admin token> (admin.token / SWITCHYARD_ADMIN_TOKEN)'],
  [
    new E.AdminAccessError('loopback'),
    'SY_ADMIN_FORBIDDEN',
    'permission_error',
    403,
    {},
    'admin routes are served on loopback only while no admin token is set (admin.token / SWITCHYARD_ADMIN_TOKEN)',
  ],
  [new E.CrossSiteError('cross-site write'), 'SY_CROSS_SITE', 'permission_error', 403, {}, 'cross-site write'],
  [new E.AdminBackoffError(30), 'SY_ADMIN_BACKOFF', 'rate_limit_error', 429, { 'retry-after': '30' }, 'too many wrong admin tokens from this address; retry after 30 s'],
  [new E.AdminQueryError('bad_query', 'since?'), 'SY_BAD_QUERY', 'invalid_request_error', 400, {}, 'since?'],
  [new E.AdminQueryError('ledger_off', 'off'), 'SY_LEDGER_OFF', 'not_found_error', 404, {}, 'off'],
  [new E.AdminQueryError('no_trace', 'gone'), 'SY_NO_TRACE', 'not_found_error', 404, {}, 'gone'],
  [new E.AdminQueryError('no_spend_limit', 'none'), 'SY_NO_SPEND_LIMIT', 'not_found_error', 404, {}, 'none'],
  [new E.HttpProtocolError('SY_HEADERS_TOO_LARGE', 431, 'headers'), 'SY_HEADERS_TOO_LARGE', 'invalid_request_error', 431, {}, 'headers'],
  [new E.ThrottledError('rpm', 'rule "rpm": 60 per minute', 3), 'SY_THROTTLED', 'rate_limit_error', 429, { 'retry-after': '3' }, 'rule "rpm": 60 per minute'],
  [new E.BudgetSpentError('daily', 'spent', 3600), 'SY_BUDGET_SPENT', 'rate_limit_error', 429, { 'retry-after': '3600', 'x-should-retry': 'false' }, 'spent'],
  [
    new E.BudgetsUnverifiedError('the ledger is down'),
    'SY_BUDGETS_UNVERIFIED',
    'api_error',
    503,
    { 'retry-after': '30' },
    'budgets cannot be checked: the ledger is down; requests under a budget are refused until it can (budgets.on_ledger_failure: closed)',
  ],
  [
    new E.TooManyRequestsError(256),
    'SY_TOO_MANY_REQUESTS',
    'overloaded_error',
    529,
    { 'retry-after': '1' },
    'switchyard is at its limit of 256 concurrent requests (limits.max_concurrent_requests); retry shortly',
  ],
  [new E.OverloadedError('body bytes'), 'SY_OVERLOADED', 'overloaded_error', 529, { 'retry-after': '1' }, 'body bytes'],
  [
    new E.StateUnavailableError('budgets', cause),
    'SY_STATE_DOWN',
    'overloaded_error',
    503,
    { 'retry-after': '1' },
    'the shared state store (redis) is unavailable and state.on_failure.budgets is "deny": ECONNREFUSED; retry shortly',
  ],
  [
    new E.StateUnavailableError('throttles', 'timeout'),
    'SY_STATE_DOWN',
    'overloaded_error',
    503,
    { 'retry-after': '1' },
    'the shared state store (redis) is unavailable and state.on_failure.throttles is "deny": timeout; retry shortly',
  ],
  [
    new E.UpstreamCredentialsError('bedrock', 'aws default chain', 'expired'),
    'SY_UPSTREAM_CREDENTIALS',
    'api_error',
    502,
    {},
    'provider "bedrock": no usable credentials from aws default chain: expired',
  ],
  [new E.NotSupportedError('no count_tokens'), 'SY_NOT_SUPPORTED', 'not_supported_error', 501, {}, 'no count_tokens'],
  [new E.ResourceUnreachableError('key gone'), 'SY_RESOURCE_UNREACHABLE', 'not_found_error', 404, {}, 'key gone'],
  [new E.StalledError('stalled in forward'), 'SY_WATCHDOG', 'api_error', 504, {}, 'stalled in forward'],
  [new E.InternalError('oops', cause), 'SY_INTERNAL', 'api_error', 500, {}, 'switchyard internal error: oops'],
];

test('each error: its code, Anthropic type, status, headers and message; its class name; its cause when given', () => {
  for (const [err, code, type, status, headers, message] of rows) {
    const what = err.constructor.name;
    assert.ok(err instanceof E.GatewayError && err instanceof Error, what);
    assert.deepEqual([err.code, err.type, err.status, err.headers], [code, type, status, headers], what);
    if (typeof message === 'string') assert.equal(err.message, message, what);
    else assert.match(err.message, message, what);
    assert.equal(err.name, what, 'the name is the class');
  }
  assert.equal(new E.InvalidRequestError('x', cause).cause, cause);
  assert.equal('cause' in new E.InvalidRequestError('x'), false, 'no cause, no cause property');
  assert.equal(new E.StateUnavailableError('cooldowns', cause).cause, cause);
  assert.equal(new E.DeniedError('r', 403, 'm').rule, 'r');
  assert.equal(new E.ThrottledError('t', 'm', 1).rule, 't');
  assert.equal(new E.BudgetSpentError('b', 'm', 1).rule, 'b');
});

test("a rule's status gets the Anthropic type of the same meaning", () => {
  const types = Object.fromEntries([400, 401, 403, 404, 409, 413, 418, 429, 500, 503, 529].map((s) => [s, E.errorTypeForStatus(s)]));
  assert.deepEqual(types, {
    400: 'invalid_request_error',
    401: 'authentication_error',
    403: 'permission_error',
    404: 'not_found_error',
    409: 'invalid_request_error',
    413: 'request_too_large',
    418: 'invalid_request_error',
    429: 'rate_limit_error',
    500: 'api_error',
    503: 'api_error',
    529: 'overloaded_error',
  });
  assert.equal(new E.DeniedError('r', 429, 'slow down').type, 'rate_limit_error');
});

test("the body is Anthropic's error shape, with the request id when there is one; anything thrown becomes a GatewayError", () => {
  const err = new E.ThrottledError('rpm', 'too fast', 2);
  assert.equal(E.errorBody(err), '{"type":"error","error":{"type":"rate_limit_error","message":"too fast"}}');
  assert.equal(E.errorBody(err, 'req_011'), '{"type":"error","error":{"type":"rate_limit_error","message":"too fast"},"request_id":"req_011"}');
  assert.equal(E.errorBody(err, ''), '{"type":"error","error":{"type":"rate_limit_error","message":"too fast"}}', 'an empty id is left out');
  assert.equal(E.asGatewayError(err), err, 'a GatewayError is itself');
  const wrapped = E.asGatewayError(new TypeError('x is undefined'));
  assert.ok(wrapped instanceof E.InternalError);
  assert.deepEqual([wrapped.status, wrapped.message, (wrapped.cause as Error).message], [500, 'switchyard internal error: x is undefined', 'x is undefined']);
  assert.equal(E.asGatewayError('plain string').message, 'switchyard internal error: plain string');
});
