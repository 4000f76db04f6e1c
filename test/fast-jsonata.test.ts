/**
 * The JSONata fast path agrees with jsonata itself: a differential property test over generated
 * expressions and contexts (whenever the fast path answers, jsonata gives the same value), plus the
 * expressions rules commonly use staying on the fast path.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import jsonata from 'jsonata';
import { compileFast, FALLBACK } from '../src/rules/fast-jsonata.js';

const KEYS = ['a', 'b', 'model', 'messages', 'stream'];

const exprArb = fc.letrec((tie) => ({
  path: fc.array(fc.constantFrom(...KEYS), { minLength: 1, maxLength: 3 }).map((p) => p.join('.')),
  literal: fc.oneof(fc.integer({ min: -5, max: 60 }).map(String), fc.constantFrom("'x'", "''", "'claude-opus-4-8'", 'true', 'false', 'null')),
  atom: fc.oneof(tie('path'), tie('literal'), fc.constantFrom('$count(messages)', '$count(a)', '$exists(b)', '$not(stream)', '$boolean(a)', '$', "['x', 1, true]")),
  cmp: fc.tuple(tie('atom'), fc.constantFrom('=', '!=', '<', '<=', '>', '>=', 'in', '+', '-', '*'), tie('atom')).map(([l, op, r]) => `${l} ${op} ${r}`),
  expr: fc.oneof(
    { depthSize: 'small' },
    tie('atom'),
    tie('cmp'),
    fc.tuple(tie('cmp'), fc.constantFrom('and', 'or'), tie('expr')).map(([l, op, r]) => `(${l}) ${op} (${r})`),
  ),
})).expr as fc.Arbitrary<string>;

const valueArb = fc.oneof(fc.constantFrom(null, true, false, 0, 1, 5, 50, '', 'x', 'claude-opus-4-8', [], [1], [1, 2, 3], ['x', 'y'], [[1], [2]], [{ a: 1 }, { a: 2 }]), fc.jsonValue({ maxDepth: 2 }));
const ctxArb = fc.dictionary(fc.constantFrom(...KEYS), fc.oneof(valueArb, fc.dictionary(fc.constantFrom(...KEYS), valueArb, { maxKeys: 3 })), { maxKeys: 5 });

test('whenever the fast path answers, jsonata answers the same', async () => {
  let answered = 0;
  await fc.assert(
    fc.asyncProperty(exprArb, ctxArb, async (text, ctx) => {
      const expr = jsonata(text);
      const fast = compileFast(expr);
      if (!fast) return;
      const v = fast(ctx);
      if (v === FALLBACK) return;
      answered++;
      let expected: unknown;
      try {
        expected = await expr.evaluate(ctx);
      } catch (err) {
        assert.fail(`fast path answered ${JSON.stringify(v)} for ${text} on ${JSON.stringify(ctx)}, jsonata threw ${(err as Error).message}`);
      }
      // Compare as JSON: fast-check builds objects without a prototype, jsonata returns them as they are.
      const norm = (x: unknown) => (x === undefined ? undefined : (JSON.parse(JSON.stringify(x)) as unknown));
      assert.deepEqual(norm(v), norm(expected), `${text} on ${JSON.stringify(ctx)}`);
    }),
    { numRuns: 3000 },
  );
  assert.ok(answered > 1000, `the fast path answered only ${answered} of 3000`);
});

test('the expressions rules commonly use stay on the fast path', () => {
  const ctx = {
    model: 'claude-opus-4-8',
    stream: true,
    messages: [{ role: 'user' }, { role: 'assistant' }],
    headers: { 'x-team': 'search' },
    client: { id: 'alice', tags: { team: 'platform' } },
    estimate: { input_tokens: 200_000 },
    body: { max_tokens: 64000, tools: [{ name: 't' }] },
    time: { hour: 9, weekday: 2 },
  };
  const cases: Array<[string, unknown]> = [
    ['$count(messages) < 50', true],
    ['estimate.input_tokens > 150000 and body.max_tokens > 32000', true],
    ["headers.'x-team' in ['search', 'ads']", true],
    ["client.id = 'alice' and stream = true", true],
    ['$exists(body.tools) and $count(body.tools) > 20', false],
    ['time.weekday in [0, 6]', false],
    ['client.tags.team', 'platform'],
    ["headers.'x-missing'", undefined],
  ];
  for (const [text, want] of cases) {
    const fast = compileFast(jsonata(text));
    assert.ok(fast, `${text} is not compiled`);
    assert.deepEqual(fast(ctx), want, text);
  }
});
