/**
 * `npm run bench -- table`: every row of issue 34's table from one run. The targets, alive side by side in front of the
 * same fake upstream: nginx `proxy_pass` (the floor; skipped when nginx is not installed), the 20-line node:http
 * reference proxy, Switchyard bare (no rules, ledger off), Switchyard on the bundled config, and Switchyard with a
 * gateway-signed bearer token (sign-in). For each: idle RSS after start; CPU µs per request (/proc utime+stime) on a
 * 76 KB Claude-Code-shaped body and on an 88-byte one (3,000 requests x 4 alternating rounds, median and range); the
 * sequential latency it adds to a direct call (p50, p99; 1,000 requests each, alternated in blocks of 100); peak RSS of
 * the reference and the bundled gateway with 500 concurrent 76 KB streams held open. Run once quiet and once beside a
 * CPU-bound neighbour (`stress-ng --cpu 2`, when installed): every ratio is printed beside the reference's absolute µs
 * and the load average of its run.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import path from 'node:path';
import { Agent, request } from 'undici';
import { writeConfig } from '../test/helpers.js';
import { body76k, cpuRounds, headers, startGatewayProcess, r3, ROOT, rssOf, startReference, stats, stopAll, streamBody, timed } from './procs.js';

const { loadConfig } = (await import('../dist/config.js' as string)) as typeof import('../src/config.js');
const { newSigningJwk, TokenService } = (await import('../dist/login/tokens.js' as string)) as typeof import('../src/login/tokens.js');
const { MemoryStore } = (await import('../dist/state/store.js' as string)) as typeof import('../src/state/store.js');

type Proc = { url: string; child: ChildProcess; pids?: () => number[] };

/** The 88-byte request of the issue's table. */
const body88 = Buffer.from(JSON.stringify({ model: 'claude-sonnet-4-5', max_tokens: 16, messages: [{ role: 'user', content: 'hello there' }] }));

/**
 * A gateway config with sign-in on and a static client key, and a bearer token it signed: what Claude Code sends after
 * `/login`. @returns the config file, its environment and the headers of a signed-in request.
 */
export async function loginGateway(upstream: string): Promise<{ config: string; env: Record<string, string>; token: string }> {
  const jwk = JSON.stringify(await newSigningJwk());
  const config = writeConfig({
    upstream,
    providers: `  anthropic:\n    type: anthropic\n    base_url: ${upstream}\n    keys: [ "sk-bench-upstream" ]\n`,
    extraConfig: `ledger: off\nclients:\n  ci: { key: "\${BENCH_CLIENT_KEY}" }\nlogin:\n  public_url: http://127.0.0.1:1\n  oidc: { issuer: http://127.0.0.1:1, client_id: bench }\n  signing_keys: [ "\${BENCH_LOGIN_KEY}" ]\n  collect_telemetry: false\n`,
    rules: { '50.yaml': 'version: 1\nrules: []\n' },
  }).configFile;
  const env = { BENCH_CLIENT_KEY: 'sy-bench-client-key', BENCH_LOGIN_KEY: jwk };
  const { tokens } = await TokenService.create(loadConfig(config, {}, env).login!, new MemoryStore());
  const { access_token } = await tokens.issue({ sub: 'bench', email: 'bench@example.com', name: 'Bench', groups: ['platform'] });
  return { config, env, token: access_token };
}

/** nginx with one worker proxying to `upstream` (keep-alive both sides), or null when nginx is not installed. */
async function startNginx(upstream: string): Promise<Proc | null> {
  if (spawnSync('nginx', ['-v']).error) return null;
  const dir = mkdtempSync(path.join(tmpdir(), 'switchyard-bench-nginx-'));
  const port = 20_000 + Math.floor(Math.random() * 20_000);
  const u = new URL(upstream);
  writeFileSync(
    path.join(dir, 'nginx.conf'),
    `worker_processes 1;\npid ${dir}/nginx.pid;\nerror_log ${dir}/error.log;\nevents { worker_connections 4096; }\nhttp {\n  access_log off;\n  client_body_temp_path ${dir};\n  proxy_temp_path ${dir};\n  client_max_body_size 64m;\n  client_body_buffer_size 1m;\n  upstream fake { server ${u.host}; keepalive 64; }\n  server {\n    listen 127.0.0.1:${port};\n    location / { proxy_pass http://fake; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_buffering off; }\n  }\n}\n`,
  );
  const child = spawn('nginx', ['-c', path.join(dir, 'nginx.conf'), '-p', dir, '-g', 'daemon off;'], { stdio: 'ignore' });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 100; i++) {
    try {
      const r = await request(`${url}/v1/messages`, { method: 'POST', headers, body: body88 });
      await r.body.dump();
      break;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  const workers = () => readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  return { url, child, pids: () => [child.pid!, ...workers()] };
}

/** Sequential requests to each target and to the upstream directly, alternated in blocks of 100: p50/p99 added, ms. */
async function sequential(targets: Record<string, Proc>, direct: string, n: number, extra: (name: string) => Record<string, string>) {
  const names = ['direct', ...Object.keys(targets)];
  const url = (k: string) => (k === 'direct' ? direct : targets[k]!.url);
  const agents = Object.fromEntries(names.map((k) => [k, new Agent({ connections: 1 })]));
  const ms: Record<string, number[]> = Object.fromEntries(names.map((k) => [k, []]));
  for (const k of names) for (let i = 0; i < 100; i++) await timed(agents[k]!, url(k), body76k, k === 'direct' ? {} : extra(k));
  for (let block = 0; block < n / 100; block++) {
    for (const k of names) {
      for (let i = 0; i < 100; i++) {
        const t = await timed(agents[k]!, url(k), body76k, k === 'direct' ? {} : extra(k));
        if (t.status !== 200) throw new Error(`${k} answered ${t.status}`);
        ms[k]!.push(t.total);
      }
    }
  }
  for (const a of Object.values(agents)) await a.close();
  const d = stats(ms.direct!);
  return Object.fromEntries(Object.keys(targets).map((k) => [k, { added_p50_ms: r3(stats(ms[k]!).median - d.median), added_p99_ms: r3(stats(ms[k]!).p99 - d.p99) }]));
}

/** Peak RSS (MB) of a process while 500 slow 76 KB streams are held open through it. */
async function streamsPeak(p: Proc, extra: Record<string, string>): Promise<number> {
  const N = 500;
  const agent = new Agent({ connections: N + 10 });
  const bodies: Array<{ destroy(): void }> = [];
  let peak = rssOf(p.child.pid!);
  const sample = setInterval(() => (peak = Math.max(peak, rssOf(p.child.pid!))), 50);
  try {
    for (let wave = 0; wave < N / 25; wave++) {
      await Promise.all(
        Array.from({ length: 25 }, async () => {
          const r = await request(`${p.url}/v1/messages`, { method: 'POST', headers: { ...headers, ...extra, 'x-fake': 'slow-sse' }, body: streamBody, dispatcher: agent });
          r.body.on('data', () => {});
          r.body.on('error', () => {});
          bodies.push(r.body);
        }),
      );
    }
    await new Promise((r) => setTimeout(r, 2000));
  } finally {
    clearInterval(sample);
    for (const b of bodies) b.destroy();
    await agent.destroy();
  }
  return r3(peak / 2 ** 20);
}

const loadavg = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');

/** One pass over every target: idle RSS, CPU on both bodies, sequential latency, and (quiet pass only) 500 streams. */
async function pass(upstream: string, withStreams: boolean) {
  const dir = mkdtempSync(path.join(tmpdir(), 'switchyard-bench-bundled-'));
  for (const f of ['switchyard.yaml', 'prices.yaml', 'rules']) cpSync(path.join(ROOT, f), path.join(dir, f), { recursive: true });
  const login = await loginGateway(upstream);
  const serve = (config: string, env: Record<string, string> = {}) => startGatewayProcess(config, env);
  const procs: Record<string, Proc> = {};
  const nginx = await startNginx(upstream);
  if (nginx) procs.nginx = nginx;
  procs.reference = await startReference(upstream);
  procs.bare = await serve(writeConfig({ upstream, extraConfig: 'ledger: off\n', rules: { '50.yaml': 'version: 1\nrules: []\n' } }).configFile);
  procs.bundled = await serve(path.join(dir, 'switchyard.yaml'), { ANTHROPIC_UPSTREAM_URL: upstream });
  procs.signin = await serve(login.config, login.env);
  const extra = (name: string): Record<string, string> => (name === 'signin' ? { 'x-api-key': 'sy-bench-client-key', authorization: `Bearer ${login.token}` } : {});
  try {
    await new Promise((r) => setTimeout(r, 3000)); // settle after start
    const idle = Object.fromEntries(Object.entries(procs).map(([k, p]) => [k, r3((p.pids ? p.pids() : [p.child.pid!]).reduce((s, pid) => s + rssOf(pid), 0) / 2 ** 20)]));
    const N = Number(process.env.BENCH_TABLE_REQUESTS ?? 3000);
    const cpu = async (body: Buffer) => {
      const load = loadavg();
      const per = await cpuRounds(procs, N, extra, body);
      const med = (k: string) => Math.round([...per[k]!].sort((a, b) => a - b)[Math.floor(per[k]!.length / 2)]!);
      const ref = med('reference');
      return {
        loadavg: load,
        reference_us: ref,
        us: Object.fromEntries(Object.keys(per).map((k) => [k, med(k)])),
        x_reference: Object.fromEntries(Object.keys(per).map((k) => [k, r3(med(k) / ref)])),
        range_us: Object.fromEntries(Object.keys(per).map((k) => [k, [Math.round(Math.min(...per[k]!)), Math.round(Math.max(...per[k]!))]])),
        bundled_minus_bare_us: med('bundled') - med('bare'),
      };
    };
    const cpu76k = await cpu(body76k);
    console.log('table cpu 76 KB', JSON.stringify(cpu76k));
    const cpu88 = await cpu(body88);
    console.log('table cpu 88 B', JSON.stringify(cpu88));
    const latency = await sequential(procs, upstream, Number(process.env.BENCH_TABLE_SEQUENTIAL ?? 1000), extra);
    console.log('table latency', JSON.stringify(latency));
    const streams = withStreams ? { reference_peak_mb: await streamsPeak(procs.reference!, {}), bundled_peak_mb: await streamsPeak(procs.bundled!, {}) } : null;
    if (streams) console.log('table streams', JSON.stringify(streams));
    return { loadavg_after: loadavg(), idle_rss_mb: idle, cpu_76k: cpu76k, cpu_88b: cpu88, latency, streams_500: streams };
  } finally {
    await stopAll(procs);
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Both passes: quiet, then beside `stress-ng --cpu 2` (skipped without stress-ng, or with BENCH_TABLE_NEIGHBOUR=0). */
export async function benchTable(upstream: string): Promise<Record<string, unknown>> {
  const machine = { cpus: cpus().length, model: cpus()[0]?.model ?? 'unknown', date: new Date().toISOString(), node: process.version };
  const quiet = await pass(upstream, true);
  let loaded: unknown = null;
  if (process.env.BENCH_TABLE_NEIGHBOUR !== '0' && !spawnSync('stress-ng', ['--version']).error) {
    const neighbour = spawn('stress-ng', ['--cpu', '2', '--quiet'], { stdio: 'ignore' });
    try {
      await new Promise((r) => setTimeout(r, 5000));
      loaded = await pass(upstream, false);
    } finally {
      neighbour.kill('SIGTERM');
    }
  }
  return { machine, quiet, beside_stress_ng_cpu_2: loaded };
}
