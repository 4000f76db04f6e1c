/**
 * Decision traces (`server/traces.ts`), function-level: the ring keeps the newest `trace.requests` entries, a resize
 * keeps the newest that still fit, size 0 keeps none; a trace records how its request ended; the trace and the
 * `x-switchyard-decision` header carry rule ids, route and model only.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Decision } from '../src/rules/decision.js';
import type { UsageRecord } from '../src/usage/record.js';
import { LiveTail, type LiveLine } from '../src/server/live.js';
import { DecisionTraces, decisionHeader, traceOf, type DecisionTrace } from '../src/server/traces.js';

const decision = (over: Partial<Decision> = {}): Decision =>
  ({
    ruleset: 'v1abc',
    route: { provider: 'anthropic', model: 'claude-sonnet-4-6', requested_model: 'sonnet', fallback: [], rule: 'r2' },
    rules: [
      { id: 'r1', file: '10.yaml', matched: false, reason: 'model', actions: [] },
      { id: 'r2', file: '10.yaml', matched: true, actions: [] },
      { id: 'r3', file: '20.yaml', matched: true, actions: [] },
    ],
    tags: { team: 'infra' },
    headers: { set: {}, remove: [] },
    denied: null,
    error: null,
    warnings: [],
    body: {},
    bodyChanged: false,
    throttles: [{ rule: 't1' }],
    budgets: [{ rule: 'b1' }, { rule: 'b2' }],
    ...over,
  }) as unknown as Decision;
const trace = (id: string) => ({ ...traceOf(decision(), id, 'alice', null) }) as DecisionTrace;

test('a trace is the decision by rule ids: route, rules, tags, throttles and budgets, not yet finished', () => {
  const before = Date.now();
  const t = traceOf(decision(), 'req-1', 'alice', 'sess-9');
  assert.ok(Date.parse(t.time) >= before - 1 && Date.parse(t.time) <= Date.now());
  assert.deepEqual(
    { ...t, time: 'x' },
    {
      request_id: 'req-1',
      time: 'x',
      rules_version: 'v1abc',
      client_id: 'alice',
      session_id: 'sess-9',
      requested_model: 'sonnet',
      route: decision().route,
      rules: decision().rules,
      tags: { team: 'infra' },
      throttles: ['t1'],
      budgets: ['b1', 'b2'],
      denied: null,
      error: null,
      warnings: [],
      status: null,
      outcome: null,
    },
  );
});

test('the ring keeps the newest entries; finish records the end; unknown ids are ignored', () => {
  const ring = new DecisionTraces(2);
  for (const id of ['a', 'b', 'c']) ring.add(trace(id));
  assert.equal(ring.get('a'), undefined, 'the oldest is dropped');
  assert.equal(ring.get('b')?.request_id, 'b');
  ring.finish('c', 429, 'refused');
  assert.deepEqual([ring.get('c')?.status, ring.get('c')?.outcome], [429, 'refused']);
  ring.finish('a', 200, 'ok');
  assert.equal(ring.get('a'), undefined);
  // get() does not refresh: reading b keeps it the oldest.
  ring.get('b');
  ring.add(trace('d'));
  assert.equal(ring.get('b'), undefined);
  assert.ok(ring.get('c') && ring.get('d'));
});

test('resize: a smaller ring keeps the newest entries, a larger one keeps all, 0 keeps none, the same size changes nothing', () => {
  const ring = new DecisionTraces(4);
  for (const id of ['a', 'b', 'c', 'd']) ring.add(trace(id));
  ring.resize(4);
  assert.ok(ring.get('a'), 'same size: untouched');
  ring.resize(2);
  assert.deepEqual(
    ['a', 'b', 'c', 'd'].map((id) => Boolean(ring.get(id))),
    [false, false, true, true],
  );
  ring.resize(5);
  ring.add(trace('e'));
  ring.add(trace('f'));
  assert.deepEqual(
    ['c', 'd', 'e', 'f'].map((id) => Boolean(ring.get(id))),
    [true, true, true, true],
  );
  ring.resize(0);
  assert.equal(ring.get('f'), undefined);
  ring.add(trace('g'));
  ring.finish('g', 200, 'ok');
  assert.equal(ring.get('g'), undefined, 'size 0 keeps nothing');
  ring.resize(1);
  ring.add(trace('h'));
  assert.equal(ring.get('h')?.request_id, 'h', 'back from 0');
  assert.equal(new DecisionTraces(0).get('x'), undefined);
});

test('the decision header: matched rules, route, the model sent (percent-encoded), version, and the denying rule', () => {
  assert.equal(decisionHeader(decision(), 'claude-sonnet-4-6'), 'rules=r2,r3; route=anthropic; model=claude-sonnet-4-6; version=v1abc');
  assert.equal(decisionHeader(decision({ rules: [] }), 'modèle ü'), 'rules=-; route=anthropic; model=mod%C3%A8le%20%C3%BC; version=v1abc');
  assert.equal(decisionHeader(decision({ denied: { rule: 'no-opus', status: 403, message: 'm' } }), 'm'), 'rules=r2,r3; route=anthropic; model=m; version=v1abc; denied=no-opus');
});

test('the live tail: active only while watched; at most `max` watchers, the oldest dropped; each line the record’s figures', () => {
  const tail = new LiveTail(2);
  assert.equal(tail.active, false);
  const seen: Record<string, LiveLine[]> = { a: [], b: [], c: [] };
  const offA = tail.subscribe((l) => seen.a!.push(l));
  assert.equal(tail.active, true);
  tail.subscribe((l) => seen.b!.push(l));
  const offC = tail.subscribe((l) => seen.c!.push(l));
  const record = {
    time: '2026-12-07T10:00:00.000Z',
    request_id: 'req-1',
    client_id: 'alice',
    session_id: 's-1',
    model: 'claude-sonnet-4-6',
    provider: 'anthropic',
    status: 200,
    outcome: 'ok',
    latency_ms: 812,
    ttft_ms: 140,
    input_tokens: 10,
    output_tokens: 20,
    cache_read_input_tokens: 3000,
    cache_creation_input_tokens: 5,
    cost_usd: 0.0123,
    rules: ['default'],
    tags: { team: 'x' },
  } as unknown as UsageRecord;
  tail.publish(record);
  assert.equal(seen.a!.length, 0, 'the oldest watcher was dropped for the third');
  assert.deepEqual(seen.b, [
    {
      time: '2026-12-07T10:00:00.000Z',
      request_id: 'req-1',
      client: 'alice',
      session: 's-1',
      model: 'claude-sonnet-4-6',
      provider: 'anthropic',
      status: 200,
      outcome: 'ok',
      latency_ms: 812,
      ttft_ms: 140,
      input_tokens: 10,
      output_tokens: 20,
      cache_read_tokens: 3000,
      cost_usd: 0.0123,
      rules: ['default'],
    },
  ]);
  assert.deepEqual(seen.c, seen.b);
  offA();
  offC();
  tail.publish(record);
  assert.deepEqual([seen.b!.length, seen.c!.length], [2, 1], 'an unsubscribed watcher gets nothing more');
  assert.equal(tail.active, true);
  const byDefault = new LiveTail();
  assert.equal(byDefault.active, false);
  const counts = Array.from({ length: 33 }, () => 0);
  for (let i = 0; i < counts.length; i++) byDefault.subscribe(() => counts[i]!++);
  byDefault.publish(record);
  assert.deepEqual([counts[0], counts.slice(1).every((n) => n === 1)], [0, true], '32 watchers by default');
});
