/**
 * Stage "forward" (DESIGN §3 step 5): the request goes to the route's provider, then its fallbacks, each
 * built by the provider's adapter with the model the route chain gives it; key pools, retries and breakers
 * are in `upstream/forward.ts`. Once the upstream answered, the body and everything parsed from it are
 * dropped; the upstream key's in-flight slot is given back when the answer is over.
 */
import { forward as forwardUpstream } from '../../upstream/forward.js';
import { routeChain } from '../../upstream/prepare.js';
import { adapterFor, type ClientRequest, type OutgoingRequest } from '../../upstream/providers/index.js';
import type { ProviderConfig } from '../../config.js';
import { clientRequest } from './refuse.js';
import type { Exchange, Stage } from './exchange.js';
import { fileOwner, pinnedChain } from './files.js';

export const forward: Stage = async (x, next) => {
  const release = x.own(await send(x));
  try {
    await next();
  } finally {
    release();
  }
};

/**
 * Sends the request and puts the (translated) answer into the exchange; returns the function that frees the
 * upstream key's slot. Nothing it holds outlives it: the body is dropped before the answer is relayed.
 */
async function send(x: Exchange): Promise<() => void> {
  const { config } = x;
  let links = routeChain(config, x.decision!.route);
  const owner = await fileOwner(x);
  if (owner) {
    links = pinnedChain(links, owner.file, owner.owner);
    const trace = x.deps.traces.get(x.id);
    if (trace) trace.files = { ids: owner.ids, provider: owner.owner.provider, key: owner.owner.key };
  }
  // Let go of before the answer is relayed: it holds the body.
  let req: ClientRequest | null = clientRequest(x);
  const built = new Map<ProviderConfig, OutgoingRequest>();
  const sent = await forwardUpstream(x.deps.upstreams, {
    chain: links.map((l) => l.provider),
    requestFor(p) {
      let out = built.get(p);
      if (!out) {
        out = adapterFor(p).request(req!, p, links.find((l) => l.provider === p)!.model);
        if (out.dropped.length) x.deps.log.debug({ request_id: x.id, provider: p.name, dropped: out.dropped }, 'fields without an equivalent at this provider were dropped');
        built.set(p, out);
      }
      return out;
    },
    clientsConfigured: config.clients !== null || config.login !== null,
    session: x.rc!.session.id ?? `client:${x.clientId}`,
    client: x,
    requestId: x.id,
    started: performance.now(),
    stream: req.stream,
    stats: x.attempts,
    onAttempt: () => x.touch(),
    trace: x.trace,
    pin: owner?.owner.key ? { key: owner.owner.key, what: `file "${owner.file}"` } : null,
  });
  x.log.upstream = sent.provider;
  x.log.upstream_key = sent.key ?? undefined;
  const provider = config.providers[sent.provider]!;
  const requestedModel = x.rc!.model;
  built.clear();
  try {
    x.answer = await adapterFor(provider).answer(sent.answer, provider, req, requestedModel, x.deps.log);
  } catch (err) {
    sent.release();
    throw err;
  }
  req = null;
  x.dropBody(); // from here on an open stream holds no copy of the request
  return sent.release;
}
