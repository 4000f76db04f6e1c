/**
 * Fault isolation, rules side (issue 12): a truncated rule file is a load error (validate-rules exits 1,
 * a reload is rejected and the deny rule keeps applying); a reload that removes every rule warns naming
 * the files; a fallback provider gets the request as it would have been sent to it directly.
 */
import assert from 'node:assert/strict';
import { unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { request } from 'undici';
import { compileRuleSources, LoadError } from '../src/rules/load.js';
import { startFakeUpstream, type FakeUpstream } from './fake-upstream.js';
import { startTestGateway } from './helpers.js';

let fake: FakeUpstream;
before(async () => {
  fake = await startFakeUpstream();
});
after(() => fake.close());

const DENY = 'version: 1\nrules:\n  - id: no-opus\n    match: { model: "claude-opus-*" }\n    actions: [ { deny: { status: 403, message: "Opus is not allowed here" } } ]\n';
const post = (url: string, model: string, headers: Record<string, string> = {}) =>
  request(url + '/v1/messages', {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ model, max_tokens: 5, messages: [{ role: 'user', content: 'hi' }] }),
  });

describe('empty rule files', () => {
  for (const [label, text] of [
    ['empty', ''],
    ['whitespace', '  \n\n \t\n'],
    ['only comments', '# rules moved\n# to 20-x.yaml\n'],
  ] as const) {
    test(`a file that is ${label} is a load error naming the file`, () => {
      assert.throws(
        () => compileRuleSources([{ file: 'rules/10-deny.yaml', text }], ['anthropic']),
        (err: unknown) => {
          assert.ok(err instanceof LoadError);
          assert.match(err.message, /rules\/10-deny\.yaml:1:1: the file holds no rules \(empty, whitespace or only comments; a truncated write\?\)/);
          return true;
        },
      );
    });
  }

  test('deleting the last rule file is refused like an empty one: the last good set keeps serving', async () => {
    const { gw, rulesDir } = await startTestGateway({ upstream: fake.url, rules: { '10-deny.yaml': DENY } });
    try {
      unlinkSync(path.join(rulesDir, '10-deny.yaml'));
      assert.equal(gw.runtime.reload('test: last file deleted'), false);
      const denied = await post(gw.url, 'claude-opus-4-8');
      assert.equal(denied.statusCode, 403, 'the deny rule still applies');
      await denied.body.dump();
      const admin = (await (await request(gw.url + '/admin/rules')).body.json()) as { rules: unknown[]; last_error: { errors: string[] } };
      assert.equal(admin.rules.length, 1);
      assert.match(admin.last_error.errors[0]!, /the rules directory holds no rule files \(\*\.yaml\); an intentionally empty rule set is a file with `version: 1` and `rules: \[\]`/);
    } finally {
      await gw.close();
    }
  });

  test('an explicit `rules: []` stays valid', () => {
    assert.equal(compileRuleSources([{ file: 'rules/10.yaml', text: 'version: 1\nrules: []\n' }], ['anthropic']).rules.length, 0);
  });

  test('truncating a rule file on a running gateway keeps its deny rule applied; removing every rule warns naming the files', async () => {
    const { gw, logs, rulesDir } = await startTestGateway({ upstream: fake.url, rules: { '10-deny.yaml': DENY } });
    try {
      const file = path.join(rulesDir, '10-deny.yaml');
      writeFileSync(file, '');
      assert.equal(gw.runtime.reload('test: truncated'), false);
      const denied = await post(gw.url, 'claude-opus-4-8');
      assert.equal(denied.statusCode, 403);
      assert.match(((await denied.body.json()) as { error: { message: string } }).error.message, /denied by rule "no-opus"/);
      const admin = (await (await request(gw.url + '/admin/rules')).body.json()) as { last_error: { errors: string[] } };
      assert.match(admin.last_error.errors[0]!, /10-deny\.yaml:1:1: the file holds no rules/);

      writeFileSync(file, 'version: 1\nrules: []\n');
      assert.equal(gw.runtime.reload('test: emptied on purpose'), true);
      const warning = logs.lines.find((l) => String(l.msg).startsWith('reload removes every rule'));
      assert.ok(warning, 'a warning is logged');
      // Rule files outside the working directory are named by their absolute path, never ../../tmp/...
      assert.deepEqual(warning.files, [file]);
      assert.match(String(warning.msg), /1 rule\(s\) of .*10-deny\.yaml are gone/);
    } finally {
      await gw.close();
    }
  });
});

describe('fallback providers get their own model', () => {
  const DEAD = 'http://127.0.0.1:9/v1'; // discard port: connection refused
  const providers = (url: string) =>
    `  anthropic:\n    type: anthropic\n    base_url: ${url}\n    retries: { max: 0 }\n` +
    `  cheap:\n    type: openai\n    base_url: ${DEAD}\n    keys: [ "none" ]\n    timeouts: { connect_ms: 500 }\n    retries: { max: 0 }\n` +
    `  backup:\n    type: anthropic\n    base_url: ${url}\n    retries: { max: 0 }\n    models: { claude-haiku-4-5: claude-haiku-4-5-20251001 }\n`;

  test("a rule's model for an OpenAI-compatible provider never reaches the Anthropic fallback", async () => {
    const rules = {
      '50.yaml': 'version: 1\nrules:\n  - id: haiku-cheap\n    match: { model: "claude-haiku-*" }\n    actions: [ { route_to: { provider: cheap, model: gpt-4o-mini, fallback: [anthropic] } } ]\n',
    };
    const { gw } = await startTestGateway({ upstream: fake.url, providers: providers(fake.url), rules });
    try {
      const seen = fake.received.length;
      const r = await post(gw.url, 'claude-haiku-4-5');
      assert.equal(r.statusCode, 200);
      await r.body.dump();
      const sent = JSON.parse(fake.received[seen]!.body.toString()) as { model: string };
      assert.equal(sent.model, 'claude-haiku-4-5');
    } finally {
      await gw.close();
    }
  });

  test('a fallback entry may carry its own model; the provider models: map renames last; dry-run shows the chain', async () => {
    const rules = {
      '50.yaml':
        'version: 1\nrules:\n  - id: haiku-cheap\n    match: { model: "claude-haiku-*" }\n' +
        '    actions: [ { route_to: { provider: cheap, model: gpt-4o-mini, fallback: [ { provider: anthropic, model: claude-sonnet-4-6 }, backup ] } } ]\n',
    };
    const { gw } = await startTestGateway({ upstream: fake.url, providers: providers(fake.url), rules });
    try {
      const seen = fake.received.length;
      const r = await post(gw.url, 'claude-haiku-4-5');
      await r.body.dump();
      assert.equal((JSON.parse(fake.received[seen]!.body.toString()) as { model: string }).model, 'claude-sonnet-4-6');
    } finally {
      await gw.close();
    }
    const dry = await startTestGateway({ upstream: fake.url, providers: providers(fake.url), rules, dryRun: true });
    try {
      const r = await post(dry.gw.url, 'claude-haiku-4-5');
      const report = (await r.body.json()) as { route: { chain: Array<{ provider: string; model: string }> } };
      assert.deepEqual(report.route.chain, [
        { provider: 'cheap', model: 'gpt-4o-mini' },
        { provider: 'anthropic', model: 'claude-sonnet-4-6' },
        { provider: 'backup', model: 'claude-haiku-4-5-20251001' },
      ]);
    } finally {
      await dry.gw.close();
    }
  });
});

describe('runaway rules and hostile input never stall the gateway', () => {
  const RULES = {
    '10.yaml':
      'version: 1\nrules:\n' +
      '  - id: team-header\n    match: { header: { x-team: "/^([a-z]+)+$/" } }\n    actions: [ { tag_billing: { team: from-header } } ]\n' +
      '  - id: evil-when\n    match:\n      header: { x-evil: "*" }\n      when: "$sum($map([1..99999], function($x){ $sum($map([1..50], function($y){ $x * $y })) })) > 0"\n    actions: [ { tag_billing: { evil: "yes" } } ]\n' +
      '  - id: regex-in-jsonata\n    match: { when: "$contains($string(headers.\\"x-name\\"), /^([a-z]+)+$/)" }\n    actions: [ { tag_billing: { named: "yes" } } ]\n' +
      '  - id: default\n    actions: [ { route_to: { provider: anthropic } } ]\n',
  };

  /** Time /healthz takes to answer while `during` runs, ms (the worst of several probes). */
  async function healthzDuring(url: string, during: Promise<unknown>): Promise<number> {
    let worst = 0;
    let done = false;
    void during.finally(() => (done = true));
    while (!done) {
      const t0 = performance.now();
      const r = await request(url + '/healthz');
      await r.body.dump();
      worst = Math.max(worst, performance.now() - t0);
    }
    return worst;
  }

  test('a ReDoS header against a backtracking-prone pattern is matched in linear time', async () => {
    // A budget well above the default 10 ms: a first evaluation on a loaded CI machine can take longer than 10 ms,
    // and a backtracking match of these headers would take seconds, far past either.
    const { gw } = await startTestGateway({ upstream: fake.url, rules: RULES, extraConfig: 'limits: { rule_expression_ms: 500 }\n' });
    try {
      const evil = post(gw.url, 'claude-sonnet-4-6', { 'x-team': 'a'.repeat(30) + '-', 'x-name': 'b'.repeat(30) + '-' }).then(async (r) => ({
        status: r.statusCode,
        text: await r.body.text(),
      }));
      const worst = await healthzDuring(gw.url, evil);
      const { status, text } = await evil;
      assert.equal(status, 200, text);
      // On JavaScript's engine these 30 letters held the thread for ~41 s; on RE2 it is microseconds.
      assert.ok(worst < 1000, `healthz took ${worst} ms`);
    } finally {
      await gw.close();
    }
  });

  test('a JSONata condition past its time budget is stopped: the request gets an error naming the rule, healthz keeps answering', async () => {
    const { gw, logs } = await startTestGateway({ upstream: fake.url, rules: RULES });
    try {
      const evil = post(gw.url, 'claude-sonnet-4-6', { 'x-evil': '1' }).then(async (r) => ({ status: r.statusCode, body: (await r.body.json()) as { error: { type: string; message: string } } }));
      const worst = await healthzDuring(gw.url, evil);
      const { status, body } = await evil;
      assert.equal(status, 500);
      assert.equal(body.error.type, 'api_error');
      assert.match(body.error.message, /rule "evil-when" failed: when failed: D1012: Evaluation timeout after 10 milliseconds/);
      assert.ok(worst < 1000, `healthz took ${worst} ms`);
      const line = logs.lines.find((l) => l.msg === 'request')!;
      assert.equal(line.outcome, 'gateway_error', "a runaway rule is the gateway's failure, never the upstream's");
      const ok = await post(gw.url, 'claude-sonnet-4-6');
      assert.equal(ok.statusCode, 200, 'the next request is served');
      await ok.body.dump();
    } finally {
      await gw.close();
    }
  });

  test('validate-rules warns about recursion and huge ranges it can see', () => {
    const set = compileRuleSources(
      [
        {
          file: 'rules/10.yaml',
          text: 'version: 1\nrules:\n  - id: rec\n    match: { when: "($f := function($n){ $f($n + 1) }; $f(0) > 1)" }\n    actions: [ { tag_billing: { a: b } } ]\n  - id: range\n    match: { when: "$count([1..50000000]) > 1" }\n    actions: [ { tag_billing: { c: d } } ]\n',
        },
      ],
      ['anthropic'],
    );
    const messages = set.warnings.map((w) => `${w.file}:${w.line}: ${w.message}`);
    assert.ok(
      messages.some((m) => /^rules\/10\.yaml:4: rule "rec": JSONata expression may not terminate in time: function \$f calls itself/.test(m)),
      messages.join('\n'),
    );
    assert.ok(
      messages.some((m) => /^rules\/10\.yaml:7: rule "range": .*range \[1\.\.50000000\] builds more than 100000 items/.test(m)),
      messages.join('\n'),
    );
  });

  test('a header regex RE2 cannot run (a backreference) is a load error', () => {
    assert.throws(
      () => compileRuleSources([{ file: 'r.yaml', text: 'version: 1\nrules:\n  - id: br\n    match: { header: { x-a: "/(a)\\\\1/" } }\n    actions: [ { tag_billing: { a: b } } ]\n' }], ['anthropic']),
      /invalid regular expression .* \(RE2 syntax: linear-time, no backreferences or lookarounds\)/,
    );
  });

  test('a body nested 10,000 deep with a rewrite rule answers 400 naming the limit, never a 500', async () => {
    const rules = { '10.yaml': 'version: 1\nrules:\n  - id: cache\n    actions: [ { inject_cache: { at: [system, last_user], ttl: 5m } } ]\n' };
    const { gw, logs } = await startTestGateway({ upstream: fake.url, rules });
    try {
      const deep = '['.repeat(10_000) + ']'.repeat(10_000);
      const payload = `{"model":"claude-sonnet-4-6","max_tokens":5,"system":"${'s'.repeat(20_000)}","messages":[{"role":"user","content":[{"type":"text","text":"hi","extra":${deep}}]}]}`;
      const r = await request(gw.url + '/v1/messages', { method: 'POST', headers: { 'content-type': 'application/json' }, body: payload });
      assert.equal(r.statusCode, 400);
      const err = (await r.body.json()) as { error: { type: string; message: string } };
      assert.equal(err.error.type, 'invalid_request_error');
      assert.match(err.error.message, /nests arrays and objects deeper than 256 levels \(limits\.max_json_depth/);
      assert.equal(logs.lines.find((l) => l.msg === 'request')!.outcome, 'refused');
    } finally {
      await gw.close();
    }
  });
});
