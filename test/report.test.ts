/**
 * Usage reports (usage/report.ts, usage/usage-query.ts): every dimension and its word for a missing value, filters,
 * sums and rounding, row order, the three formats, range forms, and which source a query reads.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import path from 'node:path';
import { buildReport, csvCell, filterRecords, type GroupBy, isGroupBy, keyOf, keysOf, parseFilter, parseWhen, renderReport } from '../src/usage/report.js';
import { loadPrices } from '../src/usage/prices.js';
import type { SummaryQuery } from '../src/usage/summary.js';
import { renderUsageAnswer, reportFromSummary, runUsageQuery, type UsageQuery, UsageQueryError } from '../src/usage/usage-query.js';
import { usageRecord } from './helpers.js';
import type { UsageRecord } from '../src/usage/record.js';

const rec = (model: string, cost: number) =>
  ({
    time: '2026-12-07T10:00:00Z',
    model,
    provider: 'anthropic',
    client_id: 'alice',
    session_id: null,
    user_id: null,
    project: null,
    agent_id: null,
    tags: {},
    input_tokens: 100,
    output_tokens: 10,
    cache_creation_input_tokens: 0,
    cache_creation_5m_input_tokens: 0,
    cache_creation_1h_input_tokens: 0,
    cache_read_input_tokens: 0,
    cost_usd: cost,
    outcome: 'ok',
    status: 200,
  }) as unknown as UsageRecord;

test('without --by the table has one labelled TOTAL row', () => {
  const lines = renderReport(buildReport([rec('a', 0.5), rec('b', 0.25)], [], 's', 'u'), 'table').split('\n');
  assert.equal(lines.length, 3, lines.join('\n'));
  assert.match(lines[2]!, /^TOTAL\s+2\s+200\s+20\s+0\s+0\s+0\.75\s/);
});

test('with --by each group is a row named by its value, then TOTAL', () => {
  const lines = renderReport(buildReport([rec('a', 0.5), rec('b', 0.25), rec('a', 0.5)], ['model'], 's', 'u'), 'table').split('\n');
  assert.deepEqual(
    lines.slice(2).map((l) => l.split(/\s+/).slice(0, 2)),
    [
      ['a', '2'],
      ['b', '1'],
      ['TOTAL', '3'],
    ],
  );
});

// --- Every dimension, filter, order, format and range form of a usage report (usage/report.ts, usage/usage-query.ts).

const full = (over: Partial<UsageRecord> & { request_id: string }): UsageRecord => usageRecord({ time: '2026-12-07T10:30:00.000Z', ...over });

test('keyOf and keysOf: each dimension as reports show it, with its own word for a missing value', () => {
  const r = full({ request_id: 'a', model: 'm', client_id: 'c', session_id: 's', user_id: 'u', project: 'p', agent_id: 'ag', provider: 'pr', tags: { team: 't' }, secret_findings: { b: 1, a: 2 } });
  const none = full({ request_id: 'b', model: null, client_id: null, session_id: null, user_id: null, project: null, agent_id: null, provider: null, tags: {}, secret_findings: {} });
  const dims: GroupBy[] = ['model', 'client', 'session', 'user', 'project', 'agent', 'provider', 'day', 'tag:team', 'rule'];
  assert.deepEqual(
    dims.map((d) => keyOf(r, d)),
    ['m', 'c', 's', 'u', 'p', 'ag', 'pr', '2026-12-07', 't', 'a, b'],
  );
  assert.deepEqual(
    dims.map((d) => keyOf(none, d)),
    ['(none)', '(none)', '(none)', '(none)', '(none)', '(main)', '(none)', '2026-12-07', '(untagged)', '(none)'],
  );
  assert.deepEqual(keysOf(r, 'rule'), ['a', 'b']);
  assert.deepEqual(keysOf(r, 'model'), ['m']);
  assert.deepEqual(keysOf(none, 'rule'), ['(none)']);
  assert.deepEqual(keysOf(full({ request_id: 'k', kind: 'batch' }), 'kind'), ['batch']);
  assert.deepEqual(keysOf(full({ request_id: 'k0' }), 'kind'), ['message'], 'a record from before kinds is an interactive call');
});

test('isGroupBy and parseFilter accept the documented dimensions and name them when refusing', () => {
  for (const ok of ['model', 'client', 'session', 'user', 'project', 'agent', 'day', 'provider', 'rule', 'kind', 'tag:team', 'tag:cost_centre2']) assert.equal(isGroupBy(ok), true, ok);
  for (const bad of ['models', 'tag:', 'tag:Team', 'tag:2x', 'tag:team-x', '', 'Model']) assert.equal(isGroupBy(bad), false, bad);
  assert.deepEqual(parseFilter('user=alice'), { by: 'user', value: 'alice' });
  assert.deepEqual(parseFilter('tag:team=a=b'), { by: 'tag:team', value: 'a=b' }, 'the value is everything after the first =');
  assert.deepEqual(parseFilter('model='), { by: 'model', value: '' });
  for (const bad of ['day=2026-12-07', '=x', 'user', 'nope=1'])
    assert.throws(
      () => parseFilter(bad),
      new RegExp(`filter "${bad}": expected DIMENSION=VALUE with DIMENSION one of tag:NAME, model, client, session, user, project, agent, provider, rule or kind$`),
      bad,
    );
});

test('filterRecords keeps the records every filter holds for', () => {
  const rs = [full({ request_id: 'a', user_id: 'u1', model: 'x' }), full({ request_id: 'b', user_id: 'u1', model: 'y' }), full({ request_id: 'c', user_id: null, model: 'x' })];
  assert.equal(filterRecords(rs, []), rs, 'no filter: the same list');
  assert.deepEqual(
    filterRecords(rs, [{ by: 'user', value: 'u1' }]).map((r) => r.request_id),
    ['a', 'b'],
  );
  assert.deepEqual(
    filterRecords(rs, [
      { by: 'user', value: 'u1' },
      { by: 'model', value: 'x' },
    ]).map((r) => r.request_id),
    ['a'],
  );
  assert.deepEqual(
    filterRecords(rs, [{ by: 'user', value: '(none)' }]).map((r) => r.request_id),
    ['c'],
  );
});

test('buildReport sums every metric, rounds cost and hit ratio, counts unpriced requests apart and orders rows', () => {
  const rs = [
    full({ request_id: 'a', model: 'x', input_tokens: 10, output_tokens: 5, cache_creation_input_tokens: 20, cache_read_input_tokens: 70, cost_usd: 0.1234564 }),
    full({ request_id: 'b', model: 'x', input_tokens: 1, output_tokens: 1, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, cost_usd: null }),
    full({ request_id: 'c', model: 'y', input_tokens: 3, output_tokens: 0, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, cost_usd: 0.5 }),
    full({ request_id: 'd', model: 'z', input_tokens: 0, output_tokens: 0, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, cost_usd: 0.5 }),
    full({ request_id: 'e', model: 'z', input_tokens: 0, output_tokens: 0, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, cost_usd: 0 }),
  ];
  const report = buildReport(rs, ['model'], 'S', 'U');
  assert.equal(report.since, 'S');
  assert.equal(report.until, 'U');
  assert.deepEqual(report.by, ['model']);
  // Most cost first; equal cost: more requests first; then by group.
  assert.deepEqual(
    report.rows.map((r) => [r.group.model, r.requests, r.cost_usd]),
    [
      ['z', 2, 0.5],
      ['y', 1, 0.5],
      ['x', 2, 0.123456],
    ],
  );
  const x = report.rows.find((r) => r.group.model === 'x')!;
  assert.deepEqual(
    { ...x, group: undefined },
    // biome-ignore lint/suspicious/noApproximativeNumericConstant: 70 / 101 rounded to four places, which happens to be ln 2
    { group: undefined, requests: 2, input_tokens: 11, output_tokens: 6, cache_write_tokens: 20, cache_read_tokens: 70, cost_usd: 0.123456, unpriced_requests: 1, cache_hit_ratio: 0.6931 },
  );
  assert.equal(report.rows.find((r) => r.group.model === 'z')!.cache_hit_ratio, 0, 'no input at all: ratio 0');
  assert.deepEqual([report.totals.requests, report.totals.input_tokens, report.totals.cost_usd, report.totals.unpriced_requests], [5, 14, 1.123456, 1]);
  assert.deepEqual(report.totals.group, {});
  // Two dimensions: one row per pair.
  assert.deepEqual(
    buildReport(rs, ['model', 'day'], 'S', 'U').rows.map((r) => r.group),
    [
      { model: 'z', day: '2026-12-07' },
      { model: 'y', day: '2026-12-07' },
      { model: 'x', day: '2026-12-07' },
    ],
  );
  // Equal cost and requests: by group, in the same order everywhere.
  const tie = buildReport([full({ request_id: 'p', model: 'b' }), full({ request_id: 'q', model: 'a' })], ['model'], 'S', 'U');
  assert.deepEqual(
    tie.rows.map((r) => r.group.model),
    ['a', 'b'],
  );
});

test('renderReport: JSON as is, CSV with a header and quoted cells, a table with TOTAL and aligned columns', () => {
  const rs = [full({ request_id: 'a', model: 'x,"y"', cost_usd: 0.25 }), full({ request_id: 'b', model: 'z', cost_usd: 1.5 })];
  const report = buildReport(rs, ['model'], 'S', 'U');
  assert.deepEqual(JSON.parse(renderReport(report, 'json')), JSON.parse(JSON.stringify(report)));
  assert.equal(renderReport(report, 'json'), JSON.stringify(report, null, 2));
  const csv = renderReport(report, 'csv').split('\n');
  assert.equal(csv[0], 'model,requests,input_tokens,output_tokens,cache_write_tokens,cache_read_tokens,cost_usd,unpriced_requests,cache_hit_ratio');
  assert.equal(csv[1], 'z,1,20,400,1000,20000,1.5,0,0.9515');
  assert.equal(csv[2], '"x,""y""",1,20,400,1000,20000,0.25,0,0.9515');
  assert.equal(csv.length, 3, 'CSV has no TOTAL row');
  const table = renderReport(report, 'table').split('\n');
  assert.equal(table[0], 'usage S .. U');
  assert.match(table[1]!, /^model\s+requests\s+input_tokens/);
  assert.match(table[2]!, /^z\s{6}\s+1\s+20\s+400\s+1000\s+20000\s+1\.5\s+0\s+0\.9515$/);
  assert.match(table.at(-1)!, /^TOTAL\s+2\s+40\s+800\s+2000\s+40000\s+1\.75\s+0\s+0\.9515$/);
  const widths = new Set(table.slice(1).map((l) => l.length));
  assert.equal(widths.size, 1, 'every line of the table is as wide');
  assert.equal(csvCell('a\nb'), '"a\nb"');
});

test('parseWhen: spans back from now, bare dates at midnight UTC, ISO times; anything else is an error naming the forms', () => {
  const now = Date.parse('2026-12-07T12:00:00.000Z');
  assert.equal(parseWhen('7d', now), '2026-11-30T12:00:00.000Z');
  assert.equal(parseWhen('24h', now), '2026-12-06T12:00:00.000Z');
  assert.equal(parseWhen('30m', now), '2026-12-07T11:30:00.000Z');
  assert.equal(parseWhen('2026-12-01', now), '2026-12-01T00:00:00.000Z');
  assert.equal(parseWhen('2026-12-01T05:06:07+01:00', now), '2026-12-01T04:06:07.000Z');
  for (const bad of ['7w', 'yesterday', '', 'd7']) assert.throws(() => parseWhen(bad, now), /^Error: not a date: .* \(use YYYY-MM-DD, an ISO time, or a span back from now such as 7d, 24h, 30m\)$/);
});

test('runUsageQuery: a report by at most one dimension is summed by the store; more, and the cache view, read the records', async () => {
  const now = Date.parse('2026-12-07T12:00:00.000Z');
  const rs = [full({ request_id: 'a', model: 'x', user_id: 'u' }), full({ request_id: 'b', model: 'y', user_id: 'v' })];
  const asked: string[] = [];
  const source = {
    query: async (since: string, until: string) => {
      asked.push(`query ${since} ${until}`);
      return rs;
    },
    summarize: async (q: SummaryQuery) => {
      asked.push(`summarize ${q.group} ${q.since} ${q.until} ${JSON.stringify(q.filters)}`);
      return [{ key: 'x', requests: 3, input_tokens: 1, output_tokens: 2, cache_write_tokens: 0, cache_read_tokens: 0, cost_usd: 0.5, unpriced: 0, errors: 0, refused: 0 }];
    },
  };
  const prices = loadPrices(path.join(import.meta.dirname, '..', 'prices.yaml'));
  const one = await runUsageQuery({ view: 'usage', by: ['model'], since: '2026-12-01', until: '2026-12-02', where: ['user=u'] }, source, prices, now);
  assert.equal(one.view, 'usage');
  assert.deepEqual(asked, ['summarize model 2026-12-01T00:00:00.000Z 2026-12-02T00:00:00.000Z [{"by":"user","value":"u"}]']);
  assert.deepEqual(
    one.report.rows.map((r) => [r.group.model, r.requests]),
    [['x', 3]],
  );
  asked.length = 0;
  // The defaults: the last 30 days, up to a second from now.
  await runUsageQuery({ view: 'usage', by: [], where: [] }, source, prices, now);
  assert.deepEqual(asked, ['summarize none 2026-11-07T12:00:00.000Z 2026-12-07T12:00:01.000Z []']);
  asked.length = 0;
  const two = await runUsageQuery({ view: 'usage', by: ['model', 'user'], where: ['user=v'] }, source, prices, now);
  assert.equal(two.view, 'usage');
  assert.deepEqual(asked, ['query 2026-11-07T12:00:00.000Z 2026-12-07T12:00:01.000Z']);
  assert.deepEqual(
    two.report.rows.map((r) => r.group),
    [{ model: 'y', user: 'v' }],
  );
  // Without a summarize (a source that only reads records), one dimension reads the records too.
  const plain = await runUsageQuery({ view: 'usage', by: ['model'], where: [] }, { query: source.query }, prices, now);
  assert.equal(plain.view, 'usage');
  assert.equal(plain.report.rows.length, 2);
  const cache = await runUsageQuery({ view: 'cache', by: ['user'], where: [] }, source, prices, now);
  assert.equal(cache.view, 'cache');
  assert.match(renderUsageAnswer(cache, 'csv'), /^user,/);
  assert.match(renderUsageAnswer(one, 'csv'), /^model,requests/);
  for (const [q, msg] of [
    [{ view: 'cache', by: ['provider'], where: [] }, /^the cache view groups by one of session, user, model, day$/],
    [{ view: 'cache', by: ['user', 'model'], where: [] }, /^the cache view groups by one of/],
    [{ view: 'usage', by: ['nope'], where: [] }, /^by nope: expected tag:NAME, model/],
    [{ view: 'usage', by: [], since: 'soon', where: [] }, /^not a date: soon/],
    [{ view: 'usage', by: [], until: 'later', where: [] }, /^not a date: later/],
    [{ view: 'usage', by: [], where: ['bad'] }, /^filter "bad"/],
  ] as const) {
    await assert.rejects(runUsageQuery({ ...q, by: [...q.by], where: [...q.where] } as UsageQuery, source, prices, now), (err: Error) => err instanceof UsageQueryError && msg.test(err.message));
  }
});

test('reportFromSummary makes the rows and totals buildReport would, naming a missing key as reports do', () => {
  const row = (key: string | null, requests: number, cost: number) => ({
    key,
    requests,
    input_tokens: 1,
    output_tokens: 1,
    cache_write_tokens: 0,
    cache_read_tokens: 1,
    cost_usd: cost,
    unpriced: 0,
    errors: 0,
    refused: 0,
  });
  const r = reportFromSummary([row('a', 1, 0.1), row(null, 2, 0.3), row('gone', 0, 0)], 'agent', 'S', 'U');
  assert.deepEqual(
    r.rows.map((x) => [x.group.agent, x.requests]),
    [
      ['(main)', 2],
      ['a', 1],
    ],
  );
  assert.equal(r.totals.requests, 3);
  assert.equal(r.totals.cost_usd, 0.4);
  assert.deepEqual(reportFromSummary([row(null, 1, 0)], 'day', 'S', 'U').rows[0]!.group, { day: '(none)' });
  assert.deepEqual(reportFromSummary([row(null, 1, 0)], 'tag:team', 'S', 'U').rows[0]!.group, { 'tag:team': '(untagged)' });
  const none = reportFromSummary([row(null, 4, 1)], null, 'S', 'U');
  assert.deepEqual(none.by, []);
  assert.deepEqual(
    none.rows.map((x) => x.requests),
    [4],
  );
  assert.deepEqual(reportFromSummary([], null, 'S', 'U').rows, []);
});
