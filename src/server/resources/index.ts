/**
 * The rest of the Anthropic API through the gateway: Message Batches, Files, Skills, and (with `passthrough: true`)
 * any other `/v1/...` path (paths.ts lists them). Each call runs the pipeline's outer stages — `record` (log line,
 * usage record of kind `resource` or `other`, errors in Anthropic's shape), `concurrency`, `authenticate` — then
 * the `resource` stage here:
 *
 * - **Which upstream.** A call about an id goes to the provider and key that created it (upstream/affinity.ts), so a
 *   file uploaded with key A is never asked for with key B. An id the gateway never saw created (made before the
 *   gateway was in the path) is looked for with each key of the provider in turn, for reads and deletes; the key
 *   that finds it is remembered. A collection call (create, list) goes to the resource provider (the default
 *   provider; it must be `type: anthropic`) with the key the pool gives this client (sticky per client, so a
 *   client's lists show what it created), or the key an `x-switchyard-key` header names (a fingerprint as
 *   `/admin/providers` shows it, or the key's index).
 * - **Bodies stream.** An upload goes upstream as it arrives, never held whole: at most a window of
 *   `UPLOAD_WINDOW_BYTES` (call.ts) is counted against the in-flight byte caps; `limits.max_file_bytes` bounds it (413).
 *   Downloads and results stream back with backpressure.
 * - **What is remembered.** The answer of a create call (JSON) is read to learn the new id. A batch's results are
 *   recorded item by item as they pass to the client (usage/batch-items.ts); batch create runs every item through
 *   the rules first (batch-create.ts).
 */
import type { Context } from 'hono';
import type { HttpBindings } from '@hono/node-server';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import type { Hono } from 'hono';
import type { ProviderConfig } from '../../config.js';
import { NotFoundError, ResourceUnreachableError } from '../../errors.js';
import type { ResourceKind, ResourceOwner } from '../../upstream/affinity.js';
import type { UpstreamResponse } from '../../upstream/client.js';
import { startTally } from '../../usage/batch-items.js';
import { authenticate } from '../pipeline/authenticate.js';
import { concurrency } from '../pipeline/concurrency.js';
import { compose, Exchange, type ProxyDeps, type Stage } from '../pipeline/exchange.js';
import { record, sendJson } from '../pipeline/record.js';
import { createBatch } from './batch-create.js';
import { chooseKey, ownerOf, relay, relayCreated, relayJson, resourceProvider, send, streamedBody } from './call.js';
import { type ResourceCall, resourceCall } from './paths.js';

/** Paths never passed through: Claude Code's OTLP telemetry is the gateway's to answer (login-routes.ts), not Anthropic's. */
const NEVER_PASSED = new Set(['/v1/metrics', '/v1/logs', '/v1/traces']);

const pipeline = compose([record, concurrency, authenticate, (x) => resource(x, async () => {})]);

/** Registers the resource routes on `app` (after every other `/v1` route: the catch-all comes last). */
export function resourceRoutes(app: Hono<{ Bindings: HttpBindings }>, deps: ProxyDeps): void {
  const handle = async (c: Context<{ Bindings: HttpBindings }>) => {
    await pipeline(new Exchange(c.env.incoming, c.env.outgoing, 'resource', deps));
    return RESPONSE_ALREADY_SENT;
  };
  // The API's methods only: an OPTIONS preflight stays CORS's (404 when CORS is off), never a call upstream.
  for (const path of ['/v1/messages/batches', '/v1/messages/batches/*', '/v1/files', '/v1/files/*', '/v1/skills', '/v1/skills/*', '/v1/*']) app.on(['GET', 'POST', 'DELETE'], path, handle);
}

/** The `resource` stage (see the module comment). */
const resource: Stage = async (x) => {
  x.kind = 'resource';
  const call = resourceCall(x.log.method, x.log.path);
  if (call.family === 'other') return x.deps.dryRun ? dryRun(x, call, null) : passthrough(x);
  if (call.family === 'batch' && call.action === 'create') return createBatch(x);
  const owner = call.id ? await x.deps.affinity.lookup(call.id) : null;
  if (x.deps.dryRun) return dryRun(x, call, owner);
  if (owner) return ownedCall(x, call, owner);
  const provider = resourceProvider(x, call.family);
  if (call.id && (x.log.method === 'GET' || x.log.method === 'DELETE')) return probe(x, call, provider);
  const key = await chooseKey(x, provider, null);
  const answer = await send(x, provider, key, streamedBody(x, call.family === 'file' || call.family === 'skill' ? x.config.limits.max_file_bytes : x.config.limits.max_body_bytes));
  if (call.id === null && x.log.method === 'POST') return relayCreated(x, answer, call.family, provider, key);
  if (call.family === 'batch') return relayJson(x, answer, provider);
  await relay(x, answer);
};

/** A call about an id the gateway saw created: to its provider and key, whatever the pool would pick. */
async function ownedCall(x: Exchange, call: ResourceCall, owner: ResourceOwner): Promise<void> {
  const what = `${call.family} "${owner.id}"`;
  const provider = x.config.providers[owner.provider];
  if (!provider) throw new ResourceUnreachableError(`${what} was created at provider "${owner.provider}", which is no longer in the config; only that provider can reach it`);
  const key = await chooseKey(x, provider, owner.key === null ? null : { key: owner.key, what });
  const body = x.log.method === 'GET' || x.log.method === 'DELETE' ? null : streamedBody(x, x.config.limits.max_file_bytes);
  const answer = await send(x, provider, key, body);
  if (call.family === 'batch' && call.action === 'results' && answer.statusCode === 200) return relayResults(x, answer, owner);
  if (call.family === 'batch') return relayJson(x, answer, provider);
  await relay(x, answer);
}

/**
 * `serve --dry-run`: what the call would do — its endpoint, the provider and key it would go with (the owner's for
 * an id the gateway knows), nothing sent upstream. A request body is drained unread.
 */
async function dryRun(x: Exchange, call: ResourceCall, owner: ResourceOwner | null): Promise<void> {
  x.req.resume();
  const provider = owner ? x.config.providers[owner.provider] : call.family === 'other' ? passthroughProvider(x) : resourceProvider(x, call.family);
  const key = owner ? owner.key : ((await chooseKey(x, provider!, null))?.fingerprint ?? null);
  const how = owner ? 'affinity: the provider and key that created it' : call.id ? 'not seen created: each key of the provider is asked in turn' : 'the pool, sticky per client';
  x.res.setHeader('x-switchyard-dry-run', 'true');
  sendJson(x, { type: 'resource_dry_run', ...call, provider: provider?.name ?? owner?.provider ?? null, key, chosen_by: how });
}

/**
 * A read or delete of an id the gateway never saw created: each key of the provider in turn until one does not
 * answer 404; that key is remembered as the id's owner (with this client as its creator).
 */
async function probe(x: Exchange, call: ResourceCall, provider: ProviderConfig): Promise<void> {
  const usable = x.deps.upstreams.pools.for(provider).keys.filter((k) => !k.failed);
  const keys = usable.length > 1 ? usable : [await chooseKey(x, provider, null)];
  for (let i = 0; i < keys.length; i++) {
    const answer = await send(x, provider, keys[i]!, null);
    if (answer.statusCode === 404 && i < keys.length - 1) {
      answer.body.resume(); // read away: the next key is asked
      continue;
    }
    if (answer.statusCode < 300 && keys[i]) await x.deps.affinity.remember(ownerOf(x, call.id!, call.family as ResourceKind, provider, keys[i]!));
    if (call.family === 'batch' && call.action !== 'results') return relayJson(x, answer, provider);
    await relay(x, answer);
    return;
  }
}

/** Relays a batch's results, recording each item as it passes (usage/batch-items.ts). */
async function relayResults(x: Exchange, answer: UpstreamResponse, owner: ResourceOwner): Promise<void> {
  const compressed = String(answer.headers['content-encoding'] ?? '') !== '';
  const tally = compressed ? null : await startTally(x.deps, owner, x.id);
  if (!tally) {
    await relay(x, answer);
    return;
  }
  let read = false;
  try {
    read = await relay(x, answer, (chunk) => tally.push(chunk));
  } finally {
    await tally.end(read);
  }
}

/**
 * The provider a `/v1/...` call switchyard has no route for goes to: the default provider, when it is `type:
 * anthropic` with `passthrough: true` and the path is not one of {@link NEVER_PASSED}. The usage record is of kind
 * `other`.
 * @throws NotFoundError (the 404 that names what is served) otherwise.
 */
function passthroughProvider(x: Exchange): ProviderConfig {
  x.kind = 'other';
  const provider = x.config.providers[x.config.default_provider]!;
  if (!provider.passthrough || provider.type !== 'anthropic' || NEVER_PASSED.has(x.log.path)) throw new NotFoundError(x.log.method, x.log.path);
  return provider;
}

/**
 * A `/v1/...` call switchyard has no route for: forwarded to the default provider when it has `passthrough: true`
 * (usage record of kind `other`), else the 404 that names what is served.
 */
async function passthrough(x: Exchange): Promise<void> {
  const provider = passthroughProvider(x);
  const key = await chooseKey(x, provider, null);
  const method = x.log.method;
  if (method !== 'GET' && method !== 'POST' && method !== 'DELETE') throw new NotFoundError(method, x.log.path);
  await relay(x, await send(x, provider, key, streamedBody(x, x.config.limits.max_body_bytes)));
}
