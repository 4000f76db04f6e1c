/**
 * The dashboard on data shaped like real Claude Code traffic (issue 33), in Chromium: user ids as Claude Code sends them
 * (64-hex `metadata.user_id` hashes, `fp-…` credential fingerprints), session ids as UUIDs, requests without a session
 * from several users; one day of traffic, 90 days, an empty ledger, and 10,000 sessions. For each: no element of the
 * overview or the sessions view overflows the page or overlaps its neighbours (bounding boxes), the chart's x range is
 * the filter's range, the figures equal `switchyard usage`, and a screenshot is kept in reports/screenshots/.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { loadConfig } from '../src/config.js';
import { ledgerStore } from '../src/usage/open.js';
import type { UsageRecord } from '../src/usage/record.js';
import { startFakeUpstream, type FakeUpstream } from './fake-upstream.js';
import { startTestGateway, usageRecord, writeConfig } from './helpers.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const SHOTS = path.join(ROOT, 'reports/screenshots');
const TOKEN = 'dashboard-realistic-token-01';
const DAY = 86_400_000;

/** A Claude Code user id as the gateway records it in transparent mode: the 64-hex hash of metadata.user_id. */
const claudeUser = (i: number) => createHash('sha256').update(`user-${i}`).digest('hex');

/** `n` records from `users` users at times `at(i)`; every 7th has no session id; sessions are UUIDs, `sessions` of them. */
function records(n: number, at: (i: number) => number, opts: { users: number; sessions: number }): UsageRecord[] {
  const sessionIds = Array.from({ length: opts.sessions }, () => randomUUID());
  return Array.from({ length: n }, (_, i): UsageRecord => {
    const user =
      i % 5 === 4
        ? `fp-${createHash('sha256')
            .update(`key-${i % 3}`)
            .digest('hex')
            .slice(0, 10)}`
        : claudeUser(i % opts.users);
    return usageRecord({
      time: new Date(at(i)).toISOString(),
      request_id: `sy_real_${i}`,
      session_id: i % 7 === 6 ? null : sessionIds[i % opts.sessions]!,
      user_id: user,
      project: i % 3 === 0 ? null : `platform-monorepo-${i % 2}`,
      model: i % 4 === 0 ? 'claude-haiku-4-5-20251001' : 'claude-sonnet-4-6',
      rules: ['route'],
      input_tokens: 20 + (i % 50),
      output_tokens: 400 + (i % 100),
      cost_usd: Math.round((0.01 + (i % 13) * 0.001) * 1e6) / 1e6,
    });
  });
}

const now = Date.now();
const DATASETS: Array<[string, () => UsageRecord[]]> = [
  ['one-day', () => records(300, (i) => now - 3_600_000 - (i % 20) * 60_000, { users: 4, sessions: 12 })],
  ['ninety-days', () => records(2000, (i) => now - 3_600_000 - (i % 90) * DAY, { users: 40, sessions: 300 })],
  ['empty', () => []],
  ['ten-thousand-sessions', () => records(12_000, (i) => now - 3_600_000 - (i % 1440) * 60_000, { users: 200, sessions: 10_000 })],
];

let fake: FakeUpstream;
let browser: Browser;
before(async () => {
  fake = await startFakeUpstream();
  mkdirSync(SHOTS, { recursive: true });
  assert.ok(existsSync(CHROMIUM), `Chromium not found at ${CHROMIUM}: install Debian's chromium package or set CHROMIUM_PATH`);
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
});
after(async () => {
  await browser?.close();
  await fake?.close();
});

/** Boxes of the elements `selector` matches that overlap another's, or stick out of the page; [] when none. */
async function layoutFaults(page: Page, selector: string): Promise<string[]> {
  return page.evaluate((sel) => {
    const faults: string[] = [];
    const width = document.documentElement.clientWidth;
    if (document.documentElement.scrollWidth > width + 1) faults.push(`the page scrolls sideways: ${document.documentElement.scrollWidth} > ${width}`);
    const els = [...document.querySelectorAll(sel)];
    const boxes = els.map((e) => e.getBoundingClientRect());
    boxes.forEach((a, i) => {
      const name = `${els[i]!.tagName.toLowerCase()} "${(els[i]!.textContent ?? '').slice(0, 30)}"`;
      if (a.right > width + 1) faults.push(`${name} ends at ${a.right}, past the page's ${width}`);
      boxes.forEach((b, j) => {
        if (j <= i || els[i]!.contains(els[j]!) || els[j]!.contains(els[i]!)) return;
        const overlap = Math.min(a.right, b.right) - Math.max(a.left, b.left) > 1 && Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top) > 1;
        if (overlap) faults.push(`${name} overlaps ${els[j]!.tagName.toLowerCase()} "${(els[j]!.textContent ?? '').slice(0, 30)}"`);
      });
    });
    return faults;
  }, selector);
}

for (const [name, make] of DATASETS) {
  describe(`the dashboard on ${name}`, () => {
    let gw: Awaited<ReturnType<typeof startTestGateway>>;
    let configFile: string;
    const seeded = make();
    before(async () => {
      const extraConfig = `ledger: { sqlite: ./data/usage.db, flush_interval_ms: 50 }\nadmin: { token: "${TOKEN}" }\n`;
      ({ configFile } = writeConfig({ upstream: fake.url, extraConfig }));
      const store = (await ledgerStore(loadConfig(configFile)))!;
      await store.init();
      for (let i = 0; i < seeded.length; i += 500) await store.insert(seeded.slice(i, i + 500));
      await store.close();
      gw = await startTestGateway({ upstream: fake.url, extraConfig, configFile });
    });
    after(async () => {
      await gw?.gw.close();
    });

    const signedIn = async (): Promise<Page> => {
      const page = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
      await page.goto(`${gw.gw.url}/admin/ui/`);
      await page.fill('#token', TOKEN);
      await page.click('button[type=submit]');
      await page.waitForSelector('nav[aria-label=Views]');
      await page.waitForFunction(() => !document.body.textContent?.includes('Loading…'));
      return page;
    };

    test('overview: nothing overflows or overlaps, the chart spans the filter range, the figures are `switchyard usage`', async () => {
      const page = await signedIn();
      await page.waitForSelector('[data-testid=total-requests]');
      const since = await page.inputValue('input[name=since]');
      const until = await page.inputValue('input[name=until]');
      const cli = spawnSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/cli.ts'), 'usage', '--config', configFile, '--since', since, '--until', until, '--format', 'json'], {
        cwd: ROOT,
        encoding: 'utf8',
      });
      assert.equal(cli.status, 0, cli.stderr);
      const totals = (JSON.parse(cli.stdout) as { totals: { requests: number; cost_usd: number } }).totals;
      assert.equal(await page.textContent('[data-testid=total-requests]'), totals.requests.toLocaleString('en-US'));
      assert.equal(await page.textContent('[data-testid=total-cost]'), `$${totals.cost_usd.toFixed(totals.cost_usd < 1 ? 4 : 2)}`);
      if (seeded.length) {
        assert.ok(totals.requests > 0, 'the seeded records are in the default range');
        await page.waitForSelector('.chart[data-x-min]');
        const x = await page.$eval('.chart', (e) => [Number((e as HTMLElement).dataset.xMin), Number((e as HTMLElement).dataset.xMax)]);
        assert.deepEqual(x, [Date.parse(`${since}T00:00:00Z`) / 1000, Date.parse(`${until}T00:00:00Z`) / 1000], 'the x axis is the filter range');
      }
      assert.deepEqual(await layoutFaults(page, '.grid table, .grid td, .grid th, .cards > div, .chart'), []);
      await page.screenshot({ path: path.join(SHOTS, `realistic-${name}-overview.png`), fullPage: true });
      await page.close();
    });

    test('sessions: one "(no session)" row per user, ids on one line, nothing overflows', async () => {
      const page = await signedIn();
      await page.goto(`${gw.gw.url}/admin/ui/#/sessions`);
      await page.waitForSelector('[data-testid=sessions]');
      await page.waitForFunction(() => !document.body.textContent?.includes('Loading…'));
      const labels = await page.$$eval('[data-testid=sessions] tbody tr td:first-child', (tds) => tds.map((td) => td.textContent ?? ''));
      const sessionless = new Set(seeded.filter((r) => !r.session_id && r.time >= new Date(now - 6 * DAY).toISOString().slice(0, 10)).map((r) => r.user_id));
      assert.deepEqual(new Set(labels.filter((l) => l.startsWith('(no session'))), new Set([...sessionless].map((u) => `(no session: ${u})`)));
      // Every id cell is one line high: long ids are cut with an ellipsis, not wrapped.
      await page.screenshot({ path: path.join(SHOTS, `realistic-${name}-sessions.png`), fullPage: false });
      const tall = await page.$$eval('[data-testid=sessions] tbody tr', (trs) =>
        trs
          .slice(0, 200)
          .filter((tr) => tr.getBoundingClientRect().height > 40)
          .map(
            (tr) =>
              `${Math.round(tr.getBoundingClientRect().height)}px: ${[...tr.children].map((td) => `${Math.round(td.getBoundingClientRect().height)}:${(td.textContent ?? '').slice(0, 20)}`).join(' | ')}`,
          ),
      );
      assert.deepEqual(tall, []);
      assert.deepEqual(await layoutFaults(page, '[data-testid=sessions] thead th'), []);
      await page.close();
    });
  });
}
