/**
 * Stage "relay" (DESIGN §3 step 6): the upstream's status and headers, then its body as it arrives (SSE
 * events, pings and comment lines included), with backpressure. An SSE stream is forwarded up to its last
 * complete event; when the upstream fails mid-stream, closes mid-event or before `message_stop`, or the gateway shuts down, the
 * client gets an Anthropic `event: error` (`api_error` / `overloaded_error`) after the last whole event
 * instead of a silent cut, so SDKs can tell an interruption from a finished answer. Usage is tapped on the
 * way. Never throws: the outcome goes into the exchange's log.
 */
import type { ServerResponse } from 'node:http';
import { clientResponseHeaders } from '../../upstream/headers.js';
import { SseFramer, sseErrorEvent } from '../../stream/sse-frames.js';
import { sseToEventStream } from '../../upstream/providers/bedrock/stream.js';
import { UsageTap } from '../../usage/tap.js';
import { relayModelList } from './model-list.js';
import { round } from './record.js';
import type { OpenRelay, Stage } from './exchange.js';

/** Waits until `res` can take more bytes, or is gone (at once when it is gone already: `close` will not fire again). */
export function drained(res: ServerResponse): Promise<void> {
  if (res.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

export const relay: Stage = async (x) => {
  const upstream = x.answer!;
  const { res } = x;
  if (x.modelFilter && upstream.statusCode === 200) return relayModelList(x, x.modelFilter);
  const tap = (x.tap = new UsageTap(String(upstream.headers['content-type'] ?? ''), String(upstream.headers['content-encoding'] ?? '')));
  const { headers, sse } = clientResponseHeaders(upstream.headers);
  // A client that called in Bedrock's format gets Bedrock's event stream: each whole SSE event re-encoded.
  const encode = sse && x.ingress?.dialect === 'bedrock' && !upstream.headers['content-encoding'] ? sseToEventStream : null;
  if (encode) headers['content-type'] = 'application/vnd.amazon.eventstream';
  headers['x-switchyard-request-id'] = x.id;
  // A Vary the gateway set (CORS: Origin) is kept beside the upstream's own, not replaced by it.
  const vary = res.getHeader('vary');
  if (vary !== undefined && headers.vary !== undefined) headers.vary = `${String(headers.vary)}, ${String(vary)}`;
  // Every answer carries a request-id (the upstream's, else the gateway's): Claude Code reports it with errors.
  if (!headers['request-id']) headers['request-id'] = x.id;
  res.writeHead(upstream.statusCode, headers);
  x.log.status = upstream.statusCode;
  if (sse) res.flushHeaders(); // the client sees the stream open before the first event
  // Compressed SSE cannot be framed (nor an event appended): it passes through as bytes.
  const framer = sse && !upstream.headers['content-encoding'] ? new SseFramer() : null;
  let terminated: string | null = null;
  let endedAfterStop = false;
  const endWithError = (type: 'overloaded_error' | 'api_error', message: string) => {
    if (framer && !res.destroyed && !res.writableEnded) {
      const event = sseErrorEvent(type, message, x.id);
      res.end(encode ? encode(Buffer.from(event)) : event);
    } else if (!res.destroyed) res.destroy();
  };
  const handle: OpenRelay = {
    terminate(message) {
      if (terminated || endedAfterStop) return;
      if (tap.completed) {
        // message_stop already went out: the answer is whole, only the upstream's end is missing.
        endedAfterStop = true;
        res.end();
      } else {
        terminated = message;
        endWithError('overloaded_error', message);
      }
      upstream.body.destroy();
    },
  };
  const set = x.deps.openRelays;
  set.add(handle);
  const outcome = (o: 'ok' | 'client_aborted' | 'upstream_failed', error?: string) => {
    x.log.outcome = o;
    if (error) x.log.error = error;
  };
  try {
    for await (const chunk of upstream.body as AsyncIterable<Buffer>) {
      x.log.ttfb_ms ??= round(performance.now() - x.started);
      x.touch();
      tap.write(chunk);
      let out = framer ? framer.push(chunk) : chunk;
      if (encode && out.length) out = encode(out);
      if (out.length && !res.write(out)) await drained(res);
      if (res.destroyed) break;
    }
    if (endedAfterStop) return outcome('ok');
    if (terminated) return outcome('client_aborted', terminated);
    if (res.destroyed) return outcome('client_aborted', 'client disconnected');
    if (framer?.pending) {
      const message = `the upstream closed the stream in the middle of an event (${framer.pending} bytes of it were dropped)`;
      endWithError('api_error', message);
      return outcome('upstream_failed', message);
    }
    if (framer && x.endpoint === 'messages' && upstream.statusCode < 400 && !tap.completed && !tap.streamError) {
      // Ended on an event boundary, but the answer is not whole: an SDK must not take it for a finished one.
      const message = 'the upstream ended the stream before message_stop';
      endWithError('api_error', message);
      return outcome('upstream_failed', message);
    }
    res.end();
    outcome('ok');
  } catch (err) {
    if (endedAfterStop) return outcome('ok');
    if (terminated) return outcome('client_aborted', terminated);
    if (x.clientGone || res.destroyed) {
      if (!res.destroyed) res.destroy();
      return outcome('client_aborted', 'client disconnected');
    }
    const message = `the upstream stream failed: ${(err as Error).message}`;
    endWithError('api_error', message);
    outcome('upstream_failed', message);
  } finally {
    set.delete(handle);
  }
};
