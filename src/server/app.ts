/**
 * The Hono app: routes, health, admin. No rule logic here: the proxied endpoints hand Node's request and
 * response to the pipeline in `proxy.ts`, which streams without buffering.
 */
import { clientAddress } from '../client-address.js';
import { AdminBackoff, boundedBodies, sameOriginWrites } from './guards.js';
import type { HttpBindings } from '@hono/node-server';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import { Hono, type Context, type MiddlewareHandler } from 'hono';
import { AdminAccessError, AdminQueryError, asGatewayError, AuthenticationError, errorBody, type GatewayError, NotFoundError } from '../errors.js';
import { formatIssue } from '../validation.js';
import { identify } from './auth.js';
import { clientCredential } from '../rules/context.js';
import { MeUsageService } from '../usage/me.js';
import { toWire } from '../usage/spend-limits.js';
import { cors } from './cors.js';
import { ResilientStore } from '../state/resilient.js';
import { vertexIngress } from './ingress.js';
import { loginRoutes, MAX_OTLP_BYTES } from './login-routes.js';
import { activityReport } from '../usage/activity.js';
import { proxyRequest, type ProxyDeps } from './proxy.js';
import { sendError } from './pipeline/record.js';
import { dashboardApi, dashboardPages } from './ui.js';
import { adminRefusal } from './admin/access.js';
import { providersStatus } from './admin/providers.js';

export { adminRefusal, providersStatus };
import { parseWhen } from '../usage/report.js';
import { renderUsageAnswer, runUsageQuery, type UsageAnswer, UsageQueryError } from '../usage/usage-query.js';

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
 * The server's request listener: {@link directEndpoint}'s requests straight to the pipeline, every other one
 * to `app` (Hono's listener for it, `appListener`).
 */
export function requestListener(deps: ProxyDeps, appListener: (req: IncomingMessage, res: ServerResponse) => unknown): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
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

  const proxied = (endpoint: 'messages' | 'count_tokens' | 'models') => async (c: Context<{ Bindings: HttpBindings }>) => {
    await proxyRequest(c.env.incoming, c.env.outgoing, endpoint, deps);
    return RESPONSE_ALREADY_SENT;
  };
  // Bedrock's and Vertex AI's formats (ingress.ts): the same pipeline, the request rewritten on the way in.
  const bedrock = (stream: boolean) => async (c: Context<{ Bindings: HttpBindings }>) => {
    await proxyRequest(c.env.incoming, c.env.outgoing, 'messages', deps, { dialect: 'bedrock', model: c.req.param('modelId')!, stream });
    return RESPONSE_ALREADY_SENT;
  };

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

  loginRoutes(app, deps);
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

  // Admin (and /metrics): a bearer token when one is configured, else loopback only.
  const backoff = new AdminBackoff();
  const adminGuard: MiddlewareHandler<{ Bindings: HttpBindings }> = async (c, next) => {
    const address = clientAddress(c.env.incoming, deps.runtime.current.config.trusted_proxies);
    backoff.check(address);
    const refused = adminRefusal(c, deps.runtime.current.config.admin.token);
    // A wrong token counts; a request that presented none (a browser's first visit) does not.
    if (refused === 'token' && (c.req.header('authorization') || c.req.header('x-api-key') || c.req.header('cookie'))) backoff.failed(address);
    if (refused) throw new AdminAccessError(refused);
    if (deps.runtime.current.config.admin.token) backoff.succeeded(address);
    await next();
  };
  // Admin writes only from this gateway's own pages or from clients that are not browsers, JSON only.
  app.use('/admin/*', sameOriginWrites);
  app.use('/v1/organizations/*', sameOriginWrites);
  // The dashboard's page, assets and sign-in answer before the guard (a browser gets a sign-in page, not JSON).
  dashboardPages(app, deps);
  app.use('/admin/*', adminGuard);
  app.use('/v1/organizations/*', adminGuard);
  app.use('/metrics', adminGuard);
  app.get('/metrics', async (c) => c.body(await deps.metrics.registry.metrics(), 200, { 'content-type': deps.metrics.registry.contentType }));
  app.get('/admin/rules', (c) => {
    const { rules } = deps.runtime.current;
    const err = deps.runtime.lastError;
    return c.json({
      version: rules.version,
      loaded_at: rules.loadedAt,
      dir: rules.dir,
      files: rules.files,
      rules: rules.rules.map((r) => ({ id: r.id, file: r.file, description: r.description ?? null })),
      warnings: rules.warnings.map(formatIssue),
      last_error: err ? { at: err.at, errors: err.issues.map(formatIssue) } : null,
    });
  });

  app.get('/admin/providers', async (c) => c.json(await providersStatus(deps)));
  // Sign-out of a user everywhere: their refresh tokens stop working (login/tokens.ts).
  app.post('/admin/login/revoke', async (c) => {
    const login = deps.logins?.get(deps.runtime.current.config.login);
    if (!login) throw new NotFoundError(c.req.method, c.req.path);
    const body = (await c.req.json().catch(() => null)) as { user?: unknown } | null;
    if (typeof body?.user !== 'string' || !body.user) throw new AdminQueryError('bad_query', 'send {"user": "<email or identity-provider subject>"}');
    await (await login).tokens.revoke(body.user);
    deps.log.info({ login: 'revoked', user: body.user }, 'sign-ins revoked');
    return c.json({ revoked: body.user });
  });
  // Claude Code's own activity per session, beside its cost (login/telemetry.ts).
  app.get('/admin/usage/activity', async (c) => {
    const store = deps.ledger?.store;
    if (!store) throw new AdminQueryError('ledger_off', 'the usage ledger is off (ledger: off), so there is no activity to show');
    const since = c.req.query('since') ? parseWhen(c.req.query('since')!) : new Date(Date.now() - 30 * 86_400_000).toISOString();
    return c.json({ since, sessions: await activityReport(store, since) });
  });
  dashboardApi(app, deps);

  // Spend limits in the wire shape of Anthropic's Admin API (usage/spend-limits.ts).
  const limits = () => {
    if (!deps.spendLimits) throw new AdminQueryError('ledger_off', 'spend limits are stored in the usage ledger, which is off in this config (ledger: off)');
    return deps.spendLimits;
  };
  app.post('/v1/organizations/spend_limits', async (c) => {
    let body: unknown;
    try {
      body = await c.req.json();
    } catch {
      throw new AdminQueryError('bad_query', 'spend limit: the body is not JSON');
    }
    return c.json(toWire(await limits().set(body)));
  });
  app.get('/v1/organizations/spend_limits', async (c) => {
    const types = c.req.queries('scope_type') ?? c.req.queries('scope_type[]') ?? [];
    for (const t of types) if (!['user', 'workspace', 'organization'].includes(t)) throw new AdminQueryError('bad_query', `scope_type=${t}: expected user, workspace or organization`);
    const size = Math.min(1000, Math.max(1, Number(c.req.query('limit') ?? 20) || 20));
    const all = (await limits().list()).filter((l) => types.length === 0 || types.includes(l.scope_type));
    const from = c.req.query('page') ? all.findIndex((l) => l.id === c.req.query('page')) : 0;
    const page = all.slice(Math.max(0, from), Math.max(0, from) + size);
    const next = all[Math.max(0, from) + size];
    return c.json({ data: page.map(toWire), next_page: next ? next.id : null });
  });
  app.get('/v1/organizations/spend_limits/:id', async (c) => {
    const l = (await limits().list()).find((x) => x.id === c.req.param('id'));
    if (!l) throw new AdminQueryError('no_spend_limit', `no spend limit ${c.req.param('id')}`);
    return c.json(toWire(l));
  });
  app.delete('/v1/organizations/spend_limits/:id', async (c) => {
    const id = c.req.param('id');
    if (!(await limits().delete(id))) throw new AdminQueryError('no_spend_limit', `no spend limit ${id}`);
    return c.json({ id, type: 'spend_limit_deleted' });
  });

  app.get('/admin/requests/:id', (c) => {
    const id = c.req.param('id');
    const t = deps.traces.get(id);
    if (!t) {
      const size = deps.runtime.current.config.trace.requests;
      throw new AdminQueryError(
        'no_trace',
        size
          ? `no decision trace for request ${id}: only the last ${size} requests are kept (trace.requests), and only requests that reached the rules`
          : 'decision traces are off (trace.requests: 0)',
      );
    }
    return c.json(t);
  });

  app.get('/admin/usage', async (c) => {
    if (!deps.ledger) throw new AdminQueryError('ledger_off', 'the usage ledger is off in this config (ledger: off)');
    const ledger = deps.ledger;
    const view = c.req.query('view') ?? 'usage';
    if (view !== 'usage' && view !== 'cache') throw new AdminQueryError('bad_query', `view=${view}: expected usage or cache`);
    const query = { view, by: c.req.queries('by') ?? [], since: c.req.query('since'), until: c.req.query('until'), where: c.req.queries('where') ?? [] } as const;
    let answer: UsageAnswer;
    try {
      answer = await runUsageQuery(
        { ...query, by: [...query.by], where: [...query.where] },
        async (since, until) => {
          await ledger.flush();
          return ledger.store.query(since, until);
        },
        deps.prices,
      );
    } catch (err) {
      if (err instanceof UsageQueryError) throw new AdminQueryError('bad_query', err.message);
      throw err;
    }
    if (c.req.query('format') === 'csv') return c.body(renderUsageAnswer(answer, 'csv'), 200, { 'content-type': 'text/csv' });
    return c.json(answer.report);
  });

  app.notFound((c) => errorResponse(c, new NotFoundError(c.req.method, c.req.path)));
  app.onError((err, c) => {
    const gerr = asGatewayError(err);
    if (gerr.status >= 500) deps.log.error({ err }, 'unhandled error');
    return errorResponse(c, gerr);
  });
  return app;
}

function errorResponse(_c: Context, err: GatewayError): Response {
  return new Response(errorBody(err), { status: err.status, headers: { 'content-type': 'application/json', ...err.headers } });
}
