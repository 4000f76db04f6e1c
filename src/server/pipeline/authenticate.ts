/**
 * Stage "authenticate" (DESIGN §3 step 2): with `clients:` configured, the request must carry a known
 * client key (401 otherwise; nothing is read or forwarded); in transparent mode the client is the
 * non-reversible fingerprint of its own credential. With `login:` on, a sign-in token names a user (auth.ts).
 */
import { identify, identifyClient } from '../auth.js';
import type { Stage } from './exchange.js';

export const authenticate: Stage = async (x, next) => {
  if (x.config.login) {
    const who = await identify(x.req.headers, x.config, x.deps.logins);
    x.user = who.user;
    x.login = who.login;
    x.client = who.client;
    x.clientId = who.clientId;
  } else {
    const { client, clientId } = identifyClient(x.req.headers, x.config.clients);
    x.client = client;
    x.clientId = clientId;
  }
  const { client, clientId } = x;
  if (client) x.log.client = clientId;
  else x.log.client_fp = clientId;
  return next();
};
