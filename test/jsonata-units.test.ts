/**
 * JSONata in rules (`rules/jsonata.ts`), function-level: syntax errors reported at the expression with JSONata's
 * offset; warnings for recursion and huge ranges seen before running; the guardrails (time budget, nesting depth,
 * sequence length) stopping runaway expressions as "runaway", not as ordinary errors; regex literals run on RE2
 * (flags, groups, global matching, no backreferences); the fast path used only when no bindings are given; and the
 * texts messages show for results and errors.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { CompileContext } from '../src/rules/compile-context.js';
import { compileJsonata, DEFAULT_EXPRESSION_MS, describeResult, evalErrorMessage, evaluateExpression, isRunaway } from '../src/rules/jsonata.js';

function cx(expressionMs?: number) {
  const errors: Array<[unknown, string, number | undefined]> = [];
  const warnings: Array<[unknown, string]> = [];
  const c: CompileContext = { providers: new Set(), error: (p, m, o) => void errors.push([p, m, o]), warning: (p, m) => void warnings.push([p, m]), ...(expressionMs ? { expressionMs } : {}) };
  return { c, errors, warnings };
}
// A generous budget: a loaded machine must not turn a correct regex into a timeout (the budget's own test sets its own).
const run = async (text: string, input: unknown = {}, ms = 2000) => {
  const { c } = cx(ms);
  return evaluateExpression(compileJsonata(text, c, ['when'])!, input);
};

test('a syntax error is reported at the expression with JSONata’s message and the offset of the bad token', () => {
  const { c, errors } = cx();
  assert.equal(compileJsonata('model = ', c, ['when']), undefined);
  assert.equal(errors.length, 1);
  const [at, message, offset] = errors[0]!;
  assert.deepEqual(at, ['when']);
  assert.match(message, /^JSONata syntax error: /);
  assert.equal(typeof offset, 'number');
  const { c: c2, errors: e2 } = cx();
  compileJsonata('a + )', c2, ['x']);
  assert.equal(e2[0]![2], 4, 'the offset of ")" (0-based)');
});

test('recursion and ranges over 100,000 items are warned about at load; bounded ones are not', () => {
  const { c, warnings } = cx();
  assert.ok(compileJsonata('($f := function($n) { $n <= 1 ? 1 : $n * $f($n - 1) }; $f(5))', c, ['when']));
  assert.ok(compileJsonata('$count([1..200000])', c, ['tag']));
  assert.ok(compileJsonata('$count([1..100000]) + $count([0..5])', c, ['ok']));
  assert.deepEqual(warnings, [
    [['when'], 'JSONata expression may not terminate in time: function $f calls itself (recursion runs until the time budget stops it)'],
    [['tag'], 'JSONata expression may not terminate in time: range [1..200000] builds more than 100000 items'],
  ]);
});

test('runaway expressions are stopped by the guardrails and told apart from ordinary errors', async () => {
  const err = async (text: string, ms?: number) => {
    try {
      await run(text, {}, ms);
    } catch (e) {
      return e;
    }
    assert.fail(`${text} did not throw`);
  };
  const deep = await err('($f := function($n) { $f($n + 1) }; $f(0))');
  assert.equal(isRunaway(deep), true, `deep recursion: ${(deep as Error).message}`);
  const long = await err('$count([1..200000])');
  assert.equal(isRunaway(long), true, 'a sequence over its bound');
  const t0 = Date.now();
  const slow = await err('($f := function($n) { $n > 0 ? $f($n - 1) + $f($n - 1) : 0 }; $f(40))', 30);
  assert.equal(isRunaway(slow), true, 'the time budget');
  assert.ok(Date.now() - t0 < 5000);
  const ordinary = await err('$number("abc")');
  assert.equal(isRunaway(ordinary), false);
  assert.equal(isRunaway(new RangeError('Maximum call stack size exceeded')), true);
  assert.equal(isRunaway(null), false);
  assert.equal(DEFAULT_EXPRESSION_MS, 10);
});

test('regex literals run on RE2: flags, groups, global replace, match positions; a backreference fails', async () => {
  assert.equal(await run('$contains(model, /SONNET/i)', { model: 'claude-sonnet-4-6' }), true);
  assert.equal(await run('$contains(model, /SONNET/)', { model: 'claude-sonnet-4-6' }), false);
  assert.equal(await run("$replace(s, /(\\w+)@(\\w+)/, '$2 at $1')", { s: 'ann@corp and bob@lab' }), 'corp at ann and lab at bob');
  const m = (await run('$match(s, /b(.)/)', { s: 'abc abd' })) as Array<{ match: string; index: number; groups: string[] }>;
  assert.deepEqual(
    m.map((x) => [x.match, x.index, x.groups]),
    [
      ['bc', 1, ['c']],
      ['bd', 5, ['d']],
    ],
  );
  assert.equal(await run('$contains(s, /^b$/m)', { s: 'a\nb\nc' }), true, 'multiline');
  assert.equal(await run('$contains(s, /a.c/)', { s: 'a\nc' }), false, '. does not match a newline');
  const flags = cx();
  assert.equal(compileJsonata('$contains(s, /a.c/s)', flags.c, ['when']), undefined, 'JSONata takes the flags i and m only');
  await assert.rejects(
    async () => run('$contains(s, /(a)\\1/)', { s: 'aa' }),
    (e: unknown) => !isRunaway(e),
    'RE2 has no backreferences: the evaluation fails',
  );
});

test('the fast path answers without bindings; with bindings jsonata does ($context)', async () => {
  const { c } = cx();
  const e = compileJsonata('model = "m" and $count(messages) > 1', c, ['when'])!;
  assert.ok(e.fast, 'a plain comparison compiles to the fast path');
  assert.equal(evaluateExpression(e, { model: 'm', messages: [1, 2] }), true, 'answered synchronously');
  const bound = compileJsonata('$context.client', c, ['x'])!;
  assert.equal(await evaluateExpression(bound, {}, { context: { client: 'alice' } }), 'alice');
});

test('results and errors in messages: short, printable', () => {
  assert.equal(describeResult(undefined), 'nothing');
  assert.equal(describeResult('x'), '"x"');
  assert.equal(describeResult({ a: 1 }), '{"a":1}');
  const long = describeResult('y'.repeat(100));
  assert.equal(long, `"${'y'.repeat(59)}…`);
  assert.equal(describeResult('z'.repeat(58)), `"${'z'.repeat(58)}"`, 'exactly 60 characters is kept whole');
  assert.equal(evalErrorMessage(new RangeError('too much')), 'evaluation too deep (too much)');
  assert.equal(evalErrorMessage({ code: 'T2001', message: 'bad operand' }), 'T2001: bad operand');
  assert.equal(evalErrorMessage(new Error('plain')), 'plain');
  assert.equal(evalErrorMessage('just text'), 'just text');
});
