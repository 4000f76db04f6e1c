/**
 * Stage "receive" (DESIGN §3 step 1): the body is read once, within `limits.max_body_bytes` (413 early when
 * the declared size is over), after reserving its size with the overload manager (529 before a byte is
 * read when the gateway or this client holds too much), then checked (JSON grammar, nesting depth) and
 * indexed in one pass; its members are decoded only when a rule or an action reads them (json-scan.ts).
 * The reservation is given back when the body is dropped: by the forward stage once the upstream answered,
 * else by the record stage when the request ends.
 */
import type { IncomingMessage } from 'node:http';
import { RequestTooLargeError } from '../../errors.js';
import { bodyPool } from '../../body/pool.js';
import { messagesBody } from '../ingress.js';
import { lazyBody, scanJsonObject } from '../../body/json-scan.js';
import type { Stage } from './exchange.js';

/**
 * Reads the whole request body, refusing early when it exceeds `limit` bytes. `onSize` sees the bytes read
 * so far after each chunk and may throw to stop reading (the overload manager's reservation). A body that came
 * in several reads is joined into a buffer from `alloc` (e.g. the body pool's `take`).
 * @throws RequestTooLargeError (413) when over the limit; what `onSize` throws.
 */
export function readBody(req: IncomingMessage, limit: number, onSize?: (bytesSoFar: number) => void, alloc: (size: number) => Buffer = Buffer.allocUnsafe): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) return Promise.reject(new RequestTooLargeError(limit));
  return new Promise((resolve, reject) => {
    let chunks: Buffer[] = [];
    let size = 0;
    // Listeners are removed when done: `req` lives as long as the response, and must not keep the body.
    const done = (err: Error | null) => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', done);
      const got = chunks;
      chunks = [];
      if (err) {
        req.resume();
        reject(err);
      } else if (got.length === 1) resolve(got[0]!);
      else {
        const joined = alloc(size);
        let at = 0;
        for (const c of got) at += c.copy(joined, at);
        resolve(joined);
      }
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) return done(new RequestTooLargeError(limit));
      try {
        onSize?.(size);
      } catch (err) {
        return done(err as Error);
      }
      chunks.push(chunk);
    };
    const onEnd = () => done(null);
    req.on('data', onData);
    req.once('end', onEnd);
    req.once('error', done);
  });
}

export const receive: Stage = async (x, next) => {
  if (x.endpoint === 'models') return next();
  const { limits } = x.config;
  const caps = { total: limits.max_inflight_body_bytes, perClient: limits.max_inflight_body_bytes_per_client };
  const reservation = x.deps.inflightBytes.reservation(x.clientId, caps);
  reservation.growTo(Math.min(Number(x.req.headers['content-length']) || 0, limits.max_body_bytes));
  x.holdReservation(reservation.release);
  x.raw = await readBody(x.req, limits.max_body_bytes, reservation.growTo, (size) => x.receivedInto(bodyPool.take(size)));
  // A Bedrock or Vertex client's body becomes the Messages body it stands for (ingress.ts).
  if (x.ingress) x.raw = messagesBody(x.ingress, x.raw, x.req.headers);
  // Checked and indexed in one pass; members are decoded only when something reads them.
  x.body = lazyBody(scanJsonObject(x.raw, limits.max_json_depth, x.snapshot.rules.bodyKeys));
  // The reservation is given back with the body: by forward once the upstream answered, else by record.
  return next();
};
