/**
 * Each action module on its own: what its parameters compile to (defaults included), what it leaves in the
 * decision (payloads, route, tags, headers, denial, body), the detail dry-run prints, what it claims and loses
 * to earlier rules, and the load errors for parameters that are out of bounds. The ordering semantics across
 * actions are in rules.test.ts; enforcement of throttles and budgets in admission.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { buildContext, type RequestContext } from '../src/rules/context.js';
import type { Decision } from '../src/rules/decision.js';
import { evaluate } from '../src/rules/evaluate.js';
import { compileRuleSources, type RuleSet } from '../src/rules/load.js';
import { formatIssue, LoadError } from '../src/validation.js';

const PROVIDERS = ['anthropic', 'cheap', 'backup'];

/** Rules with a 1 s budget per JSONata evaluation (not the gateway's 10 ms), so a busy machine's stall fails nothing here. */
function rules(yaml: string): RuleSet {
  return compileRuleSources([{ file: '50-test.yaml', text: `version: 1\nrules:\n${yaml}` }], PROVIDERS, '', { expressionMs: 1000 });
}

/** One rule `a` with the given actions (a YAML flow sequence), optionally a second rule `b`. */
function oneRule(actions: string, second?: string): RuleSet {
  return rules(`  - id: a\n    actions: ${actions}\n${second ? `  - id: b\n    actions: ${second}\n` : ''}`);
}

function ctx(over: { headers?: Record<string, string>; clientId?: string; body?: Record<string, unknown> } = {}): RequestContext {
  const body = over.body ?? { model: 'claude-sonnet-4-6', max_tokens: 100, messages: [{ role: 'user', content: 'hi' }] };
  return buildContext({ path: '/v1/messages', body, headers: over.headers ?? {}, bodyBytes: JSON.stringify(body).length, clientId: over.clientId });
}

function decide(rs: RuleSet, c: RequestContext = ctx()): Promise<Decision> {
  return evaluate(rs, c, 'anthropic');
}

/** The load errors of one rule with `actions`, formatted `file:line:col: message`. */
function loadErrors(actions: string): string[] {
  try {
    compileRuleSources([{ file: 'r.yaml', text: `version: 1\nrules:\n  - id: a\n    actions:\n      - ${actions}\n` }], PROVIDERS);
  } catch (err) {
    assert.ok(err instanceof LoadError);
    return err.issues.map(formatIssue);
  }
  return [];
}

describe('budget', () => {
  test('the payload is the parameters and the rule; dry-run detail names only what was given', async () => {
    const d = await decide(oneRule('[ { budget: { scope: client, usd: 50, per: day } } ]'));
    assert.deepEqual(d.budgets, [{ rule: 'a', scope: 'client', usd: 50, per: 'day' }]);
    assert.deepEqual(d.rules[0]!.actions, [{ action: 'budget', applied: true, detail: { scope: 'client', usd: 50, per: 'day' } }]);
  });

  test('block: false, notify and shape are carried to the payload and the detail', async () => {
    const d = await decide(oneRule('[ { budget: { scope: "tag:team", usd: 10, per: month, block: false, notify: [0.5, 1], shape: { at: 0.9, model: claude-haiku-4-5 }, warn_at: 0.8 } } ]'));
    assert.deepEqual(d.budgets, [{ rule: 'a', scope: 'tag:team', usd: 10, per: 'month', block: false, notify: [0.5, 1], shape: { at: 0.9, model: 'claude-haiku-4-5' }, warn_at: 0.8 }]);
    assert.deepEqual(d.rules[0]!.actions[0]!.detail, { scope: 'tag:team', usd: 10, per: 'month', block: false, notify: [0.5, 1], shape: { at: 0.9, model: 'claude-haiku-4-5' } });
  });

  test('block: true is the default and is not repeated in the detail', async () => {
    const d = await decide(oneRule('[ { budget: { scope: global, usd: 1, per: week, block: true } } ]'));
    assert.deepEqual(d.rules[0]!.actions[0]!.detail, { scope: 'global', usd: 1, per: 'week' });
  });

  test('budgets accumulate across rules, in rule order', async () => {
    const d = await decide(oneRule('[ { budget: { scope: user, usd: 5, per: day } } ]', '[ { budget: { scope: project, usd: 7, per: month } } ]'));
    assert.deepEqual(
      d.budgets.map((b) => [b.rule, b.scope, b.usd]),
      [
        ['a', 'user', 5],
        ['b', 'project', 7],
      ],
    );
  });

  const invalid: Array<[string, RegExp]> = [
    ['budget: { scope: team, usd: 5, per: day }', /scope must match/],
    ['budget: { scope: "tag:Team", usd: 5, per: day }', /scope must match/],
    ['budget: { scope: client, usd: 0, per: day }', /usd must be > 0/],
    ['budget: { scope: client, usd: 5, per: year }', /per must be one of: "day", "week", "month"; got the string "year"/],
    ['budget: { scope: client, usd: 5 }', /budget is missing the required key "per"/],
    ['budget: { scope: client, usd: 5, per: day, warn_at: 1 }', /warn_at must be < 1/],
    ['budget: { scope: client, usd: 5, per: day, notify: [] }', /notify must NOT have fewer than 1 items/],
    ['budget: { scope: client, usd: 5, per: day, notify: [0.5, 0.5] }', /notify must not contain duplicates|notify.*duplicate/],
    ['budget: { scope: client, usd: 5, per: day, notify: [1.5] }', /notify\[0\] must be <= 1/],
    ['budget: { scope: client, usd: 5, per: day, shape: { at: 0.9 } }', /shape is missing the required key "model"/],
    ['budget: { scope: client, usd: 5, per: day, shape: { at: 0, model: m } }', /shape\.at must be > 0/],
  ];
  for (const [params, expected] of invalid) {
    test(`refused at load: ${params}`, () => {
      const errors = loadErrors(params);
      assert.equal(errors.length, 1, errors.join('\n'));
      assert.match(errors[0]!, /^r\.yaml:5:\d+: /);
      assert.match(errors[0]!, expected);
    });
  }
});

describe('throttle', () => {
  test('burst defaults to 1 and shadow to false; the payload carries the rule', async () => {
    const d = await decide(oneRule('[ { throttle: { scope: session, requests_per_minute: 10 } } ]'));
    assert.deepEqual(d.throttles, [{ rule: 'a', scope: 'session', requests_per_minute: 10, burst: 1, shadow: false }]);
    assert.deepEqual(d.rules[0]!.actions, [{ action: 'throttle', applied: true, detail: { scope: 'session', shadow: false } }]);
  });

  test('every limit, burst and shadow as given', async () => {
    const d = await decide(
      oneRule('[ { throttle: { scope: "tag:team", requests_per_minute: 1, input_tokens_per_minute: 2, output_tokens_per_minute: 3, concurrent: 4, burst: 2.5, shadow: true } } ]'),
    );
    assert.deepEqual(d.throttles, [{ rule: 'a', scope: 'tag:team', requests_per_minute: 1, input_tokens_per_minute: 2, output_tokens_per_minute: 3, concurrent: 4, burst: 2.5, shadow: true }]);
    assert.deepEqual(d.rules[0]!.actions[0]!.detail, { scope: 'tag:team', shadow: true });
  });

  test('throttles accumulate: a later rule adds its own', async () => {
    const d = await decide(oneRule('[ { throttle: { scope: client, concurrent: 2 } } ]', '[ { throttle: { scope: global, requests_per_minute: 100 } } ]'));
    assert.deepEqual(
      d.throttles.map((t) => t.rule),
      ['a', 'b'],
    );
    assert.equal(d.rules[1]!.actions[0]!.applied, true);
  });

  const invalid: Array<[string, RegExp]> = [
    ['throttle: { scope: client }', /throttle must match a schema in anyOf|at least one|requests_per_minute/],
    ['throttle: { scope: ip, requests_per_minute: 5 }', /scope must match/],
    ['throttle: { scope: client, requests_per_minute: 0 }', /requests_per_minute must be >= 1/],
    ['throttle: { scope: client, concurrent: 1.5 }', /concurrent must be an integer|concurrent must be integer/],
    ['throttle: { scope: client, concurrent: 1, burst: 0 }', /burst must be > 0/],
    ['throttle: { scope: client, concurrent: 1, shadow: "yes" }', /shadow must be true or false/],
  ];
  for (const [params, expected] of invalid) {
    test(`refused at load: ${params}`, () => {
      const errors = loadErrors(params);
      assert.ok(errors.length >= 1, 'expected a load error');
      assert.match(errors.join('\n'), expected);
    });
  }
});

describe('deny', () => {
  test('status defaults to 403; the denial names the rule and carries the message', async () => {
    const d = await decide(oneRule('[ { deny: { message: "not here" } } ]'));
    assert.deepEqual(d.denied, { rule: 'a', status: 403, message: 'not here' });
    assert.deepEqual(d.rules[0]!.actions, [{ action: 'deny', applied: true, detail: { status: 403 } }]);
  });

  test('a given status is kept; actions after the deny are not applied', async () => {
    const d = await decide(oneRule('[ { deny: { status: 451, message: "blocked" } }, { tag_billing: { x: y } } ]'));
    assert.deepEqual(d.denied, { rule: 'a', status: 451, message: 'blocked' });
    assert.deepEqual(d.rules[0]!.actions[1], { action: 'tag_billing', applied: false });
    assert.deepEqual(d.tags, {});
  });

  for (const [params, expected] of [
    ['deny: { status: 200, message: x }', /status must be >= 400/],
    ['deny: { status: 600, message: x }', /status must be <= 599/],
    ['deny: { message: "" }', /deny\.message must NOT have fewer than 1 characters/],
    ['deny: { status: 403 }', /deny is missing the required key "message"/],
  ] as Array<[string, RegExp]>) {
    test(`refused at load: ${params}`, () => assert.match(loadErrors(params).join('\n'), expected));
  }
});

describe('transform', () => {
  test('the result is a copy: the new body is not the object the expression returned, nor the request body', async () => {
    const c = ctx();
    const d = await decide(oneRule('[ { transform: { expr: "$" } } ]'), c);
    assert.equal(d.bodyChanged, true);
    assert.notEqual(d.body, c.body);
    assert.deepEqual(d.body, c.body);
    assert.deepEqual(d.rules[0]!.actions, [{ action: 'transform', applied: true }]);
  });

  test('the request context is $context', async () => {
    const d = await decide(oneRule(`[ { transform: { expr: "$merge([$, {'metadata': {'user_id': $context.client.id}}])" } } ]`), ctx({ clientId: 'ci' }));
    assert.deepEqual(d.body.metadata, { user_id: 'ci' });
  });

  for (const [expr, got] of [
    ['null', 'null'],
    ['messages', '[{"role":"user","content":"hi"}]'],
    ['model', '"claude-sonnet-4-6"'],
    ['max_tokens', '100'],
    ['nothing_here', 'nothing'],
  ]) {
    test(`a result that is not an object is an error naming what it got: ${expr}`, async () => {
      const c = ctx();
      const d = await decide(oneRule(`[ { transform: { expr: "${expr}" } } ]`), c);
      assert.deepEqual(d.error, { rule: 'a', message: `transform must return an object (the new request body), got ${got}` });
      assert.deepEqual(d.rules[0]!.actions, [{ action: 'transform', applied: false }]);
      assert.equal(d.bodyChanged, false);
      assert.equal(d.body, c.body);
    });
  }

  test('an expression that throws is an error naming the rule and the JSONata error', async () => {
    const d = await decide(oneRule(`[ { transform: { expr: "$error('no way')" } } ]`));
    assert.equal(d.error?.rule, 'a');
    assert.match(d.error!.message, /^transform expression failed: .*no way/);
    assert.equal(d.rules[0]!.actions[0]!.applied, false);
  });
});

describe('tag_billing', () => {
  test('fixed values, and expression results that are numbers or booleans, become strings; the detail lists what was set', async () => {
    const d = await decide(oneRule(`[ { tag_billing: { team: search, n: { expr: "body.max_tokens" }, s: { expr: "stream = false" } } } ]`));
    assert.deepEqual(d.tags, { team: 'search', n: '100', s: 'true' });
    assert.deepEqual(d.rules[0]!.actions, [{ action: 'tag_billing', applied: true, detail: { team: 'search', n: '100', s: 'true' } }]);
    assert.deepEqual(d.warnings, []);
  });

  test('an expression that yields an object or an array leaves the tag unset with a warning naming the tag', async () => {
    const d = await decide(oneRule(`[ { tag_billing: { o: { expr: "messages[0]" }, ok: fixed } } ]`));
    assert.deepEqual(d.tags, { ok: 'fixed' });
    assert.deepEqual(d.warnings, [{ rule: 'a', message: 'tag_billing.o: expression returned {"role":"user","content":"hi"}, not a string; tag left unset' }]);
    assert.deepEqual(d.rules[0]!.actions[0]!.detail, { ok: 'fixed' });
  });

  test('an expression that yields nothing leaves the tag unset without a warning', async () => {
    const d = await decide(oneRule(`[ { tag_billing: { none: { expr: "headers.'x-absent'" } } } ]`));
    assert.deepEqual(d.tags, {});
    assert.deepEqual(d.warnings, []);
    assert.deepEqual(d.rules[0]!.actions[0], { action: 'tag_billing', applied: false, detail: {} });
  });

  test('an expression that throws is a warning; the other tags are still set; the request goes on', async () => {
    const d = await decide(oneRule(`[ { tag_billing: { bad: { expr: "$error('boom')" }, good: yes } } ]`));
    assert.deepEqual(d.tags, { good: 'yes' });
    assert.equal(d.error, null);
    assert.equal(d.warnings.length, 1);
    assert.equal(d.warnings[0]!.rule, 'a');
    assert.match(d.warnings[0]!.message, /^tag_billing\.bad: expression failed: .*boom/);
  });

  test('a runaway expression (too deep) stops evaluation with an error naming the tag', async () => {
    const d = await decide(oneRule(`[ { tag_billing: { deep: { expr: "($f := function($n) { $f($n + 1) }; $f(0))" } } } ]`, '[ { tag_billing: { later: x } } ]'));
    assert.equal(d.error?.rule, 'a');
    assert.match(d.error!.message, /^tag_billing\.deep: expression stopped: /);
    assert.equal(d.rules[1]!.matched, false);
  });

  test('each tag is its own setting: an earlier rule keeps its value, the later rule sets the others', async () => {
    const d = await decide(oneRule('[ { tag_billing: { team: first } } ]', '[ { tag_billing: { team: second, cc: "42" } } ]'));
    assert.deepEqual(d.tags, { team: 'first', cc: '42' });
    assert.deepEqual(d.rules[1]!.actions[0], { action: 'tag_billing', applied: true, shadowed: [{ setting: 'tag:team', by: 'a' }], detail: { cc: '42' } });
  });

  test('a fixed tag always writes its setting (a later rule that only sets it is dead); an expression tag may not', () => {
    const fixed = oneRule('[ { tag_billing: { team: a } } ]', '[ { tag_billing: { team: b } } ]');
    assert.match(fixed.warnings.map(formatIssue).join('\n'), /rule "b" can never take effect/);
    const expr = oneRule(`[ { tag_billing: { team: { expr: "headers.'x-team'" } } } ]`, '[ { tag_billing: { team: b } } ]');
    assert.deepEqual(expr.warnings, []);
  });

  for (const [params, expected] of [
    ['tag_billing: {}', /tag_billing must have at least one key$/],
    ['tag_billing: { Team: x }', /^r\.yaml:5:24: rules\[0\]\.actions\[0\]\.tag_billing has a key "Team" that is not allowed: a name must match \^\[a-z\]\[a-z0-9_\]\*\$$/],
    ['tag_billing: { team: { value: x } }', /tag_billing\.team has the wrong form: expected a string, or a map \{expr: JSONata\}; got a map/],
    [
      'tag_billing: { team: 5 }',
      /tag_billing\.team has the wrong form: expected a string, or a map \{expr: JSONata\}; got number 5 \(A fixed tag value, or \{expr: "<JSONata over the request context>"\}\.\)$/,
    ],
  ] as Array<[string, RegExp]>) {
    test(`refused at load: ${params}`, () => assert.match(loadErrors(params).join('\n'), expected));
  }
});

describe('route_to', () => {
  test('provider, model and fallback; string fallbacks become {provider}', async () => {
    const d = await decide(oneRule('[ { route_to: { provider: cheap, model: m-1, fallback: [backup, { provider: anthropic, model: m-2 }] } } ]'));
    assert.deepEqual(d.route, {
      provider: 'cheap',
      model: 'm-1',
      requested_model: 'claude-sonnet-4-6',
      fallback: [{ provider: 'backup' }, { provider: 'anthropic', model: 'm-2' }],
      rule: 'a',
    });
    assert.deepEqual(d.rules[0]!.actions[0]!.detail, { provider: 'cheap', model: 'm-1', fallback: [{ provider: 'backup' }, { provider: 'anthropic', model: 'm-2' }] });
  });

  test('without a model the requested model is kept, and a later rule may still rename it', async () => {
    const plain = await decide(oneRule('[ { route_to: { provider: cheap } } ]'));
    assert.equal(plain.route.model, 'claude-sonnet-4-6');
    assert.deepEqual(plain.route.fallback, []);
    const later = await decide(oneRule('[ { route_to: { provider: cheap } } ]', '[ { route_to: { provider: backup, model: renamed } } ]'));
    assert.equal(later.route.provider, 'cheap');
    assert.equal(later.route.model, 'renamed');
    assert.equal(later.route.rule, 'a');
    assert.deepEqual(later.rules[1]!.actions[0]!.shadowed, [{ setting: 'route', by: 'a' }]);
    assert.equal(later.rules[1]!.actions[0]!.applied, true);
  });

  test('a later route with a model loses both settings to an earlier one that set both', async () => {
    const d = await decide(oneRule('[ { route_to: { provider: cheap, model: x } } ]', '[ { route_to: { provider: backup, model: y } } ]'));
    assert.deepEqual([d.route.provider, d.route.model], ['cheap', 'x']);
    assert.deepEqual(d.rules[1]!.actions[0], {
      action: 'route_to',
      applied: false,
      shadowed_by: 'a',
      shadowed: [
        { setting: 'route', by: 'a' },
        { setting: 'model', by: 'a' },
      ],
      detail: { provider: 'backup', model: 'y', fallback: [] },
    });
  });

  test('unknown providers, main and fallback, each an error at its own position listing the configured ones', () => {
    const errors = loadErrors('route_to: { provider: gone, fallback: [backup, nowhere] }');
    assert.deepEqual(errors, [
      'r.yaml:5:31: rule "a": unknown provider "gone"; the config defines: anthropic, cheap, backup',
      'r.yaml:5:56: rule "a": unknown fallback provider "nowhere"; the config defines: anthropic, cheap, backup',
    ]);
  });

  for (const [params, expected] of [
    ['route_to: { model: x }', /route_to is missing the required key "provider"/],
    ['route_to: { provider: "" }', /route_to\.provider must NOT have fewer than 1 characters/],
    ['route_to: { provider: cheap, fallback: [{ model: x }] }', /fallback\[0\]/],
  ] as Array<[string, RegExp]>) {
    test(`refused at load: ${params}`, () => assert.match(loadErrors(params).join('\n'), expected));
  }
});

describe('set_headers and remove_headers', () => {
  test('names are lower-cased; set and removed headers reach the decision; the detail is what the rule asked', async () => {
    const d = await decide(oneRule('[ { set_headers: { X-Team: search, x-env: prod } }, { remove_headers: [X-Debug] } ]'));
    assert.deepEqual(d.headers, { set: { 'x-team': 'search', 'x-env': 'prod' }, remove: ['x-debug'] });
    assert.deepEqual(d.rules[0]!.actions, [
      { action: 'set_headers', applied: true, detail: { 'x-team': 'search', 'x-env': 'prod' } },
      { action: 'remove_headers', applied: true, detail: ['x-debug'] },
    ]);
  });

  test('one setting per header name, shared by both actions: the first rule wins, whichever action it used', async () => {
    const d = await decide(oneRule('[ { remove_headers: [x-team] } ]', '[ { set_headers: { x-team: late, x-other: ok } } ]'));
    assert.deepEqual(d.headers, { set: { 'x-other': 'ok' }, remove: ['x-team'] });
    assert.deepEqual(d.rules[1]!.actions[0]!.shadowed, [{ setting: 'header:x-team', by: 'a' }]);
    const back = await decide(oneRule('[ { set_headers: { X-Team: early } } ]', '[ { remove_headers: [x-TEAM] } ]'));
    assert.deepEqual(back.headers, { set: { 'x-team': 'early' }, remove: [] });
    assert.equal(back.rules[1]!.actions[0]!.shadowed_by, 'a');
  });

  for (const name of ['Authorization', 'x-api-key', 'Host', 'content-length', 'connection', 'transfer-encoding']) {
    test(`"${name}" cannot be set or removed by a rule`, () => {
      const msg = `rule "a": header "${name}" cannot be changed by a rule (credentials, host, content-length and hop-by-hop headers are managed by the gateway)`;
      const set = loadErrors(`set_headers: { ${name}: x }`);
      assert.equal(set.length, 1);
      assert.ok(set[0]!.endsWith(msg), set[0]);
      const removed = loadErrors(`remove_headers: [ok-header, ${name}]`);
      assert.equal(removed.length, 1);
      assert.ok(removed[0]!.endsWith(msg), removed[0]);
    });
  }

  for (const [params, expected] of [
    ['set_headers: {}', /set_headers must have at least one key$/],
    ['set_headers: { "x a": b }', /^r\.yaml:5:24: rules\[0\]\.actions\[0\]\.set_headers has a key "x a" that is not allowed: a name must match \^\[A-Za-z0-9/],
    ['set_headers: { x-a: 5 }', /must be a string/],
    ['remove_headers: []', /remove_headers must NOT have fewer than 1 items/],
    ['remove_headers: ["bad name"]', /must match/],
  ] as Array<[string, RegExp]>) {
    test(`refused at load: ${params}`, () => assert.match(loadErrors(params).join('\n'), expected));
  }
});
