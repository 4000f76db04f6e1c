/**
 * Files API references in a Messages request (resource affinity, upstream/affinity.ts): a request that uses an
 * uploaded file must go with the upstream key that uploaded it, so forwarding keeps the route to that provider and
 * pins that key, and dry-run shows where the files live.
 */
import { InvalidRequestError } from '../../errors.js';
import { fileIdsOf, type ResourceOwner } from '../../upstream/affinity.js';
import type { ChainLink } from '../../upstream/prepare.js';
import type { Exchange } from './exchange.js';

/**
 * The owner of the Files API files the request references (resource affinity), or null when it references none
 * the gateway saw uploaded. Files held by different keys or providers cannot be used together: no one key reaches them all.
 * @throws InvalidRequestError naming the files when they live under different keys.
 */
export async function fileOwner(x: Exchange): Promise<{ file: string; ids: string[]; owner: ResourceOwner } | null> {
  if (x.endpoint !== 'messages' && x.endpoint !== 'count_tokens') return null;
  const ids = fileIdsOf(x.body);
  if (!ids.length) return null;
  let found: { file: string; ids: string[]; owner: ResourceOwner } | null = null;
  for (const id of ids) {
    const owner = await x.deps.affinity.lookup(id);
    if (!owner) continue;
    if (found && (found.owner.provider !== owner.provider || found.owner.key !== owner.key)) {
      throw new InvalidRequestError(
        `files "${found.file}" and "${id}" were uploaded through different upstream keys (${found.owner.provider} ${found.owner.key ?? 'client key'}, ${owner.provider} ${owner.key ?? 'client key'}); one request can only use files of one key`,
      );
    }
    found ??= { file: id, ids, owner };
  }
  return found;
}

/**
 * The route chain kept to the provider that holds `file`: the route's provider when it is that one, else the
 * first fallback that is; never another provider, which would answer a confusing 404 for the file.
 * @throws InvalidRequestError naming the file and its provider when no provider of the chain holds it.
 */
export function pinnedChain(links: ChainLink[], file: string, owner: ResourceOwner): ChainLink[] {
  const link = links.find((l) => l.provider.name === owner.provider);
  if (!link) {
    throw new InvalidRequestError(
      `file "${file}" was uploaded to provider "${owner.provider}", but this request is routed to ${links.map((l) => `"${l.provider.name}"`).join(', ')}; a file can only be used at the provider (and key) that holds it`,
    );
  }
  return [link];
}
