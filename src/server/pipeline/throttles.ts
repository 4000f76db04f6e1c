/**
 * Stage "throttles" (DESIGN §3 step 4): every throttle of the decision must admit the request (429 with
 * `retry-after` naming the rule and limit otherwise). What admission took is settled in this same scope:
 * output tokens are charged when the answer is over, and everything is given back when the request did no
 * work — a later stage refused it, or the upstream refused it before the first byte (429/529).
 */
import { admit } from '../admission.js';
import type { Logger } from '../../log.js';
import type { Ticket } from '../admission.js';
import type { Stage } from './exchange.js';

/**
 * Settles a throttle ticket: `outputTokens` charged, or null to refund what admission took. A state store
 * failure here is logged, never thrown at the client.
 */
async function settle(ticket: Ticket, outputTokens: number | null, log: Logger, requestId: string): Promise<void> {
  try {
    await (outputTokens === null ? ticket.refund() : ticket.done(outputTokens));
  } catch (err) {
    log.error({ request_id: requestId, err: (err as Error).message }, 'could not settle throttle counters');
  }
}

export const throttles: Stage = async (x, next) => {
  if (!x.decision!.throttles.length) return next();
  const ticket = await admit(x.decision!, x.rc!, x.deps.state, x.deps.log, x.id);
  try {
    await next();
  } catch (err) {
    await settle(ticket, null, x.deps.log, x.id);
    throw err;
  }
  const status = x.answer?.statusCode;
  await settle(ticket, status === undefined || status === 429 || status === 529 ? null : (x.tap?.outputTokens() ?? 0), x.deps.log, x.id);
};
