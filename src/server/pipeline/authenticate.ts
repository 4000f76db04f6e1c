/**
 * Stage "authenticate" (DESIGN §3 step 2): with `clients:` configured, the request must carry a known
 * client key (401 otherwise; nothing is read or forwarded); in transparent mode the client is the
 * non-reversible fingerprint of its own credential.
 */
import { clientCredential, credentialFingerprint } from '../../rules/context.js';
import { authenticateClient } from '../auth.js';
import type { Stage } from './exchange.js';

export const authenticate: Stage = async (x, next) => {
  const { clients } = x.config;
  if (clients) {
    x.client = authenticateClient(x.req.headers, clients);
    x.clientId = x.client.id;
    x.log.client = x.client.id;
  } else {
    const credential = clientCredential(x.req.headers);
    x.clientId = credential ? credentialFingerprint(credential) : 'anonymous';
    x.log.client_fp = x.clientId;
  }
  return next();
};
