/**
 * `npm run bench [-- section ...]`: switchyard against a direct connection to the same fake upstream,
 * measured in one run, reported as ratios and differences (never asserted in tests). latency, throughput,
 * streaming and burst measure bench/reference-proxy.mjs (a 20-line node:http proxy) the same way in the same
 * run, so each gateway figure has the simplest proxy's beside it. Sections:
 *   latency     added latency per request, 1 sequential connection, 76 KB body, non-streaming
 *   throughput  requests/s at saturation with 50 connections (autocannon), gateway / direct
 *   streaming   added time to first byte and to last byte of an SSE stream, sequential
 *   burst       20 streams started together: added time to first byte (gateway vs direct, same run)
 *   memory      gateway resident memory with 500 concurrent slow streams held open
 *   ledger      gateway latency with the usage ledger on (SQLite) vs off
 *   rules       rule evaluation time for 10 and 100 rules with JSONata conditions on a 76 KB body
 *   body        the body model (src/body/) against JSON.parse / JSON.stringify on the 76 KB body: read, forward, inject_cache
 *   rule-tools  `switchyard test` on 1,000 cases and `replay` over 100,000 SQLite ledger records
 *   budgets     CPU per request with 10 budgets applying to every request vs none
 *   budget-seed recomputing a month of budget spend from 1,000,000 ledger records (SQLite, PostgreSQL)
 *   table       (only when named) every row of issue 34's table in one run: nginx, the reference, Switchyard bare,
 *               bundled and signed-in; idle RSS, CPU on 76 KB and 88 B, added latency, 500 streams; quiet and beside
 *               `stress-ng --cpu 2` (bench/table.ts)
 *   ledger-scale (only when named) insert throughput, overview and `usage --by user` latency, retention and bytes per
 *               record at 10,000,000 records (BENCH_LEDGER_RECORDS) in SQLite and PostgreSQL (bench/ledger-scale.ts)
 *   throttle    throttle admission cost per request, memory store vs Redis
 *   translation OpenAI translation cost per request and per streamed event
 *   cpu         CPU time per request (/proc/PID/stat utime+stime) of the gateway — bare, and with the bundled
 *               switchyard.yaml + rules/ — against bench/reference-proxy.mjs, a 20-line node:http proxy, same run;
 *               with BENCH_BASELINE=<checkout with dist/ built>, that build's gateways too (an A/B in one run)
 *   reliability added latency with Redis up, refused (down), black-holed (frozen) and recovering, throttles on
 *   memcap      peak gateway memory with 40 concurrent 31 MB bodies against limits.max_inflight_body_bytes
 *   dashboard   the dashboard's first-load size (gzip), its overview over a 1,000,000-record SQLite ledger, and
 *               CPU per proxied request with its live tail connected vs not (`live-tail` runs that part alone)
 *   login       CPU per request with a gateway-signed bearer token (Claude Code's sign-in) vs a static client key,
 *               and the reference proxy, same run
 *   otel        CPU per request with OpenTelemetry off (no OTEL_* set) and on (spans and metrics exported over
 *               OTLP/HTTP to a receiver in this process, batch delay 1 s), same run
 *   secrets     CPU per request with scan_secrets (redact) against the bundled rules alone, warm (a later turn: every
 *               block in the memo) and cold (every block new), on 76 KB with JavaScript tool results (bench/secrets.ts)
 *   upload      a 100 MB Files API upload through the gateway (its own process), through the simplest streaming Node
 *               proxy (bench/pipe-proxy.mjs) and direct: each proxy's RSS rise (peak over before, /proc every 10 ms),
 *               wall time, CPU per MB (bench/upload.ts)
 *   clouds      CPU per request routed to Amazon Bedrock (SigV4 signing; event-stream decoding when streaming)
 *               against the same request passed through to Anthropic, same run, JSON and streaming
 * Results print as a table and are written to bench/results/latest.json.
 */
import autocannon from 'autocannon';
import type { ChildProcess } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Agent, request } from 'undici';
import { startFaultProxy } from '../test/fault-proxy.js';
import { writeConfig } from '../test/helpers.js';
import { benchBody } from './body.js';
import { ROOT, startGatewayProcess, startServer, stats, r3, body76k, streamBody, headers, timed, compareSequential, rssOf, startProcess, startReference, stopAll, cpuRounds } from './procs.js';
import { benchBudgetSeed } from './budget-seed.js';
import { benchDashboard } from './dashboard.js';
import { benchLedgerScale } from './ledger-scale.js';
import { benchTable, loginGateway } from './table.js';
import { BENCH_AWS } from './bench-aws.js';
import { benchRuleTools } from './rule-tools.js';
import { benchRules } from './rules.js';
import { benchSecrets } from './secrets.js';
import { benchUpload } from './upload.js';
import { benchThrottle } from './throttle.js';
import { benchTranslation } from './translation.js';

const sections = process.argv.slice(2).length
  ? process.argv.slice(2)
  : [
      'cpu',
      'login',
      'otel',
      'clouds',
      'dashboard',
      'budgets',
      'secrets',
      'upload',
      'latency',
      'throughput',
      'streaming',
      'burst',
      'memory',
      'ledger',
      'rules',
      'body',
      'rule-tools',
      'budget-seed',
      'throttle',
      'translation',
      'reliability',
      'memcap',
    ];
const results: Record<string, unknown> = { date: new Date().toISOString(), node: process.version };

/**
 * Budgets and attribution on the request path: the same gateway config (SQLite ledger, memory state) with no
 * budget and with 10 budgets that apply to every request (scopes user, project, client, tag, global; day,
 * week, month), CPU µs per request each.
 */
async function benchBudgets(upstream: string) {
  const scopes = ['user', 'project', 'client', 'global', 'tag:team'];
  const budgets = Array.from(
    { length: 10 },
    (_, i) => `  - id: budget-${i}\n    actions: [ { budget: { scope: "${scopes[i % 5]}", usd: 1000000, per: ${['day', 'week', 'month'][i % 3]}, notify: [0.5, 1] } } ]`,
  ).join('\n');
  const route = '  - id: team\n    actions: [ { tag_billing: { team: platform } } ]\n  - id: route\n    actions: [ { route_to: { provider: anthropic } } ]';
  const start = (rules: string) => startGatewayProcess(writeConfig({ upstream, rules: { '10.yaml': `version: 1\nrules:\n${rules}\n` } }).configFile);
  const procs = { no_budgets: await start(route), ten_budgets: await start(`${route}\n${budgets}`) };
  let per: Record<string, number[]>;
  try {
    per = await cpuRounds(procs, 2000, { 'x-project': 'search', 'x-claude-code-session-id': 'bench-session' });
  } finally {
    await stopAll(procs);
  }
  const us = (name: string) => Math.round(Math.min(...per[name]!));
  return { requests: 2000, no_budgets_us: us('no_budgets'), ten_budgets_us: us('ten_budgets'), added_us: us('ten_budgets') - us('no_budgets'), runs_us: per };
}

/**
 * Claude on Amazon Bedrock against Anthropic pass-through: two gateways (ledger off), one routing to the fake
 * Anthropic upstream, one to the fake Bedrock (SigV4 with the AWS default chain reading BENCH_AWS from the
 * environment; the answer's event stream decoded and relayed as SSE), CPU µs per request of each, 76 KB bodies,
 * JSON and streaming.
 */
async function benchClouds(anthropicUrl: string) {
  const fakeBedrock = await startProcess(['--import', 'tsx', path.join(ROOT, 'bench/server.ts'), 'bedrock']);
  const env = { AWS_ACCESS_KEY_ID: BENCH_AWS.accessKeyId, AWS_SECRET_ACCESS_KEY: BENCH_AWS.secretAccessKey, AWS_EC2_METADATA_DISABLED: 'true' };
  const start = (providers: string, provider: string) =>
    startGatewayProcess(
      writeConfig({
        upstream: anthropicUrl,
        providers,
        extraConfig: 'ledger: off\n',
        rules: { '50.yaml': `version: 1\nrules:\n  - id: r\n    actions: [ { route_to: { provider: ${provider} } } ]\n` },
      }).configFile,
      env,
    );
  const procs = {
    anthropic: await start(`  anthropic:\n    type: anthropic\n    base_url: ${anthropicUrl}\n`, 'anthropic'),
    bedrock: await start(`  bedrock:\n    type: bedrock\n    region: us-east-1\n    base_url: ${fakeBedrock.url}\n`, 'bedrock'),
  };
  const N = 2000;
  let json: Record<string, number[]>;
  let stream: Record<string, number[]>;
  try {
    json = await cpuRounds(procs, N);
    stream = await cpuRounds(procs, N, {}, streamBody);
  } finally {
    await stopAll({ ...procs, fakeBedrock });
  }
  const low = (per: Record<string, number[]>, name: string) => Math.round(Math.min(...per[name]!));
  const side = (per: Record<string, number[]>) => ({
    anthropic_us: low(per, 'anthropic'),
    bedrock_us: low(per, 'bedrock'),
    added_us: low(per, 'bedrock') - low(per, 'anthropic'),
    ratio: r3(low(per, 'bedrock') / low(per, 'anthropic')),
    runs_us: per,
  });
  return { requests: N, json: side(json), stream: side(stream) };
}

/**
 * The dashboard's cost on the request path: two gateways on the same config (no rules, ledger off), one with the
 * dashboard's live tail connected (an SSE client on /admin/ui/api/live reading every line), CPU µs per request each.
 */
async function benchLiveTail(upstream: string) {
  const config = writeConfig({ upstream, extraConfig: 'ledger: off\n', rules: { '50.yaml': 'version: 1\nrules: []\n' } }).configFile;
  const start = () => startGatewayProcess(config);
  // A second gateway without the tail measures the noise between two identical processes in this run.
  const procs = { no_tail: await start(), no_tail_control: await start(), tail: await start() };
  const tail = await request(procs.tail.url + '/admin/ui/api/live');
  let lines = 0;
  tail.body.on('data', (d: Buffer) => (lines += d.toString().split('event: request').length - 1));
  const N = 3000;
  let per: Record<string, number[]>;
  try {
    per = await cpuRounds(procs, N);
  } finally {
    tail.body.destroy();
    await stopAll(procs);
  }
  const low = (name: string) => Math.round(Math.min(...per[name]!));
  return {
    requests: N,
    no_tail_us: low('no_tail'),
    tail_us: low('tail'),
    added_us: low('tail') - Math.min(low('no_tail'), low('no_tail_control')),
    noise_us: Math.abs(low('no_tail') - low('no_tail_control')),
    tail_lines: lines,
    runs_us: per,
  };
}

/**
 * Claude Code's sign-in on the request path: two gateways on the same config (login on, one client key, no rules,
 * ledger off), one sent a static client key and one a gateway-signed bearer token, and the 20-line reference
 * proxy, CPU µs per request each.
 */
async function benchLogin(upstream: string) {
  const { config, env, token: access_token } = await loginGateway(upstream);
  const start = () => startGatewayProcess(config, env);
  const procs = { reference: await startReference(upstream), key: await start(), login: await start() };
  const N = 3000;
  let per: Record<string, number[]>;
  try {
    per = await cpuRounds(
      procs,
      N,
      (name): Record<string, string> => (name === 'login' ? { 'x-api-key': 'sy-bench-client-key', authorization: `Bearer ${access_token}` } : { 'x-api-key': 'sy-bench-client-key' }),
    );
  } finally {
    await stopAll(procs);
  }
  const low = (name: string) => Math.round(Math.min(...per[name]!));
  return {
    requests: N,
    reference_us: low('reference'),
    key_us: low('key'),
    login_us: low('login'),
    added_us: low('login') - low('key'),
    login_vs_reference: Math.round((low('login') / low('reference')) * 100) / 100,
    runs_us: per,
  };
}

/** OpenTelemetry off and on: two gateways on the same config (no rules, ledger off), CPU µs per request each. */
async function benchOtel(upstream: string) {
  const receiver = createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end('{}'));
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  const config = writeConfig({ upstream, extraConfig: 'ledger: off\n', rules: { '50.yaml': 'version: 1\nrules: []\n' } }).configFile;
  const start = (env: Record<string, string>) => startGatewayProcess(config, env);
  const procs = {
    off: await start({}),
    on: await start({ OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`, OTEL_BSP_SCHEDULE_DELAY: '1000', OTEL_METRIC_EXPORT_INTERVAL: '5000' }),
  };
  const N = 3000;
  let per: Record<string, number[]>;
  try {
    per = await cpuRounds(procs, N);
  } finally {
    await stopAll(procs);
    receiver.close();
  }
  const low = (name: string) => Math.round(Math.min(...per[name]!));
  return { requests: N, off_us: low('off'), on_us: low('on'), added_us: low('on') - low('off'), runs_us: per };
}

/**
 * CPU µs per request (76 KB, 4 connections) of the reference proxy and of the gateway with no rules (ledger off)
 * and with the bundled config, three rounds in alternation, the lowest kept; ratios to the reference.
 */
async function benchCpu(upstream: string) {
  // BENCH_BASELINE: another checkout with dist/ built (e.g. a `git worktree` of an earlier commit), measured in the
  // same run — two builds compared this way differ by what changed, not by what the machine was doing.
  const baseline = process.env.BENCH_BASELINE ? path.resolve(process.env.BENCH_BASELINE) : null;
  const gateways: Array<[string, string]> = [['', ROOT], ...(baseline ? [['baseline_', baseline] as [string, string]] : [])];
  const dirs: string[] = [];
  const procs: Record<string, { url: string; child: ChildProcess }> = {
    reference: await startReference(upstream),
  };
  for (const [prefix, root] of gateways) {
    const dir = mkdtempSync(path.join(tmpdir(), 'switchyard-bench-bundled-'));
    dirs.push(dir);
    cpSync(path.join(root, 'switchyard.yaml'), path.join(dir, 'switchyard.yaml'));
    cpSync(path.join(root, 'prices.yaml'), path.join(dir, 'prices.yaml'));
    cpSync(path.join(root, 'rules'), path.join(dir, 'rules'), { recursive: true });
    procs[`${prefix}bare`] = await startGatewayProcess(writeConfig({ upstream, extraConfig: 'ledger: off\n', rules: { '50.yaml': 'version: 1\nrules: []\n' } }).configFile, {}, root);
    procs[`${prefix}bundled`] = await startGatewayProcess(path.join(dir, 'switchyard.yaml'), { ANTHROPIC_UPSTREAM_URL: upstream }, root);
  }
  const N = 3000;
  let per: Record<string, number[]>;
  try {
    per = await cpuRounds(procs, N);
  } finally {
    await stopAll(procs); // a gateway writes its ledger and state files as it stops: remove the directories after
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  }
  const us = (name: string) => Math.round(Math.min(...per[name]!));
  const median = (name: string) => Math.round([...per[name]!].sort((a, b) => a - b)[Math.floor(per[name]!.length / 2)]!);
  const ref = us('reference');
  return {
    requests: N,
    median_us: Object.fromEntries(Object.keys(per).map((k) => [k, median(k)])),
    loadavg: readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' '),
    reference_us: ref,
    bare_us: us('bare'),
    bundled_us: us('bundled'),
    bare_ratio: r3(us('bare') / ref),
    bundled_ratio: r3(us('bundled') / ref),
    ...(baseline ? { baseline, baseline_bare_us: us('baseline_bare'), baseline_bundled_us: us('baseline_bundled') } : {}),
    runs_us: per,
  };
}

const fake = await startServer('fake');
const gw = await startServer('gateway', fake.url);
// The reference proxy, for the sections that put its figures beside the gateway's.
const ref = ['latency', 'throughput', 'streaming', 'burst'].some((s) => sections.includes(s)) ? await startReference(fake.url) : null;
try {
  if (sections.includes('cpu')) {
    results.cpu = await benchCpu(fake.url);
    console.log('CPU per request (76 KB, non-streaming, 4 connections):', JSON.stringify(results.cpu));
  }
  if (sections.includes('secrets')) {
    results.secrets = await benchSecrets(fake.url);
    console.log('scan_secrets (CPU µs per request, 76 KB of Claude Code with JavaScript tool results):', JSON.stringify(results.secrets));
  }
  if (sections.includes('upload')) {
    results.upload = await benchUpload();
    console.log('100 MB file upload through the gateway vs direct:', JSON.stringify(results.upload));
  }
  if (sections.includes('dashboard')) {
    results.dashboard = { ...(await benchDashboard()), live_tail: await benchLiveTail(fake.url) };
  } else if (sections.includes('live-tail')) {
    results.dashboard = { live_tail: await benchLiveTail(fake.url) };
    console.log('dashboard', JSON.stringify(results.dashboard));
  }
  if (sections.includes('login')) {
    results.login = await benchLogin(fake.url);
    console.log('login', JSON.stringify(results.login));
  }
  if (sections.includes('otel')) {
    results.otel = await benchOtel(fake.url);
    console.log('otel', JSON.stringify(results.otel));
  }
  if (sections.includes('clouds')) {
    results.clouds = await benchClouds(fake.url);
    console.log('clouds', JSON.stringify(results.clouds));
  }
  if (sections.includes('budgets')) {
    results.budgets = await benchBudgets(fake.url);
    console.log('budgets on the request path (CPU per request, 10 budgets vs none):', JSON.stringify(results.budgets));
  }
  if (sections.includes('latency')) {
    results.latency = await compareSequential({ direct: fake.url, gateway: gw.url, reference: ref!.url }, body76k, 3000, 'total');
    console.log('latency (76 KB, non-streaming, 1 connection):', JSON.stringify(results.latency));
  }
  if (sections.includes('throughput')) {
    const run = (url: string) => autocannon({ url: url + '/v1/messages', method: 'POST', headers, body: body76k, connections: 50, duration: 10 });
    const direct = await run(fake.url);
    const viaGw = await run(gw.url);
    const viaRef = await run(ref!.url);
    results.throughput = {
      direct_rps: Math.round(direct.requests.average),
      gateway_rps: Math.round(viaGw.requests.average),
      ratio: r3(viaGw.requests.average / direct.requests.average),
      reference_rps: Math.round(viaRef.requests.average),
      reference_ratio: r3(viaRef.requests.average / direct.requests.average),
      gateway_errors: viaGw.errors + viaGw.non2xx,
      gateway_latency_ms: { p50: viaGw.latency.p50, p99: viaGw.latency.p99 },
      direct_latency_ms: { p50: direct.latency.p50, p99: direct.latency.p99 },
      reference_latency_ms: { p50: viaRef.latency.p50, p99: viaRef.latency.p99 },
    };
    console.log('throughput (76 KB, 50 connections, 10 s each):', JSON.stringify(results.throughput));
  }
  if (sections.includes('streaming')) {
    results.streaming = await compareSequential({ direct: fake.url, gateway: gw.url, reference: ref!.url }, streamBody, 600, 'both');
    console.log('streaming (76 KB body; time to first byte, and to last byte of 13 events ~2 ms apart):', JSON.stringify(results.streaming));
  }
  if (sections.includes('burst')) {
    // 20 Claude-Code-sized streaming requests at once, as when a team's sessions fire together.
    const burst = async (url: string) => {
      const agent = new Agent({ connections: 20 });
      const firsts = await Promise.all(Array.from({ length: 20 }, async () => (await timed(agent, url, streamBody)).first));
      await agent.close();
      return firsts;
    };
    const refUrl = ref!.url;
    const direct: number[] = [];
    const viaGw: number[] = [];
    const viaRef: number[] = [];
    for (let round = 0; round < 12; round++) {
      const d = await burst(fake.url);
      const g = await burst(gw.url);
      const r = await burst(refUrl);
      if (round >= 2) {
        direct.push(stats(d).median);
        viaGw.push(stats(g).median);
        viaRef.push(stats(r).median);
      }
    }
    const sd = stats(direct);
    const sg = stats(viaGw);
    const sr = stats(viaRef);
    results.burst = {
      rounds: direct.length,
      direct_ttfb_ms: r3(sd.median),
      gateway_ttfb_ms: r3(sg.median),
      added_ttfb_ms: r3(sg.median - sd.median),
      reference_ttfb_ms: r3(sr.median),
      reference_added_ttfb_ms: r3(sr.median - sd.median),
    };
    console.log('burst (20 streams started together, median of per-round medians):', JSON.stringify(results.burst));
  }
  if (sections.includes('memory')) {
    // A fresh gateway, so earlier sections' heap growth does not count.
    const fresh = await startServer('gateway', fake.url);
    const N = 500;
    const base = rssOf(fresh.child.pid!);
    const agent = new Agent({ connections: N + 10 });
    const bodies: Array<{ destroy(): void }> = [];
    // Streams open in waves of 25, as sessions start over time; all 500 are then held open together.
    const opened: number[] = [];
    for (let wave = 0; wave < N / 25; wave++) {
      opened.push(
        ...(await Promise.all(
          Array.from({ length: 25 }, async () => {
            const r = await request(fresh.url + '/v1/messages', { method: 'POST', headers: { ...headers, 'x-fake': 'slow-sse' }, body: streamBody, dispatcher: agent });
            r.body.on('data', () => {});
            r.body.on('error', () => {});
            bodies.push(r.body);
            return r.statusCode;
          }),
        )),
      );
    }
    await new Promise((r) => setTimeout(r, Number(process.env.BENCH_HOLD_MS ?? 3000)));
    const held = rssOf(fresh.child.pid!);
    results.memory = { streams: N, all_200: opened.every((s) => s === 200), rss_idle_mb: r3(base / 2 ** 20), rss_with_streams_mb: r3(held / 2 ** 20), bytes_per_stream: Math.round((held - base) / N) };
    console.log('memory (500 slow streams open):', JSON.stringify(results.memory));
    for (const b of bodies) b.destroy();
    await agent.destroy();
    fresh.child.kill('SIGTERM');
  }
  if (sections.includes('ledger')) {
    // The same gateway with the usage ledger off ("direct" here) vs on (the default SQLite ledger).
    const off = await startServer('gateway', fake.url, 'ledger: off\n');
    try {
      const r = (await compareSequential({ direct: off.url, gateway: gw.url }, body76k, 3000, 'total')) as { direct_ms: { median: number }; gateway_ms: { median: number } };
      results.ledger = { ledger_off_ms: r.direct_ms, ledger_on_ms: r.gateway_ms, added_median_pct: Math.round(((r.gateway_ms.median - r.direct_ms.median) / r.direct_ms.median) * 1000) / 10 };
      console.log('ledger on vs off (76 KB, non-streaming, 1 connection):', JSON.stringify(results.ledger));
    } finally {
      off.child.kill('SIGTERM');
    }
  }
  if (sections.includes('translation')) {
    results.translation = await benchTranslation();
    console.log('OpenAI translation (request, JSON answer, per stream event):', JSON.stringify(results.translation));
  }
  if (sections.includes('throttle')) {
    results.throttle = await benchThrottle();
    console.log('throttle admission + settle (rpm, input tokens, concurrency):', JSON.stringify(results.throttle));
  }
  if (sections.includes('reliability')) {
    // Redis behind a TCP proxy the bench controls; a throttle and a key pool make every request use it.
    const redisUrl = new URL(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
    const proxy = await startFaultProxy(Number(redisUrl.port || 6379), redisUrl.hostname);
    const rules = `  - id: bench-throttle-${process.pid}\n    actions: [ { throttle: { scope: key, requests_per_minute: 10000000, concurrent: 1000 } } ]\n`;
    const { configFile } = writeConfig({
      upstream: fake.url,
      providers: `  anthropic:\n    type: anthropic\n    base_url: ${fake.url}\n    keys: [ "k-bench-a", "k-bench-b" ]\n`,
      extraConfig: `state: { redis: "redis://127.0.0.1:${proxy.port}" }\nledger: off\n`,
      rules: { '10.yaml': `version: 1\nrules:\n${rules}` },
    });
    const { url, child } = await startProcess([path.join(ROOT, 'dist/cli.js'), 'serve', '--config', configFile], { PORT: '0' });
    try {
      const agents = { direct: new Agent({ connections: 1 }), gateway: new Agent({ connections: 1 }) };
      const phase = async (n: number) => {
        const d: number[] = [];
        const g: number[] = [];
        for (let block = 0; block < n / 50; block++) {
          for (let i = 0; i < 50; i++) d.push((await timed(agents.direct, fake.url, body76k)).total);
          for (let i = 0; i < 50; i++) {
            const t = await timed(agents.gateway, url, body76k);
            if (t.status !== 200) throw new Error(`gateway answered ${t.status}`);
            g.push(t.total);
          }
        }
        const sd = stats(d);
        const sg = stats(g);
        return { added_ms: { median: r3(sg.median - sd.median), p99: r3(sg.p99 - sd.p99) }, gateway_max_ms: r3(Math.max(...g)), n };
      };
      await phase(200); // warm-up
      const up = await phase(1000);
      await proxy.set('refuse');
      const down = await phase(1000);
      await proxy.set('blackhole');
      const frozen = await phase(1000);
      await proxy.set('pass');
      const recovering = await phase(500);
      results.reliability = { redis_up: up, redis_down: down, redis_frozen: frozen, recovering, down_minus_up_median_ms: r3(down.added_ms.median - up.added_ms.median) };
      console.log('reliability (76 KB, throttle + key pool through Redis):', JSON.stringify(results.reliability));
      await agents.direct.close();
      await agents.gateway.close();
    } finally {
      child.kill('SIGTERM');
      await proxy.close();
    }
  }
  if (sections.includes('memcap')) {
    const cap = 128 * 1024 * 1024;
    const fresh = await startServer('gateway', fake.url, `ledger: off\nlimits: { max_inflight_body_bytes: ${cap}, max_inflight_body_bytes_per_client: ${cap} }\n`);
    try {
      const idle = rssOf(fresh.child.pid!);
      let peak = idle;
      const sampler = setInterval(() => (peak = Math.max(peak, rssOf(fresh.child.pid!))), 10);
      const big = Buffer.from(JSON.stringify({ model: 'claude-sonnet-4-6', max_tokens: 5, messages: [{ role: 'user', content: 'x'.repeat(31 * 1024 * 1024) }] }));
      const agent = new Agent({ connections: 50 });
      const statuses = await Promise.all(
        Array.from({ length: 40 }, async () => {
          const r = await request(fresh.url + '/v1/messages', { method: 'POST', headers, body: big, dispatcher: agent });
          await r.body.dump();
          return r.statusCode;
        }),
      );
      clearInterval(sampler);
      await agent.close();
      results.memcap = {
        bodies: 40,
        body_mb: 31,
        cap_mb: cap / 2 ** 20,
        answered_200: statuses.filter((s) => s === 200).length,
        answered_529: statuses.filter((s) => s === 529).length,
        rss_idle_mb: r3(idle / 2 ** 20),
        rss_peak_mb: r3(peak / 2 ** 20),
        peak_over_idle_per_cap: r3((peak - idle) / cap),
      };
      console.log('memory cap (40 concurrent 31 MB bodies):', JSON.stringify(results.memcap));
    } finally {
      fresh.child.kill('SIGTERM');
    }
  }
  if (sections.includes('body')) {
    results.body = benchBody();
    console.log('body model vs JSON.parse (76 KB; µs per request):', JSON.stringify(results.body));
  }
  if (sections.includes('rules')) {
    results.rules = await benchRules();
    console.log('rule evaluation:', JSON.stringify(results.rules));
  }
  if (sections.includes('budget-seed')) {
    results.budget_seed = await benchBudgetSeed();
    console.log('budget spend recomputed at start-up from 1,000,000 records:', JSON.stringify(results.budget_seed));
  }
  if (sections.includes('table')) {
    results.table = await benchTable(fake.url);
    console.log('table (issue 34):', JSON.stringify(results.table));
  }
  if (sections.includes('ledger-scale')) {
    results.ledger_scale = await benchLedgerScale();
    console.log('ledger at scale:', JSON.stringify(results.ledger_scale));
  }
  if (sections.includes('rule-tools')) {
    results.rule_tools = await benchRuleTools();
    console.log('switchyard test (1,000 cases) and replay (100,000 records):', JSON.stringify(results.rule_tools));
  }
} finally {
  gw.child.kill('SIGTERM');
  ref?.child.kill('SIGTERM');
  fake.child.kill('SIGTERM');
}
mkdirSync(path.join(ROOT, 'bench/results'), { recursive: true });
writeFileSync(path.join(ROOT, 'bench/results/latest.json'), JSON.stringify(results, null, 2) + '\n');
console.log('written to bench/results/latest.json');
