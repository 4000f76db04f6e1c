/** Spend limits in the wire shape of Anthropic's Admin API, as admin routes (usage/spend-limits.ts holds the logic). */
import type { HttpBindings } from '@hono/node-server';
import type { Hono } from 'hono';
import { AdminQueryError } from '../../errors.js';
import { toWire } from '../../usage/spend-limits.js';
import type { ProxyDeps } from '../proxy.js';

/** The Hono app of the gateway's routes. */
type App = Hono<{ Bindings: HttpBindings }>;

/** Spend limits in the wire shape of Anthropic's Admin API (usage/spend-limits.ts). */
export function spendLimitRoutes(app: App, deps: ProxyDeps): void {
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
}
