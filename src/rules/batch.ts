/**
 * A Message Batch create body as the rules see it: a list of items, each `custom_id` and the Messages request
 * (`params`) it stands for (https://platform.claude.com/docs/en/api/messages/batches/create). The gateway's batch
 * create (server/resources/batch-create.ts), `dry-run` on a batch body and rule tests with `batch_item:` read items
 * the same way, so an item decided offline is decided as the gateway decides it: as a Messages request of its
 * params, with the create call's path, headers and client.
 */
import { InvalidRequestError } from '../errors.js';

/** One item of a batch. */
export interface BatchItem {
  custom_id: string;
  params: Record<string, unknown>;
}

/** Most items in one batch (the API's own limit). */
export const MAX_BATCH_ITEMS = 100_000;

/**
 * The path an item is decided with: the create call's, so a rule can tell batch items from interactive requests
 * (`when: "path = '/v1/messages/batches'"`); everything else about the item is a Messages request's.
 */
export const BATCH_ITEM_PATH = '/v1/messages/batches';

/** Whether a request body is a batch create body (a `requests` array). */
export function isBatchBody(body: unknown): boolean {
  return body !== null && typeof body === 'object' && Array.isArray((body as { requests?: unknown }).requests);
}

/**
 * The items of a batch create body, checked: a non-empty `requests` array (at most {@link MAX_BATCH_ITEMS}) of
 * objects with a unique non-empty `custom_id` and a `params` object.
 * @throws InvalidRequestError naming the item (its index and custom_id) and what is wrong.
 */
export function batchItems(body: unknown): BatchItem[] {
  const requests = (body as { requests?: unknown } | null)?.requests;
  if (!Array.isArray(requests) || requests.length === 0) throw new InvalidRequestError('requests: a Message Batch needs a non-empty array of {custom_id, params}');
  if (requests.length > MAX_BATCH_ITEMS) throw new InvalidRequestError(`requests: a Message Batch holds at most ${MAX_BATCH_ITEMS} requests; this one has ${requests.length}`);
  const seen = new Set<string>();
  requests.forEach((r, i) => {
    const item = r as { custom_id?: unknown; params?: unknown } | null;
    if (typeof item?.custom_id !== 'string' || !item.custom_id) throw new InvalidRequestError(`requests[${i}].custom_id: a non-empty string is required`);
    if (item.params === null || typeof item.params !== 'object' || Array.isArray(item.params))
      throw new InvalidRequestError(`requests[${i}].params (custom_id "${item.custom_id}"): a Messages request object is required`);
    if (seen.has(item.custom_id)) throw new InvalidRequestError(`requests[${i}].custom_id "${item.custom_id}" is used twice; each item needs its own`);
    seen.add(item.custom_id);
  });
  return requests as BatchItem[];
}

/**
 * The params of the item `customId` of a batch body.
 * @throws InvalidRequestError when the body is not a batch or has no such item (the message lists the first ids).
 */
export function batchItemParams(body: unknown, customId: string): Record<string, unknown> {
  const items = batchItems(body);
  const item = items.find((i) => i.custom_id === customId);
  if (!item)
    throw new InvalidRequestError(
      `the batch has no item "${customId}" (its items: ${items
        .slice(0, 5)
        .map((i) => `"${i.custom_id}"`)
        .join(', ')}${items.length > 5 ? ', …' : ''})`,
    );
  return item.params;
}
