/**
 * Who spent what (issue 17), through the real SDK: session, user, project and agent in every usage record
 * from each form Claude Code sends them in, over SQLite and PostgreSQL, and `usage --by`; refusals as their own
 * outcome in /metrics; cache hit share, savings and a detected cache break; budgets that notify a webhook once
 * per threshold (also across a restart and a receiver that fails first), shape to a cheaper model, and answer
 * `GET /v1/me/usage`, which the status-line example prints.
 */
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import Anthropic from '@anthropic-ai/sdk';
import pg from 'pg';
import { request } from 'undici';
import { buildCacheReport, cacheBreaks } from '../src/usage/cache.js';
import { priceTable } from '../src/usage/prices.js';
import type { UsageRecord } from '../src/usage/record.js';
import { SqliteStore } from '../src/usage/sqlite.js';
import { PostgresStore } from '../src/usage/postgres.js';
import { createLogger } from '../src/log.js';
import { startGateway } from '../src/server/serve.js';
import { LogCapture, startTestGateway, until } from './helpers.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const DATABASE_URL = new URL(process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test');

/** An upstream answering every message with the usage its `x-usage` header asks for (input,cache_write_5m,cache_read). */
let upstream: { url: string; server: Server; models: string[] };
before(async () => {
  const models: string[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      const parsed = JSON.parse(body) as { model: string };
      models.push(parsed.model);
      const [input, write, read] = String(req.headers['x-usage'] ?? '1000,0,0')
        .split(',')
        .map(Number);
      res.writeHead(200, { 'content-type': 'application/json', 'request-id': `req_${randomBytes(4).toString('hex')}` });
      res.end(
        JSON.stringify({
          id: `msg_${randomBytes(6).toString('hex')}`,
          type: 'message',
          role: 'assistant',
          model: parsed.model,
          content: [{ type: 'text', text: 'ok' }],
          stop_reason: 'end_turn',
          stop_sequence: null,
          usage: {
            input_tokens: input,
            output_tokens: 10,
            cache_creation_input_tokens: write,
            cache_read_input_tokens: read,
            cache_creation: { ephemeral_5m_input_tokens: write, ephemeral_1h_input_tokens: 0 },
          },
        }),
      );
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  upstream = { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server, models };
});
after(() => upstream.server.close());

const ROUTE = { '50.yaml': 'version: 1\nrules:\n  - id: route\n    actions: [ { route_to: { provider: anthropic } } ]\n' };

function client(url: string, headers: Record<string, string> = {}, apiKey = 'sk-ant-test') {
  return new Anthropic({ baseURL: url, apiKey, maxRetries: 0, defaultHeaders: headers });
}

async function ask(c: Anthropic, metadataUserId?: string, headers: Record<string, string> = {}, model = 'claude-sonnet-4-6') {
  return c.messages.create({ model, max_tokens: 16, messages: [{ role: 'user', content: 'hi' }], ...(metadataUserId ? { metadata: { user_id: metadataUserId } } : {}) }, { headers });
}

const JSON_USER_ID = JSON.stringify({ device_id: 'dev-42', account_uuid: 'acct-7f3a', session_id: '5f0c1d2e-0000-4000-8000-00000000aaaa' });
const LEGACY_USER_ID = 'user_4b1d9e_account_2c9f0a1b-1111-4222-8333-444455556666_session_9a8b7c6d-aaaa-4bbb-8ccc-ddddeeeeffff';

describe('attribution: session, user, project and agent in every record', () => {
  for (const store of ['sqlite', 'postgres'] as const) {
    test(`${store}: each session-id format, the account as user, the project header, the agent; usage --by user --by project`, async () => {
      let db: string | null = null;
      let admin: pg.Client | null = null;
      let ledger = '';
      if (store === 'postgres') {
        admin = new pg.Client({ connectionString: DATABASE_URL.toString() });
        await admin.connect();
        db = `switchyard_attr_${randomBytes(4).toString('hex')}`;
        await admin.query(`CREATE DATABASE ${db}`);
        const u = new URL(DATABASE_URL.toString());
        u.pathname = `/${db}`;
        ledger = `ledger: { postgres: "${u.toString()}", flush_interval_ms: 100 }\n`;
      }
      const { gw, configFile } = await startTestGateway({ upstream: upstream.url, rules: ROUTE, extraConfig: ledger });
      let records: UsageRecord[] = [];
      try {
        const c = client(gw.url, { 'x-project': 'search-ranking' });
        await ask(c, undefined, { 'x-claude-code-session-id': 'sess-header-1' });
        await ask(c, JSON_USER_ID);
        await ask(c, LEGACY_USER_ID, { 'x-claude-code-agent-id': 'agent-explore-1' });
        await ask(client(gw.url), undefined, {}); // no session, no project: the credential's fingerprint is the user
        await gw.close();
        const s = store === 'sqlite' ? new SqliteStore(path.join(path.dirname(configFile), 'data/usage.db')) : new PostgresStore(ledger.match(/"(.*)"/)![1]!);
        await s.init();
        records = await s.query(new Date(Date.now() - 60_000).toISOString(), new Date(Date.now() + 1000).toISOString());
        await s.close();
      } finally {
        await gw.close();
        if (admin) {
          await admin.query(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`).catch(() => {});
          await admin.end();
        }
      }
      const fp = `fp-${createHash('sha256').update('sk-ant-test').digest('hex').slice(0, 10)}`;
      assert.deepEqual(
        records.map((r) => [r.session_id, r.user_id, r.project, r.agent_id]),
        [
          ['sess-header-1', fp, 'search-ranking', null],
          ['5f0c1d2e-0000-4000-8000-00000000aaaa', 'acct-7f3a', 'search-ranking', null],
          ['9a8b7c6d-aaaa-4bbb-8ccc-ddddeeeeffff', '2c9f0a1b-1111-4222-8333-444455556666', 'search-ranking', 'agent-explore-1'],
          [null, fp, null, null],
        ],
      );
    });
  }

  test('switchyard usage --by user --by project, and a refusal counted as refused in /metrics', async () => {
    const rules = {
      '10.yaml':
        'version: 1\nrules:\n  - id: no-opus\n    match: { model: "claude-opus-*" }\n    actions: [ { deny: { message: "no Opus" } } ]\n  - id: route\n    actions: [ { route_to: { provider: anthropic } } ]\n',
    };
    const { gw, configFile } = await startTestGateway({ upstream: upstream.url, rules });
    try {
      await ask(client(gw.url, { 'x-project': 'p1' }), JSON_USER_ID);
      await ask(client(gw.url, { 'x-project': 'p1' }), JSON_USER_ID);
      await ask(client(gw.url, { 'x-project': 'p2' }), LEGACY_USER_ID);
      await assert.rejects(ask(client(gw.url), JSON_USER_ID, {}, 'claude-opus-4-6'), (e: Error & { status?: number }) => e.status === 403);
      const metrics = await (await request(`${gw.url}/metrics`)).body.text();
      assert.match(metrics, /switchyard_requests_total\{provider="anthropic",model="claude-opus-4-6",status="403",outcome="refused"\} 1/);
      assert.match(metrics, /switchyard_requests_total\{provider="anthropic",model="claude-sonnet-4-6",status="200",outcome="ok"\} 3/);
    } finally {
      await gw.close();
    }
    const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/cli.ts'), 'usage', '--config', configFile, '--by', 'user', '--by', 'project', '--format', 'json', '--since', '1h'], {
      encoding: 'utf8',
      cwd: ROOT,
    });
    assert.equal(r.status, 0, r.stderr);
    const rows = (JSON.parse(r.stdout) as { rows: Array<{ group: Record<string, string>; requests: number }> }).rows.map((x) => [x.group.user, x.group.project, x.requests]);
    assert.deepEqual(
      rows.sort((a, b) => String(a[1]).localeCompare(String(b[1]))),
      [
        ['acct-7f3a', '(none)', 1],
        ['acct-7f3a', 'p1', 2],
        ['2c9f0a1b-1111-4222-8333-444455556666', 'p2', 1],
      ].sort((a, b) => String(a[1]).localeCompare(String(b[1]))),
    );
  });
});

describe('cache analytics', () => {
  test('hit share, savings net of the write premium, and a cache break with its likely cause, through the gateway', async () => {
    const { gw } = await startTestGateway({ upstream: upstream.url, rules: ROUTE });
    try {
      const c = client(gw.url, { 'x-claude-code-session-id': 'sess-cache' });
      await ask(c, undefined, { 'x-usage': '50,20000,0' }); // writes the prefix
      await ask(c, undefined, { 'x-usage': '60,300,20000' }); // warm
      await ask(c, undefined, { 'x-usage': '70,400,20300' }); // warm
      await ask(c, undefined, { 'x-usage': '80,20800,0' }, 'claude-opus-4-6'); // another model: cold again
      const r = await request(`${gw.url}/admin/usage?view=cache&by=session`);
      assert.equal(r.statusCode, 200);
      const report = (await r.body.json()) as ReturnType<typeof buildCacheReport>;
      const row = report.rows.find((x) => x.group === 'sess-cache')!;
      assert.equal(row.requests, 4);
      assert.equal(row.cache_read_tokens, 40300);
      assert.equal(row.hit_share, Math.round((40300 / (260 + 41500 + 40300)) * 10_000) / 10_000);
      // Sonnet $3/MTok: reads save 0.9 × 3 per MTok, 5m writes cost 0.25 × 3 more; Opus $5/MTok writes 0.25 × 5 more.
      const expected = (40300 * 3 * 0.9 - (20000 + 300 + 400) * 3 * 0.25 - 20800 * 5 * 0.25) / 1e6;
      assert.equal(row.saved_usd, Math.round(expected * 1e6) / 1e6);
      assert.equal(report.breaks.length, 1);
      assert.equal(report.breaks[0]!.read_before, 20300);
      assert.match(report.breaks[0]!.cause, /model switched from claude-sonnet-4-6 to claude-opus-4-6/);
      const bad = await request(`${gw.url}/admin/usage?view=cache&by=tag:team`);
      assert.equal(bad.statusCode, 400);
    } finally {
      await gw.close();
    }
  });

  test('an idle gap longer than the cache lifetime is named as the cause; a session that stays warm has no break', () => {
    const rec = (min: number, read: number, write: number, over: Partial<UsageRecord> = {}): UsageRecord =>
      ({
        time: new Date(Date.UTC(2026, 10, 30, 9, min)).toISOString(),
        request_id: `r${min}`,
        session_id: 's',
        user_id: 'u',
        model: 'claude-sonnet-4-6',
        outcome: 'ok',
        latency_ms: 1000,
        input_tokens: 10,
        output_tokens: 10,
        cache_read_input_tokens: read,
        cache_creation_input_tokens: write,
        cache_creation_5m_input_tokens: write,
        cache_creation_1h_input_tokens: 0,
        agent_id: null,
        facts: null,
        ...over,
      }) as UsageRecord;
    const breaks = cacheBreaks([rec(0, 0, 20000), rec(2, 20000, 100), rec(4, 20100, 100), rec(20, 0, 20200), rec(21, 20200, 50)]);
    assert.deepEqual(
      breaks.map((b) => [b.request_id, b.cause]),
      [['r20', 'idle for 16 min, longer than the 5-minute cache lifetime']],
    );
    // A subagent's own cold start does not break the main conversation's cache.
    assert.deepEqual(cacheBreaks([rec(0, 0, 20000), rec(1, 20000, 10), rec(2, 0, 5000, { agent_id: 'a1' }), rec(3, 20010, 10)]), []);
    const report = buildCacheReport([rec(0, 0, 20000), rec(2, 20000, 100)], 'user', priceTable({ models: { 'claude-sonnet-4-6': { input: 3, output: 15 } } }), 'a', 'b');
    assert.equal(report.rows[0]!.group, 'u');
  });
});

describe('budgets v2', () => {
  /** A loopback webhook receiver; fails the first `failFirst` deliveries with 503. */
  async function receiver(failFirst = 0) {
    const got: Array<Record<string, unknown>> = [];
    let calls = 0;
    const server = createServer((req: IncomingMessage, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        calls++;
        if (calls <= failFirst) {
          res.writeHead(503).end();
          return;
        }
        got.push(JSON.parse(body) as Record<string, unknown>);
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, got, close: () => new Promise((r) => server.close(r)) };
  }

  // 1000 input + 10 output tokens of Sonnet ($3 / $15 per MTok) = $0.00315 per request.
  const BUDGET = (extra: string) =>
    `version: 1\nrules:\n  - id: route\n    actions: [ { route_to: { provider: anthropic } } ]\n  - id: user-daily\n    actions: [ { budget: { scope: user, usd: 0.01, per: day, block: false${extra} } } ]\n`;

  test('notify: each threshold reaches the webhook exactly once, after a receiver failure and across a restart', async () => {
    const hook = await receiver(1);
    const rules = { '10.yaml': BUDGET(', notify: [0.5, 0.8, 1]') };
    const extraConfig = `budgets: { webhook: "${hook.url}", timeout_ms: 2000 }\n`;
    const first = await startTestGateway({ upstream: upstream.url, rules, extraConfig });
    try {
      const c = client(first.gw.url);
      for (let i = 0; i < 5; i++) await ask(c, JSON_USER_ID); // $0.00315, 0.0063, 0.00945, 0.0126, 0.01575
      await until(() => hook.got.length === 3, 10_000, 'three notifications (the first delivery failed and was retried)');
    } finally {
      await first.gw.close();
    }
    // A restart on the same files: the spend comes back from the ledger, the sent thresholds from the state file.
    const second = await startGateway({ configFile: first.configFile, watch: false, logger: createLogger({ level: 'warn', destination: new LogCapture() }) });
    try {
      await ask(client(second.url), JSON_USER_ID);
      await new Promise((r) => setTimeout(r, 300));
    } finally {
      await second.close();
      await hook.close();
    }
    // Each exactly once; the first delivery failed, so 0.5 may arrive after the others.
    assert.deepEqual(hook.got.map((n) => n.threshold).sort(), [0.5, 0.8, 1]);
    const n = hook.got.find((x) => x.threshold === 0.5)!;
    assert.equal(n.type, 'budget.threshold');
    assert.equal(n.budget, 'user-daily');
    assert.equal(n.scope, 'user');
    assert.equal(n.value, 'acct-7f3a');
    assert.equal(n.period, 'day');
    assert.equal(n.limit_usd, 0.01);
    assert.equal(n.spent_usd, 0.0063);
    assert.match(String(n.resets_at), /T00:00:00\.000Z$/);
  });

  test('shape: past its threshold a budget sends requests to the cheaper model and says so', async () => {
    const { gw } = await startTestGateway({ upstream: upstream.url, rules: { '10.yaml': BUDGET(', shape: { at: 0.5, model: claude-haiku-4-5 }') } });
    try {
      const c = client(gw.url);
      upstream.models.length = 0;
      await ask(c, JSON_USER_ID);
      await ask(c, JSON_USER_ID);
      await until(
        async () => {
          const u = (await (await request(`${gw.url}/admin/usage?by=model`)).body.json()) as { totals: { requests: number } };
          return u.totals.requests >= 2;
        },
        5000,
        'both records written',
      );
      const raw = await c.messages.create({ model: 'claude-sonnet-4-6', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }], metadata: { user_id: JSON_USER_ID } }).withResponse();
      assert.deepEqual(upstream.models, ['claude-sonnet-4-6', 'claude-sonnet-4-6', 'claude-haiku-4-5']);
      assert.match(String(raw.response.headers.get('x-switchyard-budget-shaped')), /budget "user-daily" at 63% for user "acct-7f3a": sent to claude-haiku-4-5/);
    } finally {
      await gw.close();
    }
  });

  test('GET /v1/me/usage answers the calling client, and the status-line example prints it', async () => {
    const sha = (s: string) => createHash('sha256').update(s).digest('hex');
    const { gw } = await startTestGateway({
      upstream: upstream.url,
      providers: `  anthropic: { type: anthropic, base_url: "${upstream.url}", keys: [sk-upstream], retries: { max: 0 } }\n`,
      rules: {
        '10.yaml':
          'version: 1\nrules:\n  - id: route\n    actions: [ { route_to: { provider: anthropic } } ]\n  - id: client-daily\n    actions: [ { budget: { scope: client, usd: 1, per: day } } ]\n',
      },
      extraConfig: `clients:\n  alice: { key_sha256: "${sha('sk-alice')}" }\n  bob: { key_sha256: "${sha('sk-bob')}" }\n`,
    });
    try {
      await ask(client(gw.url, {}, 'sk-alice'), undefined, { 'x-usage': '1000,0,3000' });
      await ask(client(gw.url, {}, 'sk-bob'));
      await until(
        async () => {
          const u = (await (await request(`${gw.url}/admin/usage`)).body.json()) as { totals: { requests: number } };
          return u.totals.requests >= 2;
        },
        5000,
        'records written',
      );
      const r = await request(`${gw.url}/v1/me/usage`, { headers: { 'x-api-key': 'sk-alice' } });
      assert.equal(r.statusCode, 200);
      const me = (await r.body.json()) as {
        client: string;
        today: { since: string; usd: number; requests: number };
        month: { usd: number; cache_hit_share: number };
        budgets: Array<Record<string, unknown>>;
      };
      const cost = (1000 * 3 + 3000 * 3 * 0.1 + 10 * 15) / 1e6;
      assert.equal(me.client, 'alice');
      assert.deepEqual(me.today, { since: me.today.since, usd: cost, requests: 1 });
      assert.equal(me.month.cache_hit_share, 0.75);
      assert.equal(me.budgets.length, 1);
      assert.equal(me.budgets[0]!.rule, 'client-daily');
      assert.equal(me.budgets[0]!.limit_usd, 1);
      assert.equal(me.budgets[0]!.spent_usd, cost);
      assert.equal(me.budgets[0]!.remaining_usd, Math.round((1 - cost) * 1e6) / 1e6);
      assert.equal((await request(`${gw.url}/v1/me/usage`, { headers: { 'x-api-key': 'sk-nobody' } })).statusCode, 401);
      // Async: the gateway runs in this process and must keep answering while the script waits.
      const statusLine = (env: Record<string, string>) =>
        new Promise<string>((resolve, reject) => {
          const child = execFile(process.execPath, [path.join(ROOT, 'examples/status-line/statusline.mjs')], { env: { ...process.env, ...env }, timeout: 10_000 }, (err, stdout) =>
            err ? reject(err) : resolve(stdout.trim()),
          );
          child.stdin!.end('{"model":{"display_name":"Sonnet"}}');
        });
      assert.equal(
        await statusLine({ ANTHROPIC_BASE_URL: gw.url, ANTHROPIC_API_KEY: 'sk-alice' }),
        `$${cost.toFixed(2)} today · $${cost.toFixed(2)} this month · client-daily $${(1 - cost).toFixed(2)} left · cache 75%`,
      );
      assert.equal(await statusLine({ ANTHROPIC_BASE_URL: 'http://127.0.0.1:9', ANTHROPIC_API_KEY: 'x' }), 'switchyard: unreachable');
    } finally {
      await gw.close();
    }
  });
});

describe('spend limits through the Admin API shape', () => {
  test('the official SDK sets, lists, reads and deletes a limit; it wins over the YAML budget of its scope and blocks, then lets go', async () => {
    const yaml = 'version: 1\nrules:\n  - id: route\n    actions: [ { route_to: { provider: anthropic } } ]\n  - id: user-daily\n    actions: [ { budget: { scope: user, usd: 100, per: day } } ]\n';
    const { gw } = await startTestGateway({ upstream: upstream.url, rules: { '10.yaml': yaml }, extraConfig: 'admin: { token: adm-secret-token }\n' });
    const admin = new Anthropic({ baseURL: gw.url, apiKey: 'adm-secret-token', maxRetries: 0 });
    try {
      await assert.rejects(new Anthropic({ baseURL: gw.url, apiKey: 'wrong', maxRetries: 0 }).beta.organization.spendLimits.list(), (e: Error & { status?: number }) => e.status === 401);
      // 1 cent a day for this user: each request costs $0.00315, so the fourth is over it.
      const set = await admin.beta.organization.spendLimits.set({ amount: '1', scope: { type: 'user', user_id: 'acct-7f3a' }, period: 'daily' });
      assert.equal(set.type, 'spend_limit');
      assert.match(set.id, /^spl_/);
      assert.deepEqual([set.amount, set.currency, set.period, set.scope], ['1', 'USD', 'daily', { type: 'user', user_id: 'acct-7f3a' }]);
      const again = await admin.beta.organization.spendLimits.set({ amount: '2', scope: { type: 'user', user_id: 'acct-7f3a' }, period: 'daily' });
      assert.equal(again.id, set.id, 'an upsert on scope and period keeps the id');
      await admin.beta.organization.spendLimits.set({ amount: null, scope: { type: 'organization' }, period: 'monthly' });
      const listed = [];
      for await (const l of admin.beta.organization.spendLimits.list()) listed.push([l.scope.type, l.amount]);
      assert.deepEqual(listed, [
        ['user', '2'],
        ['organization', null],
      ]);
      assert.equal((await admin.beta.organization.spendLimits.retrieve(set.id)).amount, '2');
      await assert.rejects(
        admin.beta.organization.spendLimits.set({ amount: '5', scope: { type: 'seat_tier' } as never }),
        (e: Error & { status?: number; message: string }) => e.status === 400 && /unknown scope/.test(e.message),
      );
      await assert.rejects(admin.beta.organization.spendLimits.set({ amount: '5', scope: { type: 'organization' }, period: 'yearly' as never }), (e: Error & { status?: number }) => e.status === 400);

      const c = client(gw.url);
      for (let i = 0; i < 7; i++) await ask(c, JSON_USER_ID); // $0.02205: the limit is 2 cents
      await until(
        async () => {
          const u = (await (await request(`${gw.url}/admin/usage`, { headers: { authorization: 'Bearer adm-secret-token' } })).body.json()) as { totals: { requests: number } };
          return u.totals.requests >= 7;
        },
        5000,
        'records written',
      );
      const refused = await ask(c, JSON_USER_ID).then(
        () => null,
        (e: Error & { status?: number; headers?: Headers }) => e,
      );
      assert.ok(refused, 'over the API limit');
      assert.equal(refused.status, 429);
      assert.match(refused.message, new RegExp(`budget \\\\?"${set.id}\\\\?" of \\$0\\.0200 per day for user \\\\?"acct-7f3a\\\\?" is spent`));
      assert.equal(refused.headers?.get('x-should-retry'), 'false');
      const other = await ask(c, LEGACY_USER_ID); // another user: the YAML budget ($100) still applies to them
      assert.equal(other.type, 'message');

      assert.deepEqual(await admin.beta.organization.spendLimits.delete(set.id), { id: set.id, type: 'spend_limit_deleted' });
      assert.equal((await ask(c, JSON_USER_ID)).type, 'message', 'the YAML budget ($100) applies again');
      await assert.rejects(admin.beta.organization.spendLimits.delete(set.id), (e: Error & { status?: number }) => e.status === 404);
    } finally {
      await gw.close();
    }
  });

  test('a temporary limit stops applying at its expiry; the PostgreSQL store keeps limits as SQLite does', async () => {
    const admin = new pg.Client({ connectionString: DATABASE_URL.toString() });
    await admin.connect();
    const db = `switchyard_limits_${randomBytes(4).toString('hex')}`;
    await admin.query(`CREATE DATABASE ${db}`);
    const u = new URL(DATABASE_URL.toString());
    u.pathname = `/${db}`;
    const store = new PostgresStore(u.toString());
    try {
      await store.init();
      const now = new Date().toISOString();
      const base = { scope_type: 'workspace' as const, scope_id: 'search', period: 'weekly' as const, amount: '500', created_at: now, updated_at: now };
      const a = await store.putSpendLimit({ id: 'spl_a', expires_at: null, ...base });
      const b = await store.putSpendLimit({ id: 'spl_b', expires_at: new Date(Date.now() + 1000).toISOString(), ...base, amount: '900' });
      assert.equal(b.id, a.id, 'upsert on scope and period');
      const rows = await store.spendLimits();
      assert.equal(rows.length, 1);
      assert.equal(rows[0]!.amount, '900');
      const { SpendLimits } = await import('../src/usage/spend-limits.js');
      const limits = new SpendLimits(store, 0);
      await limits.refresh(); // requests never wait on the ledger: the table is read into memory first
      const rc = { user: { id: 'u' }, project: 'search' } as never;
      assert.deepEqual(await limits.apply([], rc), [{ rule: 'spl_a', scope: 'project', usd: 9, per: 'week' }]);
      assert.deepEqual(await limits.apply([], rc, new Date(Date.now() + 2000)), [], 'expired');
      assert.equal(await store.deleteSpendLimit('spl_a'), true);
      assert.equal(await store.deleteSpendLimit('spl_a'), false);
    } finally {
      await store.close();
      await admin.query(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`).catch(() => {});
      await admin.end();
    }
  });
});

describe('budgets when the ledger cannot be read at start-up', () => {
  for (const mode of ['open', 'closed'] as const) {
    test(`on_ledger_failure: ${mode} — ${mode === 'open' ? 'requests under a budget go through' : 'requests under a budget get 503'}, and the log says which`, async () => {
      // A PostgreSQL ledger on a port nothing listens on.
      const rules = {
        '10.yaml':
          'version: 1\nrules:\n  - id: route\n    actions: [ { route_to: { provider: anthropic } } ]\n  - id: user-daily\n    match: { header: { x-budgeted: "*" } }\n    actions: [ { budget: { scope: user, usd: 5, per: day } } ]\n',
      };
      const { gw, logs } = await startTestGateway({
        upstream: upstream.url,
        rules,
        extraConfig: `ledger: { postgres: "postgres://postgres@127.0.0.1:9/none", write_timeout_ms: 500, spool: false }\nbudgets: { on_ledger_failure: ${mode} }\n`,
      });
      try {
        const line = logs.lines.find((l) => /could not recompute budget spend/.test(String(l.msg)));
        assert.ok(line, 'the failure is logged');
        assert.match(String(line.msg), mode === 'open' ? /budgets fail OPEN \(budgets\.on_ledger_failure: open\)/ : /budgets fail CLOSED \(budgets\.on_ledger_failure: closed\)/);
        const c = client(gw.url);
        assert.equal((await ask(c, JSON_USER_ID)).type, 'message', 'a request under no budget is never affected');
        const budgeted = await ask(c, JSON_USER_ID, { 'x-budgeted': '1' }).then(
          (m) => m.type,
          (e: Error & { status?: number }) => e,
        );
        if (mode === 'open') assert.equal(budgeted, 'message');
        else {
          assert.ok(budgeted instanceof Error);
          assert.equal(budgeted.status, 503);
          assert.match(budgeted.message, /budgets cannot be checked: the (usage ledger|spend limits) could not be read.*\(budgets\.on_ledger_failure: closed\)/);
        }
      } finally {
        await gw.close();
      }
    });
  }
});
