/**
 * Operator tools on realistic volumes (issue 16): `switchyard test` over 1,000 cases against the bundled
 * rules, and `switchyard replay` over 100,000 SQLite ledger records (live rules vs a candidate that moves
 * Haiku elsewhere). Wall time in ms of the compiled code (`npm run bench` builds dist/ first), in process —
 * the CLI adds ~0.3 s of start-up to each.
 */
import { usageRecord } from '../test/helpers.js';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

const { runTestPaths } = (await import('../dist/rules/rule-tests.js' as string)) as typeof import('../src/rules/rule-tests.js');
const { replay } = (await import('../dist/rules/replay.js' as string)) as typeof import('../src/rules/replay.js');
const { loadRuleDir } = (await import('../dist/rules/load.js' as string)) as typeof import('../src/rules/load.js');
const { loadConfig } = (await import('../dist/config.js' as string)) as typeof import('../src/config.js');
const { loadPrices } = (await import('../dist/usage/prices.js' as string)) as typeof import('../src/usage/prices.js');
const { SqliteStore } = (await import('../dist/usage/sqlite.js' as string)) as typeof import('../src/usage/sqlite.js');

const ROOT = path.resolve(import.meta.dirname, '..');

export async function benchRuleTools(): Promise<{ test_1000_cases_ms: number; replay_100k_records_ms: number; replay_changed: number }> {
  const dir = mkdtempSync(path.join(tmpdir(), 'switchyard-bench-tools-'));
  // 1,000 cases against the bundled rules and config.
  const cases: string[] = [];
  const models = ['claude-sonnet-4-6', 'claude-haiku-4-5', 'claude-opus-4-6'];
  for (let i = 0; i < 1000; i++) {
    const model = models[i % 3]!;
    const team = i % 2 ? `\n      headers: { x-team: team-${i % 7} }` : '';
    cases.push(`  - name: case ${i}\n    request:\n      model: ${model}${team}\n    expect: { provider: anthropic, model: ${model}${i % 2 ? `, tags: { team: team-${i % 7} }` : ''} }`);
  }
  const testFile = path.join(dir, 'bench.test.yaml');
  writeFileSync(testFile, `version: 1\nconfig: ${path.join(ROOT, 'switchyard.yaml')}\ntests:\n${cases.join('\n')}\n`);
  let t = performance.now();
  const run = await runTestPaths([testFile], path.join(ROOT, 'switchyard.yaml'));
  const testMs = performance.now() - t;
  if (run.results.length !== 1000 || run.results.some((r) => !r.ok)) throw new Error('bench rule tests did not all pass');

  // 100,000 records in a SQLite ledger, as the gateway writes them.
  mkdirSync(path.join(dir, 'candidate'));
  writeFileSync(
    path.join(dir, 'candidate', '10.yaml'),
    'version: 1\nrules:\n  - id: haiku-elsewhere\n    match: { model: "claude-haiku-*" }\n    actions: [ { route_to: { provider: anthropic, model: claude-haiku-4-5-batch } } ]\n  - id: team\n    match: { header: { x-team: "*" } }\n    actions: [ { tag_billing: { team: { expr: "headers.\'x-team\'" } } } ]\n',
  );
  const store = new SqliteStore(path.join(dir, 'usage.db'));
  await store.init();
  const start = Date.now() - 3_600_000;
  for (let batch = 0; batch < 100; batch++) {
    const recs = Array.from({ length: 1000 }, (_, j) => {
      const i = batch * 1000 + j;
      const model = models[i % 3]!;
      return usageRecord({
        time: new Date(start + i * 30).toISOString(),
        request_id: `sy_bench_${i}`,
        client_id: 'fp-0123456789',
        session_id: `s-${i % 50}`,
        user_id: `user-${i % 20}`,
        requested_model: model,
        model,
        rules_version: 'bench',
        rules: ['default-route', 'cache-prefix'],
        facts: {
          path: '/v1/messages',
          stream: true,
          body_bytes: 76_000,
          messages: 12,
          tools: 24,
          max_tokens: 32000,
          metadata: { user_id: 'u' },
          headers: (i % 2 ? { 'x-team': `team-${i % 7}` } : {}) as Record<string, string>,
          headers_named: ['x-claude-code-session-id', 'x-team'],
        },
        cost_usd: 0.01,
      });
    });
    await store.insert(recs);
  }
  const config = loadConfig(path.join(ROOT, 'switchyard.yaml'), { missingEnv: 'warning' });
  t = performance.now();
  const since = new Date(start - 1000).toISOString();
  const until = new Date().toISOString();
  const records = await store.query(since, until);
  const live = loadRuleDir(config.rules_dir, Object.keys(config.providers));
  const candidate = loadRuleDir(path.join(dir, 'candidate'), Object.keys(config.providers));
  const report = await replay(config, live, candidate, loadPrices(config.prices), records, since, until);
  const replayMs = performance.now() - t;
  await store.close();
  if (report.records !== 100_000) throw new Error(`replay read ${report.records} records`);
  return { test_1000_cases_ms: Math.round(testMs), replay_100k_records_ms: Math.round(replayMs), replay_changed: report.changed };
}
