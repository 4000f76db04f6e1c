/**
 * Budget thresholds (issue 35; docs/rules.md `budget.notify`): a threshold is notified when spend reaches it — exactly
 * reaching counts, whatever the binary rounding of threshold × limit (0.1 × $3 is 0.30000000000000004 in doubles) — once
 * per threshold and period, and not a micro-dollar before.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createLogger } from '../src/log.js';
import { MemoryStore } from '../src/state/store.js';
import { BudgetNotifier } from '../src/usage/notify.js';

const period = { start: new Date('2026-12-01T00:00:00Z'), end: new Date('2026-12-02T00:00:00Z') };
const budget = { rule: 'team-daily', scope: 'tag:team', usd: 3, per: 'day' as const, notify: [0.1, 0.7, 1] };

test('spend exactly at a threshold notifies it (0.1, 0.7 and 1 of $3), once; a micro-dollar less does not', async () => {
  const n = new BudgetNotifier(null, null, new MemoryStore(), createLogger({ level: 'silent' }));
  const thresholds = () => n.notified(budget.rule, budget.scope, 'search', period.start).map((s) => s.threshold);
  await n.reached(budget, 'search', 0.299999, period, period.end.getTime());
  assert.deepEqual(thresholds(), [], 'a micro-dollar short of 10 %');
  await n.reached(budget, 'search', 0.3, period, period.end.getTime());
  assert.deepEqual(thresholds(), [0.1], 'exactly $0.30 is 10 % of $3');
  await n.reached(budget, 'search', 2.1, period, period.end.getTime());
  assert.deepEqual(thresholds(), [0.1, 0.7], 'exactly $2.10 is 70 %');
  await n.reached(budget, 'search', 3, period, period.end.getTime());
  await n.reached(budget, 'search', 4, period, period.end.getTime());
  assert.deepEqual(thresholds(), [0.1, 0.7, 1], 'each once');
  n.close();
});
