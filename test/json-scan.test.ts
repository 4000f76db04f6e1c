/**
 * The body scanner (src/body/json-scan.ts) against JSON.parse: it accepts exactly the JSON objects
 * JSON.parse accepts (strings without raw control characters), finds every top-level member's bytes, decodes
 * members lazily to the same values, edits one member without touching the other bytes, and enforces the
 * nesting limit — on generated objects, on mutated (mostly broken) ones, and on a Claude-Code-shaped body.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  copyArray,
  copyObject,
  elementSize,
  memberKind,
  memberLength,
  plainCopy,
  elementBytes,
  elementsHolding,
  keyOffsets,
  lazyBody,
  scanJsonObject,
  scannedOf,
  serializeBody,
  viewBytes,
  withAdded,
  withMember,
} from '../src/body/json-scan.js';
import { claudeCodeBody } from './helpers.js';

/** Generated cases per property: fewer under `npm run mutate`, where every surviving mutant reruns this file. */
const runs = (n: number) => (process.env.MUTATION_RUN ? Math.min(n, 60) : n);

const parsesAsObject = (s: string) => {
  try {
    const v = JSON.parse(s) as unknown;
    return v !== null && typeof v === 'object' && !Array.isArray(v);
  } catch {
    return false;
  }
};
const accepts = (s: string) => {
  try {
    scanJsonObject(Buffer.from(s), 10_000);
    return true;
  } catch (err) {
    assert.equal((err as Error).name, 'InvalidRequestError');
    return false;
  }
};
const depthOf = (v: unknown): number => (v !== null && typeof v === 'object' ? 1 + Math.max(0, ...Object.values(v).map(depthOf)) : 0);
const CONTROL = /[\u0000-\u001f]/;

describe('json-scan', () => {
  test('accepts every object JSON.stringify makes, members and values equal to JSON.parse, in order', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string(), fc.jsonValue()), (o) => {
        const text = JSON.stringify(o);
        const scanned = scanJsonObject(Buffer.from(text), 10_000);
        const parsed = JSON.parse(text) as Record<string, unknown>;
        assert.deepEqual([...scanned.members.keys()], Object.keys(parsed));
        const lazy = lazyBody(scanned);
        assert.deepEqual(Object.keys(lazy), Object.keys(parsed));
        for (const k of Object.keys(parsed)) assert.deepEqual(lazy[k], parsed[k]);
        assert.equal(JSON.stringify(lazy), text);
      }),
      { numRuns: runs(500) },
    );
  });

  test('agrees with JSON.parse on mutated text: a deleted, inserted or replaced byte', () => {
    const alphabet = [...'{}[]",:\\ 0123456789.eE+-tfnul"aé✓'];
    fc.assert(
      fc.property(fc.dictionary(fc.string(), fc.jsonValue(), { maxKeys: 4 }), fc.nat(), fc.constantFrom('delete', 'insert', 'replace'), fc.constantFrom(...alphabet), (o, at, op, ch) => {
        const text = JSON.stringify(o);
        const i = at % (text.length + 1);
        const mutated = op === 'delete' ? text.slice(0, i) + text.slice(i + 1) : op === 'insert' ? text.slice(0, i) + ch + text.slice(i) : text.slice(0, i) + ch + text.slice(i + 1);
        if (CONTROL.test(mutated)) return;
        assert.equal(accepts(mutated), parsesAsObject(mutated), JSON.stringify(mutated));
      }),
      { numRuns: runs(5000) },
    );
  });

  test('whitespace anywhere between tokens, escapes and unicode in names and values', () => {
    const text = ' \n{ "a\\"b" : [ 1 , -2.5e+3 , true , null , "x\\\\y\\u00e9\\n" ] ,\t"é✓": { } , "n":0 }\r\n';
    const s = scanJsonObject(Buffer.from(text), 10);
    assert.deepEqual([...s.members.keys()], ['a"b', 'é✓', 'n']);
    assert.deepEqual({ ...lazyBody(s) }, JSON.parse(text));
    for (const bad of ['{"a":01}', '{"a":1,}', '{"a" 1}', '{"a":"\\x"}', '{"a":"\\u12g4"}', '{"a":tru}', '{} {}', '[1]', '"s"', '', '{"a":1', '{"a":-}', '{"a":1.}', '{"a":1e}']) {
      assert.equal(accepts(bad), false, bad);
    }
  });

  test('nesting deeper than the limit is refused naming limits.max_json_depth; the limit itself is accepted', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string(), fc.jsonValue({ depthSize: 'large' })), (o) => {
        const text = Buffer.from(JSON.stringify(o));
        const depth = depthOf(o);
        scanJsonObject(text, depth);
        if (depth > 1) assert.throws(() => scanJsonObject(text, depth - 1), /deeper than \d+ levels \(limits\.max_json_depth/);
      }),
      { numRuns: runs(300) },
    );
  });

  test('withMember replaces or appends one member and leaves every other byte as sent', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string(), fc.jsonValue(), { maxKeys: 5 }), fc.string(), fc.jsonValue(), (o, name, value) => {
        const text = JSON.stringify(o, null, 1); // whitespace the edit must keep
        const edited = withMember(scanJsonObject(Buffer.from(text), 10_000), name, value).toString();
        assert.deepEqual(JSON.parse(edited), JSON.parse(JSON.stringify({ ...o, [name]: value })));
      }),
      { numRuns: runs(1000) },
    );
    const body = Buffer.from(JSON.stringify(claudeCodeBody()));
    const edited = withMember(scanJsonObject(body, 256), 'model', 'claude-haiku-4-5');
    assert.equal(edited.length, body.length - 'claude-sonnet-4-6'.length + 'claude-haiku-4-5'.length);
    assert.deepEqual(JSON.parse(edited.toString()), { ...(JSON.parse(body.toString()) as object), model: 'claude-haiku-4-5' });
  });

  test('a Claude-Code-shaped body: model and stream are read without decoding messages', () => {
    const raw = Buffer.from(JSON.stringify(claudeCodeBody()));
    const s = scanJsonObject(raw, 256);
    const lazy = lazyBody(s);
    assert.equal(lazy.model, 'claude-sonnet-4-6');
    assert.equal(lazy.stream, true);
    const messages = s.members.get('messages')!;
    assert.ok(messages.end - messages.start > 20_000, 'the history is most of the body');
    assert.deepEqual(lazy.messages, (JSON.parse(raw.toString()) as { messages: unknown }).messages);
  });
});

describe('serializeBody', () => {
  test('a copy-on-write edit of a lazy body serializes to exactly the edited value, reusing untouched members', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string(), fc.jsonValue(), { minKeys: 1, maxKeys: 6 }), fc.nat(), fc.jsonValue(), fc.boolean(), (o, pick, value, add) => {
        const text = JSON.stringify(o, null, 2);
        const original = lazyBody(scanJsonObject(Buffer.from(text), 10_000));
        const keys = Object.keys(original);
        const edited: Record<string, unknown> = { ...original }; // decodes every member, as actions do
        if (add) edited['added-member'] = value;
        else edited[keys[pick % keys.length]!] = value;
        const out = serializeBody(edited, original).toString();
        assert.deepEqual(JSON.parse(out), JSON.parse(JSON.stringify(edited)));
      }),
      { numRuns: runs(1000) },
    );
  });

  test('inject_cache on a Claude-Code-shaped body: the forwarded bytes parse to the edited object', async () => {
    const { injectBreakpoints } = await import('../src/actions/inject_cache.js');
    const raw = Buffer.from(JSON.stringify(claudeCodeBody({ targetBytes: 120_000 })));
    const original = lazyBody(scanJsonObject(raw, 256));
    const { body } = injectBreakpoints(original, { at: ['tools', 'system', 'last_user'], ttl: '5m', minTokens: 1024 });
    assert.notEqual(body, original, 'a breakpoint was added');
    assert.deepEqual(JSON.parse(serializeBody(body, original).toString()), JSON.parse(JSON.stringify(body)));
  });
});

describe('lazy views at every depth', () => {
  /** A copy of `v` with the value at `path` replaced, copying only along the path (as actions do). */
  function setPath(v: unknown, path: Array<string | number>, value: unknown, copy: (a: unknown[]) => unknown[] = (a) => [...a]): unknown {
    if (path.length === 0) return value;
    const [head, ...rest] = path;
    if (Array.isArray(v)) {
      const out = copy(v);
      out[head as number] = setPath(v[head as number], rest, value, copy);
      return out;
    }
    const o = v as Record<string, unknown>;
    return { ...o, [head as string]: setPath(o[head as string], rest, value, copy) };
  }
  /** A path to some value inside `v`, chosen by `seed`. */
  function pickPath(v: unknown, seed: number): Array<string | number> {
    const path: Array<string | number> = [];
    let cur = v;
    while (cur !== null && typeof cur === 'object' && seed > 0) {
      const keys = Array.isArray(cur) ? cur.map((_, i) => i) : Object.keys(cur);
      if (keys.length === 0) break;
      const k = keys[seed % keys.length]!;
      path.push(k);
      cur = (cur as Record<string | number, unknown>)[k];
      seed = Math.floor(seed / 3);
    }
    return path;
  }

  test('a copy-on-write edit at any depth serializes to exactly the edited value', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string(), fc.jsonValue({ maxDepth: 4 }), { minKeys: 1 }), fc.nat(), fc.jsonValue({ maxDepth: 2 }), (o, seed, value) => {
        const original = lazyBody(scanJsonObject(Buffer.from(JSON.stringify(o, null, 1)), 10_000));
        const path = pickPath(original, seed + 1);
        const edited = setPath(original, path.length ? path : [Object.keys(original)[0]!], value) as Record<string, unknown>;
        assert.deepEqual(JSON.parse(serializeBody(edited, original).toString()), JSON.parse(JSON.stringify(edited)));
        assert.deepEqual(JSON.parse(serializeBody(original).toString()), JSON.parse(JSON.stringify(o)), 'the untouched view serializes to the original value');
      }),
      { numRuns: runs(1000) },
    );
  });

  test('copyArray edits: the path is copied lazily, elements never read are forwarded as sent, and the result is exactly the edited value', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string(), fc.jsonValue({ maxDepth: 4 }), { minKeys: 1 }), fc.nat(), fc.jsonValue({ maxDepth: 2 }), (o, seed, value) => {
        const raw = Buffer.from(JSON.stringify(o, null, 1));
        const original = lazyBody(scanJsonObject(raw, 10_000));
        // The path is chosen on a plain copy, so the lazy view's other elements stay unread.
        const path = pickPath(o, seed + 1);
        const at = path.length ? path : [Object.keys(o)[0]!];
        const edited = setPath(original, at, value, copyArray) as Record<string, unknown>;
        const expected = setPath(o, at, value);
        assert.deepEqual(JSON.parse(serializeBody(edited, original).toString()), JSON.parse(JSON.stringify(expected)));
        assert.deepEqual(JSON.parse(serializeBody(original).toString()), JSON.parse(JSON.stringify(o)), 'the original view is unchanged by edits to its copies');
      }),
      { numRuns: runs(1000) },
    );
  });

  test('withAdded and copyObject edits: objects along the path are copied over the same bytes, and the result is exactly the edited value', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string(), fc.jsonValue({ maxDepth: 4 }), { minKeys: 1 }), fc.nat(), fc.jsonValue({ maxDepth: 2 }), fc.string(), (o, seed, value, added) => {
        const raw = Buffer.from(JSON.stringify(o, null, 1));
        const original = lazyBody(scanJsonObject(raw, 10_000));
        const path = pickPath(o, seed + 1);
        const at = path.length ? path : [Object.keys(o)[0]!];
        // Every object on the path is edited with withAdded (replacing a member), every array with copyArray.
        const edit = (v: unknown, p: Array<string | number>): unknown => {
          if (p.length === 0) return value;
          const [head, ...rest] = p;
          if (Array.isArray(v)) {
            const out = copyArray(v);
            out[head as number] = edit(v[head as number], rest);
            return out;
          }
          const obj = v as Record<string, unknown>;
          return withAdded(obj, head as string, edit(obj[head as string], rest));
        };
        const edited = edit(original, at) as Record<string, unknown>;
        assert.deepEqual(JSON.parse(serializeBody(edited).toString()), JSON.parse(JSON.stringify(setPath(o, at, value))));
        // A new member is added last; a copy's assignment changes the copy only.
        const grown = withAdded(original, `new:${added}`, value);
        assert.deepEqual(JSON.parse(serializeBody(grown).toString()), JSON.parse(JSON.stringify({ ...o, [`new:${added}`]: value })));
        assert.deepEqual(Object.keys(grown), Object.keys({ ...o, [`new:${added}`]: value }));
        const copy = copyObject(original);
        const first = Object.keys(o)[0]!;
        copy[first] = value;
        assert.deepEqual(JSON.parse(serializeBody(copy).toString()), JSON.parse(JSON.stringify({ ...o, [first]: value })));
        assert.deepEqual(JSON.parse(serializeBody(original).toString()), JSON.parse(JSON.stringify(o)), 'the original view is unchanged by edits to its copies');
      }),
      { numRuns: runs(1000) },
    );
  });

  test('plainCopy equals JSON.parse(JSON.stringify(v)) for views, changed views and plain values, and shares nothing with them', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string(), fc.jsonValue({ maxDepth: 3 }), { minKeys: 1 }), fc.jsonValue(), (o, value) => {
        const body = lazyBody(scanJsonObject(Buffer.from(JSON.stringify(o, null, 1)), 10_000));
        const expected = JSON.parse(JSON.stringify(o));
        const copy = plainCopy(body) as Record<string, unknown>;
        assert.deepEqual(copy, expected);
        assert.equal(viewBytes(copy), null, 'a plain object, not a view');
        const changed = copyObject(body);
        changed[Object.keys(o)[0]!] = value;
        assert.deepEqual(plainCopy(changed), JSON.parse(JSON.stringify(changed)));
        assert.deepEqual(plainCopy(value), JSON.parse(JSON.stringify(value)));
      }),
      { numRuns: runs(300) },
    );
  });

  test("memberKind and elementSize read the client's bytes of an unchanged view, and answer null once it is changed or not a view", () => {
    const body = lazyBody(scanJsonObject(Buffer.from('{"blocks":[ {"type":"text","text":""} , {"type":"text","text":"hi \\"you\\""},{"text":1} ]}'), 10)) as { blocks: Array<Record<string, unknown>> };
    const sent = [{ type: 'text', text: '' }, { type: 'text', text: 'hi "you"' }, { text: 1 }];
    assert.deepEqual(
      [0, 1, 2].map((i) => elementSize(body.blocks, i)),
      sent.map((b) => JSON.stringify(b).length),
    );
    assert.equal(elementSize(body.blocks, 3), null);
    assert.deepEqual(
      body.blocks.map((b) => memberKind(b, 'text')),
      ['empty-string', 'string', 'other'],
    );
    assert.equal(memberKind(body.blocks[0], 'cache_control'), 'absent');
    assert.equal(memberKind({ text: '' }, 'text'), null, 'not a view');
    const b1 = body.blocks[1]!;
    assert.equal(b1.text, 'hi "you"');
    assert.equal(memberKind(b1, 'text'), null, 'once read, the value is the truth');
    const copy = copyArray(body.blocks);
    copy[0] = { text: 'x' };
    assert.equal(elementSize(copy, 1), null, 'a changed array');
  });

  test("an edited body keeps the client's bytes of every part it did not touch: escapes, spacing and number forms as sent", () => {
    const text = '{ "system" : "caf\\u00e9 \\/ x" , "n": 1.50E+2, "tools" : [ {"name":"a","d":"\\u2713"} ,  {"name":"b"} , {"name":"c"} ], "metadata": {"k": [ 1 , 2 ]} }';
    const raw = Buffer.from(text);
    const body = lazyBody(scanJsonObject(raw, 10));
    const tools = copyArray(body.tools as Array<Record<string, unknown>>);
    tools[2] = withAdded(tools[2]!, 'cache_control', { type: 'ephemeral' });
    const edited = withAdded(body, 'tools', tools);
    const out = serializeBody(edited).toString();
    assert.deepEqual(JSON.parse(out), { ...(JSON.parse(text) as object), tools: [{ name: 'a', d: '✓' }, { name: 'b' }, { name: 'c', cache_control: { type: 'ephemeral' } }] });
    for (const part of ['"caf\\u00e9 \\/ x"', '1.50E+2', '{"name":"a","d":"\\u2713"} ,  {"name":"b"}', '{"k": [ 1 , 2 ]}', '"name":"c"'])
      assert.ok(out.includes(part), `${part} is forwarded as sent: ${out}`);
    assert.equal(serializeBody(body).toString(), text, 'an unchanged body is its bytes');
  });

  test('memberLength counts an array member from the scan, or from the value once changed; 0 when absent or not an array', () => {
    const body = lazyBody(scanJsonObject(Buffer.from('{"messages":[1,2,3],"tools":[],"system":"s"}'), 10));
    assert.deepEqual(
      ['messages', 'tools', 'system', 'none'].map((n) => memberLength(body, n)),
      [3, 0, 0, 0],
    );
    const changed = copyObject(body);
    changed.messages = [1];
    assert.equal(memberLength(changed, 'messages'), 1);
    assert.equal(memberLength({ messages: [1, 2] }, 'messages'), 2);
    assert.equal(plainCopy(undefined), undefined);
  });

  test('keyOffsets: every occurrence of a watched member name at any depth, escaped names included; elementsHolding maps them to elements', () => {
    const count = (v: unknown, name: string): number =>
      v !== null && typeof v === 'object' ? Object.entries(v).reduce((n, [k, e]) => n + (k === name && !Array.isArray(v) ? 1 : 0) + count(e, name), 0) : 0;
    const keyed = fc.letrec((tie) => ({
      value: fc.oneof({ depthSize: 'small' }, fc.jsonValue({ maxDepth: 1 }), fc.array(tie('value'), { maxLength: 3 }), tie('object')),
      object: fc.dictionary(fc.constantFrom('cache_control', 'type', 'text', 'cache_controls', 'x'), tie('value'), { maxKeys: 3 }),
    }));
    fc.assert(
      fc.property(fc.dictionary(fc.constantFrom('tools', 'system', 'cache_control', 'z'), fc.array(keyed.value, { maxLength: 4 })), (o) => {
        const raw = Buffer.from(JSON.stringify(o, null, 1));
        const body = lazyBody(scanJsonObject(raw, 10_000, ['cache_control']));
        const k = keyOffsets(body, 'cache_control')!;
        assert.equal(k.at.length, count(o, 'cache_control'));
        for (const at of k.at) assert.equal(raw.toString('utf8', at, at + 15), '"cache_control"');
        for (const name of ['tools', 'system'] as const) {
          if (!Array.isArray(o[name])) continue;
          const held = elementsHolding(body[name], k)!;
          assert.deepEqual(
            held,
            o[name].flatMap((e, i) => (count(e, 'cache_control') > 0 ? [i] : [])),
          );
        }
      }),
      { numRuns: runs(500) },
    );
    const escaped = lazyBody(scanJsonObject(Buffer.from('{"a":[{"cache\\u005fcontrol":{"type":"ephemeral"}},{"b":"\\"cache_control\\""}]}'), 10, ['cache_control']));
    assert.deepEqual(keyOffsets(escaped, 'cache_control')?.at, [7], 'an escaped name is found; the same text inside a string is not');
    assert.deepEqual(elementsHolding(escaped.a, keyOffsets(escaped, 'cache_control')!), [0]);
    assert.equal(keyOffsets(escaped, 'other'), null, 'a name the scan did not watch');
    const other = lazyBody(scanJsonObject(Buffer.from('{"a":[{"cache_control":1}]}'), 10, ['cache_control']));
    assert.equal(elementsHolding(other.a, keyOffsets(escaped, 'cache_control')!), null, "another body's offsets");
    assert.deepEqual(elementsHolding(other.a, keyOffsets(other, 'cache_control')!), [0]);
    assert.equal(keyOffsets({ a: 1 }, 'cache_control'), null, 'not a view');
    const changed = copyObject(escaped);
    changed.a = [];
    assert.equal(keyOffsets(changed, 'cache_control'), null, 'a copy is not the scanned body');
  });

  test('elementBytes: an element of an unchanged array view as the client sent it, without reading it; null once the array changed', () => {
    const raw = Buffer.from('{"tools":[ {"name":"a"} , {"name":"b","cache_control":{"type":"ephemeral"}} ],"x":1}');
    const body = lazyBody(scanJsonObject(raw, 10)) as { tools: Array<Record<string, unknown>> };
    assert.equal(elementBytes(body.tools, 0)?.toString(), '{"name":"a"}');
    assert.equal(elementBytes(body.tools, 1)?.includes('"cache_control"'), true);
    assert.equal(elementBytes(body.tools, 2), null, 'no such element');
    assert.equal(elementBytes([{ name: 'a' }], 0), null, 'not a view');
    const copy = copyArray(body.tools);
    assert.equal(elementBytes(copy, 0)?.toString(), '{"name":"a"}', 'an untouched copy is a view over the same bytes');
    copy[0] = { name: 'z' };
    assert.equal(elementBytes(copy, 1), null, 'a changed array reports none');
    assert.equal(elementBytes(body.tools, 0)?.toString(), '{"name":"a"}', 'the original is not changed by its copy');
    assert.deepEqual(JSON.parse(serializeBody({ ...body, tools: copy }).toString()), { tools: [{ name: 'z' }, { name: 'b', cache_control: { type: 'ephemeral' } }], x: 1 });
  });

  test('a view cannot grow or shrink in place (an edit that would leave its bytes stale throws); assignment is tracked', () => {
    const view = lazyBody(scanJsonObject(Buffer.from('{"a":{"b":[1,2]},"c":"x"}'), 10)) as { a: { b: number[]; extra?: number }; c: string };
    assert.throws(() => {
      view.a.extra = 1;
    }, TypeError);
    assert.throws(() => view.a.b.push(3), TypeError);
    view.a.b[0] = 9;
    assert.deepEqual(JSON.parse(serializeBody(view as never).toString()), { a: { b: [9, 2] }, c: 'x' });
  });
});

describe('lazy views behave as JSON.parse results', () => {
  const TEXT = '{"list":[10,{"k":"v"},"s"],"obj":{"a":1,"b":[]},"n":null}';
  const view = () => lazyBody(scanJsonObject(Buffer.from(TEXT), 10)) as Record<string, any>;

  test('indices: only canonical in-range array indices are elements; `in`, Object.keys and the length agree with JSON.parse', () => {
    const v = view();
    const list = v.list as unknown[];
    const plain = [10, { k: 'v' }, 's'];
    for (const key of ['0', '1', '2', '3', '01', '-1', '1.5', '', '99999999999', 'length', 'map']) {
      assert.equal(key in list, key in plain, `"${key}" in`);
      assert.equal((list as any)[key] === undefined, (plain as any)[key] === undefined, `[${JSON.stringify(key)}]`);
    }
    assert.equal(list.length, 3);
    assert.deepEqual(Object.keys(list), ['0', '1', '2']);
    assert.deepEqual(Object.keys(v), ['list', 'obj', 'n']);
    assert.ok('obj' in v && !('nope' in v) && 'hasOwnProperty' in v);
    assert.deepEqual(Reflect.ownKeys(v.obj), ['a', 'b']);
    assert.ok(Array.isArray(list) && Array.isArray(v.obj.b) && !Array.isArray(v.obj));
    assert.deepEqual(
      list.map((x) => typeof x),
      ['number', 'object', 'string'],
    );
  });

  test('listing members decodes nothing; their descriptors read and write through', () => {
    const v = view();
    const d = Object.getOwnPropertyDescriptor(v, 'obj')!;
    assert.equal(d.enumerable, true);
    assert.equal(viewBytes(v), TEXT.length, 'still the client bytes: nothing was assigned');
    assert.deepEqual({ ...(d.get!() as object) }, { a: 1, b: [] });
    d.set!({ a: 2 });
    assert.deepEqual(v.obj, { a: 2 });
    assert.equal(viewBytes(v), null, 'written through the descriptor: the bytes are stale');
    assert.equal(Object.getOwnPropertyDescriptor(v, 'nope'), undefined);
  });

  test('members cannot be defined or deleted; a decoding error names the member by its path', () => {
    const v = view();
    assert.throws(() => Object.defineProperty(v, 'n', { value: 1 }), TypeError);
    assert.throws(() => {
      delete v.n;
    }, TypeError);
    assert.equal(v.n, null);
    const bad = lazyBody(scanJsonObject(Buffer.from('{"messages":[{"role":"user"},{"content":"a\u0001"}]}'), 10)) as Record<string, any>;
    assert.equal(bad.messages[0].role, 'user');
    assert.throws(
      () => bad.messages[1].content,
      (e: Error) => e.name === 'InvalidRequestError' && /body\.messages\.1\.content/.test(e.message),
    );
  });
});

describe('json-scan details', () => {
  const message = (s: string) => {
    try {
      scanJsonObject(Buffer.from(s), 3);
      return 'accepted';
    } catch (err) {
      return (err as Error).message;
    }
  };

  test('errors say what is wrong and at which byte', () => {
    assert.equal(message(''), 'request body must be a JSON object');
    assert.equal(message('[1]'), 'request body must be a JSON object');
    assert.equal(message('{"a":1} x'), 'request body is not valid JSON: unexpected data after the object at byte 8');
    assert.equal(message('{"a":"x'), 'request body is not valid JSON: unterminated string at byte 5');
    assert.equal(message('{"a":"\\q"}'), 'request body is not valid JSON: bad escape at byte 6');
    assert.equal(message('{"a":"\\u12"}'), 'request body is not valid JSON: bad \\u escape at byte 6');
    assert.equal(message('{"a":-x}'), 'request body is not valid JSON: bad number at byte 5');
    assert.equal(message('{"a":1.}'), 'request body is not valid JSON: bad number at byte 7');
    assert.equal(message('{"a":1e+}'), 'request body is not valid JSON: bad number at byte 8');
    assert.equal(message('{"a":nul}'), 'request body is not valid JSON: unexpected token at byte 5');
    assert.equal(message('{"a":}'), 'request body is not valid JSON: unexpected token at byte 5');
    assert.equal(message('{"a":1'), 'request body is not valid JSON: unexpected end at byte 6');
    assert.equal(message('{"a":1;}'), "request body is not valid JSON: expected ',' or '}' at byte 6");
    assert.equal(message('{"a":[1;]}'), "request body is not valid JSON: expected ',' or ']' at byte 7");
    assert.equal(message('{a:1}'), 'request body is not valid JSON: expected a member name at byte 1');
    assert.equal(message('{"a" 1}'), "request body is not valid JSON: expected ':' at byte 5");
    assert.equal(message('{"a":{"b":{"c":{}}}}'), 'request body nests arrays and objects deeper than 3 levels (limits.max_json_depth in the gateway config)');
    assert.equal(message('{"a":{"b":{"c":1}}}'), 'accepted');
    assert.equal(message('{"n":[0,-1,2.5,1E3,1e-2,-0.0],"t":true,"f":false,"z":null,"s":"\\u00e9\\"\\\\\\/\\b\\f\\n\\r\\t"}'), 'accepted');
  });

  test('viewBytes and scannedOf: a view reports its bytes until it is changed; anything else reports none', () => {
    const text = '{"tools":[{"name":"a"}],"n":1}';
    const scanned = scanJsonObject(Buffer.from(text), 10);
    const body = lazyBody(scanned) as { tools: Array<{ name: string }>; n: number };
    assert.equal(scannedOf(body), scanned);
    assert.equal(scannedOf({}), null);
    assert.equal(viewBytes(body.tools), '[{"name":"a"}]'.length);
    assert.equal(viewBytes(body.tools[0]), '{"name":"a"}'.length);
    assert.equal(viewBytes({ name: 'a' }), null);
    assert.equal(viewBytes('a string'), null);
    assert.equal(viewBytes(null), null);
    body.tools[0]!.name = 'b';
    assert.equal(viewBytes(body.tools[0]), null);
    assert.equal(viewBytes(body.tools), null, 'a change inside makes the whole stale');
    assert.equal(viewBytes(body), null);
  });

  test('serializeBody treats values JSON has no form for as JSON.stringify does', () => {
    const original = lazyBody(scanJsonObject(Buffer.from('{"keep":{"x":[1,2]},"arr":[1]}'), 10));
    const edited = { ...original, u: undefined, f: () => 1, s: Symbol('s'), arr: [undefined, () => 1, Symbol('t'), 2], d: new Date(0), nested: { u: undefined, v: 1 } };
    assert.equal(serializeBody(edited as never).toString(), JSON.stringify(edited));
    assert.equal(serializeBody({} as never).toString(), '{}');
    assert.equal(serializeBody({ a: [] } as never).toString(), '{"a":[]}');
  });
});
