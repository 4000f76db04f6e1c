/**
 * Stage "concurrency": at most `limits.max_concurrent_requests` proxied requests (streams included) in
 * flight; past it, 529 `overloaded_error` with `retry-after` before anything is read. The count is owned by
 * the exchange, so it is given back when the request ends however it ends (the watchdog included).
 */
import { TooManyRequestsError } from '../../errors.js';
import type { Stage } from './exchange.js';

export const concurrency: Stage = async (x, next) => {
  const limit = x.config.limits.max_concurrent_requests;
  const inFlight = x.deps.inFlight;
  if (inFlight.count >= limit) {
    throw new TooManyRequestsError(limit);
  }
  inFlight.count++;
  const release = x.own(() => inFlight.count--);
  try {
    await next();
  } finally {
    release();
  }
};
