import { boundedBodies } from './guards.js';
import { adminGuards, adminRoutes } from './admin/routes.js';
import { spendLimitRoutes } from './admin/spend-limits.js';
import type { HttpBindings } from '@hono/node-server';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import { Hono, type Context } from 'hono';
import { asGatewayError, AuthenticationError, errorBody, type GatewayError, NotFoundError } from '../errors.js';
import { identify } from './auth.js';
import { clientCredential } from '../rules/context.js';
import { MeUsageService } from '../usage/me.js';
import { cors } from './cors.js';
import { ResilientStore } from '../state/resilient.js';
import { vertexIngress } from './ingress.js';
import { loginRoutes, MAX_OTLP_BYTES } from './login-routes.js';
import { proxyRequest, type ProxyDeps } from './proxy.js';
import { sendError } from './pipeline/record.js';
import { dashboardApi } from './ui.js';
import { resourceRoutes } from './resources/index.js';

/** The Hono app of the gateway's routes. */
type App = Hono<{ Bindings: HttpBindings }>;

/** State the health routes read. */
export interface AppState {
  /** True from the moment shutdown starts: readiness fails so load balancers drain us. */
  shuttingDown: boolean;
}

/**
 * The Messages API endpoint a request goes to without the Hono app, or null: `POST /v1/messages` and
 * `POST /v1/messages/count_tokens` (any query) from a client that is not a browser (no `Origin`, so no CORS
 * headers are due). No middleware or route of the app applies to them otherwise, and going around the router,
 * its context and its response adapter saves every request of every Claude Code session that work.
 */
export function directEndpoint(req: IncomingMessage): 'messages' | 'count_tokens' | null {
  if (req.method !== 'POST' || req.headers.origin !== undefined) return null;
  const url = req.url ?? '';
  const q = url.indexOf('?');
  const path = q < 0 ? url : url.slice(0, q);
  return path === '/v1/messages' ? 'messages' : path === '/v1/messages/count_tokens' ? 'count_tokens' : null;
}

/**
 * A platform's base path in front of the API, as Claude Code's cloud modes send it: the gateway may be given as
 * `ANTHROPIC_FOUNDRY_BASE_URL=https://gateway/foundry` or `…/anthropic` (Microsoft Foundry mode), or
 * `ANTHROPIC_AWS_BASE_URL=https://gateway/anthropic-aws` (Claude Platform on AWS mode), and the path then comes as
 * `/foundry/v1/messages`; code.claude.com/docs/en/llm-gateway ("Foundry and Claude Platform on AWS": the gateway
 * implements the Anthropic Messages row in front of either).
 */
const PLATFORM_PREFIX = /^\/(?:anthropic-aws|foundry|anthropic)(?=\/v1\/)/;

/** Takes a platform base path (see {@link PLATFORM_PREFIX}) off `req.url`; the common `/v1/...` costs one check. */
export function stripPlatformPrefix(req: IncomingMessage): void {
  const url = req.url;
  if (!url || url.startsWith('/v1/')) return;
  const m = PLATFORM_PREFIX.exec(url);
  if (m) req.url = url.slice(m[0].length);
}

/**
 * The server's request listener: {@link directEndpoint}'s requests straight to the pipeline, every other one
 * to `app` (Hono's listener for it, `appListener`).
 */
export function requestListener(deps: ProxyDeps, appListener: (req: IncomingMessage, res: ServerResponse) => unknown): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    stripPlatformPrefix(req);
    const endpoint = directEndpoint(req);
    if (!endpoint) return void appListener(req, res);
    // The pipeline answers its own errors; one escaping it (a bug) is answered as the app's onError would.
    proxyRequest(req, res, endpoint, deps).catch((err: unknown) => {
      deps.log.error({ err }, 'unhandled error');
      sendError(res, asGatewayError(err), 'unknown');
    });
  };
}

/** Builds the app. */
export function createApp(deps: ProxyDeps, state: AppState): Hono<{ Bindings: HttpBindings }> {
  const app = new Hono<{ Bindings: HttpBindings }>();
  app.use(
    '*',
    cors(() => deps.runtime.current.config.cors),
  );

  // Claude Code probes reachability with HEAD / or HEAD /api/hello: answer any HEAD without an upstream.
  // (Hono dispatches HEAD to GET routes, so this is a middleware, not a route.)
  app.use('*', async (c, next) => {
    if (c.req.method === 'HEAD') return c.body(null, 200);
    await next();
  });
  // Every body an app route reads (admin, sign-in, telemetry) is bounded and counted in the in-flight byte cap.
  const bounded = boundedBodies(deps);
  for (const path of ['/admin/*', '/v1/organizations/*', '/oauth/*', '/device']) app.use(path, bounded);
  const otlp = boundedBodies(deps, MAX_OTLP_BYTES, 'the bound of an OTLP telemetry body');
  for (const path of ['/v1/metrics', '/v1/logs', '/v1/traces']) app.use(path, otlp);
  healthRoutes(app, deps, state);
  loginRoutes(app, deps);
  messagesRoutes(app, deps);
  adminGuards(app, deps);
  adminRoutes(app, deps);
  dashboardApi(app, deps);
  spendLimitRoutes(app, deps);
  resourceRoutes(app, deps); // last: its /v1/* catch-all answers what no route above does
  app.notFound((c) => errorResponse(c, new NotFoundError(c.req.method, c.req.path)));
  app.onError((err, c) => {
    const gerr = asGatewayError(err);
    if (gerr.status >= 500) deps.log.error({ err }, 'unhandled error');
    return errorResponse(c, gerr);
  });
  return app;
}

/** `GET /`, `/healthz` (the process answers) and `/readyz` (ready, and each dependency's state). */
function healthRoutes(app: App, deps: ProxyDeps, state: AppState): void {
  app.get('/', (c) => c.json({ service: 'switchyard', status: 'ok' }));
  app.get('/healthz', (c) => c.json({ status: 'ok' }));
  app.get('/readyz', (c) => {
    const { rules } = deps.runtime.current;
    const body = {
      status: state.shuttingDown ? 'shutting_down' : 'ready',
      rules_version: rules.version,
      rules: rules.rules.length,
      // Circuit state per provider that has been used (details at /admin/providers).
      circuits: deps.upstreams.breakers.states(),
      // Degraded dependencies keep the gateway ready (their failure mode applies); the detail is here.
      state: deps.state instanceof ResilientStore ? deps.state.health() : { kind: deps.state.kind, status: 'ok' },
      ledger: deps.ledger ? deps.ledger.health() : { status: 'off' },
      spend_limits: deps.spendLimits ? deps.spendLimits.health() : { status: 'off' },
    };
    return c.json(body, state.shuttingDown ? 503 : 200);
  });
}

/**
 * The Messages API through the Hono app (requests with an `Origin`; the others skip it, see requestListener),
 * `GET /v1/models`, Bedrock's and Vertex AI's formats, and the caller's own usage.
 */
function messagesRoutes(app: App, deps: ProxyDeps): void {
  const proxied = (endpoint: 'messages' | 'count_tokens' | 'models') => async (c: Context<{ Bindings: HttpBindings }>) => {
    await proxyRequest(c.env.incoming, c.env.outgoing, endpoint, deps);
    return RESPONSE_ALREADY_SENT;
  };
  // Bedrock's and Vertex AI's formats (ingress.ts): the same pipeline, the request rewritten on the way in.
  const bedrock = (stream: boolean) => async (c: Context<{ Bindings: HttpBindings }>) => {
    await proxyRequest(c.env.incoming, c.env.outgoing, 'messages', deps, { dialect: 'bedrock', model: c.req.param('modelId')!, stream });
    return RESPONSE_ALREADY_SENT;
  };

  app.post('/v1/messages', proxied('messages'));
  app.post('/v1/messages/count_tokens', proxied('count_tokens'));
  app.get('/v1/models', proxied('models'));
  app.get('/v1/models/:id', proxied('models'));
  app.post('/model/:modelId/invoke', bedrock(false));
  app.post('/model/:modelId/invoke-with-response-stream', bedrock(true));
  app.post('/v1/projects/:project/locations/:location/publishers/anthropic/models/:modelAndMethod', async (c) => {
    const route = vertexIngress(c.req.param('modelAndMethod'));
    if (!route) throw new NotFoundError(c.req.method, c.req.path);
    await proxyRequest(c.env.incoming, c.env.outgoing, route.endpoint, deps, route.ingress);
    return RESPONSE_ALREADY_SENT;
  });

  // The caller's own spend, budgets and cache hit share (a Claude Code status line polls it).
  const me = new MeUsageService(deps.ledger?.store ?? null, deps.state, deps.spendLimits);
  app.get('/v1/me/usage', async (c) => {
    const snapshot = deps.runtime.current;
    const headers = c.env.incoming.headers;
    const { client, clientId } = await identify(headers, snapshot.config, deps.logins);
    if (!client && !clientCredential(headers)) throw new AuthenticationError('send your API key (x-api-key or Authorization: Bearer) to see your own usage');
    return c.json(await me.usage(snapshot, clientId, client?.tags, headers));
  });
}

function errorResponse(_c: Context, err: GatewayError): Response {
  return new Response(errorBody(err), { status: err.status, headers: { 'content-type': 'application/json', ...err.headers } });
}
