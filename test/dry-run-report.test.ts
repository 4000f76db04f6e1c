/**
 * The dry-run report (`rules/report.ts`), function-level: credentials masked by fingerprint (the same key the same
 * mask), the model the provider gets (from the body, else the route chain), a local answer in place of the upstream
 * request, when the body counts as changed, and the human-readable table line by line.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import type { Decision } from '../src/rules/decision.js';
import { dryRunReport, formatReport, maskHeaders } from '../src/rules/report.js';
import type { PreparedRequest } from '../src/upstream/prepare.js';

const fp = (s: string) => `fp-${createHash('sha256').update(s).digest('hex').slice(0, 10)}`;

test('credentials are masked by fingerprint; a bearer token by its token; other headers shown; repeated values joined', () => {
  const masked = maskHeaders({
    'x-api-key': 'sk-ant-one',
    authorization: 'Bearer sk-ant-one',
    'proxy-authorization': 'Basic abc',
    cookie: 'a=b',
    'anthropic-beta': ['b1', 'b2'],
    'content-type': 'application/json',
  });
  assert.deepEqual(masked, {
    'x-api-key': `[masked ${fp('sk-ant-one')}]`,
    authorization: `[masked ${fp('sk-ant-one')}]`,
    'proxy-authorization': `[masked ${fp('Basic abc')}]`,
    cookie: `[masked ${fp('a=b')}]`,
    'anthropic-beta': 'b1, b2',
    'content-type': 'application/json',
  });
  assert.notEqual(maskHeaders({ 'x-api-key': 'sk-ant-two' })['x-api-key'], masked['x-api-key'], 'another key, another mask');
  assert.equal(maskHeaders({ authorization: 'Token weird' }).authorization, `[masked ${fp('Token weird')}]`, 'a non-bearer value is fingerprinted whole');
});

const decision = (over: Partial<Decision> = {}): Decision =>
  ({
    ruleset: 'v7',
    route: {
      provider: 'bedrock',
      model: 'claude-sonnet-4-6',
      requested_model: 'claude-sonnet-4-6',
      fallback: [{ provider: 'anthropic' }, { provider: 'vendor', model: 'gpt-5.1' }],
      rule: 'to-bedrock',
    },
    rules: [
      { id: 'to-bedrock', file: '10.yaml', matched: true, actions: [{ action: 'route_to', applied: true }] },
      { id: 'second-route', file: '10.yaml', matched: true, actions: [{ action: 'route_to', applied: false, shadowed_by: 'to-bedrock' }] },
      { id: 'tags', file: '20.yaml', matched: true, actions: [{ action: 'tag_billing', applied: true, shadowed: [{ setting: 'tag:team', by: 'to-bedrock' }] }] },
      { id: 'opus-only', file: '20.yaml', matched: false, reason: 'model: claude-sonnet-4-6 is not claude-opus-*', actions: [] },
    ],
    tags: { team: 'infra', project: 'x' },
    throttles: [{ rule: 'rpm', scope: 'client', burst: 1, shadow: false }],
    budgets: [
      { rule: 'daily', scope: 'client', usd: 10, per: 'day' },
      { rule: 'soft', scope: 'tag:team', usd: 500, per: 'month', block: false, notify: [0.5, 0.8], shape: { at: 0.9, model: 'claude-haiku-4-5' } },
    ],
    headers: { set: {}, remove: [] },
    denied: null,
    error: null,
    warnings: [{ rule: 'tags', message: 'when expression failed' }],
    body: {},
    bodyChanged: false,
    extra: {},
    ...over,
  }) as unknown as Decision;
const prepared = (over: Partial<PreparedRequest> = {}): PreparedRequest =>
  ({
    provider: { name: 'bedrock' },
    method: 'POST',
    url: 'https://bedrock-runtime.us-east-1.amazonaws.com/model/us.anthropic.claude-sonnet-4-6-v1%3A0/invoke',
    headers: { 'content-type': 'application/json', authorization: 'Bearer key-1' },
    body: Buffer.from('{"anthropic_version":"bedrock-2023-05-31","max_tokens":5}'),
    dropped: ['anthropic-beta: claude-code-20250219'],
    chain: [
      { provider: { name: 'bedrock' }, model: 'us.anthropic.claude-sonnet-4-6-v1:0' },
      { provider: { name: 'anthropic' }, model: 'claude-sonnet-4-6' },
    ],
    local: null,
    signedWhenSent: 'aws-sigv4',
    ...over,
  }) as unknown as PreparedRequest;

test('the report: the model from the route chain when the body has none, the request as sent, masked headers', () => {
  const r = dryRunReport(decision(), prepared());
  assert.deepEqual(r.route.chain, [
    { provider: 'bedrock', model: 'us.anthropic.claude-sonnet-4-6-v1:0' },
    { provider: 'anthropic', model: 'claude-sonnet-4-6' },
  ]);
  assert.equal(r.route.url, prepared().url);
  assert.deepEqual(r.request, {
    method: 'POST',
    url: prepared().url,
    body_bytes: prepared().body!.length,
    model: 'us.anthropic.claude-sonnet-4-6-v1:0',
    dropped_fields: ['anthropic-beta: claude-code-20250219'],
    signed_when_sent: 'aws-sigv4',
  });
  assert.equal(r.headers.authorization, `[masked ${fp('key-1')}]`);
  assert.equal(r.body_changed, true, 'the provider gets another model name than the client asked for');
  const same = dryRunReport(decision(), prepared({ body: Buffer.from('{"model":"claude-sonnet-4-6"}'), signedWhenSent: null }));
  assert.equal(same.body_changed, false);
  assert.equal('signed_when_sent' in same.request, false);
  assert.equal((same.request as { model: string }).model, 'claude-sonnet-4-6');
  assert.equal(dryRunReport(decision({ bodyChanged: true }), prepared({ body: Buffer.from('{"model":"claude-sonnet-4-6"}') })).body_changed, true, 'a rule edited it');
  const notJson = dryRunReport(decision(), prepared({ body: Buffer.from('not json'), chain: [] }));
  assert.deepEqual([(notJson.request as { model: unknown }).model, notJson.body_changed], [null, false]);
  const get = dryRunReport(decision(), prepared({ method: 'GET', body: null }));
  assert.deepEqual([(get.request as { body_bytes: number }).body_bytes, (get.request as { model: string }).model], [0, 'us.anthropic.claude-sonnet-4-6-v1:0']);
  const local = dryRunReport(
    decision({ extra: { cache_breakpoints: { existing: 0, places: [] } } } as never),
    prepared({ local: { status: 200, headers: { 'x-switchyard-estimate': 'true' }, body: '{}' } }),
  );
  assert.deepEqual(local.request, { answered_locally: true, status: 200, headers: { 'x-switchyard-estimate': 'true' } });
  assert.deepEqual(local.cache_breakpoints, { existing: 0, places: [] }, "an action's extra detail is in the report");
});

test('the table: route, model, fallbacks, chain, tags, throttles, budgets with their modes, body, rules, headers, warnings', () => {
  const text = formatReport(dryRunReport(decision(), prepared()));
  assert.equal(
    text,
    [
      'rules v7',
      `route     bedrock POST ${prepared().url}`,
      'model     us.anthropic.claude-sonnet-4-6-v1:0 (requested claude-sonnet-4-6)',
      'fallback  anthropic -> vendor (model gpt-5.1)',
      'chain     bedrock (us.anthropic.claude-sonnet-4-6-v1:0) -> anthropic (claude-sonnet-4-6)',
      'tags      team=infra project=x',
      'throttles rpm',
      'budgets   daily ($10/day per client), soft ($500/month per tag:team; no block; notify at 50%/80%; from 90% sent to claude-haiku-4-5)',
      'body      changed by rules; dropped for this provider: anthropic-beta: claude-code-20250219',
      '',
      'RULE          MATCH  DETAIL',
      'to-bedrock    yes    route_to',
      'second-route  yes    route_to (shadowed by to-bedrock)',
      'tags          yes    tag_billing (partly shadowed: tag:team by to-bedrock)',
      'opus-only     no     model: claude-sonnet-4-6 is not claude-opus-*',
      '',
      'upstream headers:',
      '  content-type: application/json',
      `  authorization: [masked ${fp('key-1')}]`,
      'warning: rule tags: when expression failed',
    ].join('\n'),
  );
});

test('the table: a denial, an error, a local answer, a routed model, files, cache breakpoints and secrets; empty lists as "-"', () => {
  const d = decision({
    route: { provider: 'anthropic', model: 'claude-opus-4-1', requested_model: 'claude-sonnet-4-6', fallback: [], rule: 'r' },
    rules: [{ id: 'r', file: '1.yaml', matched: true, actions: [{ action: 'route_to', applied: false }] }],
    tags: {},
    throttles: [],
    budgets: [],
    warnings: [],
    denied: { rule: 'no-opus', status: 403, message: 'Opus is not for batch jobs' },
    error: { rule: 'broken', message: 'transform returned a string' },
    extra: {
      files: { ids: ['file_1', 'file_2'], provider: null, key: null },
      cache_breakpoints: {
        existing: 1,
        places: [
          { place: 'tools', ttl: '1h', status: 'added' },
          { place: 'system', ttl: '5m', status: 'skipped', reason: 'too short' },
        ],
      },
      secret_findings: { on_find: 'redact', findings: [{ rule: 'aws-access-token', where: 'messages[0]', block: 'text', length: 20, placeholder: '[REDACTED aws-access-token]' }] },
    },
  } as never);
  const text = formatReport(dryRunReport(d, prepared({ local: { status: 200, headers: {}, body: '' }, headers: {}, chain: [{ provider: { name: 'anthropic' }, model: 'claude-opus-4-1' }] as never })));
  const lines = text.split('\n');
  assert.deepEqual(lines.slice(0, 13), [
    'rules v7',
    'DENIED by no-opus: 403 Opus is not for batch jobs',
    'ERROR in broken: transform returned a string',
    'route     anthropic answered by switchyard (200)',
    'model     claude-opus-4-1 (requested claude-sonnet-4-6)',
    'files     file_1, file_2 (sent with the key that uploaded them (the running gateway knows which; serve --dry-run shows it))',
    'fallback  -',
    'tags      -',
    'throttles -',
    'budgets   -',
    'body      changed by rules',
    'cache     1 breakpoint(s) from the client',
    '          tools (1h): added',
  ]);
  assert.deepEqual(lines.slice(13, 16), [
    '          system (5m): skipped — too short',
    'secrets   1 found (redacted)',
    '          aws-access-token in messages[0] (text, 20 bytes) -> [REDACTED aws-access-token]',
  ]);
  assert.ok(lines.includes('r     yes    route_to (shadowed)'), text);
  assert.equal(lines.at(-1), 'upstream headers:');
  const held = formatReport(
    dryRunReport(
      decision({
        route: { provider: 'anthropic', model: 'claude-haiku-4-5', requested_model: 'claude-sonnet-4-6', fallback: [], rule: 'r' },
        extra: { files: { ids: ['file_1'], provider: 'anthropic', key: null }, secret_findings: { on_find: 'block', findings: [] } },
      } as never),
      prepared({ body: Buffer.from('{"model":"haiku-at-vendor"}'), chain: [] }),
    ),
  );
  assert.match(held, /^model {5}haiku-at-vendor \(requested claude-sonnet-4-6; routed as claude-haiku-4-5\)$/m);
  assert.match(held, /^files {5}file_1 \(held by provider anthropic, key \(client credential\): sent with that key only\)$/m);
  assert.match(held, /^secrets {3}0 found \(blocked\)$/m);
  const untouched = formatReport(dryRunReport(decision(), prepared({ body: Buffer.from('{"model":"claude-sonnet-4-6"}'), dropped: [] })));
  assert.match(untouched, /^body {6}forwarded byte for byte$/m);
  assert.match(untouched, /^model {5}claude-sonnet-4-6$/m, 'no notes when the model is the one asked for');
  const reported = formatReport(
    dryRunReport(decision({ extra: { secret_findings: { on_find: 'report', findings: [{ rule: 'x', where: 'system', block: 'text', length: 3, placeholder: 'P' }] } } } as never), prepared()),
  );
  assert.match(reported, /^secrets {3}1 found \(reported\)\n {10}x in system \(text, 3 bytes\)$/m);
});
