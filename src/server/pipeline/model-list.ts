/**
 * A signed-in user's `GET /v1/models[/{id}]` that the upstream answers (the configuration names no model, so the
 * provider's own list is the catalogue): the answer is read whole (at most {@link MAX_LIST_BYTES}), decompressed as
 * its `content-encoding` says, and `data` kept to the models the user's policy allows, with `first_id` / `last_id`
 * recomputed; a single model the policy does not allow is a 404, as if it did not exist. Never the unfiltered list:
 * an answer that cannot be read (too large, not JSON) is a 502 naming the provider. A provider's list is kept for
 * {@link LIST_TTL_MS} (per provider and query, bounded in bytes), so a team's Claude Code sessions starting together
 * ask the upstream once. Shape: https://platform.claude.com/docs/en/api/models/list
 */
import { brotliDecompressSync, gunzipSync, inflateSync } from 'node:zlib';
import { LRUCache } from 'lru-cache';
import { UnknownModelError, UpstreamError } from '../../errors.js';
import { modelIdOf } from '../../upstream/providers/models.js';
import { readAtMost } from '../../upstream/client.js';
import type { Exchange, ModelList } from './exchange.js';
import { sendError, sendJson } from './record.js';

/** Largest model list read, bytes (Anthropic's is a few KB; a vendor's hundreds of models stay far below). */
const MAX_LIST_BYTES = 4 * 1024 * 1024;

/** How long a provider's model list is kept, ms. */
const LIST_TTL_MS = 60_000;

/** The cache of providers' model lists (keyed by `provider \0 path and query`): a minute each, 16 MB in all (by their JSON's length). */
export function newModelListCache(): LRUCache<string, ModelList> {
  return new LRUCache({ ttl: LIST_TTL_MS, maxSize: 16 * 1024 * 1024, sizeCalculation: (v) => Math.max(1, JSON.stringify(v).length) });
}

/** The list `answer` kept to what `allows`, `first_id` / `last_id` recomputed. */
function filtered(answer: ModelList, allows: (model: string) => boolean): unknown {
  const data = answer.data.filter((m) => typeof m?.id === 'string' && allows(m.id));
  return { ...answer, data, first_id: (data[0]?.id as string | undefined) ?? null, last_id: (data.at(-1)?.id as string | undefined) ?? null };
}

/** The key of `x`'s list in the cache: the provider the request is routed to, and the path and query asked. */
const listKey = (x: Exchange) => `${x.log.upstream ?? ''}\0${x.pathAndQuery}`;

/**
 * Answers a signed-in user's model list from the cache, filtered by `allows`; false when it holds none for this
 * provider and query (then the request goes upstream and {@link relayModelList} keeps what comes back).
 */
export function answerModelListFromCache(x: Exchange, allows: (model: string) => boolean): boolean {
  if (modelIdOf(x.pathAndQuery) !== null) return false;
  const cached = x.deps.modelLists.get(listKey(x));
  if (!cached) return false;
  sendJson(x, filtered(cached, allows));
  return true;
}

/** The body of `x.answer`, whole and decompressed; null when it is larger than MAX_LIST_BYTES. */
async function readAnswer(x: Exchange): Promise<Buffer | null> {
  const raw = await readAtMost(x.answer!.body, MAX_LIST_BYTES);
  if (raw === null) return null;
  const enc = String(x.answer!.headers['content-encoding'] ?? '').toLowerCase();
  return enc === 'gzip' ? gunzipSync(raw) : enc === 'br' ? brotliDecompressSync(raw) : enc === 'deflate' ? inflateSync(raw) : raw;
}

/**
 * Relays the upstream's model list or model filtered by `allows` (the user's policy). Never throws: what went
 * wrong is the answer (502 / 404) and the exchange's log.
 */
export async function relayModelList(x: Exchange, allows: (model: string) => boolean): Promise<void> {
  const provider = x.log.upstream ?? 'the provider';
  let out: unknown;
  try {
    const raw = await readAnswer(x);
    if (raw === null) throw new UpstreamError('SY_UPSTREAM_UNREADABLE', 502, `${provider}'s model list is larger than ${MAX_LIST_BYTES} bytes; it is not passed on unfiltered`);
    const answer = JSON.parse(raw.toString('utf8')) as { data?: Array<{ id?: unknown }>; id?: unknown };
    const id = modelIdOf(x.pathAndQuery);
    if (id !== null) {
      if (typeof answer.id !== 'string' || !allows(answer.id)) throw new UnknownModelError(id);
      out = answer;
    } else {
      if (!Array.isArray(answer.data)) throw new UpstreamError('SY_UPSTREAM_UNREADABLE', 502, `${provider}'s model list has no data array; it is not passed on unfiltered`);
      const list = answer as ModelList;
      x.deps.modelLists.set(listKey(x), list);
      out = filtered(list, allows);
    }
  } catch (err) {
    const gatewayErr =
      err instanceof UnknownModelError || err instanceof UpstreamError
        ? err
        : new UpstreamError('SY_UPSTREAM_UNREADABLE', 502, `${provider}'s model list is not JSON (${(err as Error).message}); it is not passed on unfiltered`);
    x.log.outcome = err instanceof UnknownModelError ? 'refused' : 'upstream_failed';
    x.log.status = gatewayErr.status;
    if (!x.res.destroyed) sendError(x.res, gatewayErr, x.id);
    return;
  }
  sendJson(x, out);
}
