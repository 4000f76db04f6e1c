/**
 * One scope definition (actions/scope.ts, issue 31): a request whose facts are missing (no credential, no
 * session, no project, no user id, untagged) is filed under the same budget key by enforcement (a live request),
 * by the start-up seed (its usage record, from the ledger) and by the dashboard (the same record) — for every
 * scope kind.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { budgetKey, checkBudgets, periodOf } from '../src/actions/budget/enforce.js';
import { seedBudgets } from '../src/actions/budget/seed.js';
import { recordScopeValue, scopeValue } from '../src/actions/scope.js';
import { buildContext } from '../src/rules/context.js';
import { evaluate } from '../src/rules/evaluate.js';
import { compileRuleSources } from '../src/rules/load.js';
import { MemoryStore } from '../src/state/store.js';
import { budgetScopeValues } from '../src/usage/dashboard.js';
import type { LedgerStore } from '../src/usage/ledger.js';
import type { UsageRecord } from '../src/usage/record.js';

const SCOPES = ['global', 'client', 'key', 'user', 'session', 'model', 'project', 'tag:team'] as const;

test('a record with missing fields is filed under the same key by enforcement, the start-up seed and the dashboard', async () => {
  const now = new Date('2026-12-07T12:00:00Z');
  const rules = compileRuleSources(
    [
      {
        file: 'rules/10.yaml',
        text: `version: 1\nrules:\n${SCOPES.map((s, i) => `  - id: b${i}\n    actions: [ { budget: { scope: "${s}", usd: 100, per: day } } ]\n`).join('')}  - id: route\n    actions: [ { route_to: { provider: anthropic } } ]\n`,
      },
    ],
    ['anthropic'],
  );
  // A live request with nothing to go on: no credential, no session header or metadata, no project header.
  const body = { model: 'claude-sonnet-4-6', max_tokens: 5, messages: [{ role: 'user', content: 'hi' }] };
  const rc = buildContext({ path: '/v1/messages', body, headers: {}, bodyBytes: 80, now });
  const d = await evaluate(rules, rc, 'anthropic');
  const live = await checkBudgets(d, rc, new MemoryStore(), now);
  // Its usage record as the record stage writes it for such a request (client and user as the exchange names them).
  const record = {
    time: now.toISOString(),
    request_id: 'sy_missing',
    client_id: rc.client.id,
    user_id: null,
    session_id: null,
    project: null,
    model: 'claude-sonnet-4-6',
    rules: d.rules.filter((r) => r.matched).map((r) => r.id),
    tags: {},
    cost_usd: 0.25,
  } as unknown as UsageRecord;
  const store = new MemoryStore(() => now.getTime());
  const ledger = { costByDay: async () => [record] } as unknown as LedgerStore;
  assert.equal(await seedBudgets(rules, ledger, store, now), SCOPES.length);
  for (const [i, scope] of SCOPES.entries()) {
    const b = d.budgets.find((x) => x.rule === `b${i}`)!;
    const charge = live.charges.find((c) => c.budget.rule === b.rule)!;
    const start = periodOf('day', now).start;
    assert.equal(recordScopeValue(scope, record), scopeValue(scope, rc, d), `${scope}: the record's value is the live one`);
    assert.equal(await store.spend(charge.key), 0.25, `${scope}: the seed filed the record's cost under the key enforcement charges (${charge.key})`);
    assert.deepEqual(budgetScopeValues(b, [record]), [charge.value], `${scope}: the dashboard shows it under the same value`);
    assert.equal(budgetKey(b, charge.value, start), charge.key);
  }
  // The values themselves, so a change to a fallback shows here and not only as a disagreement.
  assert.deepEqual(Object.fromEntries(SCOPES.map((s) => [s, scopeValue(s, rc, d)])), {
    global: '*',
    client: 'anonymous',
    key: 'anonymous',
    user: 'anonymous',
    session: 'client:anonymous',
    model: 'claude-sonnet-4-6',
    project: '(no project)',
    'tag:team': '(untagged)',
  });
});

test('a record refused before anything was known: no client is anonymous, no user is the client, no model is (none)', async () => {
  const { recordScopeFacts } = await import('../src/actions/scope.js');
  assert.deepEqual(recordScopeFacts({ client_id: null, session_id: null, model: null, user_id: null, project: null, tags: {} }), {
    client: 'anonymous',
    session: null,
    model: '(none)',
    user: 'anonymous',
    project: null,
    tags: {},
  });
  assert.equal(recordScopeFacts({ client_id: 'fp-1', session_id: null, model: 'm', user_id: null, project: null, tags: {} }).user, 'fp-1');
});
