/**
 * inject_cache: Anthropic's breakpoint rules (limit of 4 counting the client's, TTL order, minimum
 * cacheable length, uncacheable blocks, the attribution block), idempotence and the rules engine, as
 * functions (fast, for mutation testing; the running gateway and dry-run are in inject-cache-gateway.test.ts).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { existingBreakpoints, injectBreakpoints, injectCache, minCacheableTokens, type CachePlace } from '../src/actions/inject_cache.js';
import { keyOffsets, lazyBody, scanJsonObject, serializeBody } from '../src/body/json-scan.js';
import { buildContext } from '../src/rules/context.js';
import { evaluate } from '../src/rules/evaluate.js';
import { compileRuleSources } from '../src/rules/load.js';
import { claudeCodeBody } from './helpers.js';

const long = (n: number, seed = 'word') => `${seed} `.repeat(Math.ceil(n / (seed.length + 1))).slice(0, n);
const ALL: CachePlace[] = ['tools', 'system', 'last_user', 'second_last_user', { message: 0 }, { message: -2 }];
const inject = (body: Record<string, unknown>, at: CachePlace[] = ALL, ttl: '5m' | '1h' = '5m', minTokens = 1024) => injectBreakpoints(body, { at, ttl, minTokens });

/** A body with a big tools + system prefix, several turns, and `marked` client breakpoints (0–4). */
function bodyWith(marked: number): Record<string, unknown> {
  const cc = { type: 'ephemeral' };
  const body: Record<string, any> = {
    model: 'claude-sonnet-4-6',
    max_tokens: 100,
    tools: [
      { name: 'a', description: long(6000), input_schema: { type: 'object' } },
      { name: 'b', description: long(6000), input_schema: { type: 'object' } },
    ],
    system: [
      { type: 'text', text: long(8000) },
      { type: 'text', text: long(8000) },
    ],
    messages: [
      { role: 'user', content: [{ type: 'text', text: long(3000) }] },
      { role: 'assistant', content: [{ type: 'text', text: long(3000) }] },
      { role: 'user', content: [{ type: 'text', text: long(3000) }] },
      { role: 'assistant', content: [{ type: 'text', text: long(3000) }] },
      { role: 'user', content: [{ type: 'text', text: 'latest question' }] },
    ],
  };
  const spots = [
    () => (body.system[0].cache_control = cc),
    () => (body.system[1].cache_control = cc),
    () => (body.messages[4].content[0].cache_control = cc),
    () => (body.messages[1].content[0].cache_control = cc),
  ];
  for (let i = 0; i < marked; i++) spots[i]!();
  return body;
}

describe('the limit of 4 breakpoints', () => {
  test('the same breakpoints and edits on a parsed body, a lazy body, and a lazy body whose scan found every cache_control', () => {
    for (let n = 0; n <= 5; n++) {
      // 5: the last user block is an empty text block (no marker may go there), told from its bytes when unread.
      const plain = n === 5 ? { ...bodyWith(0), messages: [...(bodyWith(0).messages as unknown[]).slice(0, 4), { role: 'user', content: [{ type: 'text', text: '' }] }] } : bodyWith(n);
      const raw = Buffer.from(JSON.stringify(plain));
      const lazy = lazyBody(scanJsonObject(raw, 64));
      const watched = lazyBody(scanJsonObject(raw, 64, injectCache.bodyKeys));
      assert.notEqual(keyOffsets(watched, 'cache_control'), null, 'the action declares the member it looks for');
      const expected = existingBreakpoints(plain);
      assert.deepEqual(existingBreakpoints(lazy), expected, `${n}: lazy`);
      assert.deepEqual(existingBreakpoints(watched), expected, `${n}: watched`);
      const out = JSON.stringify(inject(plain).body);
      assert.deepEqual(JSON.parse(serializeBody(inject(watched).body).toString()), JSON.parse(out), `${n}: the forwarded bytes parse to the edited body`);
      // The same outcome at every place (prefix_tokens differ: an unread block counts the bytes of its JSON).
      const outcome = (r: ReturnType<typeof inject>['report']) => r.map(({ place, status, reason }) => ({ place, status, reason: reason?.replace(/~\d+ tokens/, '~N tokens') }));
      assert.deepEqual(outcome(inject(lazyBody(scanJsonObject(raw, 64, ['cache_control']))).report), outcome(inject(plain).report), `${n}: the same report`);
    }
  });

  for (const n of [0, 1, 3, 4]) {
    test(`${n} existing breakpoint(s): never more than 4 after injection; the client's stay put`, () => {
      const body = bodyWith(n);
      const before = existingBreakpoints(body);
      const { body: out, report, existing } = inject(body);
      assert.equal(existing, n);
      const after = existingBreakpoints(out);
      assert.ok(after.length <= 4, `${after.length} breakpoints`);
      assert.equal(after.length, Math.min(4, n + report.filter((r) => r.status === 'injected').length));
      for (const b of before)
        assert.ok(
          after.some((a) => a.pos.join() === b.pos.join()),
          'a client breakpoint moved',
        );
      if (n === 4) {
        assert.equal(out, body, 'a request already at the limit is forwarded untouched');
        assert.ok(report.every((r) => r.status === 'skipped'));
      } else assert.equal(after.length, 4);
    });
  }

  test('Claude-Code-shaped body (3 client breakpoints: 2 in system, 1 on the last user block): the tools get the 4th', () => {
    const body = claudeCodeBody();
    assert.equal(existingBreakpoints(body).length, 3);
    const { body: out, report } = inject(body, ['tools', 'system', 'last_user']);
    assert.deepEqual(
      report.map((r) => [r.place, r.status]),
      [
        ['tools', 'injected'],
        ['system', 'skipped'],
        ['last_user', 'skipped'],
      ],
    );
    assert.equal(report[1]!.reason, 'already marked by the client');
    assert.equal(existingBreakpoints(out).length, 4);
    assert.deepEqual((out.tools as any[]).at(-1).cache_control, { type: 'ephemeral' });
    // System blocks are neither reordered nor merged, and the attribution block is untouched.
    assert.deepEqual(out.system, body.system);
  });

  test('earlier places in `at` win when slots run out', () => {
    const body = bodyWith(3);
    const { report } = inject(body, ['second_last_user', 'tools']);
    assert.deepEqual(
      report.map((r) => r.status),
      ['injected', 'skipped'],
    );
    assert.match(report[1]!.reason!, /already has 4 breakpoints/);
  });

  test('a top-level cache_control (automatic caching) uses one of the 4 slots', () => {
    const body = { ...bodyWith(3), cache_control: { type: 'ephemeral' } };
    const { body: out, report } = inject(body);
    assert.equal(out, body);
    assert.equal(existingBreakpoints(out).length, 4);
    assert.ok(report.every((r) => r.status === 'skipped'));
  });
});

test('idempotence: applying twice equals applying once', () => {
  for (const n of [0, 1, 3]) {
    const once = inject(bodyWith(n)).body;
    const twice = inject(once).body;
    assert.deepEqual(twice, once);
    assert.equal(twice, once, 'the second pass changes nothing, so it returns the same object');
  }
});

describe('TTL order: a longer TTL never comes after a shorter one', () => {
  test('1h after an existing 5m breakpoint is skipped; 1h before it is injected', () => {
    const body = bodyWith(1); // 5m on system[0]
    const { body: out, report } = inject(body, ['last_user', 'tools'], '1h');
    assert.equal(report[0]!.status, 'skipped');
    assert.match(report[0]!.reason!, /1h breakpoint may not come after a 5m one/);
    assert.equal(report[1]!.status, 'injected');
    assert.deepEqual((out.tools as any[]).at(-1).cache_control, { type: 'ephemeral', ttl: '1h' });
  });

  test('5m before an existing 1h breakpoint is skipped; 5m after it is injected', () => {
    const body = bodyWith(0) as any;
    body.system[1].cache_control = { type: 'ephemeral', ttl: '1h' };
    const { report } = inject(body, ['tools', 'last_user'], '5m');
    assert.equal(report[0]!.status, 'skipped');
    assert.match(report[0]!.reason!, /5m breakpoint may not come before a 1h one/);
    assert.equal(report[1]!.status, 'injected');
  });
});

describe('minimum cacheable length', () => {
  test('a prefix shorter than the model minimum gets no marker; min_tokens overrides', () => {
    const body = { model: 'claude-haiku-4-5', max_tokens: 10, system: 'Be brief.', messages: [{ role: 'user', content: 'hi' }] };
    const { body: out, report } = inject(body, ['system', 'last_user'], '5m', minCacheableTokens('claude-haiku-4-5'));
    assert.equal(out, body);
    assert.match(report[0]!.reason!, /below the model's minimum cacheable length of 4096/);
    const forced = inject(body, ['system'], '5m', 1);
    assert.equal(forced.report[0]!.status, 'injected');
  });

  test('the per-model table', () => {
    assert.equal(minCacheableTokens('claude-haiku-4-5-20251001'), 4096);
    assert.equal(minCacheableTokens('claude-opus-4-8'), 1024);
    assert.equal(minCacheableTokens('claude-sonnet-4-6'), 1024);
    assert.equal(minCacheableTokens('claude-opus-4-7'), 2048);
    assert.equal(minCacheableTokens('claude-opus-5'), 512);
    assert.equal(minCacheableTokens('some-local-model'), 1024);
  });
});

describe('block kinds', () => {
  test('a string system prompt becomes one text block carrying the marker', () => {
    const body = { model: 'm', system: long(8000), messages: [{ role: 'user', content: 'hi' }] };
    const { body: out } = inject(body, ['system']);
    assert.deepEqual(out.system, [{ type: 'text', text: body.system, cache_control: { type: 'ephemeral' } }]);
    assert.equal(typeof body.system, 'string', 'the original body is not mutated');
  });

  test('tool-only requests: the last tool definition is marked', () => {
    const body = bodyWith(0);
    delete body.system;
    body.messages = [{ role: 'user', content: 'use a tool' }];
    const { body: out, report } = inject(body, ['tools', 'system']);
    assert.deepEqual(
      report.map((r) => r.status),
      ['injected', 'skipped'],
    );
    assert.equal(report[1]!.reason, 'the request has no system prompt');
    assert.deepEqual((out.tools as any[])[1].cache_control, { type: 'ephemeral' });
    assert.equal((out.tools as any[])[0].cache_control, undefined);
  });

  test('thinking blocks and empty text blocks never get a marker', () => {
    const body = bodyWith(0) as any;
    body.messages[3].content = [
      { type: 'text', text: long(100) },
      { type: 'thinking', thinking: 'hmm', signature: 'sig' },
    ];
    body.messages[4].content = [{ type: 'text', text: '' }];
    const { report } = inject(body, [{ message: -2 }, 'last_user']);
    assert.match(report[0]!.reason!, /thinking block cannot carry cache_control/);
    assert.match(report[1]!.reason!, /empty text block/);
    // A text that is not a string counts as empty; a block that is not an object is named as such.
    body.messages[4].content = [{ type: 'text', text: 5 }];
    assert.match(inject(body, ['last_user']).report[0]!.reason!, /empty text block/);
    body.messages[4].content = ['just a string'];
    assert.equal(inject(body, ['last_user']).report[0]!.reason, 'the block is not an object');
  });

  test("Claude Code's attribution block is never marked", () => {
    const body = { model: 'm', system: [{ type: 'text', text: 'x-anthropic-billing-header: cc_version=2.1.0' }], messages: [{ role: 'user', content: 'hi' }] };
    const { body: out, report } = inject(body, ['system'], '5m', 1);
    assert.equal(out, body);
    assert.match(report[0]!.reason!, /attribution block/);
  });
});

test('through the rules engine: the body changes only when a marker was added', async () => {
  const rs = compileRuleSources([{ file: 'c.yaml', text: 'version: 1\nrules:\n  - id: cache\n    actions: [ { inject_cache: { at: [tools, system, last_user] } } ]\n' }], ['anthropic']);
  const full = bodyWith(4);
  const d = await evaluate(rs, buildContext({ path: '/v1/messages', body: full, headers: {}, bodyBytes: 1 }), 'anthropic');
  assert.equal(d.bodyChanged, false);
  assert.equal(d.body, full);
  const d2 = await evaluate(rs, buildContext({ path: '/v1/messages', body: bodyWith(0), headers: {}, bodyBytes: 1 }), 'anthropic');
  assert.equal(d2.bodyChanged, true);
  assert.equal(existingBreakpoints(d2.body).length, 3);
});

describe('prefix length and missing places, exactly', () => {
  const t0 = { name: 'read', description: 'Reads a file.', input_schema: { type: 'object' } };
  const t1 = { name: 'grep', input_schema: { type: 'object', properties: { q: { type: 'string' } } } };
  const toolUse = { type: 'tool_use', id: 'toolu_1', name: 'read', input: { path: 'a' } };
  const body = () => ({
    model: 'claude-sonnet-4-6',
    tools: [t0, t1],
    system: [
      { type: 'text', text: 'S'.repeat(10) },
      { type: 'text', text: 's'.repeat(30) },
    ],
    messages: [
      { role: 'user', content: 'u'.repeat(20) },
      { role: 'assistant', content: [{ type: 'text', text: 'a'.repeat(12) }, toolUse] },
      {
        role: 'user',
        content: [
          { type: 'text', text: 'v'.repeat(8) },
          { type: 'text', text: 'w'.repeat(16) },
        ],
      },
    ],
  });
  const len = (v: unknown) => JSON.stringify(v).length;
  const tools = len(t0) + len(t1);
  const tokens = (chars: number) => Math.ceil(chars / 4);

  test('the prefix up to each place: tools as JSON, text by its characters, other blocks as JSON; ~4 characters a token', () => {
    const cases: Array<[CachePlace, number]> = [
      ['tools', tools],
      ['system', tools + 40],
      [{ message: 0 }, tools + 40 + 20],
      ['second_last_user', tools + 40 + 20],
      [{ message: 1 }, tools + 40 + 20 + 12 + len(toolUse)],
      [{ message: -2 }, tools + 40 + 20 + 12 + len(toolUse)],
      ['last_user', tools + 40 + 20 + 12 + len(toolUse) + 8 + 16],
    ];
    for (const [place, chars] of cases) {
      const { report } = inject(body(), [place], '5m', 1);
      assert.equal(report[0]!.status, 'injected', JSON.stringify(place));
      assert.equal(report[0]!.prefix_tokens, tokens(chars), JSON.stringify(place));
    }
    // At the minimum exactly: injected; one token short: skipped, saying by how much.
    const exact = tokens(tools + 40);
    assert.equal(inject(body(), ['system'], '5m', exact).report[0]!.status, 'injected');
    const short = inject(body(), ['system'], '5m', exact + 1).report[0]!;
    assert.equal(short.status, 'skipped');
    assert.equal(short.reason, `the prefix is ~${exact} tokens, below the model's minimum cacheable length of ${exact + 1}`);
    const asString = inject({ ...body(), system: 'x'.repeat(36), tools: undefined }, ['system'], '5m', 1).report[0]!;
    assert.equal(asString.prefix_tokens, 9, 'a string system prompt counts its characters');
  });

  test('places that point nowhere say why', () => {
    const why = (b: Record<string, unknown>, place: CachePlace) => inject(b, [place], '5m', 1).report[0]!.reason;
    assert.equal(why({ ...body(), tools: [] }, 'tools'), 'the request has no tools');
    assert.equal(why({ ...body(), system: '' }, 'system'), 'the system prompt is empty');
    assert.equal(why({ ...body(), system: [] }, 'system'), 'the request has no system prompt');
    assert.equal(why({ ...body(), messages: [] }, 'last_user'), 'the request has no user turn');
    assert.equal(why({ ...body(), messages: [{ role: 'user', content: 'only' }] }, 'second_last_user'), 'the request has fewer than two user turns');
    assert.equal(why(body(), { message: 3 }), 'there is no message 3 (the request has 3)');
    assert.equal(why(body(), { message: -4 }), 'there is no message -4 (the request has 3)');
    assert.equal(why({ ...body(), messages: [{ role: 'user', content: '' }] }, 'last_user'), 'the message is empty');
    assert.equal(why({ ...body(), messages: [{ role: 'user', content: [] }] }, 'last_user'), 'the message has no content blocks');
    assert.equal(why({ ...body(), messages: [{ role: 'user', content: [{ type: 'text', text: '' }] }] }, 'last_user'), 'an empty text block cannot carry cache_control');
    assert.equal(why({ ...body(), messages: [{ role: 'user', content: [{ type: 'redacted_thinking', data: 'x' }] }] }, 'last_user'), 'a redacted_thinking block cannot carry cache_control');
  });

  test('a string message or system prompt becomes a text block carrying the marker; other content is untouched', () => {
    const b = { ...body(), messages: [{ role: 'user', content: 'hello there' }] };
    const { body: out } = inject(b, ['last_user'], '1h', 1);
    assert.deepEqual((out.messages as Array<{ content: unknown }>)[0]!.content, [{ type: 'text', text: 'hello there', cache_control: { type: 'ephemeral', ttl: '1h' } }]);
    assert.deepEqual(out.tools, b.tools);
    assert.deepEqual(out.system, b.system);
  });
});

describe('inject_cache: prefix lengths and automatic caching', () => {
  const tool = (name: string, description: string) => ({ name, description, input_schema: { type: 'object' } });
  const body = {
    model: 'claude-sonnet-4-6',
    tools: [tool('a', 'x'.repeat(100)), tool('b', 'y'.repeat(200))],
    system: 'S'.repeat(300),
    messages: [
      { role: 'user', content: 'u'.repeat(40) },
      {
        role: 'assistant',
        content: [
          { type: 'text', text: 'a'.repeat(50) },
          { type: 'tool_use', id: 't1', name: 'a', input: { q: 1 } },
        ],
      },
      {
        role: 'user',
        content: [
          { type: 'tool_result', tool_use_id: 't1', content: 'r'.repeat(60) },
          { type: 'text', text: 'v'.repeat(70) },
        ],
      },
      { role: 'assistant', content: 'later' },
    ],
  };
  const len = (v: unknown) => JSON.stringify(v).length;
  const toolsChars = len(body.tools[0]) + len(body.tools[1]);

  test('the prefix up to each place counts tools as JSON, a string system prompt, string turns and text blocks as text, other blocks as JSON', () => {
    const tokens = (at: CachePlace) => inject(structuredClone(body), [at], '5m', 1).report[0]!.prefix_tokens;
    assert.equal(tokens('tools'), Math.ceil(toolsChars / 4));
    assert.equal(tokens('system'), Math.ceil((toolsChars + 300) / 4));
    const uptoLastUser = toolsChars + 300 + 40 + 50 + len(body.messages[1]!.content[1]) + len(body.messages[2]!.content[0]) + 70;
    assert.equal(tokens('last_user'), Math.ceil(uptoLastUser / 4));
    assert.equal(tokens('second_last_user'), Math.ceil((toolsChars + 300 + 40) / 4));
    assert.equal(tokens({ message: 1 }), Math.ceil((toolsChars + 300 + 40 + 50 + len(body.messages[1]!.content[1])) / 4));
    assert.equal(inject(structuredClone(body), [{ message: -1 }], '5m', 1).report[0]!.place, 'message[-1]');
  });

  test('a top-level cache_control (automatic caching) takes a slot and its 1h lifetime forbids a 5m breakpoint before it', () => {
    const auto = { ...structuredClone(body), cache_control: { type: 'ephemeral', ttl: '1h' } };
    assert.deepEqual(existingBreakpoints(auto), [{ pos: [3, 0, 0], ttl: '1h' }]);
    const r = inject(auto, ['tools'], '5m', 1);
    assert.equal(r.report[0]!.status, 'skipped');
    assert.match(r.report[0]!.reason!, /a 5m breakpoint may not come before a 1h one/);
    assert.equal(inject(auto, ['tools'], '1h', 1).report[0]!.status, 'injected', 'a 1h one may');
    const marked = { ...structuredClone(body), tools: [tool('a', 'x'), { ...tool('b', 'y'), cache_control: { type: 'ephemeral' } }] };
    assert.deepEqual(existingBreakpoints(marked), [{ pos: [0, 1, 0], ttl: '5m' }]);
  });
});

describe('a string prompt marked over its own bytes (issue 30: inject_cache in at most 2x the body)', () => {
  test("the marked text block carries the client's bytes of the string (escapes as sent), and parses as the decoded edit would", () => {
    // \u00e9 and \n as the client escaped them: a decode and re-encode would write "é" and a literal \n escape.
    const text = `${'lorem ipsum dolor sit amet '.repeat(400)}caf\\u00e9\\n`;
    const raw = Buffer.from(`{"model":"claude-sonnet-4-6","max_tokens":5,"messages":[{"role":"user","content":"${text}"}]}`);
    const lazy = lazyBody(scanJsonObject(raw, 64, injectCache.bodyKeys));
    const r = inject(lazy, ['last_user']);
    assert.equal(r.report.find((p) => p.place === 'last_user')?.status, 'injected');
    const out = serializeBody(r.body).toString();
    assert.ok(out.includes(`"text":"${text}"`), 'the string is copied as the client wrote it');
    const plain = inject(JSON.parse(raw.toString()) as Record<string, unknown>, ['last_user']);
    assert.deepEqual(JSON.parse(out), JSON.parse(JSON.stringify(plain.body)), 'the same edit as on a decoded body');
    assert.deepEqual((JSON.parse(out) as { messages: Array<{ content: unknown }> }).messages[0]!.content, [
      { type: 'text', text: `${'lorem ipsum dolor sit amet '.repeat(400)}café\n`, cache_control: { type: 'ephemeral' } },
    ]);
  });

  test('an empty string prompt is not marked, and a short one is measured in bytes without being decoded', () => {
    const empty = lazyBody(scanJsonObject(Buffer.from('{"model":"m","messages":[{"role":"user","content":""}]}'), 64, injectCache.bodyKeys));
    assert.equal(inject(empty, ['last_user']).report[0]!.status, 'skipped');
    const short = lazyBody(scanJsonObject(Buffer.from('{"model":"m","messages":[{"role":"user","content":"hi"}]}'), 64, injectCache.bodyKeys));
    assert.equal(inject(short, ['last_user']).body, short, 'too short to cache: the body is untouched');
  });
});
