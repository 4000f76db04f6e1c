/**
 * Admission's details on the in-memory store, each one a planted bug got past before (npm run mutate): stated
 * usage (`switchyard test`'s `state:`) counts only for the limits a throttle has; the refill rate does not depend
 * on burst; retry-after is the bucket's real wait; a concurrency refusal names its limit and the slot comes back
 * when the answer ends; a ticket settles once; a shadow throttle logs what it would refuse; a budget warning's
 * share is spent over the limit.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, test } from 'node:test';
import { pino } from 'pino';
import type { Throttle } from '../src/actions/throttle/index.js';
import { ThrottledError } from '../src/errors.js';
import { buildContext, type RequestContext } from '../src/rules/context.js';
import type { Decision } from '../src/rules/decision.js';
import { evaluate } from '../src/rules/evaluate.js';
import { compileRuleSources } from '../src/rules/load.js';
import { checkBudgets } from '../src/actions/budget/enforce.js';
import { admit, useThrottle } from '../src/actions/throttle/enforce.js';
import { MemoryStore } from '../src/state/store.js';

const silent = pino({ level: 'silent' });

async function decide(yaml: string, clientId = 'alice'): Promise<{ d: Decision; rc: RequestContext }> {
  const rs = compileRuleSources([{ file: '10.yaml', text: `version: 1\nrules:\n${yaml}` }], ['anthropic'], '', { expressionMs: 1000 });
  const body = { model: 'claude-sonnet-4-6', max_tokens: 100, messages: [{ role: 'user', content: 'x'.repeat(400) }] };
  const rc = buildContext({ path: '/v1/messages', body, headers: {}, bodyBytes: JSON.stringify(body).length, clientId });
  return { d: await evaluate(rs, rc, 'anthropic'), rc };
}

const refusal = async (p: Promise<unknown>): Promise<ThrottledError> => {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof ThrottledError, String(err));
    return err;
  }
  assert.fail('expected a refusal');
};

describe('stated usage (useThrottle)', () => {
  test('used requests, input tokens and slots count against the limits the throttle has', async () => {
    const store = new MemoryStore();
    const { d, rc } = await decide('  - id: t\n    actions: [ { throttle: { scope: global, requests_per_minute: 5, concurrent: 3 } } ]\n');
    const t = d.throttles[0]!;
    await useThrottle(store, t, '*', { requests: 4, concurrent: 2 });
    const ticket = await admit(d, rc, store, silent, 'r1'); // the 5th request, the 3rd slot
    const refused = await refusal(admit(d, rc, store, silent, 'r2'));
    assert.match(refused.message, /concurrent 3 for global "\*" is exhausted/);
    await ticket.done(0);
    assert.match((await refusal(admit(d, rc, store, silent, 'r3'))).message, /requests_per_minute 5 for global "\*" is exhausted/);
  });

  test('input tokens used make the next request wait for the rest of the minute', async () => {
    const store = new MemoryStore();
    const { d, rc } = await decide('  - id: t\n    actions: [ { throttle: { scope: global, input_tokens_per_minute: 1000 } } ]\n');
    await useThrottle(store, d.throttles[0]!, '*', { input_tokens: 950 });
    assert.ok(rc.estimate.input_tokens > 50);
    assert.match((await refusal(admit(d, rc, store, silent, 'r'))).message, /input_tokens_per_minute 1000/);
  });

  test('usage stated for a limit the throttle does not have is ignored', async () => {
    const store = new MemoryStore();
    const t: Throttle = { rule: 't', scope: 'global', concurrent: 1, burst: 1, shadow: false };
    await useThrottle(store, t, '*', { requests: 1000, input_tokens: 1_000_000 });
    const { d, rc } = await decide('  - id: t\n    actions: [ { throttle: { scope: global, concurrent: 1 } } ]\n');
    const ticket = await admit(d, rc, store, silent, 'r');
    await ticket.done(0);
    const noSlots: Throttle = { rule: 'u', scope: 'global', requests_per_minute: 1, burst: 1, shadow: false };
    await useThrottle(store, noSlots, '*', { concurrent: 5 });
    const other = await decide('  - id: u\n    actions: [ { throttle: { scope: global, requests_per_minute: 1 } } ]\n');
    await (await admit(other.d, other.rc, store, silent, 'r')).done(0);
  });
});

describe('buckets', () => {
  test('burst sizes the bucket, not the refill: after a burst of 120 the next request waits', async () => {
    const store = new MemoryStore();
    const { d, rc } = await decide('  - id: t\n    actions: [ { throttle: { scope: global, requests_per_minute: 60, burst: 2 } } ]\n');
    for (let i = 0; i < 120; i++) await (await admit(d, rc, store, silent, `r${i}`)).done(0);
    const refused = await refusal(admit(d, rc, store, silent, 'r120'));
    assert.equal(refused.headers['retry-after'], '1', 'one request a second comes back');
  });

  test("retry-after is the bucket's wait in whole seconds: a minute for one request a minute", async () => {
    const store = new MemoryStore();
    const { d, rc } = await decide('  - id: t\n    actions: [ { throttle: { scope: global, requests_per_minute: 1 } } ]\n');
    await (await admit(d, rc, store, silent, 'a')).done(0);
    const refused = await refusal(admit(d, rc, store, silent, 'b'));
    assert.ok(['59', '60'].includes(refused.headers['retry-after']!), refused.headers['retry-after']);
    assert.match(refused.message, /retry after (59|60) s$/);
  });
});

describe('tickets', () => {
  test('a concurrency slot comes back when the answer ends, and only once however often it is settled', async () => {
    const store = new MemoryStore();
    const { d, rc } = await decide('  - id: t\n    actions: [ { throttle: { scope: global, concurrent: 1, output_tokens_per_minute: 100 } } ]\n');
    const first = await admit(d, rc, store, silent, 'a');
    const refused = await refusal(admit(d, rc, store, silent, 'b'));
    assert.equal(refused.message, 'throttled by rule "t": concurrent 1 for global "*" is exhausted; retry after 1 s');
    await first.done(60);
    await first.done(60); // settled again: the output tokens are charged once
    await first.refund(); // after done, nothing to give back
    const second = await admit(d, rc, store, silent, 'c');
    await second.done(0);
    // 60 of 100 output tokens charged once: the bucket is not in debt, so the next request is admitted.
    await (await admit(d, rc, store, silent, 'd')).done(50);
    assert.match((await refusal(admit(d, rc, store, silent, 'e'))).message, /output_tokens_per_minute 100/);
  });

  test('a shadow throttle admits and logs what it would have refused, naming rule, scope and limit', async () => {
    const lines: Array<Record<string, unknown>> = [];
    const log = pino(
      { level: 'warn' },
      new Writable({
        write(chunk, _enc, cb) {
          lines.push(JSON.parse(String(chunk)) as Record<string, unknown>);
          cb();
        },
      }),
    );
    const store = new MemoryStore();
    const { d, rc } = await decide('  - id: try\n    actions: [ { throttle: { scope: client, requests_per_minute: 1, shadow: true } } ]\n');
    await (await admit(d, rc, store, log, 'a')).done(0);
    await (await admit(d, rc, store, log, 'b')).done(0);
    assert.equal(lines.length, 1);
    assert.deepEqual(
      { request_id: lines[0]!.request_id, rule: lines[0]!.rule, scope: lines[0]!.scope, limit: lines[0]!.limit },
      { request_id: 'b', rule: 'try', scope: 'client', limit: 'requests_per_minute' },
    );
    assert.match(String(lines[0]!.msg), /^shadow throttle would refuse: throttled by rule "try": requests_per_minute 1 for client "alice"/);
  });
});

describe('budget warnings', () => {
  test('the share in a warning is spent over the limit', async () => {
    const store = new MemoryStore();
    const now = new Date('2026-11-26T15:30:00Z');
    const { d, rc } = await decide('  - id: cap\n    actions: [ { budget: { scope: client, usd: 4, per: day, warn_at: 0.5 } } ]\n');
    await store.addSpend('budget:cap:client:alice:2026-11-26', 1, Date.now() + 60_000);
    assert.deepEqual((await checkBudgets(d, rc, store, now)).warnings, [], '$1 of $4 is under warn_at 0.5');
    await store.addSpend('budget:cap:client:alice:2026-11-26', 2, Date.now() + 60_000);
    const { warnings } = await checkBudgets(d, rc, store, now);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!.message, /\$3\.00 of \$4\.00 per day spent for client "alice" \(75%\)$/);
  });
});
