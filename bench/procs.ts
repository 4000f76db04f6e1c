/**
 * The processes every benchmark section measures and how: the gateway as shipped, the fake upstream, the 20-line
 * reference proxy; CPU time and resident memory from /proc; sequential timing against a direct connection.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Agent, request } from 'undici';
import { claudeCodeBody, writeConfig } from '../test/helpers.js';

export const ROOT = path.resolve(import.meta.dirname, '..');

/**
 * Node flags of the gateway as shipped: those of dist/cli.js's `#!/usr/bin/env -S node …` line (what `npm start`
 * and the `switchyard` command run with); BENCH_GATEWAY_NODE_ARGS replaces them for an experiment.
 */
export const gatewayNodeArgs = (process.env.BENCH_GATEWAY_NODE_ARGS ?? /^#!.*\bnode\b(.*)$/m.exec(readFileSync(path.join(ROOT, 'dist/cli.js'), 'utf8').split('\n', 1)[0]!)?.[1] ?? '')
  .split(' ')
  .filter(Boolean);

/**
 * Starts a benchmark process and waits for its URL: the fake upstream (via tsx), or the gateway as it
 * runs in production: `node <shipped flags> dist/cli.js serve` (built by `npm run bench`) on a config routing to `upstream`.
 */
export function startServer(kind: 'fake' | 'gateway', upstream?: string, extraConfig = ''): Promise<{ url: string; child: ChildProcess }> {
  const prof = process.env.BENCH_PROF && kind === 'gateway' ? ['--cpu-prof', '--cpu-prof-dir=/tmp/prof'] : [];
  const args =
    kind === 'fake'
      ? ['--import', 'tsx', path.join(ROOT, 'bench/server.ts'), 'fake']
      : [...prof, ...gatewayNodeArgs, path.join(ROOT, 'dist/cli.js'), 'serve', '--config', writeConfig({ upstream: upstream!, extraConfig }).configFile];
  return startProcess(args);
}

export const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))]!;
export const stats = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return { median: pct(s, 50), p99: pct(s, 99), n: s.length };
};
export const r3 = (x: number) => Math.round(x * 1000) / 1000;

export const body76k = Buffer.from(JSON.stringify(claudeCodeBody({ targetBytes: 76_000, stream: false })));
export const streamBody = Buffer.from(JSON.stringify(claudeCodeBody({ targetBytes: 76_000, stream: true })));
export const headers = { 'content-type': 'application/json', 'anthropic-version': '2023-06-01', 'x-api-key': 'sk-bench' };

/** One request; returns ms to headers, to first body byte and to the end. */
export async function timed(agent: Agent, url: string, body: Buffer, extra: Record<string, string> = {}) {
  const t0 = performance.now();
  const r = await request(url + '/v1/messages', { method: 'POST', headers: { ...headers, ...extra }, body, dispatcher: agent });
  let first = 0;
  for await (const _chunk of r.body) if (!first) first = performance.now() - t0;
  return { first, total: performance.now() - t0, status: r.statusCode };
}

/**
 * Sequential requests (1 connection each) to `direct` (the upstream itself), the gateway and, when given, the
 * reference proxy, alternated in blocks of 100 so drift hits all alike; medians and p99s in ms, and what the gateway
 * and the reference each add to the direct figure.
 */
export async function compareSequential(urls: { direct: string; gateway: string; reference?: string }, body: Buffer, n: number, pick: 'first' | 'total' | 'both', extra: Record<string, string> = {}) {
  const names = (['direct', 'gateway', 'reference'] as const).filter((k) => urls[k]);
  const agents = Object.fromEntries(names.map((k) => [k, new Agent({ connections: 1 })])) as Record<string, Agent>;
  const out = Object.fromEntries(names.map((k) => [k, [] as number[]]));
  const outTotal = Object.fromEntries(names.map((k) => [k, [] as number[]]));
  for (let i = 0; i < Math.min(200, n / 5); i++) for (const k of names) await timed(agents[k]!, urls[k]!, body, extra);
  for (let block = 0; block < n / 100; block++) {
    for (const which of names) {
      for (let i = 0; i < 100; i++) {
        const t = await timed(agents[which]!, urls[which]!, body, extra);
        if (t.status !== 200) throw new Error(`${which} answered ${t.status}`);
        out[which]!.push(pick === 'total' ? t.total : t.first);
        outTotal[which]!.push(t.total);
      }
    }
  }
  for (const a of Object.values(agents)) await a.close();
  const summary = (o: Record<string, number[]>) => {
    const d = stats(o.direct!);
    const g = stats(o.gateway!);
    const r = o.reference ? stats(o.reference) : null;
    return {
      direct_ms: { median: r3(d.median), p99: r3(d.p99) },
      gateway_ms: { median: r3(g.median), p99: r3(g.p99) },
      added_ms: { median: r3(g.median - d.median), p99: r3(g.p99 - d.p99) },
      ...(r ? { reference_ms: { median: r3(r.median), p99: r3(r.p99) }, reference_added_ms: { median: r3(r.median - d.median), p99: r3(r.p99 - d.p99) } } : {}),
      n,
    };
  };
  return pick === 'both' ? { first_byte: summary(out), last_byte: summary(outTotal) } : summary(out);
}

export function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : NaN;
}

/** utime + stime of a process, µs (from /proc/PID/stat, in clock ticks of 10 ms). */
export function cpuMicros(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10_000;
}

/** Starts a process that prints `READY <url>` or `listening on <url>`. */
export function startProcess(args: string[], env: Record<string, string> = {}): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, LOG_LEVEL: 'info', ...env } });
  return new Promise((resolve, reject) => {
    let out = '';
    const t = setTimeout(() => reject(new Error(`did not start: ${args.join(' ')}\n${out}`)), 20_000);
    const onData = (d: Buffer) => {
      out += d.toString();
      const m = /(?:READY |listening on )(http:\/\/[^\s"]+)/.exec(out);
      if (m) {
        clearTimeout(t);
        child.stdout!.off('data', onData);
        child.stdout!.resume();
        resolve({ url: m[1]!, child });
      }
    };
    child.stdout!.on('data', onData);
  });
}

/**
 * Starts the built gateway (`dist/cli.js serve` with the node flags of `npm start`) on `configFile` and a free port;
 * `root` is another checkout with dist/ built, for an A/B in one run.
 */
export function startGatewayProcess(configFile: string, env: Record<string, string> = {}, root = ROOT): Promise<{ url: string; child: ChildProcess }> {
  return startProcess([...gatewayNodeArgs, path.join(root, 'dist/cli.js'), 'serve', '--config', configFile, '--port', '0'], env);
}

/** Starts bench/reference-proxy.mjs (the 20-line node:http proxy every figure is compared with) in front of `upstream`. */
export function startReference(upstream: string): Promise<{ url: string; child: ChildProcess }> {
  return startProcess([path.join(ROOT, 'bench/reference-proxy.mjs'), upstream]);
}

/** Stops the processes and waits until they have exited. */
export async function stopAll(procs: Record<string, { child: ChildProcess }>): Promise<void> {
  await Promise.all(
    Object.values(procs).map(({ child }) =>
      child.exitCode !== null || child.signalCode !== null
        ? undefined
        : new Promise<void>((resolve) => {
            child.once('exit', () => resolve());
            child.kill('SIGTERM');
          }),
    ),
  );
}

/**
 * CPU µs per request of each process: a warm-up of 500 requests each, then three rounds (BENCH_CPU_ROUNDS) of `n`
 * requests (`body`, default 76 KB; 4 connections) in alternation, utime + stime from /proc around each (of every pid
 * `pids` names, else the child's); every round's figure per process.
 */
export async function cpuRounds(
  procs: Record<string, { url: string; child: ChildProcess; pids?: () => number[] }>,
  n: number,
  extra: Record<string, string> | ((proc: string) => Record<string, string>) = {},
  body: Buffer = body76k,
): Promise<Record<string, number[]>> {
  const headersOf = typeof extra === 'function' ? extra : () => extra;
  const urlName = new Map(Object.entries(procs).map(([name, p]) => [p.url, name]));
  const run = async (url: string, count: number) => {
    const extraHeaders = headersOf(urlName.get(url)!);
    const agent = new Agent({ connections: 4 });
    let left = count;
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        while (left-- > 0) {
          const r = await request(url + '/v1/messages?beta=true', { method: 'POST', headers: { ...headers, ...extraHeaders }, body, dispatcher: agent });
          await r.body.dump();
        }
      }),
    );
    await agent.close();
  };
  const per: Record<string, number[]> = Object.fromEntries(Object.keys(procs).map((k) => [k, []]));
  for (const p of Object.values(procs)) await run(p.url, 500); // warm-up (JIT, pools)
  // BENCH_CPU_ROUNDS: more rounds on a noisy machine (default 3); each round's figure is kept, so the range shows.
  const rounds = Number(process.env.BENCH_CPU_ROUNDS ?? 3);
  for (let round = 0; round < rounds; round++) {
    for (const [name, p] of Object.entries(procs)) {
      // A process with workers (nginx) counts them all: a child's time is not its parent's until it exits.
      const cpu = () => (p.pids ? p.pids() : [p.child.pid!]).reduce((sum, pid) => sum + cpuMicros(pid), 0);
      const before = cpu();
      await run(p.url, n);
      per[name]!.push((cpu() - before) / n);
    }
  }
  return per;
}
