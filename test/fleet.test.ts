/**
 * A fleet (issue 20, item 2): two gateway processes on one config, one Redis and one PostgreSQL ledger, as replicas
 * behind a load balancer run. Requests alternate between them: a 10-per-minute throttle admits 10 across both, not
 * 20; a key cooled by a 429 on one is cooled on the other; a budget spent through one refuses on the other; and
 * every request is exactly one ledger row. And a replica whose state is in memory says so at start-up when the
 * deployment is replicated (a replica count in the config, or Kubernetes).
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { request } from 'undici';
import { startFakeUpstream, type FakeUpstream } from './fake-upstream.js';
import { freshDatabase, startTestGateway, until, writeConfig } from './helpers.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const RUN = randomBytes(4).toString('hex');

let fake: FakeUpstream;
const replicas: Array<{ url: string; child: ChildProcess }> = [];
let ledgerUrl: string;
let ledgerDb: Awaited<ReturnType<typeof freshDatabase>>;

/** Starts `node src/cli.ts serve` on `configFile` and waits for its URL. */
function startReplica(configFile: string): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/cli.ts'), 'serve', '--config', configFile, '--port', '0'], {
    cwd: ROOT,
    env: { ...process.env, LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`replica did not start:\n${out}`)), 30_000);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening on (http:\/\/[^\s"]+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ url: m[1]!, child });
      }
    });
  });
}

const send = (url: string, headers: Record<string, string> = {}) =>
  request(url + '/v1/messages', {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ model: 'claude-sonnet-4-6', max_tokens: 5, messages: [{ role: 'user', content: 'hi' }] }),
  });

before(async () => {
  fake = await startFakeUpstream();
  ledgerDb = await freshDatabase('switchyard_fleet');
  ledgerUrl = ledgerDb.url;
  // Rule ids carry the run id: counters left in the shared Redis by earlier runs do not count.
  const rules = {
    '50.yaml': `version: 1
rules:
  - id: ten-a-minute-${RUN}
    match: { header: { x-case: throttle } }
    actions: [ { throttle: { scope: global, requests_per_minute: 10 } } ]
  - id: tiny-budget-${RUN}
    match: { header: { x-case: budget } }
    actions: [ { budget: { scope: global, usd: 0.0001, per: day } } ]
  - id: cooled
    match: { header: { x-case: cooldown } }
    actions: [ { route_to: { provider: limited } } ]
  - id: route
    actions: [ { route_to: { provider: anthropic } } ]
`,
  };
  const providers =
    `  anthropic:\n    type: anthropic\n    base_url: ${fake.url}\n    retries: { max: 0 }\n` +
    `  limited:\n    type: anthropic\n    base_url: ${fake.url}\n    keys: [ "k-once-429-${RUN}" ]\n    retries: { max: 0 }\n`;
  const { configFile } = writeConfig({
    upstream: fake.url,
    providers,
    rules,
    extraConfig: `replicas: 2\nstate: { redis: "${REDIS_URL}" }\nledger: { postgres: "${ledgerUrl}", flush_interval_ms: 50 }\n`,
  });
  replicas.push(await startReplica(configFile), await startReplica(configFile));
});

after(async () => {
  await Promise.all(
    replicas.map(
      ({ child }) =>
        new Promise<void>((r) => {
          if (child.exitCode !== null) return r();
          child.once('exit', () => r());
          child.kill('SIGTERM');
        }),
    ),
  );
  await fake?.close();
  await ledgerDb?.drop();
});

const [A, B] = [0, 1];
const urlOf = (i: number) => replicas[i]!.url;
const sent: string[] = [];
async function sendVia(i: number, headers: Record<string, string>): Promise<{ status: number; body: string }> {
  const r = await send(urlOf(i), headers);
  sent.push(String(r.headers['x-switchyard-request-id']));
  return { status: r.statusCode, body: await r.body.text() };
}

describe('two replicas, one Redis, one PostgreSQL', () => {
  test('a 10-per-minute throttle admits 10 requests across both replicas, not 20', async () => {
    const statuses: number[] = [];
    const t0 = performance.now();
    for (let i = 0; i < 20; i++) statuses.push((await sendVia(i % 2 ? B : A, { 'x-case': 'throttle' })).status);
    // The bucket refills one request every 6 s: on a slow machine a request may come back while the 20 are sent.
    const refilled = Math.floor((performance.now() - t0) / 6000);
    const admitted = statuses.filter((s) => s === 200).length;
    assert.ok(admitted >= 10 && admitted <= 10 + refilled, `${admitted} admitted (${statuses.join(',')})`);
    assert.equal(statuses.filter((s) => s === 429).length, 20 - admitted, 'the rest refused');
  });

  test('a key cooled by a 429 on one replica is cooled on the other: no request reaches the upstream with it', async () => {
    const first = await sendVia(A, { 'x-case': 'cooldown' });
    assert.equal(first.status, 429, 'the upstream refused the key once');
    const seen = fake.received.filter((r) => r.headers['x-api-key'] === `k-once-429-${RUN}`).length;
    const second = await sendVia(B, { 'x-case': 'cooldown' });
    assert.equal(second.status, 429);
    assert.match((JSON.parse(second.body) as { error: { message: string } }).error.message, /^every upstream key of "limited" is cooling down/);
    assert.equal(fake.received.filter((r) => r.headers['x-api-key'] === `k-once-429-${RUN}`).length, seen, 'replica B did not send the cooled key');
  });

  test('a budget spent through one replica refuses on the other', async () => {
    assert.equal((await sendVia(A, { 'x-case': 'budget' })).status, 200);
    await until(
      async () => {
        const r = await sendVia(B, { 'x-case': 'budget' });
        return r.status === 429 && /budget "tiny-budget-/.test((JSON.parse(r.body) as { error: { message: string } }).error.message);
      },
      5000,
      'replica B refusing on the spent budget',
    );
  });

  test('every request is exactly one ledger row, whichever replica answered', async () => {
    const db = new pg.Client({ connectionString: ledgerUrl });
    await db.connect();
    try {
      await until(async () => Number((await db.query('SELECT count(*) AS n FROM usage_records')).rows[0].n) >= sent.length, 10_000, 'all rows flushed');
      const rows = (await db.query('SELECT request_id FROM usage_records')).rows as Array<{ request_id: string }>;
      assert.equal(rows.length, sent.length);
      assert.deepEqual(new Set(rows.map((r) => r.request_id)), new Set(sent));
    } finally {
      await db.end();
    }
  });
});

describe('a replicated deployment with state in memory', () => {
  test('warns at start-up: replicas: in the config', async () => {
    const { gw, logs } = await startTestGateway({ upstream: fake.url, extraConfig: 'replicas: 3\n' });
    await gw.close();
    const line = logs.lines.find((l) => /state is in memory/.test(String(l.msg)));
    assert.ok(line, 'a warning');
    assert.match(String(line.msg), /3 replicas.*throttles, key cooldowns and budgets are counted per replica.*state: \{ redis/);
  });

  test('warns at start-up: a Kubernetes pod (KUBERNETES_SERVICE_HOST); not when state is shared', async () => {
    process.env.KUBERNETES_SERVICE_HOST = '10.0.0.1';
    try {
      const k8s = await startTestGateway({ upstream: fake.url });
      await k8s.gw.close();
      assert.ok(k8s.logs.lines.some((l) => /state is in memory/.test(String(l.msg)) && /Kubernetes/.test(String(l.msg))));
      const shared = await startTestGateway({ upstream: fake.url, extraConfig: `state: { redis: "${REDIS_URL}" }\n` });
      await shared.gw.close();
      assert.ok(!shared.logs.lines.some((l) => /state is in memory/.test(String(l.msg))));
    } finally {
      delete process.env.KUBERNETES_SERVICE_HOST;
    }
  });
});

describe('rules in a Kubernetes ConfigMap', () => {
  test('an update (the atomic ..data symlink swap) is picked up; /admin/rules and switchyard_rules_info show the new version', async () => {
    const { configFile, rulesDir } = writeConfig({ upstream: fake.url, rules: {} });
    // The layout kubelet makes: ..<timestamp>/ holds the files, ..data points at it, each file is a symlink via ..data.
    const rule = (id: string) => `version: 1\nrules:\n  - id: ${id}\n    actions: [ { route_to: { provider: anthropic } } ]\n`;
    mkdirSync(path.join(rulesDir, '..2026_11_30_01'));
    writeFileSync(path.join(rulesDir, '..2026_11_30_01', '50.yaml'), rule('before-update'));
    symlinkSync('..2026_11_30_01', path.join(rulesDir, '..data'));
    symlinkSync('..data/50.yaml', path.join(rulesDir, '50.yaml'));
    const { gw } = await startTestGateway({ upstream: fake.url, configFile, watch: true });
    try {
      const admin = async () => (await (await request(gw.url + '/admin/rules')).body.json()) as { version: string; rules: Array<{ id: string }> };
      const metric = async () => /^switchyard_rules_info\{version="([0-9a-f]+)"\} 1$/m.exec(await (await request(gw.url + '/metrics')).body.text())?.[1];
      const before = await admin();
      assert.deepEqual(
        before.rules.map((r) => r.id),
        ['before-update'],
      );
      assert.equal(await metric(), before.version);
      mkdirSync(path.join(rulesDir, '..2026_11_30_02'));
      writeFileSync(path.join(rulesDir, '..2026_11_30_02', '50.yaml'), rule('after-update'));
      symlinkSync('..2026_11_30_02', path.join(rulesDir, '..data_tmp'));
      renameSync(path.join(rulesDir, '..data_tmp'), path.join(rulesDir, '..data')); // atomic, as kubelet does it
      rmSync(path.join(rulesDir, '..2026_11_30_01'), { recursive: true });
      await until(async () => (await admin()).rules[0]?.id === 'after-update', 5000, 'the new rules served');
      const after = await admin();
      assert.notEqual(after.version, before.version);
      assert.equal(await metric(), after.version);
    } finally {
      await gw.close();
    }
  });
});
