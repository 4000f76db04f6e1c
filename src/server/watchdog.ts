/**
 * The watchdog (DESIGN §11.1): every request in flight must make progress — reach its next stage, relay a
 * chunk of its answer — at least every `limits.stall_ms`. One that does not (a dependency that never answers,
 * a client that never reads, a bug that forgot to resolve a promise) is ended by `abandon`: logged, counted
 * in `switchyard_watchdog_ended_total`, its usage record written and everything it held given back, so
 * nothing can stay in flight for ever.
 */
import type { Logger } from '../log.js';
import type { Exchange } from './pipeline/exchange.js';
import { abandon } from './pipeline/record.js';

/** A running watchdog; `stop` clears its timer. */
export interface Watchdog {
  stop(): void;
  /** Checks every request now (the timer does it every `min(1 s, stall_ms / 4)`). */
  check(): void;
}

/**
 * Starts checking `exchanges` against `stallMs()` (read at every check, so a reload applies).
 */
export function startWatchdog(exchanges: ReadonlySet<Exchange>, stallMs: () => number, log: Logger): Watchdog {
  const check = () => {
    const now = performance.now();
    const limit = stallMs();
    for (const x of [...exchanges]) {
      const stalled = now - x.lastProgress;
      if (stalled <= limit) continue;
      log.error({ request_id: x.id, stage: x.stage, stalled_ms: Math.round(stalled), stall_ms: limit }, 'watchdog: ending a request that made no progress');
      abandon(x, stalled);
    }
  };
  const period = Math.max(50, Math.min(1000, Math.floor(stallMs() / 4)));
  const timer = setInterval(check, period);
  timer.unref();
  return { stop: () => clearInterval(timer), check };
}
