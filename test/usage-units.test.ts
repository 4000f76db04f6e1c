/**
 * Two read sides of the ledger, function-level: the activity report (`usage/activity.ts`: each Claude Code session's
 * spend beside the commits and pull requests it reported, as rows, CSV and a table) and `GET /v1/me/usage`
 * (`usage/me.ts`: a client's own spend today and this month, its cache hit share, and each budget that applies
 * to it with what is left, answered from a 5-second cache).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { budgetKey, periodOf } from '../src/actions/budget/enforce.js';
import { compileRuleSources } from '../src/rules/load.js';
import type { Snapshot } from '../src/runtime.js';
import { MemoryStore } from '../src/state/store.js';
import { activityReport, costPer, renderActivity } from '../src/usage/activity.js';
import type { SessionActivity } from '../src/usage/ledger.js';
import { MeUsageService } from '../src/usage/me.js';
import type { UsageRecord } from '../src/usage/record.js';

const rec = (over: Partial<UsageRecord>): UsageRecord =>
  ({ time: '2026-12-07T10:00:00.000Z', client_id: 'alice', session_id: null, cost_usd: 0, input_tokens: 0, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, ...over }) as UsageRecord;
const act = (over: Partial<SessionActivity>): SessionActivity =>
  ({ session_id: 's', user_id: 'u', commits: 0, pull_requests: 0, lines_added: 0, lines_removed: 0, active_time_s: 0, updated_at: '2026-12-07T12:00:00.000Z', ...over }) as SessionActivity;

describe('the activity report', () => {
  test('each reporting session gets its requests and spend from the ledger, and the cost per commit and per pull request', async () => {
    let asked: [string, string] | null = null;
    const store = {
      activity: async (since: string) => {
        assert.equal(since, '2026-12-01T00:00:00.000Z');
        return [act({ session_id: 's1', user_id: 'alice', commits: 3, pull_requests: 1, lines_added: 120, lines_removed: 7, active_time_s: 900 }), act({ session_id: 's2', user_id: 'bob' })];
      },
      query: async (since: string, until: string) => {
        asked = [since, until];
        return [
          rec({ session_id: 's1', cost_usd: 0.1 }),
          rec({ session_id: 's1', cost_usd: 0.2 }),
          rec({ session_id: 's1', cost_usd: null as never }),
          rec({ session_id: null, cost_usd: 5 }),
          rec({ session_id: 's-other', cost_usd: 9 }),
        ];
      },
    };
    const rows = await activityReport(store as never, '2026-12-01T00:00:00.000Z');
    assert.equal(asked![0], '2026-12-01T00:00:00.000Z');
    assert.ok(Date.parse(asked![1]) > Date.now(), 'records up to now are counted');
    assert.deepEqual(rows, [
      {
        session_id: 's1',
        user_id: 'alice',
        requests: 3,
        cost_usd: 0.3,
        commits: 3,
        pull_requests: 1,
        lines_added: 120,
        lines_removed: 7,
        active_time_s: 900,
        usd_per_commit: 0.1,
        usd_per_pull_request: 0.3,
      },
      {
        session_id: 's2',
        user_id: 'bob',
        requests: 0,
        cost_usd: 0,
        commits: 0,
        pull_requests: 0,
        lines_added: 0,
        lines_removed: 0,
        active_time_s: 0,
        usd_per_commit: null,
        usd_per_pull_request: null,
      },
    ]);
    assert.deepEqual(await activityReport({ activity: async () => [], query: async () => assert.fail('no activity, no query') } as never, 'x'), []);
  });

  test('cost per unit: to the micro-dollar, null for none', () => {
    assert.equal(costPer(1, 3), 0.333333);
    assert.equal(costPer(2, 1), 2);
    assert.equal(costPer(2, 0), null);
  });

  test('rendered as JSON, as CSV with quoting, and as an aligned table; an empty table says why', () => {
    const row = {
      session_id: 'a,b',
      user_id: 'say "hi"',
      requests: 2,
      cost_usd: 0.5,
      commits: 1,
      pull_requests: 0,
      lines_added: 3,
      lines_removed: 1,
      active_time_s: 60,
      usd_per_commit: 0.5,
      usd_per_pull_request: null,
    };
    assert.deepEqual(JSON.parse(renderActivity([row], 'json')), [row]);
    const csv = renderActivity([row], 'csv').split('\n');
    assert.equal(csv[0], 'session_id,user_id,requests,cost_usd,commits,pull_requests,lines_added,lines_removed,active_time_s,usd_per_commit,usd_per_pull_request');
    assert.equal(csv[1], '"a,b","say ""hi""",2,0.5,1,0,3,1,60,0.5,');
    assert.equal(renderActivity([], 'csv'), csv[0]);
    const table = renderActivity([row, { ...row, session_id: 'a-much-longer-session-id', user_id: 'u' }], 'table').split('\n');
    assert.equal(table.length, 3);
    assert.ok(table[0]!.startsWith('session_id                user_id   '), table[0]);
    assert.equal(table[1]!.indexOf('say'), table[0]!.indexOf('user_id'), 'columns line up');
    assert.equal(table[2]!.indexOf('2'), table[0]!.indexOf('requests'));
    assert.match(renderActivity([], 'table'), /^no session has reported activity/);
  });
});

describe('/v1/me/usage', () => {
  const now = new Date('2026-12-07T15:00:00.000Z');
  const rules = compileRuleSources(
    [
      {
        file: '10.yaml',
        text: `version: 1
rules:
  - id: daily
    actions: [ { budget: { scope: client, usd: 10, per: day } } ]
  - id: bob-monthly
    match: { key: bob }
    actions: [ { budget: { scope: client, usd: 100, per: month } } ]
`,
      },
    ],
    ['anthropic'],
  );
  const snapshot = { rules, config: { default_provider: 'anthropic' } } as unknown as Snapshot;
  const records = [
    rec({ time: '2026-12-07T09:00:00.000Z', cost_usd: 1.5, input_tokens: 100, cache_creation_input_tokens: 100, cache_read_input_tokens: 800 }),
    rec({ time: '2026-12-03T09:00:00.000Z', cost_usd: 2.25, input_tokens: 1000 }),
    rec({ time: '2026-12-07T09:30:00.000Z', client_id: 'bob', cost_usd: 40 }),
  ];

  test("a client's spend today and this month, its cache hit share, and each budget that applies with what is left", async () => {
    const state = new MemoryStore(() => now.getTime());
    const daily = rules.rules[0]!.actions[0]!.compiled as never;
    await state.addSpend(budgetKey({ ...(daily as object), rule: 'daily' } as never, 'alice', periodOf('day', now).start), 12.5, now.getTime() + 86_400_000);
    let queried: string[] = [];
    const ledger = {
      query: async (since: string, until: string) => {
        queried = [since, until];
        return records;
      },
    };
    const me = await new MeUsageService(ledger, state).usage(snapshot, 'alice', undefined, {}, now);
    assert.deepEqual(queried, ['2026-12-01T00:00:00.000Z', '2026-12-07T15:00:01.000Z']);
    assert.deepEqual(me, {
      client: 'alice',
      today: { since: '2026-12-07T00:00:00.000Z', usd: 1.5, requests: 1 },
      month: { since: '2026-12-01T00:00:00.000Z', usd: 3.75, requests: 2, cache_hit_share: 0.4 },
      budgets: [{ rule: 'daily', scope: 'client', value: 'alice', per: 'day', limit_usd: 10, spent_usd: 12.5, remaining_usd: 0, resets_at: '2026-12-08T00:00:00.000Z' }],
    });
    const bob = await new MeUsageService(ledger, new MemoryStore(() => now.getTime())).usage(snapshot, 'bob', undefined, {}, now);
    assert.deepEqual(
      bob.budgets.map((b) => [b.rule, b.limit_usd, b.spent_usd, b.remaining_usd, b.resets_at]),
      [
        ['daily', 10, 0, 10, '2026-12-08T00:00:00.000Z'],
        ['bob-monthly', 100, 0, 100, '2027-01-01T00:00:00.000Z'],
      ],
    );
    assert.deepEqual([bob.today.usd, bob.month.cache_hit_share], [40, 0], 'no input tokens: a share of 0, not NaN');
  });

  test('answers are kept per client for 5 s; without a ledger the spend is 0; admin limits are applied', async () => {
    let queries = 0;
    const ledger = {
      query: async () => {
        queries++;
        return records;
      },
    };
    const svc = new MeUsageService(ledger, new MemoryStore());
    const first = await svc.usage(snapshot, 'alice', undefined, {}, now);
    assert.equal(await svc.usage(snapshot, 'alice', undefined, {}, now), first, 'the same answer from the cache');
    assert.equal(queries, 1);
    await svc.usage(snapshot, 'bob', undefined, {}, now);
    assert.equal(queries, 2, 'each client has its own entry');
    const none = await new MeUsageService(null, new MemoryStore()).usage(snapshot, 'alice', undefined, {}, now);
    assert.deepEqual([none.today, none.month.usd, none.month.requests], [{ since: '2026-12-07T00:00:00.000Z', usd: 0, requests: 0 }, 0, 0]);
    const limits = { apply: (budgets: unknown[]) => [...budgets, { rule: 'limit:user:alice', scope: 'client', usd: 5, per: 'week' }] };
    const limited = await new MeUsageService(null, new MemoryStore(), limits as never).usage(snapshot, 'alice', undefined, {}, now);
    assert.deepEqual(
      limited.budgets.map((b) => [b.rule, b.per, b.resets_at]),
      [
        ['daily', 'day', '2026-12-08T00:00:00.000Z'],
        ['limit:user:alice', 'week', periodOf('week', now).end.toISOString()],
      ],
    );
  });
});
