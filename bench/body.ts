/**
 * Why the body model (src/body/) exists, measured: on a 76 KB Claude-Code-shaped request, what the gateway does
 * with a body against the plain JSON.parse / JSON.stringify route, µs per request (median and p99 of 2,000):
 *   read     — check the body and read what routing needs (`model`, `stream`, the last message's role);
 *   forward  — read, then the bytes to send when no rule changed the body;
 *   inject   — read, mark the last user block with `cache_control` (inject_cache's edit), then the bytes to send.
 * `scan` is the body model (one scanning pass, members decoded when read, unchanged parts copied as bytes);
 * `parse` is JSON.parse of the whole body and JSON.stringify of the edited one.
 */
import { claudeCodeBody } from '../test/helpers.js';

// The compiled code that production runs (`npm run bench` builds dist/ first).
const { lazyBody, scanJsonObject, serializeBody } = (await import('../dist/body/json-scan.js' as string)) as typeof import('../src/body/json-scan.js');
const { injectBreakpoints } = (await import('../dist/actions/inject_cache.js' as string)) as typeof import('../src/actions/inject_cache.js');

type Timing = { median_us: number; p99_us: number };

function time(fn: () => unknown, n = 2000): Timing {
  for (let i = 0; i < 300; i++) fn();
  const t: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    fn();
    t.push((performance.now() - t0) * 1000);
  }
  t.sort((a, b) => a - b);
  const r = (x: number) => Math.round(x * 10) / 10;
  return { median_us: r(t[Math.floor(n / 2)]!), p99_us: r(t[Math.floor(n * 0.99)]!) };
}

const read = (b: Record<string, unknown>) => {
  const messages = b.messages as Array<{ role: string }>;
  return [b.model, b.stream, messages[messages.length - 1]!.role];
};

/** The three tasks by both routes, and each task's scan-over-parse ratio. */
export function benchBody(): Record<string, Timing | number> {
  // The client's bytes, with the cache_control markers Claude Code sends removed from the last user turn so the edit has a free slot.
  const body = claudeCodeBody({ targetBytes: 76_000 }) as { messages: Array<{ content: Array<Record<string, unknown>> | string }> };
  const last = body.messages.at(-1)!.content;
  if (Array.isArray(last)) delete last.at(-1)!.cache_control;
  const raw = Buffer.from(JSON.stringify(body));
  const injected = injectBreakpoints(lazyBody(scanJsonObject(raw, 256, ['cache_control'])), { at: ['last_user'], ttl: '5m', minTokens: 1024 });
  if (injected.report[0]?.status !== 'injected') throw new Error(`bench body: inject_cache did not mark the last user block (${JSON.stringify(injected.report)})`);
  const opts = { at: ['last_user' as const], ttl: '5m' as const, minTokens: 1024 };
  const out: Record<string, Timing | number> = {
    read_scan: time(() => read(lazyBody(scanJsonObject(raw, 256)))),
    read_parse: time(() => read(JSON.parse(raw.toString('utf8')) as Record<string, unknown>)),
    forward_scan: time(() => {
      const b = lazyBody(scanJsonObject(raw, 256));
      read(b);
      return raw;
    }),
    forward_parse: time(() => {
      const b = JSON.parse(raw.toString('utf8')) as Record<string, unknown>;
      read(b);
      return Buffer.from(JSON.stringify(b));
    }),
    inject_scan: time(() => serializeBody(injectBreakpoints(lazyBody(scanJsonObject(raw, 256, ['cache_control'])), opts).body)),
    inject_parse: time(() => Buffer.from(JSON.stringify(injectBreakpoints(JSON.parse(raw.toString('utf8')) as Record<string, unknown>, opts).body))),
  };
  for (const task of ['read', 'forward', 'inject']) {
    out[`${task}_ratio`] = Math.round(((out[`${task}_scan`] as Timing).median_us / (out[`${task}_parse`] as Timing).median_us) * 1000) / 1000;
  }
  return out;
}
