/**
 * The dashboard's overview aggregated by the database (GROUP BY in SQLite and in PostgreSQL) equals the overview
 * computed over the records in Node — with buildReport, the function `switchyard usage` uses — for the same range and filters,
 * in both dialects: totals, the series, error and refusal rates and the top users, projects and models.
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type Overview, overviewFromStore, type SeriesPoint } from '../src/usage/dashboard.js';
import type { LedgerStore } from '../src/usage/ledger.js';
import { PostgresStore } from '../src/usage/postgres.js';
import type { UsageRecord } from '../src/usage/record.js';
import { buildReport, filterRecords, type GroupBy, parseFilter } from '../src/usage/report.js';
import { runUsageQuery } from '../src/usage/usage-query.js';
import { SqliteStore } from '../src/usage/sqlite.js';
import { freshDatabase } from './helpers.js';

let db: Awaited<ReturnType<typeof freshDatabase>>;
let oldDb: Awaited<ReturnType<typeof freshDatabase>>;

/** 300 varied records over 5 days: users, projects, models, tags, sessions, some missing, unpriced, refused, failed. */
function records(): UsageRecord[] {
  const now = Date.UTC(2026, 10, 30, 12);
  return Array.from({ length: 300 }, (_, i): UsageRecord => {
    const outcome: UsageRecord['outcome'] = i % 13 === 0 ? 'refused' : i % 17 === 0 ? 'failed' : i % 29 === 0 ? 'error' : 'ok';
    return {
      time: new Date(now - i * 23 * 60_000).toISOString(),
      request_id: `sy_o_${i}`,
      client_id: `c${i % 3}`,
      key_fingerprint: null,
      session_id: i % 11 === 0 ? null : `s${i % 7}`,
      user_id: i % 19 === 0 ? null : `u${i % 5}`,
      project: i % 4 === 0 ? null : `p${i % 3}`,
      agent_id: i % 6 === 0 ? 'agent-1' : null,
      requested_model: 'm',
      provider: outcome === 'refused' ? null : i % 2 ? 'anthropic' : 'bedrock',
      model: i % 3 === 0 ? 'claude-haiku-4-5' : 'claude-sonnet-4-6',
      rules_version: 'v',
      rules: ['r'],
      facts: null,
      // Two tags, set in either order (the rollup keys them canonically).
      tags: i % 5 === 0 ? {} : i % 3 === 0 ? { env: 'prod', team: `t${i % 2}` } : { team: `t${i % 2}`, env: 'prod' },
      status: outcome === 'ok' ? 200 : 500,
      outcome,
      error_type: null,
      // Batch items, resource calls, interactive calls, and records from before kinds (none).
      kind: i % 8 === 0 ? 'batch' : i % 15 === 0 ? 'resource' : i % 9 === 0 ? undefined : 'message',
      retries: 0,
      latency_ms: 100 + i,
      ttft_ms: null,
      input_tokens: 100 + i * 7,
      output_tokens: 10 + i,
      cache_creation_input_tokens: i % 3 ? 50 : 0,
      cache_creation_5m_input_tokens: i % 3 ? 50 : 0,
      cache_creation_1h_input_tokens: 0,
      cache_read_input_tokens: i * 13,
      cost_usd: i % 23 === 0 ? null : Math.round((0.001 + i * 0.0007) * 1e6) / 1e6,
    };
  });
}

const round6 = (x: number) => Math.round(x * 1e6) / 1e6;
const ratio = (a: number, b: number) => (b ? Math.round((a / b) * 10_000) / 10_000 : 0);

/**
 * The oracle: the overview over the records in Node, with buildReport (what `switchyard usage` runs) for totals and
 * top lists and a plain loop for the series.
 */
function overview(records: UsageRecord[], since: string, until: string): Overview {
  const span = Date.parse(until) - Date.parse(since);
  const bucket: Overview['bucket'] = span <= 2 * 86_400_000 ? 'hour' : 'day';
  const size = bucket === 'hour' ? 3_600_000 : 86_400_000;
  const points = new Map<number, SeriesPoint>();
  let errors = 0;
  let refused = 0;
  for (const r of records) {
    const t = Math.floor(Date.parse(r.time) / size) * size;
    let p = points.get(t);
    if (!p) points.set(t, (p = { t: t / 1000, requests: 0, cost_usd: 0, input_tokens: 0, output_tokens: 0, cache_read_tokens: 0, cache_write_tokens: 0, errors: 0, refused: 0 }));
    p.requests++;
    p.cost_usd += r.cost_usd ?? 0;
    p.input_tokens += r.input_tokens;
    p.output_tokens += r.output_tokens;
    p.cache_read_tokens += r.cache_read_input_tokens;
    p.cache_write_tokens += r.cache_creation_input_tokens;
    if (r.outcome === 'failed' || r.outcome === 'error') {
      p.errors++;
      errors++;
    }
    if (r.outcome === 'refused') {
      p.refused++;
      refused++;
    }
  }
  const series = [...points.values()].sort((a, b) => a.t - b.t).map((p) => ({ ...p, cost_usd: round6(p.cost_usd) }));
  const top = (by: 'user' | 'project' | 'model') => buildReport(records, [by], since, until).rows.slice(0, 10);
  return {
    since,
    until,
    totals: buildReport(records, [], since, until).totals,
    bucket,
    series,
    error_rate: ratio(errors, records.length),
    refusal_rate: ratio(refused, records.length),
    top_users: top('user'),
    top_projects: top('project'),
    top_models: top('model'),
    by_kind: buildReport(records, ['kind'], since, until).rows,
  };
}

const stores: Array<[string, LedgerStore]> = [];
before(async () => {
  const sqlite = new SqliteStore(path.join(mkdtempSync(path.join(tmpdir(), 'sy-overview-')), 'usage.db'));
  await sqlite.init();
  await sqlite.insert(records());
  await sqlite.insert(records().slice(0, 50)); // a retried batch: skipped, and not counted twice in the rollup
  stores.push(['sqlite', sqlite]);
  // A ledger from before the rollup: records first, the rollup made when it opens again.
  const oldFile = path.join(mkdtempSync(path.join(tmpdir(), 'sy-overview-old-')), 'usage.db');
  const old = new SqliteStore(oldFile);
  await old.init();
  await old.insert(records());
  (old as unknown as { db: import('better-sqlite3').Database }).db.exec('DROP TABLE usage_rollup');
  await old.close();
  const reopened = new SqliteStore(oldFile);
  await reopened.init();
  stores.push(['sqlite (rolled up at upgrade)', reopened]);
  db = await freshDatabase('switchyard_overview');
  const postgres = new PostgresStore(db.url);
  await postgres.init();
  await postgres.insert(records());
  await postgres.insert(records().slice(0, 50));
  stores.push(['postgres', postgres]);
  oldDb = await freshDatabase('switchyard_overview_old');
  const oldPg = new PostgresStore(oldDb.url);
  await oldPg.init();
  await oldPg.insert(records());
  await (oldPg as unknown as { pool: import('pg').Pool }).pool.query('DROP TABLE usage_rollup');
  await oldPg.close();
  const reopenedPg = new PostgresStore(oldDb.url);
  await reopenedPg.init();
  stores.push(['postgres (rolled up at upgrade)', reopenedPg]);
});
after(async () => {
  for (const [, s] of stores) await s.close();
  await db?.drop();
  await oldDb?.drop();
});

const ranges: Array<[string, string, string]> = [
  ['five days (by day)', '2026-11-25T00:00:00.000Z', '2026-12-01T00:00:00.000Z'],
  ['one day (by hour)', '2026-11-29T12:00:00.000Z', '2026-11-30T12:00:01.000Z'],
  ['partial hours at both ends', '2026-11-28T07:41:13.250Z', '2026-11-30T09:17:00.000Z'],
  ['inside one hour', '2026-11-30T09:05:00.000Z', '2026-11-30T09:55:00.000Z'],
];
const filterSets = [[], ['user=u1'], ['project=(none)'], ['tag:team=t0'], ['tag:team=(untagged)', 'model=claude-sonnet-4-6'], ['agent=(main)'], ['provider=bedrock', 'session=s3']];

describe('overview by the database equals the overview over the records', () => {
  for (const [label, since, until] of ranges) {
    for (const where of filterSets) {
      test(`${label}, ${where.join(' & ') || 'no filter'}: SQLite and PostgreSQL`, async () => {
        const filters = where.map(parseFilter);
        const expected = overview(
          filterRecords(
            records().filter((r) => r.time >= since && r.time < until),
            filters,
          ),
          since,
          until,
        );
        // A 50-minute window holds two records: most filters select none there, which must come out as zeros too.
        if (label !== 'inside one hour' || where.length === 0) assert.ok(expected.totals.requests > 0, 'the case selects records');
        for (const [kind, store] of stores) {
          const got = await overviewFromStore(store, since, until, filters);
          assert.deepEqual(got, expected, kind);
        }
      });
    }
  }
});

describe('`switchyard usage` by one dimension, summed by the database, equals the report over the records', () => {
  const dimensions: Array<GroupBy | null> = [null, 'model', 'client', 'session', 'user', 'project', 'agent', 'provider', 'day', 'tag:team', 'tag:env'];
  for (const [label, since, until] of ranges) {
    for (const by of dimensions) {
      test(`${label}, by ${by ?? 'nothing'}: SQLite and PostgreSQL`, async () => {
        for (const where of [[], ['user=u1'], ['tag:team=(untagged)'], ['session=s3']]) {
          const expected = buildReport(
            filterRecords(
              records().filter((r) => r.time >= since && r.time < until),
              where.map(parseFilter),
            ),
            by ? [by] : [],
            since,
            until,
          );
          for (const [kind, store] of stores) {
            const query = { view: 'usage' as const, by: by ? [by] : [], since, until, where };
            const summed = await runUsageQuery(query, store, { models: {} } as never);
            assert.deepEqual(summed.report, expected, `${kind} ${where.join(' ')}`);
          }
        }
      });
    }
  }
  test('two dimensions read the records', async () => {
    const [since, until] = ['2026-11-25T00:00:00.000Z', '2026-12-01T00:00:00.000Z'];
    const read: string[] = [];
    const source = {
      query: async (a: string, b: string) => {
        read.push(a);
        return records().filter((r) => r.time >= a && r.time < b);
      },
      summarize: async () => assert.fail('not for two'),
    };
    const answer = await runUsageQuery({ view: 'usage', by: ['user', 'model'], since, until, where: [] }, source, { models: {} } as never);
    assert.deepEqual(
      answer.report,
      buildReport(
        records().filter((r) => r.time >= since && r.time < until),
        ['user', 'model'],
        since,
        until,
      ),
    );
    assert.deepEqual(read, [since]);
  });
});
