/**
 * OpenTelemetry traces and metrics (off unless switched on), with the official SDK and OTLP/HTTP exporters.
 *
 * Switched on by the standard environment variables — `OTEL_EXPORTER_OTLP_ENDPOINT` (or the signal-specific
 * `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` / `…_METRICS_ENDPOINT`), `OTEL_SERVICE_NAME`, `OTEL_TRACES_EXPORTER` /
 * `OTEL_METRICS_EXPORTER` (`none` turns a signal off), `OTEL_SDK_DISABLED`, `OTEL_BSP_SCHEDULE_DELAY`,
 * `OTEL_METRIC_EXPORT_INTERVAL` — or by `telemetry.endpoint` in the config. Off, nothing of it runs per request.
 *
 * Each request is one SERVER span named `chat {model}` with the GenAI semantic conventions
 * (https://opentelemetry.io/docs/specs/semconv/gen-ai/gen-ai-spans/): `gen_ai.operation.name`,
 * `gen_ai.provider.name`, `gen_ai.request.model`, `gen_ai.response.model`, `gen_ai.usage.input_tokens` /
 * `output_tokens` / `cache_read.input_tokens` / `cache_creation.input_tokens`, `gen_ai.conversation.id` (the Claude
 * Code session), `error.type`; and `switchyard.*`: rules version, matched rules, route, attempts, outcome, cost.
 * Each upstream attempt is a CLIENT child span, and its W3C `traceparent` goes upstream; the client's own
 * `traceparent` is the request span's parent. Never a prompt, a body or a key in an attribute.
 *
 * Metrics (https://opentelemetry.io/docs/specs/semconv/gen-ai/gen-ai-metrics/): `gen_ai.client.token.usage`
 * ({token}), `gen_ai.client.operation.duration` (s), `gen_ai.server.time_to_first_token` (s) — beside the
 * Prometheus metrics, which stay as they are.
 */
import type { TelemetryConfig } from './config.js';
import { MissingPackageError, missingPackages } from './lazy.js';

/** The optional packages (package.json peerDependencies) telemetry-sdk.ts imports. */
const TELEMETRY_PACKAGES = [
  '@opentelemetry/core',
  '@opentelemetry/exporter-metrics-otlp-http',
  '@opentelemetry/exporter-trace-otlp-http',
  '@opentelemetry/resources',
  '@opentelemetry/sdk-metrics',
  '@opentelemetry/sdk-trace',
];
import type { Telemetry, TelemetrySettings } from './telemetry-sdk.js';

export type { AttemptTrace, RequestTrace, Telemetry, TelemetrySettings } from './telemetry-sdk.js';

/**
 * What the environment and config ask for, or null when telemetry is off (no endpoint, `OTEL_SDK_DISABLED=true`, or
 * both signals' exporters `none`). Loads nothing.
 */
export function telemetrySettings(config: TelemetryConfig, env: NodeJS.ProcessEnv = process.env): TelemetrySettings | null {
  if (String(env.OTEL_SDK_DISABLED).toLowerCase() === 'true') return null;
  const base = (config.endpoint ?? env.OTEL_EXPORTER_OTLP_ENDPOINT ?? '').replace(/\/+$/, '');
  const signal = (name: 'TRACES' | 'METRICS', path: string) => {
    if ((env[`OTEL_${name}_EXPORTER`] ?? 'otlp') === 'none') return null;
    return env[`OTEL_EXPORTER_OTLP_${name}_ENDPOINT`] || (base ? `${base}${path}` : null);
  };
  const traces = signal('TRACES', '/v1/traces');
  const metrics = signal('METRICS', '/v1/metrics');
  if (!traces && !metrics) return null;
  return { traces, metrics, serviceName: config.service_name ?? env.OTEL_SERVICE_NAME ?? 'switchyard', env };
}

/**
 * Telemetry as the environment and config ask (the SDK is imported here, only when on), or null when off.
 * @throws MissingPackageError when it is on and OpenTelemetry's optional packages are not installed.
 */
export async function startTelemetry(config: TelemetryConfig, env: NodeJS.ProcessEnv = process.env): Promise<Telemetry | null> {
  const settings = telemetrySettings(config, env);
  if (!settings) return null;
  const missing = missingPackages(TELEMETRY_PACKAGES);
  if (missing.length) throw new MissingPackageError(missing, 'OpenTelemetry export (OTEL_EXPORTER_OTLP_ENDPOINT or telemetry.endpoint)');
  const { Telemetry } = await import('./telemetry-sdk.js');
  return new Telemetry(settings);
}
