/**
 * The request-body pool (src/body/pool.ts) over real sockets: a buffer comes back for reuse once its bytes
 * were written upstream, and never while an upstream socket still has them to write — an upstream that answers
 * before reading the request must not be sent another request's body from a reused buffer. Through the gateway,
 * bodies received in several reads come from the pool and reach the upstream intact, request after request.
 */
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { after, before, test } from 'node:test';
import type { ProviderConfig } from '../src/config.js';
import { BodyPool, bodyPool } from '../src/body/pool.js';
import { UpstreamClient } from '../src/upstream/client.js';
import { startFakeUpstream, type FakeUpstream } from './fake-upstream.js';
import { claudeCodeBody, startTestGateway } from './helpers.js';

const ANSWER = '{"id":"msg_1","type":"message","role":"assistant","content":[],"usage":{"input_tokens":1,"output_tokens":1}}';

/**
 * A raw HTTP/1.1 upstream. `reads`: it reads each whole body, then answers 200 with a complete JSON answer; else it
 * answers as soon as a request's headers are in and reads nothing more — an answer that starts streaming (chunked,
 * left open) before the request was read, as a misbehaving upstream or middlebox could.
 */
async function rawUpstream(reads: boolean): Promise<{ url: string; received: () => number; close(): Promise<void> }> {
  let received = 0;
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    let head = '';
    let bodyLeft = -1;
    const answer = () => socket.write(`HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: ${ANSWER.length}\r\n\r\n${ANSWER}`);
    socket.on('data', (chunk: Buffer) => {
      if (bodyLeft < 0) {
        head += chunk.toString('latin1');
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) return;
        bodyLeft = Number(/content-length: *(\d+)/i.exec(head)![1]);
        const rest = Buffer.byteLength(head, 'latin1') - end - 4;
        received += rest;
        bodyLeft -= rest;
        if (!reads) {
          socket.pause(); // reads nothing more: the gateway's write stays pending
          socket.write('HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n');
          return;
        }
      } else {
        received += chunk.length;
        bodyLeft -= chunk.length;
      }
      if (bodyLeft === 0) {
        answer();
        head = '';
        bodyLeft = -1;
      }
    });
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    received: () => received,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

const provider = (url: string) => ({ name: 'raw', type: 'anthropic', base_url: url, timeouts: { connect_ms: 2000, headers_ms: 5000, first_byte_ms: 5000, body_ms: 5000 } }) as ProviderConfig;

/** Sends `body` (a pooled buffer); resolves when the answer's headers are in, as the forward stage does. */
async function send(client: UpstreamClient, url: string, body: Buffer, stream: boolean) {
  const answer = await client.send(provider(url), {
    method: 'POST',
    pathAndQuery: '/v1/messages',
    headers: { 'content-type': 'application/json', 'content-length': String(body.length) },
    body,
    client: null,
    stream,
  });
  assert.equal(answer.statusCode, 200);
  return answer;
}

for (const stream of [false, true]) {
  const how = stream ? 'streaming call (iterable body)' : 'non-streaming call (Buffer body)';

  test(`a ${how}: the buffer is reused once the upstream read it, not while the upstream socket still has it to write`, async () => {
    const client = new UpstreamClient();
    const reading = await rawUpstream(true);
    const early = await rawUpstream(false);
    // 16 MiB: more than the kernel's socket buffers take in while the peer reads nothing.
    const size = 16 * 1024 * 1024;
    const pool = new BodyPool(size, 4 * size);
    try {
      const first = pool.take(size).fill(0x61);
      const answer = await send(client, reading.url, first, stream);
      assert.equal(reading.received(), size);
      pool.give(first); // where the exchange drops the body: the answer's headers are in
      for await (const _ of answer.body);
      assert.deepEqual(pool.stats, { reused: 0, made: 1, kept: 1, left: 0 });
      const second = pool.take(size);
      assert.equal(second.buffer, first.buffer, 'a buffer whose bytes were all written is handed out again');

      second.fill(0x62);
      const open = await send(client, early.url, second, stream);
      open.body.on('error', () => {}); // cut when the upstream closes below
      assert.ok(early.received() < size, `the early upstream read only ${early.received()} of ${size} bytes`);
      pool.give(second);
      assert.equal(pool.stats.left, 1, 'a buffer an upstream socket still writes is left to the garbage collector');
      const third = pool.take(size);
      assert.notEqual(third.buffer, second.buffer, 'a buffer still being written is not handed out again');
    } finally {
      await client.close();
      await reading.close();
      await early.close();
    }
  });
}

test('size classes, last-in first-out reuse, and the idle cap counted as buffers come and go', () => {
  const pool = new BodyPool(256 * 1024, 256 * 1024);
  assert.equal(pool.take(1000).buffer.byteLength, 64 * 1024, 'the smallest class is 64 KiB');
  const a = pool.take(100_000);
  const b = pool.take(100_000);
  assert.equal(a.length, 100_000);
  assert.equal(a.buffer.byteLength, 128 * 1024, 'size classes are powers of two');
  pool.give(a);
  pool.give(b);
  assert.deepEqual(pool.stats, { reused: 0, made: 3, kept: 2, left: 0 });
  const big = pool.take(300_000);
  assert.equal(big.buffer.byteLength, 300_000, 'over the largest class: a buffer of its own');
  pool.give(big);
  pool.give(Buffer.alloc(10));
  assert.deepEqual(pool.stats, { reused: 0, made: 3, kept: 2, left: 0 }, 'buffers the pool did not make are ignored');
  const c = pool.take(200_000);
  pool.give(c);
  assert.equal(pool.stats.left, 1, 'over the idle cap (256 KiB held): left to the garbage collector');
  assert.equal(pool.take(70_000).buffer, b.buffer, 'the last buffer given back is the first handed out');
  assert.equal(pool.take(70_000).buffer, a.buffer, 'then the one before it');
  assert.equal(pool.stats.reused, 2);
  // Both handed out again: the pool holds nothing idle, so two 128 KiB buffers fit under the cap once more.
  pool.give(a);
  pool.give(b);
  assert.deepEqual(pool.stats, { reused: 2, made: 4, kept: 4, left: 1 });
});

let fake: FakeUpstream;
before(async () => {
  fake = await startFakeUpstream();
});
after(() => fake.close());

test('through the gateway: bodies received in several reads come from the pool and reach the upstream intact', async () => {
  const { gw } = await startTestGateway({ upstream: fake.url, extraConfig: 'ledger: off\n' });
  try {
    const before = { ...bodyPool.stats };
    for (let i = 0; i < 6; i++) {
      const body = JSON.stringify({ ...claudeCodeBody({ targetBytes: 150_000 + i * 1000 }), metadata: { user_id: `user-${i}` } });
      const r = await fetch(`${gw.url}/v1/messages`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'anthropic-version': '2023-06-01', 'x-api-key': 'sk-test' },
        body,
      });
      assert.equal(r.status, 200, await r.text());
      assert.equal(fake.received.at(-1)!.body.toString(), body, `request ${i} reached the upstream byte for byte`);
    }
    assert.ok(bodyPool.stats.reused - before.reused >= 4, `bodies were received into reused buffers (${JSON.stringify(bodyPool.stats)})`);
  } finally {
    await gw.close();
  }
});
