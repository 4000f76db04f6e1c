/**
 * Claude Code's own telemetry joined to the ledger: from the OTLP/HTTP JSON metrics a signed-in client sends
 * (`POST /v1/metrics`), the per-session counters that say what a session produced — commits, pull requests,
 * lines added and removed, active time — are added to the session's activity row, so `switchyard usage
 * --activity` can put cost beside them (cost per commit, per pull request).
 *
 * Sources: Claude Code's monitoring documentation (https://code.claude.com/docs/en/monitoring-usage: metric
 * names `claude_code.commit.count`, `claude_code.pull_request.count`, `claude_code.lines_of_code.count` with
 * `type` added/removed, `claude_code.active_time.total` in seconds; the `session.id` attribute; delta temporality
 * by default), OTLP's JSON encoding of ExportMetricsServiceRequest (https://opentelemetry.io/docs/specs/otlp/#json-protobuf-encoding:
 * lowerCamelCase fields, int64 as strings, AggregationTemporality 1 = delta, 2 = cumulative).
 */
import type { ActivityColumn, ActivityDelta, Ledger } from '../usage/ledger.js';

type AnyValue = { stringValue?: string; intValue?: string | number; doubleValue?: number };
type KeyValue = { key: string; value?: AnyValue };
type DataPoint = { attributes?: KeyValue[]; asInt?: string | number; asDouble?: number };
type Metric = { name?: string; sum?: { dataPoints?: DataPoint[]; aggregationTemporality?: number } };
type MetricsRequest = { resourceMetrics?: { resource?: { attributes?: KeyValue[] }; scopeMetrics?: { metrics?: Metric[] }[] }[] };

const attr = (attrs: KeyValue[] | undefined, key: string): string | undefined => {
  const v = attrs?.find((a) => a.key === key)?.value;
  return v?.stringValue ?? (v?.intValue !== undefined ? String(v.intValue) : undefined);
};

/** The activity counters in one OTLP JSON metrics request sent by `userId`; anything else in it is ignored. */
export function activityFromMetrics(request: MetricsRequest, userId: string): ActivityDelta[] {
  const out: ActivityDelta[] = [];
  for (const rm of request.resourceMetrics ?? []) {
    for (const sm of rm.scopeMetrics ?? []) {
      for (const m of sm.metrics ?? []) {
        if (!m.name?.startsWith('claude_code.') || !m.sum) continue;
        const mode = m.sum.aggregationTemporality === 2 ? 'max' : 'add';
        for (const dp of m.sum.dataPoints ?? []) {
          const session = attr(dp.attributes, 'session.id') ?? attr(rm.resource?.attributes, 'session.id');
          if (!session) continue;
          const value = Number(dp.asInt ?? dp.asDouble ?? 0);
          if (!Number.isFinite(value) || value < 0) continue;
          let column: ActivityColumn | null = null;
          if (m.name === 'claude_code.commit.count') column = 'commits';
          else if (m.name === 'claude_code.pull_request.count') column = 'pull_requests';
          else if (m.name === 'claude_code.active_time.total') column = 'active_time_s';
          else if (m.name === 'claude_code.lines_of_code.count') {
            const type = attr(dp.attributes, 'type');
            column = type === 'added' ? 'lines_added' : type === 'removed' ? 'lines_removed' : null;
          }
          if (column) out.push({ session_id: session, user_id: userId, column, value, mode });
        }
      }
    }
  }
  return out;
}

/** Reads one JSON metrics body and adds its activity to the ledger (off the request's path; failures are logged once). */
export function recordTelemetry(deps: { ledger: Pick<Ledger, 'store'> | null; warnOnce(key: string, message: string): void }, userId: string, body: Buffer): void {
  const store = deps.ledger?.store;
  if (!store) return;
  let deltas: ActivityDelta[];
  try {
    deltas = activityFromMetrics(JSON.parse(body.toString('utf8')) as MetricsRequest, userId);
  } catch {
    deps.warnOnce('otlp-json', 'a Claude Code telemetry body was not valid OTLP JSON; it was forwarded (when configured) but not joined to the ledger');
    return;
  }
  if (deltas.length) store.addActivity(deltas).catch((err: Error) => deps.warnOnce(`activity:${err.message}`, `could not write session activity to the ledger: ${err.message}`));
}
