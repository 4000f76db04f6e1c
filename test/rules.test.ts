/**
 * The rules engine as pure functions: every matcher, every action, the ordering and shadowing
 * semantics (first writer wins, deny, final), dead-rule warnings, and load errors with exact
 * line and column for broken files.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { buildContext, sessionIdFromMetadata, type RequestContext } from '../src/rules/context.js';
import { evaluate } from '../src/rules/evaluate.js';
import { compileRuleSources, type RuleSet } from '../src/rules/load.js';
import { formatIssue, LoadError } from '../src/validation.js';

const PROVIDERS = ['anthropic', 'cheap', 'backup'];

/**
 * Rules compiled with a 1 s budget per JSONata evaluation, not the gateway's 10 ms: a stall of a busy CI machine
 * must not fail a test about something else (the guardrails are tested in rule-faults.test.ts).
 */
function rules(yaml: string, file = '50-test.yaml'): RuleSet {
  return compileRuleSources([{ file, text: `version: 1\nrules:\n${yaml}` }], PROVIDERS, '', { expressionMs: 1000 });
}

function ctx(over: { model?: string; headers?: Record<string, string>; clientId?: string; body?: Record<string, unknown> } = {}): RequestContext {
  const body = over.body ?? { model: over.model ?? 'claude-sonnet-4-6', max_tokens: 100, messages: [{ role: 'user', content: 'hi' }] };
  return buildContext({ path: '/v1/messages', body, headers: over.headers ?? {}, bodyBytes: JSON.stringify(body).length, clientId: over.clientId });
}

function loadErrors(text: string, providers = PROVIDERS): string[] {
  try {
    compileRuleSources([{ file: 'r.yaml', text }], providers);
  } catch (err) {
    assert.ok(err instanceof LoadError);
    return err.issues.map(formatIssue);
  }
  return [];
}

describe('matchers', () => {
  test('model: a glob or a list of globs', async () => {
    const rs = rules(
      `  - id: haiku\n    match: { model: "claude-haiku-*" }\n    actions: [ { route_to: { provider: cheap } } ]\n  - id: list\n    match: { model: [claude-opus-4-8, "claude-sonnet-*"] }\n    actions: [ { tag_billing: { tier: big } } ]\n`,
    );
    const h = await evaluate(rs, ctx({ model: 'claude-haiku-4-5' }), 'anthropic');
    assert.equal(h.route.provider, 'cheap');
    assert.equal(h.rules[1]!.matched, false);
    assert.match(h.rules[1]!.reason!, /model "claude-haiku-4-5" does not match claude-opus-4-8, claude-sonnet-\*/);
    const s = await evaluate(rs, ctx({ model: 'claude-sonnet-4-6' }), 'anthropic');
    assert.equal(s.route.provider, 'anthropic');
    assert.equal(s.route.rule, null);
    assert.deepEqual(s.tags, { tier: 'big' });
  });

  test('key: client id globs', async () => {
    const rs = rules(`  - id: ci\n    match: { key: ["ci-*", bot] }\n    actions: [ { tag_billing: { team: infra } } ]\n`);
    assert.deepEqual((await evaluate(rs, ctx({ clientId: 'ci-runner-3' }), 'anthropic')).tags, { team: 'infra' });
    assert.deepEqual((await evaluate(rs, ctx({ clientId: 'bot' }), 'anthropic')).tags, { team: 'infra' });
    const no = await evaluate(rs, ctx({ clientId: 'alice' }), 'anthropic');
    assert.deepEqual(no.tags, {});
    assert.match(no.rules[0]!.reason!, /client "alice" does not match/);
  });

  test('header: "*" present, /regex/flags, exact value; names case-insensitive', async () => {
    const rs = rules(`  - id: h\n    match:\n      header: { X-Claude-Code-Session-Id: "*", x-team: "/^plat/i", x-env: prod }\n    actions: [ { tag_billing: { ok: "yes" } } ]\n`);
    const good = { 'x-claude-code-session-id': 's1', 'x-team': 'PLATFORM', 'x-env': 'prod' };
    assert.deepEqual((await evaluate(rs, ctx({ headers: good }), 'anthropic')).tags, { ok: 'yes' });
    const cases: Array<[Record<string, string>, RegExp]> = [
      [{ ...good, 'x-claude-code-session-id': undefined as never }, /x-claude-code-session-id is absent/],
      [{ ...good, 'x-team': 'infra' }, /x-team is not matching \/\^plat\/i/],
      [{ ...good, 'x-env': 'Prod' }, /x-env is not equal to "prod"/],
    ];
    for (const [headers, reason] of cases) {
      const d = await evaluate(rs, ctx({ headers: JSON.parse(JSON.stringify(headers)) as Record<string, string> }), 'anthropic');
      assert.equal(d.rules[0]!.matched, false);
      assert.match(d.rules[0]!.reason!, reason);
    }
  });

  test('when: JSONata over the context; errors and non-booleans are no match with a warning', async () => {
    const rs = rules(
      [
        `  - id: few-messages\n    match: { when: "$count(messages) < 2 and client.id = 'alice' and session.id = 'sess-1'" }\n    actions: [ { tag_billing: { size: small } } ]`,
        `  - id: throws\n    match: { when: "$error('boom')" }\n    actions: [ { tag_billing: { a: b } } ]`,
        `  - id: not-bool\n    match: { when: "model" }\n    actions: [ { tag_billing: { c: d } } ]`,
        '',
      ].join('\n'),
    );
    const d = await evaluate(rs, ctx({ clientId: 'alice', headers: { 'x-claude-code-session-id': 'sess-1' } }), 'anthropic');
    assert.deepEqual(d.tags, { size: 'small' });
    assert.equal(d.rules[1]!.matched, false);
    assert.match(d.rules[1]!.reason!, /when failed: .*boom/);
    assert.equal(d.rules[2]!.matched, false);
    assert.match(d.rules[2]!.reason!, /not true or false/);
    assert.deepEqual(
      d.warnings.map((w) => w.rule),
      ['throws', 'not-bool'],
    );
  });

  test('globs expand braces; a value that only looks like a regex is a literal; regex flags are only those given', async () => {
    const rs = rules(
      [
        `  - id: brace\n    match: { model: "claude-{haiku,sonnet}-*" }\n    actions: [ { tag_billing: { brace: "1" } } ]`,
        `  - id: not-regex\n    match: { header: { x-a: "a/b/", x-b: "/a/x" } }\n    actions: [ { tag_billing: { literal: "1" } } ]`,
        `  - id: case\n    match: { header: { x-c: "/abc/" } }\n    actions: [ { tag_billing: { cased: "1" } } ]`,
        '',
      ].join('\n'),
    );
    const hit = await evaluate(rs, ctx({ model: 'claude-haiku-4-5', headers: { 'x-a': 'a/b/', 'x-b': '/a/x', 'x-c': 'xabcx' } }), 'anthropic');
    assert.deepEqual(hit.tags, { brace: '1', literal: '1', cased: '1' });
    const miss = await evaluate(rs, ctx({ model: 'claude-opus-4-1', headers: { 'x-a': 'zbz', 'x-b': 'cat', 'x-c': 'ABC' } }), 'anthropic');
    assert.deepEqual(miss.tags, {}, 'no brace alternative, literal values compared as such, /abc/ is case-sensitive');
    assert.match(miss.rules[1]!.reason!, /x-a is not equal to "a\/b\/"/);
    assert.match(miss.rules[2]!.reason!, /x-c is not matching \/abc\//);
  });

  test('cheap conditions run before `when`: a request the model rules out never evaluates the expression', async () => {
    const rs = rules(`  - id: guarded\n    match: { when: "$error('evaluated')", model: "nope-*" }\n    actions: [ { tag_billing: { s: "1" } } ]\n`);
    const d = await evaluate(rs, ctx(), 'anthropic');
    assert.match(d.rules[0]!.reason!, /model "claude-sonnet-4-6" does not match nope-\*/);
    assert.deepEqual(d.warnings, [], 'the when expression was not run');
  });

  test('key reasons name the client; a `when` that yields nothing is no match', async () => {
    const rs = rules(
      `  - id: k\n    match: { key: "ci-*" }\n    actions: [ { tag_billing: { k: "1" } } ]\n  - id: nothing\n    match: { when: "body.no_such_field" }\n    actions: [ { tag_billing: { n: "1" } } ]\n`,
    );
    const d = await evaluate(rs, ctx({ clientId: 'bob' }), 'anthropic');
    assert.equal(d.rules[0]!.reason, 'client "bob" does not match ci-*');
    assert.match(d.rules[1]!.reason!, /^when is nothing/);
    assert.deepEqual(d.tags, {});
  });

  test('the exact model ids of a model condition are what GET /v1/models can list', () => {
    const rs = rules(`  - id: m\n    match: { model: [claude-opus-4-1, "claude-3-*", "claude-{a,b}", "claude-?x"] }\n    actions: [ { tag_billing: { m: "1" } } ]\n`);
    assert.deepEqual(rs.rules[0]!.matchers[0]!.literals, ['claude-opus-4-1']);
    assert.equal(rs.rules[0]!.matchers[0]!.name, 'model');
  });

  test('all conditions of a match must hold; the first failing one is reported', async () => {
    const rs = rules(`  - id: both\n    match: { model: "claude-*", when: "stream = true" }\n    actions: [ { tag_billing: { s: "1" } } ]\n`);
    const d = await evaluate(rs, ctx(), 'anthropic');
    assert.equal(d.rules[0]!.matched, false);
    assert.match(d.rules[0]!.reason!, /when is false/);
  });
});

describe('ordering and shadowing', () => {
  test('first writer wins per setting; later writers are reported as shadowed', async () => {
    const rs = rules(
      [
        '  - id: first',
        '    actions:',
        '      - route_to: { provider: cheap, fallback: [backup] }',
        '      - tag_billing: { team: platform }',
        '      - set_headers: { x-route: first }',
        '  - id: second',
        '    actions:',
        '      - route_to: { provider: backup, model: claude-haiku-4-5 }',
        '      - tag_billing: { team: infra, project: apollo }',
        '      - remove_headers: [x-route]',
        '',
      ].join('\n'),
    );
    const d = await evaluate(rs, ctx(), 'anthropic');
    assert.deepEqual(d.route, { provider: 'cheap', model: 'claude-haiku-4-5', requested_model: 'claude-sonnet-4-6', fallback: [{ provider: 'backup' }], rule: 'first' });
    assert.deepEqual(d.tags, { team: 'platform', project: 'apollo' });
    assert.deepEqual(d.headers, { set: { 'x-route': 'first' }, remove: [] });
    const second = d.rules[1]!.actions;
    assert.deepEqual(second[0], { action: 'route_to', applied: true, shadowed: [{ setting: 'route', by: 'first' }], detail: { provider: 'backup', model: 'claude-haiku-4-5', fallback: [] } });
    assert.equal(second[1]!.applied, true);
    assert.deepEqual(second[1]!.shadowed, [{ setting: 'tag:team', by: 'first' }]);
    assert.equal(second[2]!.applied, false);
    assert.equal(second[2]!.shadowed_by, 'first');
    // A model rewrite is the route's: each provider's adapter writes it into what it sends (only the
    // model's bytes change); the body itself is untouched.
    assert.equal(d.bodyChanged, false);
    assert.equal(d.route.model, 'claude-haiku-4-5');
  });

  test('deny ends evaluation; later rules are not evaluated', async () => {
    const rs = rules(
      `  - id: tag\n    actions: [ { tag_billing: { a: "1" } } ]\n  - id: no-opus\n    match: { model: "claude-opus-*" }\n    actions:\n      - deny: { status: 403, message: "Opus is not allowed here" }\n      - tag_billing: { b: "2" }\n  - id: later\n    actions: [ { route_to: { provider: cheap } } ]\n`,
    );
    const d = await evaluate(rs, ctx({ model: 'claude-opus-4-8' }), 'anthropic');
    assert.deepEqual(d.denied, { rule: 'no-opus', status: 403, message: 'Opus is not allowed here' });
    assert.deepEqual(d.tags, { a: '1' });
    assert.equal(d.rules[1]!.actions[1]!.applied, false);
    assert.equal(d.rules[2]!.matched, false);
    assert.match(d.rules[2]!.reason!, /not evaluated: rule "no-opus" denied/);
    const ok = await evaluate(rs, ctx({ model: 'claude-sonnet-4-6' }), 'anthropic');
    assert.equal(ok.denied, null);
    assert.equal(ok.route.provider, 'cheap');
  });

  test('final: true ends evaluation after that rule', async () => {
    const rs = rules(
      `  - id: stop\n    final: true\n    match: { model: "claude-haiku-*" }\n    actions: [ { tag_billing: { t: haiku } } ]\n  - id: after\n    actions: [ { tag_billing: { u: all } } ]\n`,
    );
    assert.deepEqual((await evaluate(rs, ctx({ model: 'claude-haiku-4-5' }), 'anthropic')).tags, { t: 'haiku' });
    assert.deepEqual((await evaluate(rs, ctx({ model: 'claude-sonnet-4-6' }), 'anthropic')).tags, { u: 'all' });
  });

  test('enabled: false removes a rule', async () => {
    const rs = rules(`  - id: off\n    enabled: false\n    actions: [ { route_to: { provider: cheap } } ]\n`);
    assert.equal(rs.rules.length, 0);
    assert.equal((await evaluate(rs, ctx(), 'anthropic')).route.provider, 'anthropic');
  });

  test('rules across files run in file-name order', async () => {
    const rs = compileRuleSources(
      [
        { file: '10-a.yaml', text: 'version: 1\nrules:\n  - id: a\n    actions: [ { tag_billing: { who: a } } ]\n' },
        { file: '20-b.yaml', text: 'version: 1\nrules:\n  - id: b\n    actions: [ { tag_billing: { who: b } } ]\n' },
      ],
      PROVIDERS,
    );
    const d = await evaluate(rs, ctx(), 'anthropic');
    assert.deepEqual(d.tags, { who: 'a' });
    assert.equal(d.rules[1]!.actions[0]!.shadowed_by, 'a');
  });
});

describe('actions', () => {
  test('tag_billing with {expr}: evaluated per request; nothing leaves the tag unset', async () => {
    const rs = rules(`  - id: t\n    actions: [ { tag_billing: { team: { expr: "headers.'x-team'" }, hour: { expr: "time.hour" } } } ]\n`);
    const d = await evaluate(rs, ctx({ headers: { 'x-team': 'search' } }), 'anthropic');
    assert.equal(d.tags.team, 'search');
    assert.match(d.tags.hour!, /^\d+$/);
    const none = await evaluate(rs, ctx(), 'anthropic');
    assert.equal(none.tags.team, undefined);
  });

  test('transform returns the new body; transforms accumulate; the original body object is never mutated', async () => {
    const rs = rules(
      `  - id: cap\n    actions: [ { transform: { expr: "$merge([$, {'max_tokens': 50}])" } } ]\n  - id: mark\n    actions: [ { transform: { expr: "$merge([$, {'metadata': {'user_id': $context.client.id}}])" } } ]\n`,
    );
    const c = ctx({ clientId: 'alice' });
    const original = JSON.stringify(c.body);
    const d = await evaluate(rs, c, 'anthropic');
    assert.equal(d.bodyChanged, true);
    assert.equal(d.body.max_tokens, 50);
    assert.deepEqual(d.body.metadata, { user_id: 'alice' });
    assert.equal(JSON.stringify(c.body), original);
  });

  test('a transform that does not return an object is an error naming the rule', async () => {
    const rs = rules(`  - id: broken\n    actions: [ { transform: { expr: "messages" } } ]\n  - id: later\n    actions: [ { tag_billing: { x: y } } ]\n`);
    const d = await evaluate(rs, ctx(), 'anthropic');
    assert.equal(d.error?.rule, 'broken');
    assert.match(d.error!.message, /must return an object/);
    assert.equal(d.rules[1]!.matched, false);
  });

  test('a decision that changes nothing forwards the very same body object', async () => {
    const rs = rules(`  - id: t\n    actions: [ { tag_billing: { a: b } }, { set_headers: { x-a: b } } ]\n`);
    const c = ctx();
    const d = await evaluate(rs, c, 'anthropic');
    assert.equal(d.bodyChanged, false);
    assert.equal(d.body, c.body);
  });
});

describe('context', () => {
  test('session id from the header, else from metadata.user_id (JSON string or legacy form)', () => {
    const body = { metadata: { user_id: JSON.stringify({ device_id: 'd', account_uuid: 'a', session_id: 'from-meta' }) } };
    assert.equal(buildContext({ path: '/', body, headers: {}, bodyBytes: 10 }).session.id, 'from-meta');
    assert.equal(buildContext({ path: '/', body, headers: { 'x-claude-code-session-id': 'from-header' }, bodyBytes: 10 }).session.id, 'from-header');
    assert.equal(sessionIdFromMetadata({ metadata: { user_id: 'user_abc_account_123_session_0f0e0d0c-1111-2222-3333-444455556666' } }), '0f0e0d0c-1111-2222-3333-444455556666');
    assert.equal(sessionIdFromMetadata({ metadata: { user_id: '{not json' } }), null);
  });

  test('credential headers are not visible to rules; the client id is a fingerprint of the credential', () => {
    const c = buildContext({ path: '/', body: {}, headers: { 'x-api-key': 'sk-secret', authorization: 'Bearer t', 'x-team': 'a' }, bodyBytes: 0 });
    assert.deepEqual(Object.keys(c.headers), ['x-team']);
    assert.match(c.client.id, /^fp-[0-9a-f]{10}$/);
    assert.ok(!JSON.stringify(c).includes('sk-secret'));
    // Not even through the project header, nor in the order of the context's members (headers and time are made on first read).
    const p = buildContext({ path: '/', body: {}, headers: { 'x-api-key': 'sk-secret' }, bodyBytes: 0, projectHeader: 'x-api-key', now: new Date('2026-11-30T13:00:00Z') });
    assert.equal(p.project, null);
    assert.deepEqual(Object.keys(p), ['path', 'model', 'stream', 'body', 'messages', 'headers', 'client', 'session', 'user', 'project', 'estimate', 'time']);
    assert.deepEqual(p.time, { hour: 13, weekday: 1, iso: '2026-11-30T13:00:00.000Z' });
  });
});

describe('dead rules', () => {
  test('a rule whose every action is shadowed by an earlier unconditional rule is warned about', () => {
    const rs = rules(
      `  - id: everything\n    actions: [ { route_to: { provider: cheap } } ]\n  - id: haiku\n    match: { model: "claude-haiku-*" }\n    actions: [ { route_to: { provider: backup } } ]\n  - id: tags\n    actions: [ { tag_billing: { a: b } } ]\n`,
    );
    assert.deepEqual(rs.warnings.map(formatIssue), ['50-test.yaml:5:9: warning: rule "haiku" can never take effect: everything it sets is already set by "everything", which matches every request']);
  });

  test('everything after an unconditional final or deny rule is warned about', () => {
    const rs = rules(`  - id: stop\n    final: true\n    actions: [ { tag_billing: { a: b } } ]\n  - id: never\n    actions: [ { tag_billing: { c: d } } ]\n`);
    assert.match(formatIssue(rs.warnings[0]!), /rule "never" can never take effect: rule "stop" matches every request and ends evaluation/);
  });
});

describe('load errors carry file:line:col and say what was expected', () => {
  const cases: Array<[string, string, RegExp]> = [
    ['bad indentation', 'version: 1\nrules:\n  - id: a\n   actions: []\n', /^r\.yaml:4:1: YAML: /],
    [
      'unknown key',
      'version: 1\nrules:\n  - id: a\n    mtach: { model: x }\n    actions: [ { tag_billing: { a: b } } ]\n',
      /^r\.yaml:4:5: unknown key "mtach" in rules\[0\]; expected one of: id, description, enabled, final, match, actions$/,
    ],
    [
      'unknown action',
      'version: 1\nrules:\n  - id: a\n    actions:\n      - rout_to: { provider: anthropic }\n',
      /^r\.yaml:5:9: unknown key "rout_to" in rules\[0\]\.actions\[0\]; expected one of: route_to, /,
    ],
    ['wrong type', 'version: 1\nrules:\n  - id: a\n    final: "yes"\n    actions: [ { tag_billing: { a: b } } ]\n', /^r\.yaml:4:12: rules\[0\]\.final must be true or false, got the string "yes"$/],
    ['wrong version', 'version: 2\nrules: []\n', /^r\.yaml:1:10: version must be 1, got number 2$/],
    [
      'unknown provider',
      'version: 1\nrules:\n  - id: a\n    actions:\n      - route_to: { provider: nowhere }\n',
      /^r\.yaml:5:31: rule "a": unknown provider "nowhere"; the config defines: anthropic, cheap, backup$/,
    ],
    [
      'duplicate id',
      'version: 1\nrules:\n  - id: a\n    actions: [ { tag_billing: { a: b } } ]\n  - id: a\n    actions: [ { tag_billing: { a: b } } ]\n',
      /^r\.yaml:5:9: duplicate rule id "a" \(first defined in r\.yaml:3\)$/,
    ],
    ['bad JSONata', 'version: 1\nrules:\n  - id: a\n    match:\n      when: "model = "\n    actions: [ { tag_billing: { a: b } } ]\n', /^r\.yaml:5:\d+: rule "a": JSONata syntax error: /],
    [
      'bad regex',
      'version: 1\nrules:\n  - id: a\n    match:\n      header: { x-a: "/(unclosed/" }\n    actions: [ { tag_billing: { a: b } } ]\n',
      /^r\.yaml:5:22: rule "a": invalid regular expression \/\(unclosed\/ \(RE2 syntax[^)]*\): error parsing regexp: missing closing \)/,
    ],
    [
      'protected header',
      'version: 1\nrules:\n  - id: a\n    actions:\n      - set_headers: { authorization: "Bearer x" }\n',
      /^r\.yaml:5:39: rule "a": header "authorization" cannot be changed by a rule/,
    ],
  ];
  for (const [name, text, expected] of cases) {
    test(name, () => {
      const errors = loadErrors(text);
      assert.ok(errors.length >= 1, 'expected a load error');
      assert.match(errors[0]!, expected);
    });
  }

  test('the JSONata error column points at the broken character', () => {
    const [err] = loadErrors('version: 1\nrules:\n  - id: a\n    match:\n      when: "$count(messages) <"\n    actions: [ { tag_billing: { a: b } } ]\n');
    // `      when: "` is 13 characters; the expression's 18th character is the dangling `<`.
    assert.match(err!, /^r\.yaml:5:31: /);
  });

  test('every error of a file is reported, not just the first', () => {
    const errors = loadErrors('version: 1\nrules:\n  - id: a\n    actions:\n      - route_to: { provider: nope }\n      - route_to: { provider: anthropic, fallback: [gone] }\n');
    assert.equal(errors.length, 2);
  });
});
