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

// Today's period (a period already over would let its markers expire at once).
const dayStart = new Date(`${new Date().toISOString().slice(0, 10)}T00:00:00Z`);
const period = { start: dayStart, end: new Date(dayStart.getTime() + 86_400_000) };
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

test('a notification is POSTed with its documented fields; while the receiver fails it stays pending (in the state file too) and is retried; a restart neither loses nor repeats it', async () => {
  const { createServer } = await import('node:http');
  const { mkdtempSync, readFileSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const path = await import('node:path');
  let failing = true;
  const got: Array<Record<string, unknown>> = [];
  const receiver = createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => {
      if (failing) return res.writeHead(500).end();
      assert.equal(req.headers['content-type'], 'application/json');
      got.push(JSON.parse(Buffer.concat(parts).toString()) as Record<string, unknown>);
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  const webhook = { url: `http://127.0.0.1:${(receiver.address() as { port: number }).port}/budgets`, timeoutMs: 2000 };
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'switchyard-notify-')), 'state.json');
  const store = new MemoryStore();
  const log = createLogger({ level: 'silent' });
  const first = new BudgetNotifier(webhook, file, store, log);
  try {
    await first.reached({ ...budget, notify: [0.5] }, 'search', 1.6, period, period.end.getTime());
    const { until } = await import('./helpers.js');
    await until(() => JSON.parse(readFileSync(file, 'utf8')).pending[0]?.attempts >= 1, 5000, 'the first attempt failed');
    assert.equal(first.pending, 1);
    assert.deepEqual(
      first.notified(budget.rule, budget.scope, 'search', period.start).map((n) => [n.threshold, n.delivered]),
      [[0.5, false]],
    );
    first.close();
    // A restart: the pending notification and the record of what was reached come back from the file.
    failing = false;
    const second = new BudgetNotifier(webhook, file, store, log);
    await second.reached({ ...budget, notify: [0.5] }, 'search', 1.7, period, period.end.getTime());
    await until(() => got.length === 1 && second.pending === 0, 8000, 'delivered after the restart');
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(got.length, 1, 'once');
    assert.deepEqual(Object.keys(got[0]!).sort(), ['budget', 'id', 'limit_usd', 'period', 'period_start', 'resets_at', 'scope', 'spent_usd', 'threshold', 'time', 'type', 'value']);
    assert.deepEqual(
      {
        type: got[0]!.type,
        budget: got[0]!.budget,
        scope: got[0]!.scope,
        value: got[0]!.value,
        period: got[0]!.period,
        limit_usd: got[0]!.limit_usd,
        spent_usd: got[0]!.spent_usd,
        threshold: got[0]!.threshold,
      },
      { type: 'budget.threshold', budget: 'team-daily', scope: 'tag:team', value: 'search', period: 'day', limit_usd: 3, spent_usd: 1.6, threshold: 0.5 },
    );
    assert.equal(got[0]!.id, `team-daily:tag:team:search:${dayStart.toISOString().slice(0, 10)}:0.5`);
    assert.equal(got[0]!.resets_at, period.end.toISOString());
    assert.deepEqual(
      second.notified(budget.rule, budget.scope, 'search', period.start).map((n) => [n.threshold, n.delivered]),
      [[0.5, true]],
    );
    second.close();
  } finally {
    receiver.close();
  }
});

test('replicas sharing the state store send a threshold once: the second only remembers it', async () => {
  const store = new MemoryStore();
  const log = createLogger({ level: 'silent' });
  const sent: string[] = [];
  const a = new BudgetNotifier(null, null, store, log);
  const b = new BudgetNotifier(null, null, store, log);
  for (const n of [a, b]) await n.reached({ ...budget, notify: [0.5] }, 'infra', 2, period, period.end.getTime());
  for (const n of [a, b]) sent.push(...n.notified(budget.rule, budget.scope, 'infra', period.start).map((x) => `${x.threshold}`));
  assert.deepEqual(sent, ['0.5', '0.5'], 'both know it was reached');
  assert.equal(await store.spend(`notified:team-daily:tag:team:infra:${dayStart.toISOString().slice(0, 10)}:0.5`), 2, 'two replicas counted the one marker');
  a.close();
  b.close();
});
