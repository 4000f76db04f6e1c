/**
 * Peak memory of inject_cache on huge string prompts (issue 30, finding 4): a gateway child process on the
 * bundled 10-cache.yaml (`rule`) or with no rule (`none`), 8 concurrent 31 MB single-string prompts, RSS
 * sampled every 5 ms. Prints the peak over idle per body, as a multiple of the body.
 * Usage: node --import tsx bench/inject-cache-memory.ts rule|none
 */
import { spawn } from 'node:child_process';
import { copyFileSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Agent, request } from 'undici';
import { startFakeUpstream } from '../test/fake-upstream.js';
import { writeConfig } from '../test/helpers.js';
const withRule = process.argv[2] === 'rule';
const fake = await startFakeUpstream();
const { configFile, rulesDir } = writeConfig({ upstream: fake.url, extraConfig: 'ledger: off\nlimits: { max_inflight_body_bytes: 1073741824, max_inflight_body_bytes_per_client: 1073741824 }\n' });
if (withRule) copyFileSync('rules/10-cache.yaml', path.join(rulesDir, '10-cache.yaml'));
const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'serve', '--config', configFile, '--port', '18799'], { stdio: ['ignore', 'ignore', 'inherit'] });
const rss = () => Number(readFileSync(`/proc/${child.pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/)![1]) / 1024;
for (let i = 0; i < 100; i++) {
  try {
    await (await request('http://127.0.0.1:18799/healthz')).body.dump();
    break;
  } catch {
    await new Promise((r) => setTimeout(r, 100));
  }
}
const big = Buffer.from(JSON.stringify({ model: 'claude-sonnet-4-6', max_tokens: 5, messages: [{ role: 'user', content: 'x'.repeat(31 * 1024 * 1024) }] }));
const agent = new Agent({ connections: 20 });
await (await request('http://127.0.0.1:18799/v1/messages', { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': 'k' }, body: big, dispatcher: agent })).body.dump();
await new Promise((r) => setTimeout(r, 500));
const idle = rss();
let peak = idle;
const t = setInterval(() => {
  peak = Math.max(peak, rss());
}, 5);
const st = await Promise.all(
  Array.from({ length: 8 }, async () => {
    const r = await request('http://127.0.0.1:18799/v1/messages', { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': 'k' }, body: big, dispatcher: agent });
    await r.body.dump();
    return r.statusCode;
  }),
);
clearInterval(t);
const last = fake.received.at(-1)!;
console.log(
  withRule ? 'with inject_cache' : 'no rule',
  'statuses',
  st.join(','),
  'idle',
  idle.toFixed(0),
  'MB peak',
  peak.toFixed(0),
  'MB; peak-idle per body',
  ((peak - idle) / 8 / 31).toFixed(2),
  'x; upstream got cache_control:',
  last.body.includes('"cache_control"'),
);
child.kill();
await agent.close();
await fake.close();
