/**
 * Stage "concurrency": at most `limits.max_concurrent_requests` proxied requests (streams included) in
 * flight; past it, 529 `overloaded_error` with `retry-after` before anything is read.
 */
import { GatewayError } from '../../errors.js';
import type { Stage } from './exchange.js';

export const concurrency: Stage = async (x, next) => {
  const limit = x.config.limits.max_concurrent_requests;
  const inFlight = x.deps.inFlight;
  if (inFlight.count >= limit) {
    throw new GatewayError('SY_TOO_MANY_REQUESTS', 'overloaded_error', 529, `switchyard is at its limit of ${limit} concurrent requests (limits.max_concurrent_requests); retry shortly`, { headers: { 'retry-after': '1' } });
  }
  inFlight.count++;
  try {
    await next();
  } finally {
    inFlight.count--;
  }
};
