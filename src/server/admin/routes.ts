/**
 * The admin routes, registered on the app by small functions: the guards (same-origin writes, the admin token
 * or loopback, the back-off on wrong tokens), then `/metrics`, `/admin/rules`, `/admin/providers`, sign-in
 * revocation, activity, decision traces and usage reports.
 */
import { clientAddress } from '../../client-address.js';
import { AdminBackoff, sameOriginWrites } from '../guards.js';
import type { HttpBindings } from '@hono/node-server';
import type { Hono, MiddlewareHandler } from 'hono';
import { AdminAccessError, AdminQueryError, NotFoundError } from '../../errors.js';
import { formatIssue } from '../../validation.js';
import { activityReport } from '../../usage/activity.js';
import type { ProxyDeps } from '../proxy.js';
import { dashboardPages } from '../ui.js';
import { adminRefusal } from './access.js';
import { providersStatus } from './providers.js';
import { parseWhen } from '../../usage/report.js';
import { renderUsageAnswer, runUsageQuery, type UsageAnswer, UsageQueryError } from '../../usage/usage-query.js';

/** The Hono app of the gateway's routes. */
type App = Hono<{ Bindings: HttpBindings }>;

/**
 * The admin guards: writes only from this gateway's own pages or from clients that are not browsers (JSON only);
 * the admin token (or loopback) for `/admin/*`, `/v1/organizations/*` and `/metrics`, with a back-off on wrong
 * tokens. The dashboard's page, assets and sign-in answer before the token guard.
 */
export function adminGuards(app: App, deps: ProxyDeps): void {
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
  app.use('/admin/*', sameOriginWrites);
  app.use('/v1/organizations/*', sameOriginWrites);
  // The dashboard's page, assets and sign-in answer before the guard (a browser gets a sign-in page, not JSON).
  dashboardPages(app, deps);
  app.use('/admin/*', adminGuard);
  app.use('/v1/organizations/*', adminGuard);
  app.use('/metrics', adminGuard);
}

/** `/metrics`, `/admin/rules`, `/admin/providers`, sign-in revocation, activity, decision traces and usage reports. */
export function adminRoutes(app: App, deps: ProxyDeps): void {
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
        {
          query: async (since, until) => {
            await ledger.flush();
            return ledger.store.query(since, until);
          },
          summarize: async (q) => {
            await ledger.flush();
            return ledger.store.summarize(q);
          },
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
}
