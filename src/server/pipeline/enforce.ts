/**
 * Stage "enforce" (DESIGN §3 step 4, §11.2): one generic stage per enforcing action (throttle, budget). The
 * action's enforcer admits the request or refuses it with a GatewayError; what it admitted with (a hold) is
 * owned by the exchange and settled exactly once when the request ends (record.ts), whatever ends it. A hold
 * may add response headers and replace the route: the Decision is replaced, never mutated.
 */
import type { EnforcingAction } from '../../actions/types.js';
import type { Stage } from './exchange.js';

/** The stage that runs `action`'s enforcer (made once per gateway, `deps.enforcers`). */
export function enforce(action: EnforcingAction): Stage {
  const stage: Stage = async (x, next) => {
    const enforcer = x.endpoint === 'models' ? undefined : x.deps.enforcers.get(action.name);
    if (enforcer) {
      const hold = await enforcer.admit({ decision: x.decision!, rc: x.rc!, requestId: x.id, now: new Date(), config: x.config });
      if (hold) {
        x.holds.push(hold);
        for (const [name, value] of Object.entries(hold.headers ?? {})) x.res.setHeader(name, value);
        if (hold.route) {
          x.decision = { ...x.decision!, route: hold.route };
          x.log.upstream_model = hold.route.model;
        }
      }
    }
    return next();
  };
  // The stage's name is the action's (the watchdog's message says where a request stopped).
  Object.defineProperty(stage, 'name', { value: `enforce:${action.name}` });
  return stage;
}
