/**
 * The chaos soak (issue 30, DESIGN §11): a seeded run that drives mixed traffic through a real gateway —
 * streaming and not, several clients, a two-key pool, a global throttle (rate and concurrency), a budget, the
 * ledger on PostgreSQL and state on Redis, each behind a TCP fault proxy — while a scheduler injects faults
 * from a table: client hang-ups at random points, Redis refused / black-holed / slow, PostgreSQL refused /
 * black-holed, upstream reset / 529 / slow first byte / cut mid-stream / never answering, a rule reload.
 * Afterwards it checks the invariants a team relies on:
 *   1. every request that reached the gateway ended exactly once: one log line and one usage record each,
 *      request ids unique, the two sets equal;
 *   2. what requests took is back: the concurrency count, every key's in-flight count, the body bytes in
 *      flight, the open exchanges, the throttle's concurrency leases in Redis;
 *   3. no request was held past its declared bound (`limits.stall_ms` without progress, plus the watchdog's tick);
 *   4. RSS is back within 30 MB of where it started;
 *   5. `/readyz` reported each long enough Redis and PostgreSQL fault while it lasted.
 * A failure names the seed and prints the fault schedule, so `npm run soak -- --seed N` replays it.
 *
 * Usage: `npm run soak -- --seed 7 --seconds 60` (REDIS_URL and DATABASE_URL as for `npm test`).
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import pg from 'pg';
import { Agent, request } from 'undici';
import { startFakeUpstream } from './fake-upstream.js';
import { proxiedDatabase, startFaultProxy, type FaultMode } from './fault-proxy.js';
import { startTestGateway } from './helpers.js';

/** A small seeded PRNG (mulberry32): the same seed gives the same traffic and the same faults. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** One injected fault, as the schedule prints it. */
export interface FaultEvent {
  /** ms from the start of the traffic. */
  at: number;
  target: 'redis' | 'postgres' | 'rules';
  mode: FaultMode | 'reload';
  /** How long it lasted, ms. */
  ms: number;
  /** Whether /readyz reported the dependency degraded while it lasted (null: not checked for this fault). */
  reported: boolean | null;
}

/** What a soak run found. */
export interface SoakResult {
  seed: number;
  seconds: number;
  /** Requests the clients sent, by what the client saw (status, `aborted` by the client, `error` transport failure). */
  sent: number;
  seen: Record<string, number>;
  /** Requests that reached the gateway's handler, log lines and usage records of them. */
  arrived: number;
  logLines: number;
  records: number;
  faults: FaultEvent[];
  /** Upstream scenarios injected, by name. */
  upstreamFaults: Record<string, number>;
  /** Slowest request as its client saw it, ms, and the bound it had. */
  slowestMs: number;
  boundMs: number;
  watchdogEnded: number;
  rss: { startMb: number; endMb: number };
  /** Broken invariants, each a sentence; empty when the run held. */
  violations: string[];
}

const STALL_MS = 4000;
const SESSION = (seed: number) => `soak-${seed}-${Date.now().toString(36)}`;

/** The upstream faults and how often each is injected (the rest are plain answers). */
const UPSTREAM_FAULTS: Array<[scenario: string, weight: number]> = [
  ['status:529', 0.06],
  ['reset', 0.04],
  ['truncate-sse', 0.05],
  ['cut-sse', 0.03],
  ['slow-headers:1500', 0.06],
  ['hang', 0.02],
];

/** Dependency faults the scheduler picks from: target, mode, how long (ms range). */
const DEPENDENCY_FAULTS: Array<{ target: 'redis' | 'postgres'; mode: FaultMode; min: number; max: number }> = [
  { target: 'redis', mode: 'refuse', min: 800, max: 2500 },
  { target: 'redis', mode: 'blackhole', min: 800, max: 3500 },
  { target: 'redis', mode: 'slow', min: 800, max: 2500 },
  { target: 'postgres', mode: 'refuse', min: 1000, max: 3000 },
  { target: 'postgres', mode: 'blackhole', min: 1500, max: 4500 },
];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const rssMb = () => Math.round(process.memoryUsage().rss / 1048576);

/**
 * Runs one soak: `seconds` of traffic under faults, then the invariant checks.
 * @param opts.workers concurrent client loops (default 8).
 */
export async function soak(opts: { seed: number; seconds: number; workers?: number; log?: (line: string) => void }): Promise<SoakResult> {
  const { seed, seconds } = opts;
  const say = opts.log ?? (() => {});
  const rand = prng(seed);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(rand() * xs.length)]!;
  const redisUrl = new URL(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
  const db = await proxiedDatabase('soak');
  const upstream = await startFakeUpstream();
  const redisProxy = await startFaultProxy(Number(redisUrl.port || 6379), redisUrl.hostname);
  const pgProxy = db.proxy;
  const tag = `${seed}-${Date.now().toString(36)}`;
  const providers = `  anthropic:\n    type: anthropic\n    base_url: ${upstream.url}\n    keys: [ "k-soak-a", "k-soak-b" ]\n    timeouts: { connect_ms: 1000, headers_ms: 2500, first_byte_ms: 2500, body_ms: 2500 }\n    retries: { max: 1, base_delay_ms: 20, max_delay_ms: 100, budget_ms: 3000 }\n    breaker: { failures: 1000 }\n`;
  const rules = {
    '10-limits.yaml': `version: 1\nrules:\n  - id: soak-throttle-${tag}\n    actions:\n      - throttle: { scope: global, concurrent: 64, requests_per_minute: 100000 }\n      - budget: { scope: user, usd: 100000, per: day }\n`,
    '50-route.yaml': 'version: 1\nrules:\n  - id: default\n    actions:\n      - route_to: { provider: anthropic }\n',
  };
  const extraConfig =
    `state: { redis: "redis://127.0.0.1:${redisProxy.port}", command_timeout_ms: 100, retry_ms: 300, slot_lease_ms: 1500 }\n` +
    `ledger: { postgres: "${db.url}", flush_interval_ms: 100, write_timeout_ms: 1500 }\n` +
    `limits: { stall_ms: ${STALL_MS} }\n`;
  const { gw, logs, rulesDir } = await startTestGateway({ upstream: upstream.url, providers, rules, extraConfig });
  const arrivedIds = new Set<string>();
  let arrived = 0;
  gw.server.on('request', (req) => {
    if ((req.url ?? '').startsWith('/v1/messages')) arrived++;
  });
  const session = SESSION(seed);
  const agent = new Agent({ connections: 64, pipelining: 0 });
  const violations: string[] = [];
  const seen: Record<string, number> = {};
  const upstreamFaults: Record<string, number> = {};
  const faults: FaultEvent[] = [];
  let sent = 0;
  let slowestMs = 0;
  const body = (stream: boolean) => JSON.stringify({ model: 'claude-sonnet-4-6', max_tokens: 16, stream, messages: [{ role: 'user', content: `soak ${seed}` }] });

  // Warm-up, then the RSS baseline.
  for (let i = 0; i < 20; i++) {
    const r = await request(`${gw.url}/v1/messages`, {
      method: 'POST',
      dispatcher: agent,
      headers: { 'content-type': 'application/json', 'x-claude-code-session-id': `${session}-warm` },
      body: body(i % 2 === 0),
    });
    await r.body.dump();
  }
  global.gc?.();
  const rssStart = rssMb();
  arrived = 0;
  const started = performance.now();
  const endAt = started + seconds * 1000;

  /** One client loop: random requests, random upstream faults, random hang-ups. */
  const worker = async () => {
    while (performance.now() < endAt) {
      const stream = rand() < 0.6;
      let scenario = '';
      let r = rand();
      for (const [s, w] of UPSTREAM_FAULTS) {
        if (r < w) {
          scenario = s;
          break;
        }
        r -= w;
      }
      if (scenario) upstreamFaults[scenario] = (upstreamFaults[scenario] ?? 0) + 1;
      const hangUp = rand() < 0.12 ? Math.floor(rand() * 400) : null;
      const ac = new AbortController();
      const timer = hangUp === null ? null : setTimeout(() => ac.abort(), hangUp);
      const t0 = performance.now();
      sent++;
      let outcome: string;
      try {
        const res = await request(`${gw.url}/v1/messages`, {
          method: 'POST',
          dispatcher: agent,
          signal: ac.signal,
          headers: { 'content-type': 'application/json', 'x-claude-code-session-id': session, ...(scenario ? { 'x-fake': scenario } : {}) },
          body: body(stream),
        });
        const id = res.headers['x-switchyard-request-id'];
        if (typeof id === 'string') arrivedIds.add(id);
        await res.body.dump({ limit: 1 << 20 });
        outcome = String(res.statusCode);
      } catch (err) {
        outcome = ac.signal.aborted ? 'aborted' : 'error';
        if (!ac.signal.aborted) say(`transport error: ${(err as Error).message}`);
      } finally {
        if (timer) clearTimeout(timer);
      }
      seen[outcome] = (seen[outcome] ?? 0) + 1;
      slowestMs = Math.max(slowestMs, performance.now() - t0);
      await sleep(Math.floor(rand() * 30));
    }
  };

  /** The fault scheduler: a fault at a time from the table, /readyz polled while it lasts. */
  const scheduler = async () => {
    while (performance.now() < endAt - 1000) {
      await sleep(300 + Math.floor(rand() * 1200));
      if (performance.now() >= endAt - 1000) break;
      if (rand() < 0.2) {
        const file = path.join(rulesDir, '50-route.yaml');
        writeFileSync(file, `${rules['50-route.yaml']}# reload ${Date.now()}\n`);
        gw.runtime.reload('soak');
        faults.push({ at: Math.round(performance.now() - started), target: 'rules', mode: 'reload', ms: 0, reported: null });
        continue;
      }
      const f = pick(DEPENDENCY_FAULTS);
      const ms = Math.round(Math.min(f.min + Math.floor(rand() * (f.max - f.min)), Math.max(0, endAt - 800 - performance.now())));
      const proxy = f.target === 'redis' ? redisProxy : pgProxy;
      const event: FaultEvent = { at: Math.round(performance.now() - started), target: f.target, mode: f.mode, ms, reported: null };
      faults.push(event);
      await proxy.set(f.mode, { delayMs: 150 });
      // Reported: Redis once a command fails (refuse, black-hole); PostgreSQL once a write fails or hangs > 2 s.
      const check = (f.target === 'redis' && f.mode !== 'slow' && ms >= 1500) || (f.target === 'postgres' && ms >= 3000);
      if (check) event.reported = false;
      const until = performance.now() + ms;
      while (performance.now() < until) {
        if (check && !event.reported) {
          try {
            const r = await request(`${gw.url}/readyz`, { dispatcher: agent, headersTimeout: 1000, bodyTimeout: 1000 });
            const h = (await r.body.json()) as { state: { status: string }; ledger: { status: string } };
            if ((f.target === 'redis' ? h.state.status : h.ledger.status) === 'degraded') event.reported = true;
          } catch {
            // /readyz itself must answer; a failed poll is a violation below when it never reported
          }
        }
        await sleep(Math.min(150, Math.max(1, until - performance.now())));
      }
      await proxy.set('pass');
    }
  };

  await Promise.all([scheduler(), ...Array.from({ length: opts.workers ?? 8 }, worker)]);
  const trafficMs = performance.now() - started;
  await redisProxy.set('pass');
  await pgProxy.set('pass');

  // Quiescence: everything in flight ends (at the latest by the watchdog), the ledger writes what it holds.
  const d = gw.deps;
  const quiet = async (what: string, check: () => boolean | Promise<boolean>, ms: number) => {
    const until = performance.now() + ms;
    while (performance.now() < until) {
      if (await check()) return;
      await sleep(50);
    }
    violations.push(`${what} (still so ${ms} ms after the traffic stopped)`);
  };
  await quiet('open exchanges are left', () => d.exchanges.size === 0, STALL_MS + 3000);
  await quiet('the concurrency count is not back to 0', () => d.inFlight.count === 0, 1000);
  await quiet('a key of the pool has requests in flight', () => d.upstreams.pools.all().every((p) => p.keys.every((k) => k.inFlight === 0)), 1000);
  await quiet('request-body bytes are still reserved', () => d.inflightBytes.total === 0, 1000);
  const redis = new Redis(redisUrl.href, { lazyConnect: false, maxRetriesPerRequest: 1 });
  try {
    // A lease whose release was lost while Redis was down expires within its lease (1.5 s); none may stay.
    await quiet(
      'throttle concurrency leases are left in Redis',
      async () => {
        const keys = await redis.keys(`switchyard:throttle:soak-throttle-${tag}:*:concurrent`);
        for (const k of keys) {
          await redis.zremrangebyscore(k, '-inf', String(Date.now()));
          if ((await redis.zcard(k)) > 0) return false;
        }
        return true;
      },
      4000,
    );
  } finally {
    redis.disconnect();
  }
  await d.ledger?.flush();
  const client = new pg.Client({ connectionString: db.direct });
  await client.connect();
  let recordIds: string[] = [];
  await quiet(
    'usage records are missing from the ledger',
    async () => {
      await d.ledger?.flush();
      const { rows } = await client.query<{ request_id: string }>('SELECT request_id FROM usage_records WHERE session_id = $1', [session]);
      recordIds = rows.map((r) => r.request_id);
      return recordIds.length >= arrived;
    },
    8000,
  );
  await client.end();
  const logLines = logs.lines.filter((l) => l.msg === 'request' && l.session_id === session);
  const logIds = logLines.map((l) => String(l.request_id));
  const watchdogEnded = logs.lines.filter((l) => l.msg === 'watchdog: ending a request that made no progress').length;

  // Invariant 1: exactly once.
  if (new Set(recordIds).size !== recordIds.length) violations.push(`duplicate usage records: ${recordIds.length - new Set(recordIds).size}`);
  if (new Set(logIds).size !== logIds.length) violations.push(`duplicate log lines: ${logIds.length - new Set(logIds).size}`);
  if (logIds.length !== arrived) violations.push(`${arrived} requests arrived but ${logIds.length} log lines were written`);
  if (recordIds.length !== arrived) violations.push(`${arrived} requests arrived but the ledger holds ${recordIds.length} records`);
  const recordSet = new Set(recordIds);
  const missing = logIds.filter((id) => !recordSet.has(id));
  if (missing.length) violations.push(`${missing.length} logged requests have no usage record (e.g. ${missing[0]})`);
  const unanswered = [...arrivedIds].filter((id) => !recordSet.has(id));
  if (unanswered.length) violations.push(`${unanswered.length} answered requests have no usage record (e.g. ${unanswered[0]})`);
  // Invariant 3: bounded. A request makes progress at least every stall_ms; the longest legitimate wait here is the
  // upstream's first-byte timeout with one retry, each below stall_ms; the watchdog checks every second.
  const boundMs = 2 * STALL_MS + 1000;
  if (slowestMs > boundMs) violations.push(`a request took ${Math.round(slowestMs)} ms, past its bound of ${boundMs} ms`);
  // Invariant 4: memory.
  global.gc?.();
  await sleep(200);
  const rssEnd = rssMb();
  if (rssEnd - rssStart > 30) violations.push(`RSS grew from ${rssStart} MB to ${rssEnd} MB (over 30 MB)`);
  // Invariant 5: reported.
  for (const f of faults) if (f.reported === false) violations.push(`/readyz never reported the ${f.target} ${f.mode} fault at ${f.at} ms (${f.ms} ms long)`);

  await gw.close();
  await agent.close();
  await upstream.close();
  await redisProxy.close();
  await db.drop();
  const result: SoakResult = {
    seed,
    seconds: Math.round(trafficMs / 100) / 10,
    sent,
    seen,
    arrived,
    logLines: logIds.length,
    records: recordIds.length,
    faults,
    upstreamFaults,
    slowestMs: Math.round(slowestMs),
    boundMs,
    watchdogEnded,
    rss: { startMb: rssStart, endMb: rssEnd },
    violations,
  };
  return result;
}

/** The schedule and counts of a run, for a failure message or the CLI. */
export function describeRun(r: SoakResult): string {
  const faults = r.faults.map((f) => `  +${f.at} ms ${f.target} ${f.mode}${f.ms ? ` ${f.ms} ms` : ''}${f.reported === null ? '' : f.reported ? ' (reported)' : ' (NOT reported)'}`).join('\n');
  return [
    `seed ${r.seed}: ${r.seconds} s, ${r.sent} requests sent (${Object.entries(r.seen)
      .map(([k, v]) => `${k}: ${v}`)
      .join(', ')}), ${r.arrived} arrived, ${r.logLines} log lines, ${r.records} usage records`,
    `upstream faults: ${JSON.stringify(r.upstreamFaults)}; slowest request ${r.slowestMs} ms (bound ${r.boundMs} ms); watchdog ended ${r.watchdogEnded}; RSS ${r.rss.startMb} -> ${r.rss.endMb} MB`,
    `fault schedule (replay: npm run soak -- --seed ${r.seed} --seconds ${Math.round(r.seconds)}):`,
    faults || '  (none)',
    r.violations.length ? `VIOLATIONS:\n${r.violations.map((v) => `  - ${v}`).join('\n')}` : 'every invariant held',
  ].join('\n');
}

// The CLI: npm run soak -- --seed N --seconds S [--seeds K] (K seeds from N on).
if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({
    options: { seed: { type: 'string', default: '1' }, seconds: { type: 'string', default: '60' }, seeds: { type: 'string', default: '1' }, workers: { type: 'string', default: '8' } },
  });
  let failed = 0;
  for (let i = 0; i < Number(values.seeds); i++) {
    const r = await soak({ seed: Number(values.seed) + i, seconds: Number(values.seconds), workers: Number(values.workers), log: (l) => console.error(l) });
    console.log(describeRun(r));
    if (r.violations.length) failed++;
  }
  process.exit(failed ? 1 : 0);
}
