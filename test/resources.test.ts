/**
 * Message Batches, Files, Skills and passthrough through the gateway, with the real `@anthropic-ai/sdk` as the
 * client and a 2-key pool in front of a fake Anthropic API that keeps resources per key (fake-anthropic-api.ts):
 * every later call about a batch, file or skill goes with the key that created it; batch items go through the rules
 * and their results are recorded at the batch rate; a 100 MB upload streams through; a Messages request that
 * references a file reaches the key that holds it.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import Anthropic, { toFile } from '@anthropic-ai/sdk';
import { Readable } from 'node:stream';
import { request } from 'undici';
import { keyFingerprint } from '../src/upstream/pool.js';
import type { UsageRecord } from '../src/usage/record.js';
import { startFakeAnthropicApi, type FakeAnthropicApi } from './fake-anthropic-api.js';
import { startTestGateway, writeConfig } from './helpers.js';

const sha = (s: string) => createHash('sha256').update(s).digest('hex');
const fixture = (name: string) => JSON.parse(readFileSync(path.join(import.meta.dirname, 'fixtures/resources', name), 'utf8')) as Record<string, unknown>;
const KEY_A = 'sk-upstream-key-a';
const KEY_B = 'sk-upstream-key-b';

const RULES = {
  '10-deny.yaml': `version: 1
rules:
  - id: no-opus-in-batches
    match:
      model: "claude-opus-4-1"
    actions:
      - deny: { message: "opus 4.1 is not for bulk work" }
`,
  '50-default.yaml': `version: 1
rules:
  - id: tag-team
    actions:
      - tag_billing: { team: "research" }
  - id: default
    actions:
      - route_to: { provider: anthropic }
`,
};

function providers(url: string, extra = ''): string {
  return `  anthropic:\n    type: anthropic\n    base_url: ${url}\n    keys: ["${KEY_A}", "${KEY_B}"]\n    timeouts: { connect_ms: 2000, headers_ms: 20000, first_byte_ms: 5000, body_ms: 20000 }\n    retries: { max: 0 }\n    breaker: { failures: 1000 }\n${extra}`;
}

const clients = `clients:\n  alice: { key_sha256: "${sha('sk-alice')}" }\n  bob: { key_sha256: "${sha('sk-bob')}" }\n`;

describe('the rest of the Anthropic API through a 2-key pool', () => {
  let api: FakeAnthropicApi;
  let gw: Awaited<ReturnType<typeof startTestGateway>>['gw'];
  let alice: Anthropic;
  let bob: Anthropic;
  const records = async (): Promise<UsageRecord[]> => {
    await gw.deps.ledger!.flush();
    return gw.deps.ledger!.store.query('2000-01-01T00:00:00.000Z', '2100-01-01T00:00:00.000Z');
  };

  before(async () => {
    api = await startFakeAnthropicApi();
    ({ gw } = await startTestGateway({
      upstream: api.url,
      rules: RULES,
      providers: providers(api.url, '    passthrough: true\n'),
      extraConfig: `${clients}ledger: { sqlite: ./data/usage.db, flush_interval_ms: 50 }\nlimits: { max_inflight_body_bytes_per_client: 300000000, max_inflight_body_bytes: 300000000 }\n`,
    }));
    alice = new Anthropic({ apiKey: 'sk-alice', baseURL: gw.url, maxRetries: 0 });
    bob = new Anthropic({ apiKey: 'sk-bob', baseURL: gw.url, maxRetries: 0 });
  });
  after(async () => {
    await gw?.close();
    await api?.close();
  });

  test('a 1,000-item batch is created, retrieved, listed, cancelled and read back through the key that created it; its ledger holds 1,000 items at the batch price', async () => {
    // Bob first takes a key, so that Alice's sticky key is the other one: her calls must all carry it.
    await bob.messages.batches.list();
    const requests = Array.from({ length: 1000 }, (_, i) => ({
      custom_id: `item-${i}`,
      params: { model: 'claude-sonnet-4-6', max_tokens: 64, messages: [{ role: 'user' as const, content: `question ${i}` }] },
    }));
    const batch = await alice.messages.batches.create({ requests });
    assert.match(batch.id, /^msgbatch_/);
    const created = api.batches.get(batch.id)!;
    const owner = created.key;
    assert.ok(owner === KEY_A || owner === KEY_B);
    assert.equal(created.requests.length, 1000);
    assert.deepEqual(created.requests[7], requests[7], 'an item no rule changed goes as the client wrote it');

    const before = api.calls.length;
    const got = await alice.messages.batches.retrieve(batch.id);
    assert.equal(got.processing_status, 'in_progress');
    // The fake answers in the API reference's shape (fixtures/resources/SOURCES.md), so the gateway is tested against it.
    assert.deepEqual(Object.keys(got).sort(), Object.keys(fixture('message-batch.json')).sort());
    const listed = await alice.messages.batches.list();
    assert.ok(
      listed.data.some((b) => b.id === batch.id),
      "Alice's list (her key) shows her batch",
    );
    // Lists are per key: Bob's shows his key's batches; x-switchyard-key names another key (by index or fingerprint).
    assert.ok(!(await bob.messages.batches.list()).data.some((b) => b.id === batch.id));
    const index = owner === KEY_A ? '0' : '1';
    for (const named of [index, keyFingerprint(owner).slice(1), keyFingerprint(owner).split('#')[1]!]) {
      const other = await bob.messages.batches.list({}, { headers: { 'x-switchyard-key': named } });
      assert.ok(
        other.data.some((b) => b.id === batch.id),
        `x-switchyard-key: ${named}`,
      );
    }
    const wrong = await request(`${gw.url}/v1/messages/batches`, { headers: { 'x-api-key': 'sk-bob', 'x-switchyard-key': '7' } });
    assert.equal(wrong.statusCode, 404);
    assert.match(((await wrong.body.json()) as { error: { message: string } }).error.message, /x-switchyard-key "7" names no key of provider "anthropic"/);
    // Bob's sticky key is the other one: a retrieve of Alice's batch still goes with Alice's key (affinity, not stickiness).
    const viaBob = await bob.messages.batches.retrieve(batch.id);
    assert.equal(viaBob.id, batch.id);
    await fetch(`${api.url}/_fake/end/${batch.id}`, { method: 'POST' });
    const ended = await alice.messages.batches.retrieve(batch.id);
    assert.equal(ended.processing_status, 'ended');
    assert.ok(ended.results_url?.startsWith(gw.url), `results_url points at the gateway, not the upstream: ${ended.results_url}`);
    let n = 0;
    for await (const item of await alice.messages.batches.results(batch.id)) {
      assert.equal(item.result.type, 'succeeded');
      n++;
    }
    assert.equal(n, 1000);
    const calls = api.calls.slice(before).filter((c) => c.path.startsWith(`/v1/messages/batches/${batch.id}`));
    assert.ok(calls.length >= 5);
    for (const c of calls) assert.equal(c.key, owner, `${c.method} ${c.path} went with the creating key`);
    // The SDK asks for gzip; batch answers are asked for uncompressed, so that results_url can be rewritten and results read.
    for (const c of calls) assert.equal(c.encoding, 'identity', `${c.method} ${c.path}`);

    const recs = (await records()).filter((r) => r.kind === 'batch' && r.request_id.startsWith(`${batch.id}:`));
    assert.equal(recs.length, 1000, 'one record per item');
    const price = gw.deps.prices.priceOf('claude-sonnet-4-6')!;
    const full = (api.usage.input_tokens * price.input + api.usage.output_tokens * price.output) / 1e6;
    for (const r of recs.slice(0, 5)) {
      assert.equal(r.client_id, 'alice', 'attributed to the creator');
      assert.equal(r.tags.team, 'research', "the create call's tags");
      assert.equal(r.key_fingerprint, keyFingerprint(owner));
      assert.equal(r.input_tokens, 11);
      assert.equal(r.output_tokens, 36);
      assert.ok(Math.abs(r.cost_usd! - full * 0.5) < 1e-9, `half the interactive price: ${r.cost_usd} vs ${full}`);
    }
    // The decision of an item is kept under its usage record's id (GET /admin/requests/{batch}:{custom_id}).
    const trace = await request(`${gw.url}/admin/requests/${encodeURIComponent(`${batch.id}:item-3`)}`);
    assert.equal(trace.statusCode, 200);
    const t = (await trace.body.json()) as { route: { provider: string }; tags: Record<string, string>; rules: Array<{ id: string; matched: boolean }> };
    assert.equal(t.route.provider, 'anthropic');
    assert.equal(t.tags.team, 'research');
    assert.deepEqual(
      t.rules.filter((r) => r.matched).map((r) => r.id),
      ['tag-team', 'default'],
    );
    // The dashboard shows batch spend apart from interactive spend.
    const since = new Date(Date.now() - 3_600_000).toISOString();
    const ov = await request(`${gw.url}/admin/ui/api/overview?since=${encodeURIComponent(since)}`);
    const byKind = ((await ov.body.json()) as { by_kind: Array<{ group: { kind: string }; requests: number; cost_usd: number }> }).by_kind;
    const batchRow = byKind.find((r) => r.group.kind === 'batch')!;
    assert.ok(batchRow.requests >= 1000);
    assert.ok(Math.abs(batchRow.cost_usd - (1000 * full * 0.5 * batchRow.requests) / 1000) < 1e-6, `batch spend ${batchRow.cost_usd}`);
    assert.ok(
      byKind.some((r) => r.group.kind === 'resource'),
      'the calls about the batch are counted apart, without tokens',
    );
    // Reading the results again records nothing twice.
    for await (const _ of await alice.messages.batches.results(batch.id)) void _;
    assert.equal((await records()).filter((r) => r.kind === 'batch' && r.request_id.startsWith(`${batch.id}:`)).length, 1000);
  });

  test('the poll records an ended batch no client read, once, on one replica; a batch the upstream forgot is settled', async () => {
    const requests = Array.from({ length: 30 }, (_, i) => ({ custom_id: `p-${i}`, params: { model: 'claude-sonnet-4-6', max_tokens: 8, messages: [{ role: 'user' as const, content: `q ${i}` }] } }));
    const batch = await alice.messages.batches.create({ requests });
    const owner = api.batches.get(batch.id)!.key;
    const ofBatch = async () => (await records()).filter((r) => r.request_id.startsWith(`${batch.id}:`));
    assert.equal(await gw.batchPoller.round(1000), 0, 'not ended yet: nothing to record');
    assert.equal((await ofBatch()).length, 0);
    await fetch(`${api.url}/_fake/end/${batch.id}`, { method: 'POST' });
    await new Promise((r) => setTimeout(r, 1100)); // the last round's claim (its interval less 500 ms, at least 1 s) lapses
    const before = api.calls.length;
    // Another replica's poller, sharing the state store, in the same interval: only one of them polls.
    const { BatchPoller } = await import('../src/server/resources/poll.js');
    const other = new BatchPoller(gw.deps, 'replica-2');
    const [mine, theirs] = await Promise.all([gw.batchPoller.round(1500), other.round(1500)]);
    assert.deepEqual([mine + theirs, Math.max(mine, theirs)], [1, 1], 'the ended batch was settled by exactly one replica');
    const recs = await ofBatch();
    assert.equal(recs.length, 30);
    assert.ok(recs.every((r) => r.kind === 'batch' && r.client_id === 'alice' && r.cost_usd! > 0));
    for (const c of api.calls.slice(before)) assert.equal(c.key, owner, `${c.method} ${c.path}: the poll asks with the creating key`);
    assert.equal(api.calls.slice(before).filter((c) => c.method === 'GET' && c.path === `/v1/messages/batches/${batch.id}`).length, 1, 'one replica asked the upstream, not both');
    assert.ok((await gw.deps.affinity.lookup(batch.id))?.settled_at, 'settled');
    // The next round (the claim of the last one lapsed): a batch the upstream no longer knows is settled with what was
    // recorded (none), not asked about for ever; the settled batch is not asked about at all.
    const gone = await alice.messages.batches.create({ requests: requests.slice(0, 1) });
    api.batches.delete(gone.id);
    const calls = api.calls.length;
    await new Promise((r) => setTimeout(r, 1100));
    assert.equal(await gw.batchPoller.round(1000), 1, 'this round ran and settled the forgotten batch');
    assert.ok((await gw.deps.affinity.lookup(gone.id))?.settled_at);
    assert.equal(api.calls.filter((c, i) => i >= calls && c.path.includes(batch.id)).length, 0);
  });

  test('a cancelled batch is cancelled and deleted with its key; its items are recorded as canceled', async () => {
    const batch = await alice.messages.batches.create({ requests: [{ custom_id: 'c-1', params: { model: 'claude-sonnet-4-6', max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] } }] });
    const owner = api.batches.get(batch.id)!.key;
    const canceled = await bob.messages.batches.cancel(batch.id);
    assert.equal(canceled.request_counts.canceled, 1);
    for await (const item of await alice.messages.batches.results(batch.id)) assert.equal(item.result.type, 'canceled');
    const deleted = await alice.messages.batches.delete(batch.id);
    assert.equal(deleted.type, 'message_batch_deleted');
    for (const c of api.calls.filter((c) => c.path.includes(batch.id))) assert.equal(c.key, owner);
    const rec = (await records()).find((r) => r.request_id === `${batch.id}:c-1`)!;
    assert.equal(rec.outcome, 'aborted');
    assert.equal(rec.error_type, 'canceled');
    assert.equal(rec.cost_usd, 0);
  });

  test('a refused item names its custom_id; nothing is sent upstream', async () => {
    const before = api.batches.size;
    const err = await alice.messages.batches
      .create({
        requests: [
          { custom_id: 'fine-1', params: { model: 'claude-sonnet-4-6', max_tokens: 8, messages: [{ role: 'user', content: 'a' }] } },
          { custom_id: 'bulk-opus-7', params: { model: 'claude-opus-4-1', max_tokens: 8, messages: [{ role: 'user', content: 'b' }] } },
        ],
      })
      .catch((e: unknown) => e as InstanceType<typeof Anthropic.BadRequestError>);
    assert.ok(err instanceof Anthropic.BadRequestError, String(err));
    const message = (err.error as { error: { message: string } }).error.message;
    assert.match(message, /"bulk-opus-7": denied by rule "no-opus-in-batches": opus 4\.1 is not for bulk work/);
    assert.doesNotMatch(message, /fine-1/);
    assert.equal(api.batches.size, before, 'no batch was created');
    // The refused item's decision is kept under the create call's request id.
    const requestId = err.headers.get('x-switchyard-request-id');
    const trace = await request(`${gw.url}/admin/requests/${encodeURIComponent(`${requestId}:bulk-opus-7`)}`);
    assert.equal(trace.statusCode, 200);
    assert.equal(((await trace.body.json()) as { denied: { rule: string } }).denied.rule, 'no-opus-in-batches');
  });

  test('a file uploaded with one key is read, downloaded, used by Messages requests and deleted with that key, 20 times out of 20', async () => {
    const file = await alice.beta.files.upload({ file: await toFile(Buffer.from('%PDF-1.4 fake pdf'), 'report.pdf', { type: 'application/pdf' }) });
    assert.match(file.id, /^file_/);
    assert.deepEqual(Object.keys(file).sort(), Object.keys(fixture('file-object.json')).sort());
    const owner = api.files.get(file.id)!.key;
    const meta = await bob.beta.files.retrieveMetadata(file.id);
    assert.equal(meta.filename, 'report.pdf');
    const content = await alice.beta.files.download(file.id);
    assert.equal(Buffer.from(await content.arrayBuffer()).includes(Buffer.from('%PDF-1.4 fake pdf')), true);
    for (let i = 0; i < 20; i++) {
      const client = i % 2 ? alice : bob;
      const msg = await client.beta.messages.create({
        model: 'claude-sonnet-4-6',
        max_tokens: 16,
        betas: ['files-api-2025-04-14'],
        messages: [
          {
            role: 'user',
            content: [
              { type: 'document', source: { type: 'file', file_id: file.id } },
              { type: 'text', text: `summarize ${i}` },
            ],
          },
        ],
      });
      assert.equal(msg.content[0]!.type, 'text');
    }
    const { response } = await alice.beta.messages
      .create({
        model: 'claude-sonnet-4-6',
        max_tokens: 16,
        betas: ['files-api-2025-04-14'],
        messages: [{ role: 'user', content: [{ type: 'document', source: { type: 'file', file_id: file.id } }] }],
      })
      .withResponse();
    const trace = await request(`${gw.url}/admin/requests/${response.headers.get('x-switchyard-request-id')}`);
    assert.deepEqual(((await trace.body.json()) as { files: unknown }).files, { ids: [file.id], provider: 'anthropic', key: keyFingerprint(owner) }, 'the trace says where the file lives');
    const uses = api.calls.filter((c) => c.path === '/v1/messages' && c.files?.includes(file.id)).slice(0, 20);
    assert.equal(uses.length, 20);
    for (const c of uses) assert.equal(c.key, owner, 'every request that references the file went with its key');
    const deleted = await bob.beta.files.delete(file.id);
    assert.equal(deleted.id, file.id);
    for (const c of api.calls.filter((c) => c.path.startsWith(`/v1/files/${file.id}`))) assert.equal(c.key, owner);
  });

  test('a 100 MB upload streams through: the gateway holds a window of it, not the file', async () => {
    const size = 100 * 1024 * 1024;
    const chunk = Buffer.alloc(1024 * 1024, 0x61);
    const expected = createHash('sha256');
    const parts = async function* () {
      for (let sent = 0; sent < size; sent += chunk.length) yield chunk;
    };
    global.gc?.();
    const rss0 = process.memoryUsage().rss;
    let peak = rss0;
    const sampler = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage().rss);
    }, 20);
    // Multipart by hand, streamed (the SDK's toFile would hold the whole file in this process first).
    const boundary = 'switchyard-test-boundary';
    const head = Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.bin"\r\nContent-Type: application/octet-stream\r\n\r\n`);
    const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
    const body = async function* () {
      yield head;
      expected.update(head);
      for await (const c of parts()) {
        expected.update(c);
        yield c;
      }
      expected.update(tail);
      yield tail;
    };
    const r = await request(`${gw.url}/v1/files`, {
      method: 'POST',
      headers: {
        'x-api-key': 'sk-alice',
        'anthropic-version': '2023-06-01',
        'anthropic-beta': 'files-api-2025-04-14',
        'content-type': `multipart/form-data; boundary=${boundary}`,
        'content-length': String(head.length + size + tail.length),
      },
      body: Readable.from(body()),
    });
    clearInterval(sampler);
    const file = (await r.body.json()) as { id: string; size_bytes: number };
    assert.equal(r.statusCode, 200);
    const stored = api.files.get(file.id)!;
    assert.equal(stored.size_bytes, head.length + size + tail.length);
    assert.equal(stored.sha256, expected.digest('hex'), 'every byte arrived, in order');
    // The client, the gateway and the fake upstream share this process: the whole rise bounds the gateway's share.
    const grew = (peak - rss0) / 1024 / 1024;
    assert.ok(grew <= 60, `RSS rose ${grew.toFixed(1)} MB while 100 MB streamed through (client, gateway and upstream together)`);
  });

  test('an upload over limits.max_file_bytes is refused with 413 before a byte goes upstream', async () => {
    const before = api.files.size;
    const r = await request(`${gw.url}/v1/files`, {
      method: 'POST',
      headers: { 'x-api-key': 'sk-alice', 'content-type': 'multipart/form-data; boundary=x', 'content-length': String(600 * 1024 * 1024) },
      body: 'x',
    }).catch((e: Error) => e);
    if (!(r instanceof Error)) {
      assert.equal(r.statusCode, 413);
      const err = (await r.body.json()) as { error: { type: string; message: string } };
      assert.equal(err.error.type, 'request_too_large');
      assert.match(err.error.message, /limits\.max_file_bytes/);
    }
    assert.equal(api.files.size, before);
  });

  test('skills are created and read back with their key; another /v1 path passes through (passthrough: true) with a record of kind other', async () => {
    const created = await request(`${gw.url}/v1/skills`, {
      method: 'POST',
      headers: { 'x-api-key': 'sk-bob', 'content-type': 'multipart/form-data; boundary=b', 'content-length': '12' },
      body: '--b--\r\n12345',
    });
    const skill = (await created.body.json()) as { id: string };
    assert.match(skill.id, /^skill_/);
    const owner = api.files.get(skill.id)!.key;
    const got = await request(`${gw.url}/v1/skills/${skill.id}`, { headers: { 'x-api-key': 'sk-alice' } });
    assert.equal(got.statusCode, 200);
    assert.equal(((await got.body.json()) as { id: string }).id, skill.id);
    assert.equal(api.calls.filter((c) => c.path === `/v1/skills/${skill.id}`).at(-1)!.key, owner);

    const ping = await request(`${gw.url}/v1/experimental/ping`, { headers: { 'x-api-key': 'sk-alice' } });
    assert.equal(ping.statusCode, 200);
    const pong = (await ping.body.json()) as { key: string };
    assert.ok(pong.key === KEY_A || pong.key === KEY_B, "the gateway's key went, never the client's");
    const rec = (await records()).filter((r) => r.kind === 'other').at(-1)!;
    assert.equal(rec.client_id, 'alice');
    assert.equal(rec.status, 200);
  });
});

describe('affinity across a restart', () => {
  test('a file uploaded before the gateway restarted (state in memory, ledger on disk) is still read with its key', async () => {
    const api = await startFakeAnthropicApi();
    const config = writeConfig({ upstream: api.url, providers: providers(api.url), extraConfig: `${clients}ledger: { sqlite: ./data/usage.db, flush_interval_ms: 50 }\n` });
    try {
      let { gw } = await startTestGateway({ upstream: api.url, configFile: config.configFile });
      // Bob takes a key first, so that Alice's sticky key is the other one, then Alice uploads.
      await new Anthropic({ apiKey: 'sk-bob', baseURL: gw.url, maxRetries: 0 }).beta.files.list();
      const file = await new Anthropic({ apiKey: 'sk-alice', baseURL: gw.url, maxRetries: 0 }).beta.files.upload({ file: await toFile(Buffer.from('kept'), 'kept.txt', { type: 'text/plain' }) });
      const owner = api.files.get(file.id)!.key;
      await gw.close();
      ({ gw } = await startTestGateway({ upstream: api.url, configFile: config.configFile }));
      try {
        const before = api.calls.length;
        // Bob's sticky key after the restart is the pool's first choice; the file's key is remembered in the ledger.
        const meta = await new Anthropic({ apiKey: 'sk-bob', baseURL: gw.url, maxRetries: 0 }).beta.files.retrieveMetadata(file.id);
        assert.equal(meta.id, file.id);
        assert.deepEqual(
          api.calls.slice(before).map((c) => c.key),
          [owner],
          'one call, with the key that uploaded it: no probing',
        );
      } finally {
        await gw.close();
      }
    } finally {
      await api.close();
    }
  });
});

describe('batch items as the client wrote them', () => {
  test("an item no rule changes goes upstream byte for byte (spacing, escapes, key order); a renamed model changes only the model's bytes", async () => {
    const api = await startFakeAnthropicApi();
    const renamed = providers(api.url, '    models: { claude-renamed: claude-upstream-name }\n');
    const { gw } = await startTestGateway({ upstream: api.url, providers: renamed, extraConfig: clients });
    try {
      const kept = '{ "max_tokens" : 8, "model":"claude-sonnet-4-6",  "messages":[{"role":"user","content":"caf\\u00e9 \\/ \\"q\\""}] }';
      const renamedItem = '{"model": "claude-renamed" ,"max_tokens":8,"messages":[{"role":"user","content":"x"}]}';
      const body = `{"requests":[{"custom_id":"kept","params":${kept}},{"custom_id":"renamed","params":${renamedItem}}]}`;
      const r = await request(`${gw.url}/v1/messages/batches`, { method: 'POST', headers: { 'x-api-key': 'sk-alice', 'content-type': 'application/json' }, body });
      assert.equal(r.statusCode, 200, await r.body.text());
      const sent = [...api.batches.values()].at(-1)!.raw.toString('utf8');
      assert.ok(sent.includes(`"params":${kept}`), `the client's bytes of the item: ${sent}`);
      assert.ok(sent.includes(`"params":${renamedItem.replace('"claude-renamed"', '"claude-upstream-name"')}`), `only the model's bytes changed: ${sent}`);
    } finally {
      await gw.close();
      await api.close();
    }
  });
});

describe('budgets at batch create', () => {
  test("each item counts its estimated cost at the batch rate on top of the items before it: the item that would pass a blocking budget is named, nothing is sent; the batch's cost is charged to the budget when its results are read", async () => {
    const api = await startFakeAnthropicApi();
    const rules = {
      '40-budget.yaml': 'version: 1\nrules:\n  - id: client-daily\n    actions:\n      - budget: { scope: client, usd: 0.01, per: day }\n',
      '50-default.yaml': 'version: 1\nrules:\n  - id: default\n    actions:\n      - route_to: { provider: anthropic }\n',
    };
    const { gw } = await startTestGateway({ upstream: api.url, rules, providers: providers(api.url), extraConfig: `${clients}ledger: { sqlite: ./data/usage.db, flush_interval_ms: 50 }\n` });
    try {
      const alice = new Anthropic({ apiKey: 'sk-alice', baseURL: gw.url, maxRetries: 0 });
      // About 4,000 input tokens each (16 KB / 4): $0.012 at Sonnet's $3/M, $0.006 at the batch rate. Two fit no more.
      const item = (id: string) => ({ custom_id: id, params: { model: 'claude-sonnet-4-6', max_tokens: 8, messages: [{ role: 'user' as const, content: 'x'.repeat(16_000) }] } });
      const refused = await alice.messages.batches.create({ requests: [item('b-1'), item('b-2')] }).catch((e: unknown) => e as InstanceType<typeof Anthropic.BadRequestError>);
      assert.ok(refused instanceof Anthropic.BadRequestError, String(refused));
      const message = (refused.error as { error: { message: string } }).error.message;
      assert.match(message, /1 of 2 items cannot go: "b-2": budget "client-daily" of \$0\.01 per day for client "alice" would be passed by this batch/);
      assert.equal(api.batches.size, 0, 'nothing was sent');
      // One item fits. Its result reports 10,000 input tokens ($0.015 at the batch rate): once read, the budget is spent.
      const ok = await alice.messages.batches.create({ requests: [item('a-1')] });
      api.usage.input_tokens = 10_000;
      await fetch(`${api.url}/_fake/end/${ok.id}`, { method: 'POST' });
      for await (const _ of await alice.messages.batches.results(ok.id)) void _;
      const again = await alice.messages.batches.create({ requests: [item('a-2')] }).catch((e: unknown) => e as InstanceType<typeof Anthropic.APIError>);
      assert.ok(again instanceof Anthropic.BadRequestError, `the same single item that went before is refused now: ${String(again)}`);
      assert.match((again.error as { error: { message: string } }).error.message, /"a-2": budget "client-daily" of \$0\.0100 per day for client "alice" is spent \(\$0\.015/);
    } finally {
      await gw.close();
      await api.close();
    }
  });
});

describe('an upstream that is down', () => {
  test("a resource call to a refused upstream is a 502 in Anthropic's shape naming the provider, and its usage record is kept", async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(closed.address() as AddressInfo).port}`;
    await new Promise<void>((r) => closed.close(() => r()));
    const { gw } = await startTestGateway({ upstream: url, providers: providers(url), extraConfig: `${clients}ledger: { sqlite: ./data/usage.db, flush_interval_ms: 50 }\n` });
    try {
      for (const [method, path] of [
        ['GET', '/v1/files'],
        ['GET', '/v1/messages/batches/msgbatch_unknown'],
      ] as const) {
        const r = await request(`${gw.url}${path}`, { method, headers: { 'x-api-key': 'sk-alice' } });
        assert.equal(r.statusCode, 502, `${method} ${path}`);
        const err = (await r.body.json()) as { type: string; error: { type: string; message: string } };
        assert.equal(err.type, 'error');
        assert.equal(err.error.type, 'api_error');
        assert.match(err.error.message, /provider "anthropic" \(GET http:\/\/127\.0\.0\.1:\d+\/v1\/.*\): connection refused/);
      }
      await gw.deps.ledger!.flush();
      const recs = (await gw.deps.ledger!.store.query('2000-01-01T00:00:00.000Z', '2100-01-01T00:00:00.000Z')).filter((r) => r.kind === 'resource');
      assert.equal(recs.length, 2);
      assert.ok(recs.every((r) => r.outcome === 'failed' && r.status === 502 && r.client_id === 'alice'));
    } finally {
      await gw.close();
    }
  });
});

describe('without passthrough', () => {
  test('another /v1 path is a 404 that names what is served; a batch id no key created is looked for key by key', async () => {
    const api = await startFakeAnthropicApi();
    const { gw } = await startTestGateway({ upstream: api.url, providers: providers(api.url), extraConfig: clients });
    try {
      const r = await request(`${gw.url}/v1/experimental/ping`, { headers: { 'x-api-key': 'sk-alice' } });
      assert.equal(r.statusCode, 404);
      const err = (await r.body.json()) as { error: { type: string; message: string } };
      assert.equal(err.error.type, 'not_found_error');
      assert.match(err.error.message, /\/v1\/messages\/batches/);
      assert.match(err.error.message, /passthrough: true/);
      assert.equal(api.calls.length, 0, 'nothing went upstream');

      // A batch made before the gateway was in the path (straight at the upstream with key B).
      const direct = new Anthropic({ apiKey: KEY_B, baseURL: api.url, maxRetries: 0 });
      const made = await direct.messages.batches.create({ requests: [{ custom_id: 'x', params: { model: 'claude-sonnet-4-6', max_tokens: 4, messages: [{ role: 'user', content: 'hi' }] } }] });
      const alice = new Anthropic({ apiKey: 'sk-alice', baseURL: gw.url, maxRetries: 0 });
      const found = await alice.messages.batches.retrieve(made.id).catch((e: Error) => {
        throw new Error(`${e.message}; upstream calls: ${JSON.stringify(api.calls.slice(-4))}`);
      });
      assert.equal(found.id, made.id);
      const again = api.calls.length;
      await alice.messages.batches.retrieve(made.id);
      assert.deepEqual(
        api.calls.slice(again).map((c) => c.key),
        [KEY_B],
        'found once, then remembered: the next call goes straight to key B',
      );
    } finally {
      await gw.close();
      await api.close();
    }
  });
});

describe('dry-run and rule tests for batch items and file references', () => {
  test("serve --dry-run answers a batch create with each item's decision and a file reference with the key that holds it; nothing goes upstream", async () => {
    const api = await startFakeAnthropicApi();
    const { gw } = await startTestGateway({ upstream: api.url, rules: RULES, providers: providers(api.url), extraConfig: clients, dryRun: true });
    try {
      const batch = await request(`${gw.url}/v1/messages/batches`, {
        method: 'POST',
        headers: { 'x-api-key': 'sk-alice', 'content-type': 'application/json' },
        body: JSON.stringify({
          requests: [
            { custom_id: 'ok-1', params: { model: 'claude-sonnet-4-6', max_tokens: 8, messages: [{ role: 'user', content: 'a' }] } },
            { custom_id: 'opus-2', params: { model: 'claude-opus-4-1', max_tokens: 8, messages: [{ role: 'user', content: 'b' }] } },
          ],
        }),
      });
      assert.equal(batch.statusCode, 200);
      const report = (await batch.body.json()) as { type: string; items: Array<{ custom_id: string; refused: string | null; route: { provider: string }; tags: Record<string, string> }> };
      assert.equal(report.type, 'batch_dry_run');
      assert.deepEqual(
        report.items.map((i) => [i.custom_id, i.refused === null, i.route.provider]),
        [
          ['ok-1', true, 'anthropic'],
          ['opus-2', false, 'anthropic'],
        ],
      );
      assert.match(report.items[1]!.refused!, /no-opus-in-batches/);
      assert.equal(report.items[0]!.tags.team, 'research');
      await gw.deps.affinity.remember({
        id: 'file_dry',
        kind: 'file',
        provider: 'anthropic',
        key: keyFingerprint(KEY_B),
        client_id: 'bob',
        user_id: 'bob',
        project: null,
        session_id: null,
        tags: {},
        rules_version: null,
        charges: [],
        created_at: new Date().toISOString(),
        settled_at: null,
      });
      const msg = await request(`${gw.url}/v1/messages`, {
        method: 'POST',
        headers: { 'x-api-key': 'sk-alice', 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'claude-sonnet-4-6', max_tokens: 8, messages: [{ role: 'user', content: [{ type: 'document', source: { type: 'file', file_id: 'file_dry' } }] }] }),
      });
      assert.deepEqual(((await msg.body.json()) as { files: unknown }).files, { ids: ['file_dry'], provider: 'anthropic', key: keyFingerprint(KEY_B) });
      const meta = await request(`${gw.url}/v1/files/file_dry`, { headers: { 'x-api-key': 'sk-alice' } });
      const m = (await meta.body.json()) as { type: string; key: string; chosen_by: string };
      assert.equal(m.type, 'resource_dry_run');
      assert.equal(m.key, keyFingerprint(KEY_B));
      assert.match(m.chosen_by, /affinity/);
      assert.equal(api.calls.length, 0, 'nothing went upstream');
    } finally {
      await gw.close();
      await api.close();
    }
  });

  test('switchyard dry-run decides each item of a batch file; a rule test decides the item batch_item names', async () => {
    const api = await startFakeAnthropicApi();
    try {
      const { configFile, dir, rulesDir } = writeConfig({ upstream: api.url, rules: RULES, providers: providers(api.url) });
      const batchFile = path.join(dir, 'batch.json');
      writeFileSync(
        batchFile,
        JSON.stringify({
          requests: [
            { custom_id: 'a', params: { model: 'claude-sonnet-4-6', max_tokens: 8, messages: [{ role: 'user', content: [{ type: 'document', source: { type: 'file', file_id: 'file_x' } }] }] } },
            { custom_id: 'b', params: { model: 'claude-opus-4-1', max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] } },
          ],
        }),
      );
      const cli = (...args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', path.join(import.meta.dirname, '../src/cli.ts'), ...args], { encoding: 'utf8', timeout: 60_000 });
      const all = cli('dry-run', '--config', configFile, '--request', batchFile, '--json');
      assert.equal(all.status, 0, all.stderr);
      const reports = JSON.parse(all.stdout) as Array<{ custom_id: string; denied: { rule: string } | null; files?: { ids: string[] } }>;
      assert.deepEqual(
        reports.map((r) => [r.custom_id, r.denied?.rule ?? null]),
        [
          ['a', null],
          ['b', 'no-opus-in-batches'],
        ],
      );
      assert.deepEqual(reports[0]!.files?.ids, ['file_x']);
      const one = cli('dry-run', '--config', configFile, '--request', batchFile, '--item', 'b');
      assert.equal(one.status, 0, one.stderr);
      assert.match(one.stdout, /item b\nrules [0-9a-f]+\nDENIED by no-opus-in-batches/);
      writeFileSync(
        path.join(rulesDir, 'batch.test.yaml'),
        `version: 1\ntests:\n  - name: the opus item of the batch is denied\n    request: { body_file: ../batch.json, batch_item: b }\n    expect: { denied: { rule: no-opus-in-batches } }\n  - name: the other item goes, tagged\n    request: { body_file: ../batch.json, batch_item: a }\n    expect: { denied: false, provider: anthropic, tags: { team: research } }\n`,
      );
      const tests = cli('test', '--config', configFile);
      assert.equal(tests.status, 0, tests.stdout + tests.stderr);
      assert.match(tests.stdout, /2 passed|ok 2/);
      writeFileSync(
        path.join(rulesDir, 'batch.test.yaml'),
        'version: 1\ntests:\n  - name: wrong\n    request: { body_file: ../batch.json, batch_item: a }\n    expect: { denied: { rule: no-opus-in-batches } }\n',
      );
      assert.notEqual(cli('test', '--config', configFile).status, 0, 'a case that does not hold fails');
    } finally {
      await api.close();
    }
  });
});
