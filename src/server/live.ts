/**
 * The live tail: each finished request's summary (time, id, client, model, route, status, outcome, latency, time
 * to first byte, tokens, cost, matched rules — never a body, a header or a key) to whoever watches, the dashboard's
 * Live view over SSE (GET /admin/ui/api/live). With nobody watching, publishing costs one property read.
 */
import type { UsageRecord } from '../usage/record.js';

/** One line of the live tail. */
export interface LiveLine {
  time: string;
  request_id: string;
  client: string | null;
  session: string | null;
  model: string | null;
  provider: string | null;
  status: number;
  outcome: UsageRecord['outcome'];
  latency_ms: number;
  ttft_ms: number | null;
  input_tokens: number;
  output_tokens: number;
  cache_read_tokens: number;
  cost_usd: number | null;
  rules: string[];
}

/** Subscribers of the live tail; at most `max` at once (the oldest is dropped). */
export class LiveTail {
  private readonly subscribers = new Set<(line: LiveLine) => void>();

  constructor(private readonly max = 32) {}

  /** True while someone watches: the record stage builds a line only then. */
  get active(): boolean {
    return this.subscribers.size > 0;
  }

  /** Calls `fn` with every line from now on; returns the unsubscribe function. */
  subscribe(fn: (line: LiveLine) => void): () => void {
    if (this.subscribers.size >= this.max) this.subscribers.delete(this.subscribers.values().next().value!);
    this.subscribers.add(fn);
    return () => this.subscribers.delete(fn);
  }

  /** The line of a finished request's usage record, to every subscriber (who must not do I/O per line: batch it). */
  publish(r: UsageRecord): void {
    const line: LiveLine = {
      time: r.time,
      request_id: r.request_id,
      client: r.client_id,
      session: r.session_id,
      model: r.model,
      provider: r.provider,
      status: r.status,
      outcome: r.outcome,
      latency_ms: r.latency_ms,
      ttft_ms: r.ttft_ms,
      input_tokens: r.input_tokens,
      output_tokens: r.output_tokens,
      cache_read_tokens: r.cache_read_input_tokens,
      cost_usd: r.cost_usd,
      rules: r.rules,
    };
    for (const fn of this.subscribers) fn(line);
  }
}
