/**
 * The dashboard (issue 19) in a real browser: playwright-core driving Debian's Chromium (`.ci/run` installs the
 * `chromium` package; CHROMIUM_PATH names another). A gateway with an admin token and a seeded SQLite ledger:
 * sign-in required, each view loads without console errors (screenshots in reports/screenshots/), the overview's
 * figures equal `switchyard usage` for the same range and filters, the live tail shows a request sent during the
 * test, the dry-run form shows a decision, axe-core finds no serious or critical violation, and the views are
 * reachable from the keyboard.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createRequire } from 'node:module';
import { chromium, type Browser, type Page } from 'playwright-core';
import { request } from 'undici';
import { loadConfig } from '../src/config.js';
import { ledgerStore } from '../src/usage/open.js';
import type { UsageRecord } from '../src/usage/record.js';
import { startFakeUpstream, type FakeUpstream } from './fake-upstream.js';
import { startTestGateway, writeConfig } from './helpers.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const SHOTS = path.join(ROOT, 'reports/screenshots');
const TOKEN = 'dashboard-admin-token-0001';
const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

const RULES = {
  '50.yaml': `version: 1
rules:
  - id: no-opus
    match: { model: "claude-opus-*" }
    actions: [ { deny: { status: 403, message: "no Opus" } } ]
  - id: user-budget
    actions: [ { budget: { scope: user, usd: 50, per: month } } ]
  - id: team-alert
    match: { header: { x-team: "*" } }
    actions: [ { tag_billing: { team: { expr: "headers.'x-team'" } } }, { budget: { scope: "tag:team", usd: 0.000001, per: day, notify: [0.5, 1], block: false } } ]
  - id: route
    actions: [ { route_to: { provider: anthropic } } ]
`,
};

/** Seeded records: two users, two projects, three sessions, two models, some refused and failed, over the last days. */
function seed(): UsageRecord[] {
  const now = Date.now();
  const users = ['alice', 'bob'];
  const out: UsageRecord[] = [];
  for (let i = 0; i < 30; i++) {
    const user = users[i % 2]!;
    const outcome: UsageRecord['outcome'] = i % 10 === 9 ? 'refused' : i % 10 === 8 ? 'failed' : 'ok';
    out.push({
      time: new Date(now - (i % 3) * 86_400_000 - i * 60_000).toISOString(),
      request_id: `sy_seed_${String(i).padStart(3, '0')}`,
      client_id: user,
      key_fingerprint: null,
      session_id: `sess-${i % 3}`,
      user_id: user,
      project: i % 4 === 0 ? 'infra' : 'search',
      agent_id: null,
      requested_model: i % 5 === 0 ? 'claude-haiku-4-5' : 'claude-sonnet-4-6',
      provider: outcome === 'refused' ? null : 'anthropic',
      model: i % 5 === 0 ? 'claude-haiku-4-5' : 'claude-sonnet-4-6',
      rules_version: 'seeded',
      rules: outcome === 'refused' ? ['no-opus'] : ['user-budget', 'route'],
      facts: null,
      tags: { team: user === 'alice' ? 'search' : 'infra' },
      status: outcome === 'refused' ? 403 : outcome === 'failed' ? 529 : 200,
      outcome,
      error_type: null,
      // scan_secrets findings in five requests, the first with two rules.
      secret_findings: i === 0 ? { 'aws-access-token': 2, 'github-pat': 1 } : i % 7 === 0 ? { 'aws-access-token': 1 } : null,
      retries: 0,
      latency_ms: 200 + i * 10,
      ttft_ms: outcome === 'ok' ? 80 + i : null,
      input_tokens: outcome === 'ok' ? 1000 + i * 100 : 0,
      output_tokens: outcome === 'ok' ? 200 + i * 10 : 0,
      cache_creation_input_tokens: outcome === 'ok' ? 500 : 0,
      cache_creation_5m_input_tokens: outcome === 'ok' ? 500 : 0,
      cache_creation_1h_input_tokens: 0,
      // Request 3 finds session sess-0's warm cache cold (a cache break), the others read it.
      cache_read_input_tokens: outcome !== 'ok' || i === 3 ? 0 : 4000 + i * 50,
      cost_usd: outcome === 'ok' ? Math.round((0.01 + i * 0.003) * 1e6) / 1e6 : 0,
    });
  }
  return out;
}

let fake: FakeUpstream;
let gw: Awaited<ReturnType<typeof startTestGateway>>;
let browser: Browser;
let configFile: string;

before(async () => {
  fake = await startFakeUpstream();
  const extraConfig = `ledger: { sqlite: ./data/usage.db, flush_interval_ms: 50 }\nadmin: { token: "${TOKEN}" }\n`;
  // Seed the ledger the gateway will open.
  ({ configFile } = writeConfig({ upstream: fake.url, rules: RULES, extraConfig }));
  const store = (await ledgerStore(loadConfig(configFile)))!;
  await store.init();
  await store.insert(seed());
  // One session reported what it produced (Claude Code's telemetry through login:, login/telemetry.ts).
  await store.addActivity([
    { session_id: 'sess-1', user_id: 'bob', column: 'commits', value: 3, mode: 'add' },
    { session_id: 'sess-1', user_id: 'bob', column: 'pull_requests', value: 1, mode: 'add' },
  ]);
  await store.close();
  gw = await startTestGateway({ upstream: fake.url, rules: RULES, extraConfig, configFile });
  mkdirSync(SHOTS, { recursive: true });
  assert.ok(existsSync(CHROMIUM), `Chromium not found at ${CHROMIUM}: install Debian's chromium package or set CHROMIUM_PATH`);
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
});
after(async () => {
  await browser?.close();
  await gw?.gw.close();
  await fake?.close();
});

/** A signed-in page that records console errors. */
async function signedIn(): Promise<{ page: Page; errors: string[] }> {
  const page = await (await browser.newContext()).newPage();
  await page.goto(`${gw.gw.url}/admin/ui/`); // the sign-in page, answered 401
  const errors: string[] = [];
  page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
  page.on('pageerror', (e) => errors.push(e.message));
  await page.fill('#token', TOKEN);
  await page.click('button[type=submit]');
  await page.waitForSelector('nav[aria-label=Views]');
  return { page, errors };
}

/** `switchyard usage --format json` totals for the dashboard's default range and the given filters. */
function cliTotals(since: string, until: string, where: string[] = []): { requests: number; cost_usd: number; input_tokens: number; output_tokens: number; cache_read_tokens: number } {
  const r = spawnSync(
    process.execPath,
    ['--import', 'tsx', path.join(ROOT, 'src/cli.ts'), 'usage', '--config', configFile, '--since', since, '--until', until, ...where.flatMap((w) => ['--where', w]), '--format', 'json'],
    {
      cwd: ROOT,
      encoding: 'utf8',
    },
  );
  assert.equal(r.status, 0, r.stderr);
  return (JSON.parse(r.stdout) as { totals: ReturnType<typeof cliTotals> }).totals;
}

const usdText = (x: number) => `$${x.toFixed(x < 1 ? 4 : 2)}`;

describe('dashboard', () => {
  test('the admin token is required: a sign-in page, a wrong token refused, the API closed without it', async () => {
    const page = await (await browser.newContext()).newPage();
    const first = await page.goto(`${gw.gw.url}/admin/ui/`);
    assert.equal(first!.status(), 401);
    await page.fill('#token', 'wrong-token');
    await page.click('button[type=submit]');
    assert.match((await page.textContent('[role=alert]')) ?? '', /not the admin token/);
    const api = await request(`${gw.gw.url}/admin/ui/api/overview`);
    assert.equal(api.statusCode, 401);
    await api.body.dump();
    const csp = (await request(`${gw.gw.url}/admin/ui/`)).headers['content-security-policy'];
    assert.match(String(csp), /script-src 'self'/);
    // The assets carry no data: served to anyone, named by their content, cached for a year.
    const manifest = JSON.parse(readFileSync(path.join(ROOT, 'dist/ui/manifest.json'), 'utf8')) as { js: string };
    const js = await request(`${gw.gw.url}/admin/ui/assets/${manifest.js}`, { headers: { 'accept-encoding': 'gzip' } });
    assert.equal(js.statusCode, 200);
    assert.equal(js.headers['cache-control'], 'public, max-age=31536000, immutable');
    assert.equal(js.headers['content-encoding'], 'gzip');
    const gz = Buffer.from(await js.body.arrayBuffer());
    assert.ok(gz.length < 150_000, `the script, compressed, is ${gz.length} bytes`);
    await page.close();
  });

  test('every view loads without console errors; screenshots kept', async () => {
    const { page, errors } = await signedIn();
    for (const view of ['overview', 'sessions', 'budgets', 'rules', 'providers', 'live']) {
      await page.goto(`${gw.gw.url}/admin/ui/#/${view}`);
      await page.waitForFunction((v) => document.title.toLowerCase().startsWith(v), view);
      await page.waitForFunction(() => !document.body.textContent?.includes('Loading…'));
      assert.equal(await page.locator('[role=alert]').count(), 0, `${view}: ${await page.locator('[role=alert]').allTextContents()}`);
      await page.screenshot({ path: path.join(SHOTS, `${view}.png`), fullPage: true });
    }
    assert.deepEqual(errors, []);
    await page.close();
  });

  test("the overview's figures equal `switchyard usage` for the same range, then for a filter", async () => {
    const { page } = await signedIn();
    const since = await page.inputValue('input[name=since]');
    const until = await page.inputValue('input[name=until]');
    const all = cliTotals(since, until);
    assert.equal(all.requests, 30, 'the seeded records are in range');
    await page.waitForSelector('[data-testid=total-requests]');
    assert.equal(await page.textContent('[data-testid=total-requests]'), all.requests.toLocaleString('en-US'));
    assert.equal(await page.textContent('[data-testid=total-cost]'), usdText(all.cost_usd));
    assert.equal(await page.textContent('[data-testid=total-input]'), all.input_tokens.toLocaleString('en-US'));
    assert.equal(await page.textContent('[data-testid=total-cache-read]'), all.cache_read_tokens.toLocaleString('en-US'));
    await page.fill('input[name=user]', 'alice');
    await page.click('form[aria-label=Filters] button[type=submit]');
    const alice = cliTotals(since, until, ['user=alice']);
    assert.ok(alice.requests > 0 && alice.requests < all.requests);
    await page.waitForFunction((n) => document.querySelector('[data-testid=total-requests]')?.textContent === n, alice.requests.toLocaleString('en-US'));
    assert.equal(await page.textContent('[data-testid=total-cost]'), usdText(alice.cost_usd));
    assert.equal(await page.textContent('[data-testid=total-output]'), alice.output_tokens.toLocaleString('en-US'));
    await page.close();
  });

  test('sessions show what a session produced and its cost per commit, as `switchyard usage --activity` reports them', async () => {
    const { page } = await signedIn();
    await page.goto(`${gw.gw.url}/admin/ui/#/sessions`);
    await page.waitForSelector('[data-testid=commits-sess-1]');
    const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/cli.ts'), 'usage', '--config', configFile, '--activity', '--since', '30d', '--format', 'json'], {
      cwd: ROOT,
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stderr);
    const cli = JSON.parse(r.stdout) as Array<{ session_id: string; commits: number; pull_requests: number; usd_per_commit: number; cost_usd: number }>;
    const s1 = cli.find((x) => x.session_id === 'sess-1')!;
    assert.equal(s1.commits, 3);
    assert.ok(s1.cost_usd > 0);
    assert.equal(await page.textContent('[data-testid=commits-sess-1]'), '3');
    assert.equal(await page.textContent('[data-testid=prs-sess-1]'), '1');
    assert.equal(await page.textContent('[data-testid=cost-per-commit-sess-1]'), `$${s1.usd_per_commit.toFixed(s1.usd_per_commit < 1 ? 4 : 2)}`);
    assert.equal(await page.textContent('[data-testid=commits-sess-0]'), '—', 'a session that reported nothing');
  });

  test("sessions show each session's cache breaks, as `switchyard usage --cache` counts them", async () => {
    const { page } = await signedIn();
    await page.goto(`${gw.gw.url}/admin/ui/#/sessions`);
    await page.waitForSelector('[data-testid=sessions]');
    const since = await page.inputValue('input[name=since]');
    const until = await page.inputValue('input[name=until]');
    const r = spawnSync(
      process.execPath,
      ['--import', 'tsx', path.join(ROOT, 'src/cli.ts'), 'usage', '--config', configFile, '--since', since, '--until', until, '--cache', '--by', 'session', '--format', 'json'],
      {
        cwd: ROOT,
        encoding: 'utf8',
      },
    );
    assert.equal(r.status, 0, r.stderr);
    const cli = JSON.parse(r.stdout) as { rows: Array<{ group: string; breaks: number }> };
    assert.equal(cli.rows.find((x) => x.group === 'sess-0')?.breaks, 1, 'the planted break');
    for (const row of cli.rows.filter((x) => x.group.startsWith('sess-'))) {
      assert.equal(await page.textContent(`[data-testid=cache-breaks-${row.group}]`), String(row.breaks), row.group);
    }
    await page.close();
  });

  test('the live tail shows a request sent while it is open', async () => {
    const { page } = await signedIn();
    await page.goto(`${gw.gw.url}/admin/ui/#/live`);
    await page.waitForSelector('[data-testid=live]');
    // The page's EventSource connects on its own time: a request sent before it did is not in the tail, so send
    // until one shows (bounded), then check that row.
    let id = '';
    for (let attempt = 0; attempt < 10 && !id; attempt++) {
      const r = await request(`${gw.gw.url}/v1/messages`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-api-key': 'sk-ant-live' },
        body: JSON.stringify({ model: 'claude-sonnet-4-6', max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] }),
      });
      const sent = String(r.headers['x-switchyard-request-id']);
      await r.body.dump();
      const shown = await page.waitForSelector(`[data-testid=live] td:text-is("${sent}")`, { timeout: 1000 }).catch(() => null);
      if (shown) id = sent;
    }
    assert.ok(id, 'a request sent while the tail is open shows in it');
    const row = await page.textContent(`[data-testid=live] tr:has(td:text-is("${id}"))`);
    assert.match(row!, /claude-sonnet-4-6 → anthropic/);
    assert.ok(!row!.includes('sk-ant-live'));
    await page.close();
  });

  test('the rules view lists rules with hits from the ledger, and the dry-run form shows a decision', async () => {
    // A denial now: the ledger names the rule that refused it (seeded records, from before refused_by, name none).
    for (let i = 0; i < 2; i++) {
      const denied = await request(`${gw.gw.url}/v1/messages`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-api-key': 'sk-ant-deny' },
        body: JSON.stringify({ model: 'claude-opus-4-1', max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] }),
      });
      assert.equal(denied.statusCode, 403);
      await denied.body.dump();
    }
    const { page } = await signedIn();
    await page.goto(`${gw.gw.url}/admin/ui/#/rules`);
    await page.waitForSelector('[data-testid=rules]');
    const seeded = seed().filter((r) => r.rules.includes('route')).length;
    assert.ok(Number(await page.textContent('[data-testid=rule-hits-route]')) >= seeded);
    await page.waitForFunction(() => document.querySelector('[data-testid=rule-denied-no-opus]')?.textContent === '2', undefined, { timeout: 5000 }).catch(() => {});
    assert.equal(await page.textContent('[data-testid=rule-denied-no-opus]'), '2', 'the two denials just sent, not the seeded refusals');
    assert.equal(await page.textContent('[data-testid=rule-denied-route]'), '0', 'a rule that only matched refused nothing');
    // scan_secrets' findings per user and session, most first (counts by rule id, never a value).
    await page.waitForSelector('[data-testid=secret-findings] tbody tr');
    const findings = await page.$$eval('[data-testid=secret-findings] tbody tr', (rows) => rows.map((r) => [...r.querySelectorAll('td')].slice(0, 4).map((td) => td.textContent)));
    assert.deepEqual(findings[0], ['alice', 'sess-0', 'aws-access-token × 2, github-pat × 1', '1']);
    assert.equal(findings.length, 5);
    await page.fill('#dry-run-body', JSON.stringify({ model: 'claude-opus-4-1', max_tokens: 10, messages: [{ role: 'user', content: 'x' }] }));
    await page.click('form[aria-label="Dry run"] button[type=submit]');
    const result = await page.textContent('[data-testid=dry-run-result]');
    assert.match(result!, /"rule": "no-opus"/);
    await page.close();
  });

  test('budgets show the threshold notifications sent this period', async () => {
    const r = await request(`${gw.gw.url}/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': 'sk-ant-notify', 'x-team': 'notify-team' },
      body: JSON.stringify({ model: 'claude-sonnet-4-6', max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] }),
    });
    assert.equal(r.statusCode, 200, 'notify-only: not refused');
    await r.body.dump();
    let notified: Array<{ threshold: number; time: string | null; delivered: boolean }> = [];
    for (let i = 0; i < 50 && notified.length < 2; i++) {
      const api = (await (await request(`${gw.gw.url}/admin/ui/api/budgets`, { headers: { authorization: `Bearer ${TOKEN}` } })).body.json()) as {
        budgets: Array<{ rule: string; values: Array<{ value: string; notified: typeof notified }> }>;
      };
      notified = api.budgets.find((b) => b.rule === 'team-alert')?.values.find((v) => v.value === 'notify-team')?.notified ?? [];
      if (notified.length < 2) await new Promise((res) => setTimeout(res, 50));
    }
    assert.deepEqual(
      notified.map((n) => [n.threshold, n.delivered]),
      [
        [0.5, true],
        [1, true],
      ],
      'both thresholds, delivered (no webhook configured: logged)',
    );
    const { page } = await signedIn();
    await page.goto(`${gw.gw.url}/admin/ui/#/budgets`);
    const cell = await page.waitForSelector('[data-testid=budget-notified-team-alert-notify-team]');
    assert.match((await cell.textContent()) ?? '', /^50% \d\d-\d\d \d\d:\d\d, 100% \d\d-\d\d \d\d:\d\d$/);
  });

  test('budgets show what each user spent this month, equal to the ledger', async () => {
    const { page } = await signedIn();
    await page.goto(`${gw.gw.url}/admin/ui/#/budgets`);
    await page.waitForSelector('[data-testid^=budget-spent-user-budget-]');
    const monthStart = new Date().toISOString().slice(0, 8) + '01';
    const alice = seed()
      .filter((r) => r.user_id === 'alice' && r.rules.includes('user-budget') && r.time >= monthStart)
      .reduce((a, r) => a + (r.cost_usd ?? 0), 0);
    assert.equal(await page.textContent('[data-testid=budget-spent-user-budget-alice]'), `${usdText(Math.round(alice * 1e6) / 1e6)} of $50.00`);
    await page.close();
  });

  test('axe-core: no serious or critical accessibility violation on any view', async () => {
    const { page } = await signedIn();
    for (const view of ['overview', 'sessions', 'budgets', 'rules', 'providers', 'live']) {
      await page.goto(`${gw.gw.url}/admin/ui/#/${view}`);
      await page.waitForFunction(() => !document.body.textContent?.includes('Loading…'));
      // Through the DevTools protocol, not a <script>: the page's CSP forbids inline scripts, as it should.
      const violations = (await page.evaluate(
        `${axeSource}; axe.run(document, { resultTypes: ['violations'] }).then((r) => r.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.length })))`,
      )) as Array<{
        id: string;
        impact: string;
      }>;
      const bad = violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
      assert.deepEqual(bad, [], `${view}: ${JSON.stringify(bad)}`);
    }
    await page.close();
  });

  test('keyboard: Tab reaches the views, Enter opens one and focus moves to its heading', async () => {
    const { page } = await signedIn();
    await page.keyboard.press('Tab');
    let guard = 0;
    while ((await page.evaluate(() => document.activeElement?.textContent)) !== 'Rules' && guard++ < 20) await page.keyboard.press('Tab');
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => location.hash === '#/rules');
    // The view renders, then its effect moves focus: wait for it (bounded), do not race it.
    await page.waitForFunction(() => document.activeElement?.id === 'view-title', undefined, { timeout: 5000 });
    assert.equal(await page.textContent('h1'), 'Rules');
    await page.close();
  });
});
