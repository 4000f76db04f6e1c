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
import { fileIdsOf, type ResourceOwner } from '../../upstream/affinity.js';
import { InvalidRequestError } from '../../errors.js';
import type { ChainLink } from '../../upstream/prepare.js';

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
  if (owner) links = pinnedChain(links, owner.file, owner.owner);
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

/**
 * The owner of the Files API files the request references (resource affinity), or null when it references none
 * the gateway saw uploaded. Files held by different keys or providers cannot be used together: no one key reaches them all.
 * @throws InvalidRequestError naming the files when they live under different keys.
 */
async function fileOwner(x: Exchange): Promise<{ file: string; owner: ResourceOwner } | null> {
  if (x.endpoint !== 'messages' && x.endpoint !== 'count_tokens') return null;
  const ids = fileIdsOf(x.body);
  if (!ids.length) return null;
  let found: { file: string; owner: ResourceOwner } | null = null;
  for (const id of ids) {
    const owner = await x.deps.affinity.lookup(id);
    if (!owner) continue;
    if (found && (found.owner.provider !== owner.provider || found.owner.key !== owner.key)) {
      throw new InvalidRequestError(
        `files "${found.file}" and "${id}" were uploaded through different upstream keys (${found.owner.provider} ${found.owner.key ?? 'client key'}, ${owner.provider} ${owner.key ?? 'client key'}); one request can only use files of one key`,
      );
    }
    found ??= { file: id, owner };
  }
  return found;
}

/**
 * The route chain kept to the provider that holds `file`: the route's provider when it is that one, else the
 * first fallback that is; never another provider, which would answer a confusing 404 for the file.
 * @throws InvalidRequestError naming the file and its provider when no provider of the chain holds it.
 */
function pinnedChain(links: ChainLink[], file: string, owner: ResourceOwner): ChainLink[] {
  const link = links.find((l) => l.provider.name === owner.provider);
  if (!link) {
    throw new InvalidRequestError(
      `file "${file}" was uploaded to provider "${owner.provider}", but this request is routed to ${links.map((l) => `"${l.provider.name}"`).join(', ')}; a file can only be used at the provider (and key) that holds it`,
    );
  }
  return [link];
}
