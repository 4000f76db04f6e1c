/**
 * Prometheus metrics (prom-client), served at `GET /metrics`: requests by provider/model/status, tokens by
 * kind, cost, latency and time-to-first-token histograms, throttled requests, retries, key cooldowns, and
 * the ledger's queue depth and dropped records. One registry per gateway (tests start several).
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Ledger } from './ledger.js';
import type { UsageRecord } from './record.js';

const TOKEN_KINDS = ['input_tokens', 'output_tokens', 'cache_creation_5m_input_tokens', 'cache_creation_1h_input_tokens', 'cache_read_input_tokens'] as const;

export class Metrics {
  readonly registry = new Registry();
  private readonly requests = new Counter({
    name: 'switchyard_requests_total',
    help: 'Proxied requests by provider, model, status and outcome (ok, refused by the gateway, failed upstream, aborted by the client, error of the gateway).',
    labelNames: ['provider', 'model', 'status', 'outcome'],
    registers: [this.registry],
  });
  private readonly tokens = new Counter({ name: 'switchyard_tokens_total', help: 'Tokens reported by upstreams, by kind.', labelNames: ['provider', 'model', 'kind'], registers: [this.registry] });
  private readonly cost = new Counter({
    name: 'switchyard_cost_usd_total',
    help: 'Cost of answered requests, USD (models without a price are not counted).',
    labelNames: ['provider', 'model'],
    registers: [this.registry],
  });
  private readonly latency = new Histogram({
    name: 'switchyard_request_duration_seconds',
    help: 'Whole request duration, seconds.',
    labelNames: ['provider'],
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600],
    registers: [this.registry],
  });
  private readonly ttft = new Histogram({
    name: 'switchyard_time_to_first_token_seconds',
    help: 'Time to the first byte of the answer, seconds.',
    labelNames: ['provider'],
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60],
    registers: [this.registry],
  });
  readonly throttled = new Counter({ name: 'switchyard_throttled_total', help: 'Requests refused by a throttle.', labelNames: ['rule'], registers: [this.registry] });
  private readonly retries = new Counter({ name: 'switchyard_retries_total', help: 'Upstream attempts after the first.', labelNames: ['provider'], registers: [this.registry] });
  readonly stateFallbacks = new Counter({
    name: 'switchyard_state_fallbacks_total',
    help: 'State store operations answered by the failure mode (local, allow, deny) because Redis was unavailable.',
    labelNames: ['use', 'mode'],
    registers: [this.registry],
  });
  readonly stateDegraded = new Gauge({
    name: 'switchyard_state_degraded',
    help: '1 while the shared state store (Redis) is unavailable and its failure mode applies, else 0.',
    registers: [this.registry],
  });
  readonly watchdogEnded = new Counter({
    name: 'switchyard_watchdog_ended_total',
    help: 'Requests the watchdog ended because they made no progress for limits.stall_ms, by the stage they were in.',
    labelNames: ['stage'],
    registers: [this.registry],
  });
  readonly cooldowns = new Counter({ name: 'switchyard_key_cooldowns_total', help: 'Upstream keys put on cooldown after a 429.', labelNames: ['provider'], registers: [this.registry] });

  /**
   * @param rulesVersion the version of the rule set being served now, for `switchyard_rules_info` (replicas of a
   *   fleet compare it after a rules update).
   */
  /**
   * @param modelLabel the `model` label value of a model name (DESIGN §11.4: label values come from the
   *   configuration, the rest is `other`); by default every name is its own label.
   */
  constructor(
    ledger: Ledger | null,
    rulesVersion: () => string = () => '',
    private readonly modelLabel: (model: string, provider: string | null) => string = (m) => m,
  ) {
    new Gauge({
      name: 'switchyard_rules_info',
      help: 'The rules version (content hash) this gateway serves: 1 with the version as a label.',
      labelNames: ['version'],
      registers: [this.registry],
      collect() {
        this.reset();
        this.set({ version: rulesVersion() }, 1);
      },
    });
    new Gauge({
      name: 'switchyard_ledger_queue_depth',
      help: 'Usage records waiting to be written.',
      registers: [this.registry],
      collect() {
        this.set(ledger?.queued ?? 0);
      },
    });
    new Gauge({
      name: 'switchyard_ledger_dropped_records',
      help: 'Usage records dropped because the ledger queue was full (since start).',
      registers: [this.registry],
      collect() {
        this.set(ledger?.dropped ?? 0);
      },
    });
  }

  /** Counts one finished request. */
  observe(r: UsageRecord): void {
    const provider = r.provider ?? 'none';
    const model = r.model === null ? 'none' : this.modelLabel(r.model, r.provider);
    this.requests.inc({ provider, model, status: String(r.status), outcome: r.outcome });
    for (const kind of TOKEN_KINDS) if (r[kind]) this.tokens.inc({ provider, model, kind }, r[kind]);
    if (r.cost_usd) this.cost.inc({ provider, model }, r.cost_usd);
    this.latency.observe({ provider }, r.latency_ms / 1000);
    if (r.ttft_ms !== null) this.ttft.observe({ provider }, r.ttft_ms / 1000);
    if (r.retries) this.retries.inc({ provider }, r.retries);
  }
}

/** Most model names outside the configuration that get a label of their own (priced ones, first come); the rest are `other`. */
export const MAX_PRICED_MODEL_LABELS = 200;

/**
 * The label of a model name for metrics: its own name when the configuration names it (a rule's model
 * matcher, a provider's model map), or when the price table prices it and fewer than
 * {@link MAX_PRICED_MODEL_LABELS} such names have been labelled; else `other`. So client-chosen model strings
 * cannot grow the series without bound.
 * @param configured the model names the configuration mentions (read per call, so a reload applies).
 */
export function modelLabeller(configured: () => ReadonlySet<string>, priced: (model: string, provider: string | null) => boolean): (model: string, provider: string | null) => string {
  const labelled = new Set<string>();
  return (model, provider) => {
    if (labelled.has(model) || configured().has(model)) return model;
    if (labelled.size < MAX_PRICED_MODEL_LABELS && priced(model, provider)) {
      labelled.add(model);
      return model;
    }
    return 'other';
  };
}
