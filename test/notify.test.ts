/**
 * Budget thresholds (issue 35; docs/rules.md `budget.notify`): a threshold is notified when spend reaches it — exactly
 * reaching counts, whatever the binary rounding of threshold × limit (0.1 × $3 is 0.30000000000000004 in doubles) — once
 * per threshold and period, and not a micro-dollar before.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { createLogger } from '../src/log.js';
import { MemoryStore } from '../src/state/store.js';
import { BudgetNotifier } from '../src/usage/notify.js';
import { LogCapture, until } from './helpers.js';

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

/** A logger whose lines are kept as objects. */
function capturedLog() {
  const capture = new LogCapture();
  return { lines: capture.lines, log: createLogger({ level: 'info', destination: capture }) };
}

test('each threshold reached is logged with its budget, scope, value and amounts; the dashboard sees when, and whether delivered', async () => {
  const { lines, log } = capturedLog();
  const n = new BudgetNotifier(null, null, new MemoryStore(), log);
  const before = Date.now();
  await n.reached({ ...budget, notify: [0.5, 0.8] }, 'search', 2.5, period, period.end.getTime());
  assert.deepEqual(
    lines.map((l) => [l.msg, l.budget, l.scope, l.value, l.threshold, l.spent_usd, l.limit_usd]),
    [
      ['budget "team-daily" reached 50% for tag:team "search"', 'team-daily', 'tag:team', 'search', 0.5, 2.5, 3],
      ['budget "team-daily" reached 80% for tag:team "search"', 'team-daily', 'tag:team', 'search', 0.8, 2.5, 3],
    ],
  );
  const seen = n.notified('team-daily', 'tag:team', 'search', period.start);
  assert.deepEqual(
    seen.map((s) => [s.threshold, s.delivered]),
    [
      [0.5, true],
      [0.8, true],
    ],
    'no webhook: nothing pending',
  );
  assert.ok(seen.every((s) => s.time !== null && Date.parse(s.time) >= before - 1));
  assert.deepEqual(n.notified('team-daily', 'tag:team', 'other', period.start), [], 'another value has its own');
  assert.deepEqual(n.notified('team-daily', 'tag:team', 'search', new Date(period.start.getTime() - 86_400_000)), [], 'another period has its own');
  assert.equal(n.pending, 0);
  n.close();
});

test('a threshold another replica sent is remembered without a time; one this gateway queued is undelivered until the webhook answers', async () => {
  const store = new MemoryStore();
  const other = new BudgetNotifier(null, null, store, createLogger({ level: 'silent' }));
  await other.reached({ ...budget, notify: [0.5] }, 'search', 2, period, period.end.getTime());
  const webhook = { url: 'http://127.0.0.1:1/never', timeoutMs: 200 };
  const here = new BudgetNotifier(webhook, null, store, createLogger({ level: 'silent' }));
  await here.reached({ ...budget, notify: [0.5, 0.9] }, 'search', 2.8, period, period.end.getTime());
  const seen = here.notified('team-daily', 'tag:team', 'search', period.start);
  assert.deepEqual(
    seen.map((s) => [s.threshold, s.delivered, s.time === null]),
    [
      [0.5, true, false],
      [0.9, false, false],
    ],
  );
  assert.equal(here.pending, 1, 'only the one this gateway sends');
  here.close();
  other.close();
});

test('a failed delivery backs off from 1 s, doubling; each failure is logged with the notification id', async () => {
  // The receiver notes when each attempt arrives: the backoff is measured from there, not from when the test looks.
  const arrivals: number[] = [];
  const receiver = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      arrivals.push(Date.now());
      res.writeHead(500).end();
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(receiver.address() as { port: number }).port}/budgets`;
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'switchyard-notify-')), 'nested', 'state.json');
  const { lines, log } = capturedLog();
  const n = new BudgetNotifier({ url, timeoutMs: 2000 }, file, new MemoryStore(), log);
  const id = `team-daily:tag:team:search:${period.start.toISOString().slice(0, 10)}:1`;
  try {
    await n.reached({ ...budget, notify: [1] }, 'search', 3, period, period.end.getTime());
    const saved = () => JSON.parse(readFileSync(file, 'utf8')) as { pending: Array<{ attempts: number; next: number }> };
    await until(() => saved().pending[0]?.attempts === 1, 5000, 'first attempt');
    const next1 = saved().pending[0]!.next - arrivals[0]!;
    assert.ok(next1 >= 1000 && next1 < 3000, `the next attempt 1 s after the failed one: ${next1}`);
    await until(() => saved().pending[0]?.attempts === 2, 8000, 'second attempt');
    assert.ok(arrivals[1]! - arrivals[0]! >= 995, `not retried before its time: ${arrivals[1]! - arrivals[0]!}`);
    const next2 = saved().pending[0]!.next - arrivals[1]!;
    assert.ok(next2 >= 2000 && next2 < 4000, `then 2 s: ${next2}`);
    const warn = lines.filter((l) => l.msg === 'notification webhook answered 500; retrying');
    assert.deepEqual(
      warn.map((l) => [l.status, l.notification]),
      [
        [500, id],
        [500, id],
      ],
    );
  } finally {
    n.close();
    receiver.close();
  }
  const unreachable = capturedLog();
  const down = new BudgetNotifier({ url: 'http://127.0.0.1:1/never', timeoutMs: 200 }, null, new MemoryStore(), unreachable.log);
  try {
    await down.reached({ ...budget, notify: [1] }, 'search', 3, period, period.end.getTime());
    await until(() => unreachable.lines.some((l) => l.msg === 'notification webhook unreachable; retrying'), 5000, 'the unreachable receiver is logged');
    assert.equal(unreachable.lines.find((l) => l.msg === 'notification webhook unreachable; retrying')!.notification, id);
    assert.equal(down.pending, 1);
  } finally {
    down.close();
  }
});

test('start-up: markers of ended periods are forgotten; an unreadable state file is logged and the notifier starts empty; a missing one is fine', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'switchyard-notify-'));
  const file = path.join(dir, 'state.json');
  const id = (v: string) => `team-daily:tag:team:${v}:${period.start.toISOString().slice(0, 10)}:0.5`;
  writeFileSync(
    file,
    JSON.stringify({ sent: { [id('old')]: Date.now() - 1, [id('live')]: Date.now() + 60_000 }, reachedAt: { [id('old')]: 'x', [id('live')]: '2026-12-07T01:00:00.000Z' }, pending: [] }),
  );
  const n = new BudgetNotifier(null, file, new MemoryStore(), createLogger({ level: 'silent' }));
  assert.deepEqual(n.notified('team-daily', 'tag:team', 'old', period.start), [], 'an ended marker is forgotten');
  assert.deepEqual(n.notified('team-daily', 'tag:team', 'live', period.start), [{ threshold: 0.5, time: '2026-12-07T01:00:00.000Z', delivered: true }]);
  n.close();
  writeFileSync(file, '{ not json');
  const { lines, log } = capturedLog();
  const broken = new BudgetNotifier(null, file, new MemoryStore(), log);
  assert.equal(broken.pending, 0);
  assert.deepEqual(
    lines.map((l) => [l.level, l.msg, l.file]),
    [[50, 'budget notification state unreadable; starting empty', file]],
  );
  broken.close();
  const quiet = capturedLog();
  new BudgetNotifier(null, path.join(dir, 'missing.json'), new MemoryStore(), quiet.log).close();
  assert.deepEqual(quiet.lines, [], 'a missing state file is a first start, not an error');
});

test('secrets: one notification per request for what was first seen, each secret once per session; logged without values', async () => {
  const { lines, log } = capturedLog();
  const sent: Array<Record<string, unknown>> = [];
  const n = new BudgetNotifier(null, null, new MemoryStore(), log);
  (n as unknown as { enqueue(x: Record<string, unknown>): void }).enqueue = (x) => void sent.push(x);
  const who = { request_id: 'req-1', session_id: 'sess-1', user_id: 'ann', client_id: 'alice' };
  const findings = [
    { rule: 'aws-access-token', where: 'messages[0]', block: 'text', placeholder: '[AWS-1]', first_seen: true },
    { rule: 'github-pat', where: 'messages[0]', block: 'text', placeholder: '[GH-1]', first_seen: false },
  ];
  await n.secretsFound({ rule: 'guard', on_find: 'redact', findings }, who);
  assert.equal(sent.length, 1);
  const { time, ...rest } = sent[0] as { time: string };
  assert.ok(Date.parse(time) > 0);
  assert.deepEqual(rest, {
    type: 'secret.found',
    id: 'secret:req-1',
    rule: 'guard',
    on_find: 'redact',
    request_id: 'req-1',
    session_id: 'sess-1',
    user_id: 'ann',
    client_id: 'alice',
    findings: [{ rule: 'aws-access-token', where: 'messages[0]', block: 'text', placeholder: '[AWS-1]' }],
  });
  assert.deepEqual(
    lines.map((l) => [l.msg, l.rule, l.request_id, l.secret_rules]),
    [['scan_secrets found 1 secret(s) (redact)', 'guard', 'req-1', ['aws-access-token']]],
  );
  await n.secretsFound({ rule: 'guard', on_find: 'redact', findings }, { ...who, request_id: 'req-2' });
  assert.equal(sent.length, 1, 'the same secret in the same session is not notified again');
  await n.secretsFound({ rule: 'guard', on_find: 'redact', findings }, { ...who, request_id: 'req-3', session_id: null });
  assert.equal(sent.length, 2, 'without a session, per request');
  const failing = new BudgetNotifier(null, null, { addSpend: () => Promise.reject(new Error('redis down')) } as never, log);
  await failing.secretsFound({ rule: 'guard', on_find: 'block', findings }, who);
  assert.equal(lines.at(-1)!.msg, 'could not queue the secret.found notification');
  assert.equal(lines.at(-1)!.request_id, 'req-1');
  n.close();
  failing.close();
});
