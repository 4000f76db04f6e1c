/**
 * Two small pieces of the request path as functions (fast: in `npm run mutate`): SSE event boundaries (the relay
 * forwards whole events only, so a cut stream never hands a client half an event) and the overload manager's
 * in-flight byte caps (a burst of large bodies is refused with 529 before it is read, a single large body is not).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { OverloadedError } from '../src/errors.js';
import { InflightBytes } from '../src/server/overload.js';
import { lastBoundary, SseFramer, sseErrorEvent } from '../src/stream/sse-frames.js';

const b = (s: string) => Buffer.from(s, 'latin1');

describe('SSE event boundaries', () => {
  test('the end of the last blank line, for each of the three line ends WHATWG allows; 0 without one', () => {
    assert.equal(lastBoundary(b('data: a\n\n')), 9);
    assert.equal(lastBoundary(b('data: a\r\rdata: b')), 9);
    assert.equal(lastBoundary(b('data: a\r\n\r\n')), 11);
    assert.equal(lastBoundary(b('data: a\n\ndata: b\n\ndata: c')), 18, 'the last of several');
    assert.equal(lastBoundary(b('\n\n')), 2, 'a boundary at the very start');
    assert.equal(lastBoundary(b('data: a\n')), 0, 'one line end is not a boundary');
    assert.equal(lastBoundary(b('data: a\r\n')), 0);
    assert.equal(lastBoundary(b('a\n\r\n')), 0, 'LF CR LF is not a blank line');
    assert.equal(lastBoundary(b('\r\n\n')), 3, 'CR LF LF ends with a blank line');
    assert.equal(lastBoundary(b('x\r\n\r\n')), 5);
    assert.equal(lastBoundary(b('\n\r\n')), 0);
    assert.equal(lastBoundary(b('')), 0);
    assert.equal(lastBoundary(b('\n')), 0);
    // Near misses of CR LF CR LF: each byte of it matters.
    assert.equal(lastBoundary(b('\r\n\r\n')), 4, 'CR LF CR LF at the very start');
    for (const miss of ['\rab\n', '\r\nx\n', '\rx\r\n', '\r\nx\r', 'x\nx\r\n']) assert.equal(lastBoundary(b(miss)), 0, JSON.stringify(miss));
  });

  test('a framer forwards whole events and holds the unfinished tail, in pieces of any size', () => {
    const stream = 'event: a\ndata: 1\n\nevent: b\r\ndata: 2\r\n\r\nevent: c\ndata: 3\n\n';
    for (const size of [1, 2, 5, 17, stream.length]) {
      const f = new SseFramer();
      let out = '';
      for (let i = 0; i < stream.length; i += size) {
        out += f.push(b(stream.slice(i, i + size))).toString('latin1');
        assert.ok(out === '' || /(\n\n|\r\n\r\n)$/.test(out), `only whole events go out (pieces of ${size})`);
      }
      assert.equal(out, stream);
      assert.equal(f.pending, 0);
    }
    const cut = new SseFramer();
    assert.equal(cut.push(b('data: 1\n\ndata: 2')).toString(), 'data: 1\n\n');
    assert.equal(cut.pending, 7, 'the bytes of the unfinished event');
    assert.equal(cut.push(b('')).length, 0);
    assert.equal(cut.pending, 7);
  });

  test("an error event in Anthropic's shape, with the request id when there is one", () => {
    assert.equal(sseErrorEvent('api_error', 'cut'), 'event: error\ndata: {"type":"error","error":{"type":"api_error","message":"cut"}}\n\n');
    assert.equal(sseErrorEvent('overloaded_error', 'later', 'sy_1'), 'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"later"},"request_id":"sy_1"}\n\n');
  });
});

describe('in-flight body bytes', () => {
  const caps = { total: 100, perClient: 60 };
  const refused = (fn: () => void, message: RegExp) => assert.throws(fn, (e: unknown) => e instanceof OverloadedError && e.status === 529 && message.test(e.message));

  test("a client's share and the total are capped; a first body larger than a cap is admitted alone", () => {
    const f = new InflightBytes();
    f.reserve('a', 60, caps);
    refused(() => f.reserve('a', 1, caps), /this client has 0 MB of request bodies in flight, its limit is 0 MB \(limits\.max_inflight_body_bytes_per_client\)/);
    f.reserve('b', 40, caps);
    assert.equal(f.total, 100);
    refused(() => f.reserve('c', 1, caps), /switchyard is holding 0 MB of request bodies, its limit is 0 MB \(limits\.max_inflight_body_bytes\)/);
    assert.equal(f.total, 100, 'nothing is reserved by a refusal');
    f.release('a', 60);
    f.reserve('c', 50, caps);
    assert.equal(f.total, 90);
    const alone = new InflightBytes();
    alone.reserve('big', 500, caps);
    assert.equal(alone.total, 500, 'one body over both caps is admitted when nothing else is held');
    refused(() => alone.reserve('big', 1, caps), /this client has/);
  });

  test('exactly the cap is admitted; a client that gave back part of its share keeps the rest; a release for a client holding nothing leaves it no share', () => {
    const f = new InflightBytes();
    f.reserve('a', 30, caps);
    f.reserve('a', 30, caps);
    assert.equal(f.total, 60, "a client's share may reach its cap exactly");
    f.release('a', 10);
    refused(() => f.reserve('a', 11, caps), /this client has/);
    f.reserve('a', 10, caps);
    const g = new InflightBytes();
    g.release('stranger', 5);
    g.reserve('stranger', 60, caps);
    assert.equal(g.total, 55, 'the total counts what was released');
    refused(() => g.reserve('stranger', 1, caps), /this client has 0 MB/);
  });

  test('the messages name the amounts in MB', () => {
    const mb = 1048576;
    const f = new InflightBytes();
    f.reserve('a', 30 * mb, { total: 100 * mb, perClient: 32 * mb });
    refused(() => f.reserve('a', 3 * mb, { total: 100 * mb, perClient: 32 * mb }), /has 30 MB of request bodies in flight, its limit is 32 MB/);
    refused(() => f.reserve('b', 80 * mb, { total: 100 * mb, perClient: 100 * mb }), /holding 30 MB of request bodies, its limit is 100 MB/);
  });

  test('a reservation grows as bytes arrive, never shrinks, and gives back all it holds once', () => {
    const f = new InflightBytes();
    const r = f.reservation('a', caps);
    r.growTo(10);
    r.growTo(25);
    r.growTo(5);
    assert.equal(f.total, 25);
    refused(() => r.growTo(61), /this client has/);
    assert.equal(f.total, 25, 'a refused growth holds nothing more');
    r.release();
    assert.equal(f.total, 0);
    r.release();
    assert.equal(f.total, 0, 'a second release gives back nothing');
    f.reserve('a', 60, caps);
    assert.equal(f.total, 60, "the client's share was given back whole");
  });

  test("releasing more than a client holds clears its share without touching another's", () => {
    const f = new InflightBytes();
    f.reserve('a', 10, caps);
    f.reserve('b', 20, caps);
    f.release('a', 15);
    f.reserve('a', 60, caps);
    refused(() => f.reserve('b', 41, caps), /this client has/);
    f.release('b', 0);
    assert.equal(f.total, 75);
  });
});
