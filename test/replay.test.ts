/**
 * `switchyard replay` (issue 16): traffic recorded by a running gateway in its ledger (SQLite, and PostgreSQL
 * in a database of its own) decided again under a candidate that moves Haiku to another provider: exactly the
 * Haiku requests change (route and model), with the cost difference priced from the recorded tokens; records
 * without request facts and requests reaching a rule that reads message content are counted as not
 * replayable; an empty ledger, a missing rules directory and a ledger newer than the gateway say so and exit 1.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import pg from 'pg';
import { request } from 'undici';
import type { ReplayReport } from '../src/rules/replay.js';
import { SqliteStore } from '../src/usage/sqlite.js';
import { startFakeUpstream, type FakeUpstream } from './fake-upstream.js';
import { createLogger } from '../src/log.js';
import { startGateway } from '../src/server/serve.js';
import { LogCapture, writeConfig } from './helpers.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const CLI = [process.execPath, '--import', 'tsx', path.join(ROOT, 'src/cli.ts')] as const;
const DATABASE_URL = new URL(process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test');

function run(args: string[]) {
  const r = spawnSync(CLI[0], [...CLI.slice(1), ...args], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

let fake: FakeUpstream;
before(async () => {
  fake = await startFakeUpstream();
});
after(() => fake.close());

const LIVE = `version: 1
rules:
  - id: team
    match: { header: { x-team: "*" } }
    actions: [ { tag_billing: { team: { expr: "headers.'x-team'" } } } ]
  - id: default
    actions: [ { route_to: { provider: anthropic } } ]
`;
const CANDIDATE = `version: 1
rules:
  - id: team
    match: { header: { x-team: "*" } }
    actions: [ { tag_billing: { team: { expr: "headers.'x-team'" } } } ]
  - id: haiku-cheap
    match: { model: "claude-haiku-*" }
    actions: [ { route_to: { provider: cheap } } ]
  - id: default
    actions: [ { route_to: { provider: anthropic } } ]
`;
/** USD per million tokens; the fake upstream reports 25 input and 7 output tokens per answer. */
const PRICES = `multipliers: { cache_write_5m: 1.25, cache_write_1h: 2.0, cache_read: 0.1 }
models:
  "claude-sonnet-4-6*": { input: 3, output: 15 }
  "claude-haiku-4-5*": { input: 1, output: 5 }
  "cheap-haiku": { input: 0.2, output: 1 }
`;

/** Runs real traffic through a gateway with the given ledger, then returns its config file and the request ids by kind. */
async function seed(ledger: string): Promise<{ configFile: string; dir: string; haiku: string[]; sonnet: string[] }> {
  const providers = `  anthropic: { type: anthropic, base_url: "${fake.url}", retries: { max: 0 } }\n  cheap: { type: anthropic, base_url: "${fake.url}", retries: { max: 0 }, models: { claude-haiku-4-5: cheap-haiku } }\n`;
  const { configFile, dir } = writeConfig({ upstream: fake.url, providers, rules: { '10.yaml': LIVE }, extraConfig: `prices: ./prices.yaml\n${ledger}` });
  writeFileSync(path.join(dir, 'prices.yaml'), PRICES);
  mkdirSync(path.join(dir, 'candidate'));
  writeFileSync(path.join(dir, 'candidate', '10.yaml'), CANDIDATE);
  const gw = await startGateway({ configFile, watch: false, logger: createLogger({ level: 'warn', destination: new LogCapture() }) });
  const ids = { haiku: [] as string[], sonnet: [] as string[] };
  try {
    for (const [kind, model, n] of [
      ['haiku', 'claude-haiku-4-5', 3],
      ['sonnet', 'claude-sonnet-4-6', 2],
    ] as const) {
      for (let i = 0; i < n; i++) {
        const r = await request(gw.url + '/v1/messages', {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-team': 'search' },
          body: JSON.stringify({ model, max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] }),
        });
        await r.body.text();
        assert.equal(r.statusCode, 200);
        ids[kind].push(String(r.headers['x-switchyard-request-id']));
      }
    }
  } finally {
    await gw.close(); // flushes the ledger
  }
  return { configFile, dir, ...ids };
}

function checkHaikuMove(r: ReturnType<typeof run>, s: { haiku: string[]; sonnet: string[] }): void {
  assert.equal(r.code, 0, r.stderr);
  const report = JSON.parse(r.stdout) as ReplayReport;
  assert.equal(report.records, 5);
  assert.equal(report.replayed, 5);
  assert.equal(report.changed, 3);
  assert.equal(report.unchanged, 2);
  assert.equal(report.not_replayable.total, 0);
  assert.deepEqual(
    report.changes.map((c) => [c.kind, c.from, c.to, c.count]),
    [
      ['model', 'claude-haiku-4-5', 'cheap-haiku', 3],
      ['route', 'anthropic', 'cheap', 3],
    ],
  );
  for (const c of report.changes) assert.deepEqual(c.examples.sort(), [...s.haiku].sort(), 'exactly the Haiku requests');
  // Live: 3 × (25×1 + 7×5) + 2 × (25×3 + 7×15) = 540 µ$; candidate: 3 × (25×0.2 + 7×1) + 360 = 396 µ$.
  assert.deepEqual(report.cost, { live_usd: 0.00054, candidate_usd: 0.000396, delta_usd: -0.000144, unpriced: 0 });
}

describe('switchyard replay', () => {
  test('a tag only the candidate sets is a change of that tag, from (unset), for exactly the requests it applies to', async () => {
    const s = await seed('');
    mkdirSync(path.join(s.dir, 'candidate-tag'));
    writeFileSync(
      path.join(s.dir, 'candidate-tag', '10.yaml'),
      `${LIVE.replace('  - id: default', '  - id: tier\n    match: { model: "claude-haiku-*" }\n    actions: [ { tag_billing: { tier: background } } ]\n  - id: default')}`,
    );
    const r = run(['replay', '--config', s.configFile, '--rules', path.join(s.dir, 'candidate-tag'), '--since', '1h', '--format', 'json']);
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout) as ReplayReport;
    assert.deepEqual(
      report.changes.map((c) => [c.kind, c.from, c.to, c.count]),
      [['tag:tier', '(unset)', 'background', 3]],
    );
    assert.deepEqual(report.changes[0]!.examples.sort(), [...s.haiku].sort());
    assert.equal(report.cost.delta_usd, 0, 'a tag costs nothing');
  });

  test('SQLite: a candidate moving Haiku to another provider changes exactly the Haiku requests, and says what it saves', async () => {
    const s = await seed('');
    checkHaikuMove(run(['replay', '--config', s.configFile, '--rules', path.join(s.dir, 'candidate'), '--since', '1h', '--format', 'json']), s);
    const text = run(['replay', '--config', s.configFile, '--rules', path.join(s.dir, 'candidate'), '--since', '1h']);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /changed 3, unchanged 2, not replayable 0/);
    assert.match(text.stdout, /route anthropic -> cheap\s+3 {2}e\.g\. sy_/);
    assert.match(text.stdout, /cost of the replayed requests: \$0\.0005 -> \$0\.0004, −\$0\.0001 \(−26\.7%\)/);
  });

  describe('PostgreSQL', () => {
    let admin: pg.Client;
    let db: string;
    before(async () => {
      admin = new pg.Client({ connectionString: DATABASE_URL.toString() });
      await admin.connect();
      db = `switchyard_replay_${randomBytes(4).toString('hex')}`;
      await admin.query(`CREATE DATABASE ${db}`);
    });
    after(async () => {
      await admin.query(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`).catch(() => {});
      await admin.end();
    });

    test('the same replay from a PostgreSQL ledger', async () => {
      const u = new URL(DATABASE_URL.toString());
      u.pathname = `/${db}`;
      const s = await seed(`ledger: { postgres: "${u.toString()}", flush_interval_ms: 100 }\n`);
      checkHaikuMove(run(['replay', '--config', s.configFile, '--rules', path.join(s.dir, 'candidate'), '--since', '1h', '--format', 'json']), s);
    });
  });

  test('records without facts, and requests reaching a rule that reads message content, are counted as not replayable', async () => {
    const s = await seed('');
    // A record as ledger schema v2 wrote it: no facts.
    const store = new SqliteStore(path.join(s.dir, 'data/usage.db'));
    await store.init();
    const old = (await store.query(new Date(Date.now() - 3_600_000).toISOString(), new Date(Date.now() + 1000).toISOString()))[0]!;
    await store.insert([{ ...old, request_id: 'sy_old_record', facts: null, rules_version: null }]);
    await store.close();
    mkdirSync(path.join(s.dir, 'reader'));
    writeFileSync(
      path.join(s.dir, 'reader', '10.yaml'),
      `version: 1
rules:
  - id: sonnet-questions
    match: { model: "claude-sonnet-*", when: "$contains($string(messages[-1].content), '?')" }
    actions: [ { route_to: { provider: cheap } } ]
  - id: default
    actions: [ { route_to: { provider: anthropic } } ]
`,
    );
    const r = run(['replay', '--config', s.configFile, '--rules', path.join(s.dir, 'reader'), '--since', '1h', '--format', 'json']);
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout) as ReplayReport;
    assert.equal(report.records, 6);
    assert.deepEqual(report.not_replayable, {
      total: 3,
      reasons: { 'no request facts (recorded before ledger schema v3, or refused before the rules ran)': 1, 'rule "sonnet-questions" reads message content': 2 },
    });
    assert.equal(report.replayed, 3, 'the Haiku requests never reach the content rule (its model condition fails first)');
    assert.deepEqual(
      report.changes.map((c) => [c.kind, c.count]),
      [['tag:team', 3]],
      'the reader set has no team rule',
    );
  });

  test('a candidate whose rule fails on every request (a runaway expression) is reported as changes and "would fail", never unchanged', async () => {
    const s = await seed('');
    mkdirSync(path.join(s.dir, 'runaway'));
    writeFileSync(
      path.join(s.dir, 'runaway', '10.yaml'),
      `version: 1
rules:
  - id: runaway
    match: { when: "$count($map([1..9000000], function($v) { $v * 2 })) > 0" }
    actions: [ { tag_billing: { team: search } } ]
  - id: default
    actions: [ { route_to: { provider: anthropic } } ]
`,
    );
    const r = run(['replay', '--config', s.configFile, '--rules', path.join(s.dir, 'runaway'), '--since', '1h', '--format', 'json']);
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout) as ReplayReport;
    assert.equal(report.replayed, 5);
    assert.equal(report.would_fail, 5);
    assert.equal(report.unchanged, 0);
    assert.equal(report.changed, 5);
    assert.deepEqual(
      report.changes.filter((c) => c.kind === 'fails').map((c) => [c.from, c.to, c.count]),
      [['no', 'in runaway', 5]],
    );
    assert.equal(report.cost.candidate_usd, 0, 'a failed request costs nothing');
    const text = run(['replay', '--config', s.configFile, '--rules', path.join(s.dir, 'runaway'), '--since', '1h']);
    assert.match(text.stdout, /would fail: 5 /);
  });

  test('an empty ledger, a missing rules directory, a ledger newer than the gateway: a plain message and exit 1', async () => {
    const s = await seed('');
    const missing = run(['replay', '--config', s.configFile, '--rules', path.join(s.dir, 'nope')]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /the candidate rules directory .*nope does not exist/);
    const empty = run(['replay', '--config', s.configFile, '--rules', path.join(s.dir, 'candidate'), '--since', '2020-01-01', '--until', '2020-02-01']);
    assert.equal(empty.code, 1);
    assert.match(empty.stderr, /the ledger holds no usage records from 2020-01-01T00:00:00\.000Z to 2020-02-01T00:00:00\.000Z; nothing to replay/);
    const db = new Database(path.join(s.dir, 'data/usage.db'));
    db.pragma('user_version = 99');
    db.close();
    const newer = run(['replay', '--config', s.configFile, '--rules', path.join(s.dir, 'candidate')]);
    assert.equal(newer.code, 1);
    assert.match(newer.stderr, /has schema version 99, newer than this gateway's 7; upgrade switchyard/);
    const noLedger = run(['replay', '--config', s.configFile.replace('switchyard.yaml', 'other.yaml'), '--rules', path.join(s.dir, 'candidate')]);
    assert.equal(noLedger.code, 1);
  });
});
