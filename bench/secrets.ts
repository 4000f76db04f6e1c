/**
 * `npm run bench -- secrets`: what `scan_secrets` costs on the request path (issue 36). Three processes in front of one
 * fake upstream: the 20-line reference proxy, Switchyard on the bundled rules, and Switchyard on the bundled rules
 * plus `scan_secrets: { on_find: redact }`. CPU µs per request (utime + stime from /proc, after a warm-up), on a
 * 76 KB Claude-Code-shaped body whose conversation is real JavaScript (tool results holding source files from
 * node_modules, the kind of text that trips gitleaks' keywords):
 *   warm — the same body every time: every block was seen before (a later turn), the memo answers;
 *   cold — a new body every time, each of its blocks never seen before (a nonce in every text): every block is
 *          scanned. Its throughput is the body's bytes over the CPU time scan_secrets added.
 * The gateways' figures carry the noise of a whole request (±300 µs between rounds on this VM); `in_process` measures
 * the action alone on the built code, alternating with the body scan alone, which resolves a few µs.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { loadavg } from 'node:os';
import path from 'node:path';
import { Agent, request } from 'undici';
import { claudeCodeBody, writeConfig } from '../test/helpers.js';
import { cpuMicros, headers, r3, ROOT, startGatewayProcess, startReference, stopAll } from './procs.js';

/** About `bytes` of JavaScript from the packages under node_modules, in file order. */
function jsText(bytes: number): string {
  let out = '';
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      if (out.length >= bytes) return;
      const p = path.join(d, name);
      const s = statSync(p);
      if (s.isDirectory()) walk(p);
      else if (name.endsWith('.js') && s.size < 100_000) out += readFileSync(p, 'utf8');
    }
  };
  for (const pkg of ['undici', 'hono', 'ajv', 'pino', 'yaml']) walk(path.join(ROOT, 'node_modules', pkg));
  return out.slice(0, bytes);
}

/**
 * A 76 KB body: Claude Code's tools and system prompt (synthetic), then 8 turns of a Bash tool whose results are
 * ~3.5 KB slices of real JavaScript; `nonce` (when given) starts every text, content, description and command
 * string, so no block was ever seen before.
 */
function body(code: string, nonce: string | null): Buffer {
  const base = claudeCodeBody({ targetBytes: 44_000, stream: false }) as { messages: unknown[] };
  const messages: unknown[] = [{ role: 'user', content: [{ type: 'text', text: 'Read the code and fix the failing test.' }] }];
  for (let i = 0; i < 8; i++) {
    messages.push({ role: 'assistant', content: [{ type: 'tool_use', id: `toolu_${i}`, name: 'Bash', input: { command: `sed -n ${i * 100},${i * 100 + 99}p src/file.js` } }] });
    messages.push({ role: 'user', content: [{ type: 'tool_result', tool_use_id: `toolu_${i}`, content: code.slice(i * 3500, (i + 1) * 3500) }] });
  }
  const json = JSON.stringify({ ...base, messages });
  return Buffer.from(nonce === null ? json : json.replace(/"(text|content|description|command)":"/g, `"$1":"${nonce} `));
}

/** CPU µs per request of `proc` over `bodies` (sent once each, 4 connections). */
async function cpuPer(proc: { url: string; child: { pid?: number } }, bodies: Buffer[]): Promise<number> {
  const agent = new Agent({ connections: 4 });
  const before = cpuMicros(proc.child.pid!);
  let next = 0;
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      while (next < bodies.length) {
        const b = bodies[next++]!;
        const r = await request(`${proc.url}/v1/messages?beta=true`, { method: 'POST', headers, body: b, dispatcher: agent });
        await r.body.dump();
        if (r.statusCode !== 200) throw new Error(`bench secrets: ${proc.url} answered ${r.statusCode}`);
      }
    }),
  );
  await agent.close();
  return (cpuMicros(proc.child.pid!) - before) / bodies.length;
}

/**
 * The action alone, in this process on the built code: CPU µs of `scan_secrets.apply` per request beyond the body scan
 * every request pays anyway (process.cpuUsage around `n` requests, alternating with the scan alone), warm and cold.
 */
async function inProcess(code: string, n: number) {
  const { lazyBody, scanJsonObject } = (await import('../dist/body/json-scan.js' as string)) as typeof import('../src/body/json-scan.js');
  const { scanSecrets } = (await import('../dist/actions/scan_secrets/index.js' as string)) as typeof import('../src/actions/scan_secrets/index.js');
  const { DecisionDraft } = (await import('../dist/rules/decision.js' as string)) as typeof import('../src/rules/decision.js');
  const c = scanSecrets.compile({ on_find: 'redact' }, { providers: new Set(), error: (_p, m) => console.error(m) });
  const cpu = () => {
    const u = process.cpuUsage();
    return u.user + u.system;
  };
  const measure = async (bodies: Buffer[]) => {
    let withScan = 0;
    let without = 0;
    for (const raw of bodies) {
      const t0 = cpu();
      await scanSecrets.apply(c, {} as never, new DecisionDraft(lazyBody(scanJsonObject(raw, 256))), 'r');
      const t1 = cpu();
      await Promise.resolve(new DecisionDraft(lazyBody(scanJsonObject(raw, 256))));
      const t2 = cpu();
      withScan += t1 - t0;
      without += t2 - t1;
    }
    return (withScan - without) / bodies.length;
  };
  const warm = body(code, null);
  await measure(Array(2000).fill(warm));
  let serial = 0;
  const fresh = () => Array.from({ length: n }, () => body(code, `p${serial++}`));
  await measure(fresh());
  const warmUs = await measure(Array(n * 10).fill(warm));
  const coldUs = await measure(fresh());
  return { warm_added_us: Math.round(warmUs * 10) / 10, cold_added_us: Math.round(coldUs), cold_mb_per_s: r3(warm.length / coldUs) };
}

/** The section's figures: µs per request (lowest of the rounds, and every round), the added µs and the cold MB/s. */
export async function benchSecrets(upstream: string) {
  const code = jsText(40_000);
  const in_process = await inProcess(code, 1000);
  const bundled = readdirSync(path.join(ROOT, 'rules')).filter((f) => f.endsWith('.yaml'));
  const rules = Object.fromEntries(bundled.map((f) => [f, readFileSync(path.join(ROOT, 'rules', f), 'utf8')]));
  const scanRule = 'version: 1\nrules:\n  - id: secrets\n    actions: [ { scan_secrets: { on_find: redact } } ]\n';
  const start = (withScan: boolean) => startGatewayProcess(writeConfig({ upstream, rules: withScan ? { '05-secrets.yaml': scanRule, ...rules } : rules }).configFile);
  const procs = { reference: await startReference(upstream), bundled: await start(false), scan: await start(true) };
  const n = Number(process.env.BENCH_SECRETS_REQUESTS ?? 1000);
  const warmBody = body(code, null);
  const per: Record<string, { warm: number[]; cold: number[] }> = { reference: { warm: [], cold: [] }, bundled: { warm: [], cold: [] }, scan: { warm: [], cold: [] } };
  let serial = 0;
  const coldBodies = () => Array.from({ length: n }, () => body(code, `n${serial++}`));
  try {
    for (const p of Object.values(procs)) {
      await cpuPer(p, Array(300).fill(warmBody)); // warm-up (JIT, pools; the scanning gateway's memo learns warmBody)
      await cpuPer(p, coldBodies().slice(0, 300));
    }
    const rounds = Number(process.env.BENCH_CPU_ROUNDS ?? 3);
    for (let round = 0; round < rounds; round++) {
      const cold = coldBodies();
      for (const [name, p] of Object.entries(procs)) {
        per[name]!.warm.push(await cpuPer(p, Array(n).fill(warmBody)));
        per[name]!.cold.push(await cpuPer(p, cold));
      }
    }
  } finally {
    await stopAll(procs);
  }
  const low = (xs: number[]) => Math.round(Math.min(...xs));
  const added = { warm: low(per.scan!.warm) - low(per.bundled!.warm), cold: low(per.scan!.cold) - low(per.bundled!.cold) };
  return {
    date: new Date().toISOString(),
    load_average: loadavg().map((x) => r3(x)),
    requests_per_round: n,
    body_bytes: warmBody.length,
    reference_us: { warm: low(per.reference!.warm), cold: low(per.reference!.cold) },
    bundled_us: { warm: low(per.bundled!.warm), cold: low(per.bundled!.cold) },
    scan_secrets_us: { warm: low(per.scan!.warm), cold: low(per.scan!.cold) },
    added_us: added,
    cold_mb_per_s: added.cold > 0 ? r3(warmBody.length / added.cold) : null,
    in_process,
    rounds_us: per,
  };
}
