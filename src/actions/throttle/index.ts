/**
 * `throttle`: limits that every request matching the rule must pass, per scope value (a client, a
 * session, a model, a billing tag, or everything). Throttles accumulate: all of them must admit. The
 * limits are token buckets (src/state/store.ts) refilled continuously: `requests_per_minute`,
 * `input_tokens_per_minute` (charged from the request's estimate at admission), `output_tokens_per_minute`
 * (charged from the usage the upstream reports at the end; a bucket in debt refuses until it refills) and
 * `concurrent` (requests in flight). `burst` sizes the buckets as a multiple of the per-minute limit.
 * `shadow: true` counts and logs what would be refused without refusing. Enforcement (admission and
 * settlement) is in enforce.ts.
 */
import { registerPayload } from '../../rules/decision.js';
import type { EnforcingAction } from '../types.js';
import { throttleEnforcer } from './enforce.js';

import type { Throttle } from './spec.js';

export type { Throttle, ThrottleScope } from './spec.js';

const positive = (what: string) => ({ type: 'integer', minimum: 1, description: what });

/** The `throttle` action: schema, compile, apply, and its enforcer. */
export const throttle: EnforcingAction<Omit<Throttle, 'rule'>> = {
  name: 'throttle',
  schema: {
    type: 'object',
    additionalProperties: false,
    required: ['scope'],
    anyOf: [
      { required: ['requests_per_minute'], description: 'a limit: requests_per_minute' },
      { required: ['input_tokens_per_minute'], description: 'input_tokens_per_minute' },
      { required: ['output_tokens_per_minute'], description: 'output_tokens_per_minute' },
      { required: ['concurrent'], description: 'concurrent' },
    ],
    description: 'Rate and concurrency limits per scope value; a refused request gets 429 rate_limit_error with retry-after. At least one limit is required.',
    properties: {
      scope: {
        type: 'string',
        pattern: '^(key|client|user|project|session|model|global|tag:[a-z][a-z0-9_]*)$',
        description:
          'What the limits count per: key / client (the client id), user (the client, else the account in metadata.user_id), project (the project header), session (x-claude-code-session-id, else the client), model (the routed model), tag:<name> (a billing tag), global. Never the source IP.',
      },
      requests_per_minute: positive('Requests per minute.'),
      input_tokens_per_minute: positive("Input tokens per minute, charged from the request's estimate (bytes / 4) at admission."),
      output_tokens_per_minute: positive('Output tokens per minute, charged from the usage reported at the end of each answer.'),
      concurrent: positive('Requests in flight at once.'),
      burst: { type: 'number', exclusiveMinimum: 0, description: "Bucket capacity as a multiple of the per-minute limit (default 1: a full minute's worth at once)." },
      shadow: { type: 'boolean', description: 'true: count and log what would be refused, refuse nothing (to try a limit on live traffic).' },
    },
  },
  compile(params) {
    const p = params as Partial<Throttle>;
    return { ...p, scope: p.scope!, burst: p.burst ?? 1, shadow: p.shadow ?? false };
  },
  settings: () => [],
  apply(c, _rc, d, rule) {
    d.payload('throttles').push({ ...c, rule });
    return { action: 'throttle', applied: true, detail: { scope: c.scope, shadow: c.shadow } };
  },
  enforcer: throttleEnforcer,
};

declare module '../../rules/decision.js' {
  interface DecisionPayloads {
    /** Throttles every request matching their rule must pass, enforced by the throttles stage. */
    throttles: Throttle;
  }
}
registerPayload('throttles');
