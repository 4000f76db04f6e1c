/**
 * Stage "authenticate" (DESIGN §3 step 2): with `clients:` configured, the request must carry a known
 * client key (401 otherwise; nothing is read or forwarded); in transparent mode the client is the
 * non-reversible fingerprint of its own credential.
 */
import { identifyClient } from '../auth.js';
import type { Stage } from './exchange.js';

export const authenticate: Stage = async (x, next) => {
  const { client, clientId } = identifyClient(x.req.headers, x.config.clients);
  x.client = client;
  x.clientId = clientId;
  if (client) x.log.client = clientId;
  else x.log.client_fp = clientId;
  return next();
};
