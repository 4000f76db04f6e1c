/**
 * The live tail (issue 35): each line carries the same figures as the request's usage record — what `switchyard usage`
 * reads — for a streamed answer with prompt-cache tokens, and for a refusal.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { request } from 'undici';
import type { LiveLine } from '../src/server/live.js';
import { startFakeUpstream, type FakeUpstream } from './fake-upstream.js';
import { startTestGateway, until } from './helpers.js';

let fake: FakeUpstream;
let g: Awaited<ReturnType<typeof startTestGateway>>;
before(async () => {
  fake = await startFakeUpstream();
  g = await startTestGateway({
    upstream: fake.url,
    rules: {
      '50.yaml':
        'version: 1\nrules:\n  - id: no-opus\n    match: { model: "claude-opus-*" }\n    actions: [ { deny: { status: 403, message: "no Opus" } } ]\n  - id: default\n    actions: [ { route_to: { provider: anthropic } } ]\n',
    },
  });
});
after(async () => {
  await g?.gw.close();
  await fake?.close();
});

test('a live line equals the usage record of its request (streamed with cache tokens; refused)', async () => {
  const lines: LiveLine[] = [];
  const unsubscribe = g.gw.deps.live.subscribe((l) => lines.push(l));
  try {
    const send = async (model: string, stream: boolean, fakeScenario = '') => {
      const r = await request(`${g.gw.url}/v1/messages`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'anthropic-version': '2023-06-01',
          'x-api-key': 'sk-ant-live',
          'x-claude-code-session-id': 'sess-live',
          ...(fakeScenario ? { 'x-fake': fakeScenario } : {}),
        },
        body: JSON.stringify({ model, max_tokens: 8, stream, messages: [{ role: 'user', content: 'hi' }] }),
      });
      await r.body.dump();
      return String(r.headers['x-switchyard-request-id']);
    };
    const ids = [await send('claude-sonnet-4-6', true), await send('claude-sonnet-4-6', false, 'cached'), await send('claude-opus-4-1', false)];
    await until(() => ids.every((id) => lines.some((l) => l.request_id === id)));
    const ledger = g.gw.deps.ledger!;
    await ledger.flush();
    const records = await ledger.store.query(new Date(Date.now() - 60_000).toISOString(), new Date(Date.now() + 1000).toISOString());
    for (const id of ids) {
      const r = records.find((x) => x.request_id === id)!;
      const l = lines.find((x) => x.request_id === id)!;
      assert.deepEqual(l, {
        time: r.time,
        request_id: r.request_id,
        client: r.client_id,
        session: r.session_id,
        model: r.model,
        provider: r.provider,
        status: r.status,
        outcome: r.outcome,
        latency_ms: r.latency_ms,
        ttft_ms: r.ttft_ms,
        input_tokens: r.input_tokens,
        output_tokens: r.output_tokens,
        cache_read_tokens: r.cache_read_input_tokens,
        cost_usd: r.cost_usd,
        rules: r.rules,
      });
    }
    const [streamed, cached, refused] = ids.map((id) => lines.find((l) => l.request_id === id)!);
    assert.ok(streamed!.output_tokens > 0, 'a streamed answer is counted before its line goes out');
    assert.equal(cached!.cache_read_tokens, 300);
    assert.deepEqual([refused!.status, refused!.outcome], [403, 'refused']);
  } finally {
    unsubscribe();
  }
});
