/**
 * The upstream client (src/upstream/client.ts) over loopback: an answer that streams for minutes must not keep its
 * request body (76 KB and up for Claude Code) in memory — 500 open streams would each hold one — and a client that
 * goes away aborts the call in flight.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import v8 from 'node:v8';
import vm from 'node:vm';
import type { ProviderConfig } from '../src/config.js';
import { type ClientPresence, UpstreamClient } from '../src/upstream/client.js';
import { startFakeUpstream, type FakeUpstream } from './fake-upstream.js';
import { claudeCodeBody, until } from './helpers.js';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

let fake: FakeUpstream;
let client: UpstreamClient;
let provider: ProviderConfig;

before(async () => {
  fake = await startFakeUpstream();
  client = new UpstreamClient();
  provider = { name: 'anthropic', type: 'anthropic', base_url: fake.url, timeouts: { connect_ms: 2000, headers_ms: 5000, first_byte_ms: 5000, body_ms: 5000 } } as ProviderConfig;
});
after(async () => {
  await client.close();
  await fake.close();
});

const call = (body: Buffer, headers: Record<string, string>, presence: ClientPresence | null = null) =>
  client.send(provider, {
    method: 'POST',
    pathAndQuery: '/v1/messages',
    headers: { 'content-type': 'application/json', 'content-length': String(body.length), ...headers },
    body,
    client: presence,
    stream: true,
  });

test('an open stream holds no reference to its request body', async () => {
  let body: Buffer | null = Buffer.from(JSON.stringify(claudeCodeBody({ stream: true })));
  const ref = new WeakRef(body);
  const answer = await call(body, { 'x-fake': 'gated-sse' });
  body = null;
  const first = await new Promise<Buffer>((resolve) => answer.body.once('data', resolve));
  assert.match(first.toString(), /event: message_start/);
  await new Promise((resolve) => setImmediate(resolve));
  gc();
  await new Promise((resolve) => setImmediate(resolve));
  gc();
  assert.equal(ref.deref(), undefined, 'the request body was freed while its answer is still open');
  fake.release();
  for await (const _ of answer.body);
});

test('a client that goes away aborts the call: before the answer with its reason, during it by destroying the body', async () => {
  let gone: Error | null = null;
  const listeners = new Set<(reason: Error) => void>();
  const presence: ClientPresence = {
    get goneReason() {
      return gone;
    },
    onGone(fn) {
      listeners.add(fn);
      return () => listeners.delete(fn);
    },
  };
  const leave = (why: string) => {
    gone = new Error(why);
    for (const fn of [...listeners]) fn(gone);
  };
  const body = Buffer.from('{"model":"claude-sonnet-4-6","max_tokens":10,"messages":[],"stream":true}');
  const seen = fake.received.length;
  const waiting = call(body, { 'x-fake': 'hang' }, presence);
  await until(() => fake.received.length > seen, 5000, 'the upstream to see the call');
  leave('client disconnected');
  await assert.rejects(waiting, /client disconnected/);
  await until(() => fake.received.at(-1)!.closedEarlyAt !== null, 5000, 'the upstream to see the connection close');
  assert.equal(listeners.size, 0, 'no listener is left on the client');

  gone = null;
  const streaming = await call(body, { 'x-fake': 'gated-sse' }, presence);
  await new Promise((resolve) => streaming.body.once('data', resolve));
  leave('client disconnected mid-stream');
  await assert.rejects(
    (async () => {
      for await (const _ of streaming.body);
    })(),
    /mid-stream/,
  );
  assert.equal(listeners.size, 0);
  fake.release();
});
