/**
 * The OpenTelemetry SDK side of telemetry.ts: loaded by `startTelemetry` only when telemetry is on, so that a gateway
 * with it off never loads the SDK and its OTLP exporters (about 20 MB of an idle process's memory, issue 34).
 */
import { context, SpanKind, SpanStatusCode, trace, type Context, type Histogram, type Span, type Tracer } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPMetricExporter } from '@opentelemetry/exporter-metrics-otlp-http';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import { BatchSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import type { ProviderConfig } from './config.js';
import { adapterFor, hasAdapter } from './upstream/providers/index.js';

import type { UsageRecord } from './usage/record.js';

/** The GenAI `gen_ai.provider.name` of a provider type: the provider's own folder says (its adapter's `genaiName`). */
const genaiName = (type: string): string => (hasAdapter(type) ? adapterFor({ type }).genaiName : type);

const propagator = new W3CTraceContextPropagator();
const getter = { keys: (h: Record<string, unknown>) => Object.keys(h), get: (h: Record<string, unknown>, k: string) => h[k] as string | string[] | undefined };

/** Where each signal is exported (OTLP/HTTP URLs; null: that signal off), the service name and the OTEL_* environment. */
export interface TelemetrySettings {
  traces: string | null;
  metrics: string | null;
  serviceName: string;
  env: NodeJS.ProcessEnv;
}

/** One upstream attempt's span; `traceparent` is the header that goes upstream with it. */
export interface AttemptTrace {
  traceparent: string;
  /** Ends the span with the upstream's status, or the transport error's message. */
  end(status: number | null, error?: string): void;
}

/** A request's span, started when the request arrives. */
export class RequestTrace {
  constructor(
    private readonly telemetry: Telemetry,
    private readonly span: Span,
    private readonly ctx: Context,
  ) {}

  /** Starts the CLIENT span of one upstream attempt. */
  attempt(provider: ProviderConfig, url: string): AttemptTrace {
    const span = this.telemetry.tracer.startSpan(
      `chat ${provider.name}`,
      {
        kind: SpanKind.CLIENT,
        attributes: { 'gen_ai.operation.name': 'chat', 'gen_ai.provider.name': genaiName(provider.type), 'server.address': new URL(url).host, 'switchyard.provider': provider.name },
      },
      this.ctx,
    );
    const carrier: Record<string, string> = {};
    propagator.inject(trace.setSpan(this.ctx, span), carrier, { set: (c, k, v) => (c[k] = v) });
    return {
      traceparent: carrier.traceparent!,
      end(status, error) {
        if (status !== null) span.setAttribute('http.response.status_code', status);
        if (error || (status !== null && status >= 400)) {
          span.setAttribute('error.type', error ? 'transport' : String(status));
          span.setStatus({ code: SpanStatusCode.ERROR, message: error });
        }
        span.end();
      },
    };
  }

  /** Ends the request span with what its usage record says, and records the GenAI metrics. */
  end(r: UsageRecord, providerType: ProviderConfig['type'] | null): void {
    const provider = providerType ? genaiName(providerType) : 'switchyard';
    const model = r.requested_model ?? r.model ?? '';
    const attrs: Record<string, string | number | string[]> = {
      'gen_ai.operation.name': 'chat',
      'gen_ai.provider.name': provider,
      'gen_ai.request.model': model,
      'gen_ai.usage.input_tokens': r.input_tokens,
      'gen_ai.usage.output_tokens': r.output_tokens,
      'gen_ai.usage.cache_read.input_tokens': r.cache_read_input_tokens,
      'gen_ai.usage.cache_creation.input_tokens': r.cache_creation_input_tokens,
      'http.response.status_code': r.status,
      'switchyard.rules': r.rules,
      'switchyard.outcome': r.outcome,
      'switchyard.attempts': r.retries + (r.provider ? 1 : 0),
    };
    if (r.model) attrs['gen_ai.response.model'] = r.model;
    if (r.session_id) attrs['gen_ai.conversation.id'] = r.session_id;
    if (r.rules_version) attrs['switchyard.rules_version'] = r.rules_version;
    if (r.provider) attrs['switchyard.route.provider'] = r.provider;
    if (r.cost_usd !== null) attrs['switchyard.cost_usd'] = r.cost_usd;
    if (r.outcome !== 'ok') attrs['error.type'] = r.error_type ?? r.outcome;
    this.span.updateName(`chat ${model}`);
    this.span.setAttributes(attrs);
    if (r.outcome === 'failed' || r.outcome === 'error') this.span.setStatus({ code: SpanStatusCode.ERROR });
    this.span.end();
    this.telemetry.recordMetrics(r, provider, model);
  }
}

/** Tracer, meter and exporters; null when telemetry is off. */
export class Telemetry {
  readonly tracer: Tracer;
  private readonly tracerProvider: TracerProvider | null;
  private readonly meterProvider: MeterProvider | null;
  private readonly tokens: Histogram | null = null;
  private readonly duration: Histogram | null = null;
  private readonly ttft: Histogram | null = null;

  /** @param s where each signal goes (null: that signal off) and the BSP / metric-interval settings' environment. */
  constructor(s: TelemetrySettings) {
    const { traces, metrics, serviceName, env } = s;
    const resource = resourceFromAttributes({ 'service.name': serviceName });
    const n = (name: string) => Number(env[name]) || undefined;
    // The batch processor's settings from the standard OTEL_BSP_* variables (the SDK leaves reading them to its caller).
    const batch = {
      scheduledDelayMillis: n('OTEL_BSP_SCHEDULE_DELAY'),
      maxQueueSize: n('OTEL_BSP_MAX_QUEUE_SIZE'),
      maxExportBatchSize: n('OTEL_BSP_MAX_EXPORT_BATCH_SIZE'),
      exportTimeoutMillis: n('OTEL_BSP_EXPORT_TIMEOUT'),
    };
    this.tracerProvider = traces ? new TracerProvider({ resource, spanProcessors: [new BatchSpanProcessor({ exporter: new OTLPTraceExporter({ url: traces }), ...batch })] }) : null;
    this.tracer = this.tracerProvider ? this.tracerProvider.getTracer('switchyard') : trace.getTracer('switchyard-off');
    this.meterProvider = metrics
      ? new MeterProvider({
          resource,
          readers: [new PeriodicExportingMetricReader({ exporter: new OTLPMetricExporter({ url: metrics }), exportIntervalMillis: n('OTEL_METRIC_EXPORT_INTERVAL') ?? 60_000 })],
        })
      : null;
    if (this.meterProvider) {
      const meter = this.meterProvider.getMeter('switchyard');
      this.tokens = meter.createHistogram('gen_ai.client.token.usage', { unit: '{token}', description: 'Tokens used per request, by gen_ai.token.type (input, output).' });
      this.duration = meter.createHistogram('gen_ai.client.operation.duration', { unit: 's', description: 'Duration of each request through the gateway.' });
      this.ttft = meter.createHistogram('gen_ai.server.time_to_first_token', { unit: 's', description: 'Time to the first byte of the answer.' });
    }
  }

  /** Starts a request's SERVER span at `startEpochMs`, under the client's `traceparent` when it sent one. */
  startRequest(headers: Record<string, unknown>, method: string, urlPath: string, startEpochMs: number): RequestTrace {
    const parent = propagator.extract(context.active(), headers, getter);
    const span = this.tracer.startSpan('chat', { kind: SpanKind.SERVER, startTime: startEpochMs, attributes: { 'http.request.method': method, 'url.path': urlPath } }, parent);
    return new RequestTrace(this, span, trace.setSpan(parent, span));
  }

  /** The GenAI metrics of one finished request. */
  recordMetrics(r: UsageRecord, provider: string, model: string): void {
    if (!this.tokens) return;
    const attrs: Record<string, string> = { 'gen_ai.operation.name': 'chat', 'gen_ai.provider.name': provider, 'gen_ai.request.model': model };
    if (r.model) attrs['gen_ai.response.model'] = r.model;
    if (r.input_tokens || r.cache_read_input_tokens || r.cache_creation_input_tokens) {
      this.tokens.record(r.input_tokens + r.cache_read_input_tokens + r.cache_creation_input_tokens, { ...attrs, 'gen_ai.token.type': 'input' });
    }
    if (r.output_tokens) this.tokens.record(r.output_tokens, { ...attrs, 'gen_ai.token.type': 'output' });
    this.duration!.record(r.latency_ms / 1000, r.outcome === 'ok' ? attrs : { ...attrs, 'error.type': r.error_type ?? r.outcome });
    if (r.ttft_ms !== null) this.ttft!.record(r.ttft_ms / 1000, attrs);
  }

  /** Exports what is buffered and stops. */
  async shutdown(): Promise<void> {
    await Promise.allSettled([this.tracerProvider?.shutdown(), this.meterProvider?.shutdown()]);
  }
}
