/**
 * The usage ledger (extraction and cost are in usage-tap.test.ts): the SQLite store end to end (requests in, `switchyard usage --by tag:team --format json`
 * out), PostgreSQL against a real server, SIGTERM under load losing no completed request's record, a
 * ledger that is down not failing requests, and no secret or prompt in any record.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { request } from 'undici';
import { PostgresStore } from '../src/usage/postgres.js';
import type { UsageRecord } from '../src/usage/record.js';
import type { buildReport } from '../src/usage/report.js';
import { startFakeUpstream, type FakeUpstream } from './fake-upstream.js';
import { startTestGateway, until, writeConfig } from './helpers.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const SECRET = 'sk-ant-PLANTED-USAGE-SECRET-9';
const PROMPT = 'PLANTED-USAGE-PROMPT-never-stored';

const _sse = (event: string, data: unknown) => `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
const TAG_RULES = { '10.yaml': 'version: 1\nrules:\n  - id: team\n    actions: [ { tag_billing: { team: { expr: "headers.\'x-team\'" } } } ]\n' };

let fake: FakeUpstream;
before(async () => {
  fake = await startFakeUpstream();
});
after(() => fake.close());

test('SQLite end to end: requests in, `switchyard usage --by tag:team --format json` out, numbers as the upstream reported', async () => {
  const { gw, configFile, logs } = await startTestGateway({ upstream: fake.url, rules: TAG_RULES });
  try {
    for (const [team, stream] of [
      ['search', false],
      ['search', true],
      ['ads', false],
    ] as const) {
      const r = await request(gw.url + '/v1/messages', {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-team': team, 'x-api-key': SECRET },
        body: JSON.stringify({
          model: 'claude-sonnet-4-6',
          max_tokens: 5,
          stream,
          metadata: { user_id: JSON.stringify({ session_id: `meta-${team}` }) },
          messages: [{ role: 'user', content: PROMPT }],
        }),
      });
      assert.equal(r.statusCode, 200);
      await r.body.dump();
    }
    const metrics = await (await request(gw.url + '/metrics')).body.text();
    assert.match(metrics, /^switchyard_requests_total\{provider="anthropic",model="claude-sonnet-4-6",status="200",outcome="ok"\} 3$/m);
    assert.match(metrics, /^switchyard_tokens_total\{provider="anthropic",model="claude-sonnet-4-6",kind="output_tokens"\} 21$/m);
    assert.match(metrics, /^switchyard_cost_usd_total\{provider="anthropic",model="claude-sonnet-4-6"\} 0\.00054$/m);
    assert.match(metrics, /^switchyard_request_duration_seconds_count\{provider="anthropic"\} 3$/m);
    assert.match(metrics, /^switchyard_ledger_queue_depth \d+$/m);
    assert.match(metrics, /^switchyard_ledger_dropped_records 0$/m);
  } finally {
    await gw.close(); // flushes the ledger
  }
  const out = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'usage', '--config', configFile, '--by', 'tag:team', '--format', 'json'], { cwd: ROOT, encoding: 'utf8' });
  assert.equal(out.status, 0, out.stderr);
  const report = JSON.parse(out.stdout) as ReturnType<typeof buildReport>;
  const byTeam = Object.fromEntries(report.rows.map((r) => [r.group['tag:team'], r]));
  // The fake upstream reports 25 input and 7 output tokens per answer (claude-sonnet-4-6: $3 / $15 per MTok).
  assert.equal(byTeam.search!.requests, 2);
  assert.equal(byTeam.search!.input_tokens, 50);
  assert.equal(byTeam.search!.output_tokens, 14);
  assert.equal(byTeam.ads!.requests, 1);
  assert.equal(report.totals.cost_usd, Math.round(((3 * (25 * 3 + 7 * 15)) / 1e6) * 1e6) / 1e6);
  const csv = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'usage', '--config', configFile, '--by', 'tag:team', '--by', 'model', '--format', 'csv'], { cwd: ROOT, encoding: 'utf8' });
  assert.match(csv.stdout.split('\n')[0]!, /^tag:team,model,requests,input_tokens,/);

  const db = new Database(path.join(path.dirname(configFile), 'data/usage.db'), { readonly: true });
  const records = db.prepare('SELECT * FROM usage_records').all() as UsageRecord[];
  db.close();
  assert.equal(records.length, 3);
  const r0 = records[0]!;
  assert.equal(r0.session_id, 'meta-search', 'session id from metadata.user_id when no header');
  assert.equal(r0.provider, 'anthropic');
  assert.equal(r0.outcome, 'ok');
  assert.match(String(r0.client_id), /^fp-/);
  assert.deepEqual(JSON.parse(String(r0.rules)), ['team']);
  const everything = JSON.stringify(records) + logs.text();
  assert.ok(!everything.includes(SECRET) && !everything.includes(PROMPT), 'a record or log line holds the planted secret or prompt');
});

test('PostgreSQL store against a real server: schema created, records written and read back', async () => {
  const store = new PostgresStore(DATABASE_URL);
  try {
    await store.init();
    await store.init(); // idempotent migration
    const id = `sy_pgtest_${randomBytes(6).toString('hex')}`;
    const now = new Date();
    const rec: UsageRecord = {
      time: now.toISOString(),
      request_id: id,
      client_id: 'alice',
      key_fingerprint: '…abcd#123456',
      session_id: 's',
      user_id: 'alice',
      project: 'search-ranking',
      agent_id: 'agent-7',
      requested_model: 'claude-sonnet-4-6',
      provider: 'anthropic',
      model: 'claude-sonnet-4-6',
      rules_version: '0123456789ab',
      rules: ['a'],
      facts: { path: '/v1/messages', stream: true, body_bytes: 1234, messages: 3, tools: 2, max_tokens: 1024, metadata: { user_id: 'u' }, headers: { 'x-team': 'search' }, headers_named: ['x-team'] },
      tags: { team: 'search' },
      status: 200,
      outcome: 'ok',
      error_type: null,
      refused_by: null,
      secret_findings: { 'github-pat': 2 },
      kind: 'batch',
      retries: 1,
      latency_ms: 12.5,
      ttft_ms: 3.25,
      input_tokens: 10,
      output_tokens: 20,
      cache_creation_input_tokens: 30,
      cache_creation_5m_input_tokens: 30,
      cache_creation_1h_input_tokens: 0,
      cache_read_input_tokens: 40,
      cost_usd: 0.000123,
    };
    await store.insert([rec]);
    const back = (await store.query(new Date(now.getTime() - 1000).toISOString(), new Date(now.getTime() + 1000).toISOString())).find((r) => r.request_id === id);
    assert.deepEqual(back, rec);
  } finally {
    await store.close();
  }
});

test('a ledger that is down never fails a request', async () => {
  const { gw, logs } = await startTestGateway({ upstream: fake.url, extraConfig: 'ledger: { postgres: "postgres://postgres@127.0.0.1:1/none", flush_interval_ms: 50 }\n' });
  try {
    for (let i = 0; i < 3; i++) {
      const r = await request(gw.url + '/v1/messages', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'claude-sonnet-4-6', max_tokens: 5, messages: [] }),
      });
      assert.equal(r.statusCode, 200);
      await r.body.dump();
    }
    assert.ok(logs.lines.some((l) => String(l.msg).includes('usage ledger (postgres) is not reachable')));
  } finally {
    await gw.close();
  }
});

test('SIGTERM under load loses no record of a completed request', async () => {
  const { configFile } = writeConfig({ upstream: fake.url, extraConfig: 'ledger: { sqlite: ./data/usage.db, flush_interval_ms: 5000 }\n' });
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/cli.ts'), 'serve', '--config', configFile, '--port', '0'], { cwd: ROOT });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    const t = setInterval(() => {
      const m = /switchyard listening on (http:\/\/[^"\s]+)/.exec(out);
      if (m) {
        clearInterval(t);
        resolve(m[1]!);
      }
    }, 20);
    setTimeout(() => reject(new Error(`no start: ${out}`)), 15_000).unref();
  });
  let completed = 0;
  let stop = false;
  const workers = Array.from({ length: 8 }, async () => {
    while (!stop) {
      try {
        const r = await request(url + '/v1/messages', {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ model: 'claude-sonnet-4-6', max_tokens: 5, stream: true, messages: [] }),
        });
        const text = await r.body.text();
        if (r.statusCode === 200 && text.includes('message_stop')) completed++;
      } catch {
        // refused once the gateway stops accepting
      }
    }
  });
  await until(() => completed > 10, 20_000, 'the load flowing');
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  assert.equal(await exited, 0);
  stop = true;
  await Promise.all(workers);
  const db = new Database(path.join(path.dirname(configFile), 'data/usage.db'), { readonly: true });
  const { n } = db.prepare("SELECT count(*) AS n FROM usage_records WHERE outcome = 'ok'").get() as { n: number };
  db.close();
  assert.ok(completed > 10, `only ${completed} requests completed`);
  assert.ok(n >= completed, `${completed} completed requests but ${n} records`);
});

describe('budget', () => {
  test('calendar periods, UTC: day, week from Monday, month', async () => {
    const { periodOf } = await import('../src/actions/budget/enforce.js');
    const t = new Date('2026-11-26T15:30:00Z'); // a Thursday
    assert.deepEqual(
      Object.values(periodOf('day', t)).map((d) => d.toISOString()),
      ['2026-11-26T00:00:00.000Z', '2026-11-27T00:00:00.000Z'],
    );
    assert.deepEqual(
      Object.values(periodOf('week', t)).map((d) => d.toISOString()),
      ['2026-11-23T00:00:00.000Z', '2026-11-30T00:00:00.000Z'],
    );
    assert.deepEqual(
      Object.values(periodOf('month', t)).map((d) => d.toISOString()),
      ['2026-11-01T00:00:00.000Z', '2026-12-01T00:00:00.000Z'],
    );
  });

  test('a spent budget answers 429 with x-should-retry: false naming budget, spend and reset; warn_at adds a header', async () => {
    const rules = {
      '10.yaml':
        'version: 1\nrules:\n  - id: team\n    actions:\n      - tag_billing: { team: { expr: "headers.\'x-team\'" } }\n      - budget: { scope: "tag:team", usd: 0.0005, per: day, warn_at: 0.5 }\n',
    };
    const { gw, logs } = await startTestGateway({ upstream: fake.url, rules });
    const send = (team: string) =>
      request(gw.url + '/v1/messages', {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-team': team },
        body: JSON.stringify({ model: 'claude-sonnet-4-6', max_tokens: 5, messages: [] }),
      });
    try {
      // Each answer costs $0.00018 (25 input + 7 output tokens of claude-sonnet-4-6).
      const statuses: number[] = [];
      const warnings: Array<string | undefined> = [];
      for (let i = 0; i < 4; i++) {
        const r = await send('search');
        statuses.push(r.statusCode);
        warnings.push(r.headers['x-switchyard-budget-warning'] as string | undefined);
        if (r.statusCode === 429) {
          assert.equal(r.headers['x-should-retry'], 'false');
          const json = (await r.body.json()) as { error: { type: string; message: string } };
          assert.equal(json.error.type, 'rate_limit_error');
          assert.match(json.error.message, /^budget "team" of \$0\.0005 per day for tag:team "search" is spent \(\$0\.0005\); it resets at \d{4}-\d{2}-\d{2}T00:00:00\.000Z$/);
        } else await r.body.dump();
        // The cost is added to the budget when the request's record is written, with its log line.
        await until(() => logs.lines.filter((l) => l.msg === 'request').length === i + 1, 2000, 'the request recorded');
      }
      assert.deepEqual(statuses, [200, 200, 200, 429]);
      assert.equal(warnings[0], undefined);
      assert.match(String(warnings[2]), /budget "team": \$0\.0004 of \$0\.0005 per day spent for tag:team "search" \(72%\)/);
      assert.equal(logs.lines.filter((l) => String(l.msg).startsWith('budget "team"')).length, 1, 'the warning is logged once per period');
      const other = await send('ads');
      assert.equal(other.statusCode, 200, 'another team has its own budget');
      await other.body.dump();
    } finally {
      await gw.close();
    }
  });
});

test('billing webhook: batches of records are posted as JSON, retried after a failure', async () => {
  const { createServer } = await import('node:http');
  const received: Array<{ records: UsageRecord[] }> = [];
  let calls = 0;
  const hook = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      calls++;
      if (calls === 1) {
        res.writeHead(500).end();
        return;
      }
      received.push(JSON.parse(Buffer.concat(chunks).toString()) as { records: UsageRecord[] });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => hook.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(hook.address() as { port: number }).port}/billing`;
  const { gw } = await startTestGateway({ upstream: fake.url, rules: TAG_RULES, extraConfig: `ledger: { sqlite: ./data/usage.db, flush_interval_ms: 100, webhook: "${url}" }\n` });
  try {
    for (const team of ['a', 'b']) {
      const r = await request(gw.url + '/v1/messages', {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-team': team },
        body: JSON.stringify({ model: 'claude-sonnet-4-6', max_tokens: 5, messages: [] }),
      });
      await r.body.dump();
    }
  } finally {
    await gw.close(); // flushes the export
    hook.close();
  }
  const records = received.flatMap((b) => b.records);
  assert.ok(calls >= 2, 'the failed batch was retried');
  assert.deepEqual(records.map((r) => r.tags.team).sort(), ['a', 'b']);
  assert.equal(records[0]!.input_tokens, 25);
});
