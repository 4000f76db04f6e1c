/**
 * The dashboard at /admin/ui: a page and its assets built by `npm run build` (ui/ → dist/ui/, esbuild; Preact
 * and uPlot bundled, nothing from a CDN: it works offline), and the JSON it reads under /admin/ui/api/ — figures
 * computed on the server from the ledger by the same functions as `switchyard usage` (usage/dashboard.ts).
 *
 * Access is the admin API's: with `admin.token` configured a browser signs in once (POST /admin/ui/login sets an
 * HttpOnly, SameSite=Strict cookie holding the token, scoped to /admin), else loopback only. The page is served with
 * a content-security policy that allows only its own scripts, styles and API (no inline script, no third party).
 */
import { existsSync, readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import path from 'node:path';
import type { HttpBindings } from '@hono/node-server';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import type { Context, Hono } from 'hono';
import { AdminQueryError } from '../errors.js';
import { decideOffline } from '../rules/offline.js';
import { dryRunReport } from '../rules/report.js';
import type { BudgetSpec } from '../actions/budget/index.js';
import { formatIssue } from '../validation.js';
import { budgetBurn, budgetScopeValues, emptyRuleStats, noSessionUser, overviewFromStore, providerStats, ruleStats, secretFindings, sessions } from '../usage/dashboard.js';
import { filterRecords, parseFilter, parseWhen, type RecordFilter } from '../usage/report.js';
import { ADMIN_COOKIE, adminRefusal } from './admin/access.js';
import { providersStatus } from './admin/providers.js';

import { secretMatches } from './auth.js';
import { budgetKey, periodOf } from '../actions/budget/enforce.js';
import type { LiveLine } from './live.js';
import type { ProxyDeps } from './proxy.js';

type App = Hono<{ Bindings: HttpBindings }>;
type Ctx = Context<{ Bindings: HttpBindings }>;

/** How often the live tail writes the lines gathered since its last write, ms. */
const LIVE_FLUSH_MS = 250;

/** The sign-in cookie's name. */
/** Where the built dashboard lives: dist/ui beside the sources or the build (src/server and dist/server alike). */
const UI_DIR = path.resolve(import.meta.dirname, '../../dist/ui');

const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/** The built assets by name (`app-<hash>.js`, `app-<hash>.css`), read and gzip-compressed once. */
let built: { manifest: { js: string; css: string }; files: Map<string, { raw: Buffer; gzip: Buffer }> } | null = null;
function assets(): typeof built {
  if (built || !existsSync(path.join(UI_DIR, 'manifest.json'))) return built;
  const manifest = JSON.parse(readFileSync(path.join(UI_DIR, 'manifest.json'), 'utf8')) as { js: string; css: string };
  const files = new Map(
    [manifest.js, manifest.css].map((f) => {
      const raw = readFileSync(path.join(UI_DIR, f));
      return [f, { raw, gzip: gzipSync(raw, { level: 9 }) }] as const;
    }),
  );
  built = { manifest, files };
  return built;
}

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);

function page(c: Ctx, status: number, title: string, main: string): Response {
  const a = assets();
  const css = a ? `<link rel="stylesheet" href="/admin/ui/assets/${a.manifest.css}">` : '';
  const html = `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>${escapeHtml(title)}</title><link rel="icon" href="data:,">${css}</head><body>${main}</body></html>`;
  return c.html(html, status as 200, { 'content-security-policy': CSP, 'cache-control': 'no-store', 'x-content-type-options': 'nosniff', 'referrer-policy': 'no-referrer' });
}

const signIn = (message: string) =>
  `<main class="signin"><h1>Switchyard</h1><form method="post" action="/admin/ui/login"><label for="token">Admin token</label><input id="token" name="token" type="password" autocomplete="current-password" required><button type="submit">Sign in</button></form><p role="alert">${escapeHtml(message)}</p></main>`;

/** The page, its assets and the sign-in: registered before the admin guard. */
export function dashboardPages(app: App, deps: ProxyDeps): void {
  app.get('/admin/ui', (c) => c.redirect('/admin/ui/', 301));
  app.get('/admin/ui/', (c) => {
    const refused = adminRefusal(c, deps.runtime.current.config.admin.token);
    if (refused === 'token') return page(c, 401, 'Switchyard — sign in', signIn('This gateway has an admin token: sign in with it.'));
    if (refused === 'loopback') return page(c, 403, 'Switchyard', '<main><h1>Switchyard</h1><p>The dashboard is served to loopback addresses only while no admin.token is configured.</p></main>');
    const a = assets();
    if (!a) return page(c, 503, 'Switchyard', '<main><h1>Switchyard</h1><p>The dashboard is not built: run <code>npm run build</code>.</p></main>');
    return page(c, 200, 'Switchyard', `<div id="app"></div><script type="module" src="/admin/ui/assets/${a.manifest.js}"></script>`);
  });
  app.get('/admin/ui/assets/:file', (c) => {
    const file = assets()?.files.get(c.req.param('file'));
    if (!file) return c.text('not found', 404);
    const type = c.req.param('file').endsWith('.js') ? 'text/javascript; charset=utf-8' : 'text/css; charset=utf-8';
    // Content-hashed names: cached for a year, never revalidated; gzip when the browser takes it.
    const headers: Record<string, string> = { 'content-type': type, 'cache-control': 'public, max-age=31536000, immutable', 'x-content-type-options': 'nosniff', vary: 'accept-encoding' };
    if (/\bgzip\b/.test(c.req.header('accept-encoding') ?? '')) return c.body(new Uint8Array(file.gzip), 200, { ...headers, 'content-encoding': 'gzip' });
    return c.body(new Uint8Array(file.raw), 200, headers);
  });
  app.post('/admin/ui/login', async (c) => {
    const token = deps.runtime.current.config.admin.token;
    const form = await c.req.parseBody();
    const given = typeof form.token === 'string' ? form.token : '';
    if (!token || !secretMatches(given, token)) {
      return page(c, 401, 'Switchyard — sign in', signIn(token ? 'That is not the admin token.' : 'This gateway has no admin token; the dashboard is open on loopback addresses.'));
    }
    c.header('set-cookie', `${ADMIN_COOKIE}=${encodeURIComponent(given)}; HttpOnly; SameSite=Strict; Path=/admin${new URL(c.req.url).protocol === 'https:' ? '; Secure' : ''}`);
    return c.redirect('/admin/ui/', 303);
  });
}

/** The range and filters of a dashboard query: `since`, `until` (default: the last 7 days) and `where` filters. */
function range(c: Ctx): { since: string; until: string; filters: RecordFilter[] } {
  try {
    const filters = (c.req.queries('where') ?? []).filter(Boolean).map(parseFilter);
    if (filters.some((f) => f.by === 'rule')) throw new Error('the dashboard does not filter by rule; see its secret findings panel, or switchyard usage --by rule');
    return {
      since: parseWhen(c.req.query('since') ?? new Date(Date.now() - 7 * 86_400_000).toISOString()),
      until: parseWhen(c.req.query('until') ?? new Date(Date.now() + 1000).toISOString()),
      filters,
    };
  } catch (err) {
    throw new AdminQueryError('bad_query', (err as Error).message);
  }
}

/** The dashboard's JSON, under the admin guard. */
export function dashboardApi(app: App, deps: ProxyDeps): void {
  const records = async (since: string, until: string, filters: RecordFilter[] = []) => {
    if (!deps.ledger) throw new AdminQueryError('ledger_off', 'the usage ledger is off in this config (ledger: off): the dashboard has no figures to show');
    await deps.ledger.flush();
    return filterRecords(await deps.ledger.store.query(since, until), filters);
  };
  app.get('/admin/ui/api/overview', async (c) => {
    const { since, until, filters } = range(c);
    if (!deps.ledger) throw new AdminQueryError('ledger_off', 'the usage ledger is off in this config (ledger: off): the dashboard has no figures to show');
    await deps.ledger.flush();
    // Aggregated by the database, not over every record: a month of a team's requests is millions of rows.
    return c.json(await overviewFromStore(deps.ledger.store, since, until, filters));
  });
  app.get('/admin/ui/api/sessions', async (c) => {
    const { since, until, filters } = range(c);
    const activity = deps.ledger ? await deps.ledger.store.activity(since) : [];
    return c.json({ since, until, sessions: sessions(await records(since, until, filters), since, until, activity) });
  });
  app.get('/admin/ui/api/sessions/:id/requests', async (c) => {
    const { since, until } = range(c);
    const id = c.req.param('id');
    // A user's requests without a session id (the sessions view's per-user row).
    const user = noSessionUser(id);
    const filters: RecordFilter[] =
      user === null
        ? [{ by: 'session', value: id }]
        : [
            { by: 'session', value: '(none)' },
            { by: 'user', value: user },
          ];
    const list = (await records(since, until, filters)).map((r) => ({
      time: r.time,
      request_id: r.request_id,
      model: r.model,
      provider: r.provider,
      status: r.status,
      outcome: r.outcome,
      input_tokens: r.input_tokens,
      output_tokens: r.output_tokens,
      cache_read_tokens: r.cache_read_input_tokens,
      cache_write_tokens: r.cache_creation_input_tokens,
      cost_usd: r.cost_usd,
      latency_ms: r.latency_ms,
    }));
    return c.json({ session: id, requests: list });
  });
  app.get('/admin/ui/api/budgets', async (c) => {
    const now = new Date();
    const { rules } = deps.runtime.current;
    const specs: BudgetSpec[] = rules.rules.flatMap((r) => r.actions.filter((a) => a.name === 'budget').map((a) => ({ ...(a.compiled as Omit<BudgetSpec, 'rule'>), rule: r.id })));
    const out = [];
    for (const b of specs) {
      const { start, end } = periodOf(b.per, now);
      const recs = deps.ledger ? await records(start.toISOString(), now.toISOString()) : [];
      const spent = new Map<string, number>();
      for (const v of budgetScopeValues(b, recs)) spent.set(v, await deps.state.spend(budgetKey(b, v, start)));
      const values = budgetBurn(b, recs, start, end, now, spent).map((v) => ({ ...v, notified: deps.notifier.notified(b.rule, b.scope, v.value, start) }));
      out.push({ rule: b.rule, scope: b.scope, per: b.per, limit_usd: b.usd, notify: b.notify ?? [], block: b.block !== false, values });
    }
    return c.json({ budgets: out });
  });
  app.get('/admin/ui/api/rules', async (c) => {
    const { rules } = deps.runtime.current;
    const { since, until } = range(c);
    const stats = deps.ledger ? ruleStats(await records(since, until)) : {};
    const err = deps.runtime.lastError;
    return c.json({
      version: rules.version,
      loaded_at: rules.loadedAt,
      since,
      until,
      last_error: err ? { at: err.at, errors: err.issues.map(formatIssue) } : null,
      warnings: rules.warnings.map(formatIssue),
      rules: rules.rules.map((r) => ({
        id: r.id,
        file: r.file,
        line: r.line,
        description: r.description ?? null,
        actions: r.actions.map((a) => a.name),
        ...(stats[r.id] ?? emptyRuleStats()),
      })),
    });
  });
  app.get('/admin/ui/api/secrets', async (c) => {
    const { since, until, filters } = range(c);
    return c.json({ since, until, sessions: secretFindings(await records(since, until, filters)) });
  });
  app.post('/admin/ui/api/dry-run', async (c) => {
    const { config, rules } = deps.runtime.current;
    let input: { body?: unknown; headers?: Record<string, string>; path?: string };
    try {
      input = (await c.req.json()) as typeof input;
    } catch (err) {
      throw new AdminQueryError('bad_query', `the dry-run request is not JSON: ${(err as Error).message}`);
    }
    const body = input.body;
    if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new AdminQueryError('bad_query', 'dry-run: "body" must be a Messages request (a JSON object)');
    const headers = Object.fromEntries(Object.entries(input.headers ?? {}).map(([k, v]) => [k.toLowerCase(), String(v)]));
    const o = await decideOffline(config, rules, { body: body as Record<string, unknown>, headers, path: input.path ?? '/v1/messages' });
    return c.json(dryRunReport(o.decision, o.prepared));
  });
  app.get('/admin/ui/api/providers', async (c) => {
    const { since, until } = range(c);
    const status = await providersStatus(deps);
    const stats = deps.ledger ? providerStats(await records(since, until)) : {};
    return c.json({ ...status, providers: status.providers.map((p) => ({ ...p, stats: stats[p.name] ?? null })) });
  });
  app.get('/admin/ui/api/live', (c) => {
    const res = c.env.outgoing;
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache, no-transform', 'x-accel-buffering': 'no' });
    res.write(': live tail of finished requests\n\n');
    // Lines are batched and written four times a second: one write per batch, not one per request, so a watching
    // page costs the request path a push onto an array.
    let batch: LiveLine[] = [];
    const unsubscribe = deps.live.subscribe((line) => batch.push(line));
    const flush = setInterval(() => {
      if (!batch.length) return;
      const lines = batch;
      batch = [];
      res.write(lines.map((l) => `event: request\ndata: ${JSON.stringify(l)}\n\n`).join(''));
    }, LIVE_FLUSH_MS);
    const heartbeat = setInterval(() => res.write(': ping\n\n'), 15_000);
    res.once('close', () => {
      clearInterval(flush);
      clearInterval(heartbeat);
      unsubscribe();
    });
    return RESPONSE_ALREADY_SENT;
  });
}
