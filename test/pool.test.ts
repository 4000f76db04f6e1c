/**
 * Key pools and upstream headers as functions: sticky sessions and the two strategies (as properties over
 * generated request sequences), cooldown lengths from rate-limit headers, key fingerprints, the headers
 * sent upstream (hop-by-hop, credentials, rule changes) and back to the client, and client authentication.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { AuthenticationError } from '../src/errors.js';
import { authenticateClient, bearerMatches } from '../src/server/auth.js';
import { clientResponseHeaders, credentialFor, upstreamRequestHeaders } from '../src/upstream/headers.js';
import { cooldownMs, KeyPool, keyFingerprint } from '../src/upstream/pool.js';

// `npm run mutate` runs this file once per mutant: fewer generated cases there, the full count in npm test.
if (process.env.MUTATION_RUN) fc.configureGlobal({ numRuns: 25 });

const pick = (pool: KeyPool, session: string, cooling: number[] = [], tried = new Set<number>(), now = 1000) => {
  const c = pool.choose(session, cooling, now, tried);
  return c.kind === 'key' ? c.key.key : c.kind;
};

describe('key pool', () => {
  test('a session keeps its first key while it is usable, whatever other sessions do (property)', () => {
    fc.assert(
      fc.property(fc.constantFrom('round_robin' as const, 'least_loaded' as const), fc.array(fc.integer({ min: 0, max: 6 }), { minLength: 1, maxLength: 60 }), (strategy, sessions) => {
        const pool = new KeyPool('p', ['a', 'b', 'c'], strategy);
        const first = new Map<number, string>();
        for (const s of sessions) {
          const key = pick(pool, `s${s}`);
          const k = pool.keys.find((x) => x.key === key)!;
          k.inFlight++; // least_loaded sees the load
          if (!first.has(s)) first.set(s, key);
          assert.equal(key, first.get(s), `session s${s}`);
        }
      }),
    );
  });

  test('round robin gives new sessions the keys in ring order, skipping keys that are not ready', () => {
    const pool = new KeyPool('p', ['a', 'b', 'c'], 'round_robin');
    assert.deepEqual(
      ['n1', 'n2', 'n3', 'n4'].map((s) => pick(pool, s)),
      ['a', 'b', 'c', 'a'],
    );
    assert.equal(pick(pool, 'n5', [0, 5000, 0]), 'c', 'b is cooling: the ring moves past it');
    assert.equal(pick(pool, 'n6'), 'a', 'and continues after the key it gave');
    pool.keys[1]!.failed = true;
    assert.deepEqual(
      ['n7', 'n8', 'n9'].map((s) => pick(pool, s)),
      ['c', 'a', 'c'],
    );
  });

  test('least_loaded: fewest in flight, then most remaining, then the first', () => {
    const pool = new KeyPool('p', ['a', 'b', 'c'], 'least_loaded');
    assert.equal(pick(pool, 'x1'), 'a');
    pool.keys[0]!.inFlight = 2;
    pool.keys[1]!.inFlight = 1;
    pool.keys[2]!.inFlight = 1;
    assert.equal(pick(pool, 'x2'), 'b', 'a tie in flight goes to the first');
    pool.keys[2]!.remaining = 50;
    assert.equal(pick(pool, 'x3'), 'c', 'a key that reported remaining requests beats one that did not');
    pool.keys[1]!.remaining = 900;
    assert.equal(pick(pool, 'x4'), 'b');
  });

  test('a session moves when its key cools, fails or was tried, and sticks to the new key', () => {
    const pool = new KeyPool('p', ['a', 'b', 'c'], 'round_robin');
    assert.equal(pick(pool, 's'), 'a');
    assert.equal(pick(pool, 's', [5000]), 'b', 'cooling until after now');
    assert.equal(pick(pool, 's', [1000]), 'b', 'a cooldown ending now is over, but the session now sticks to b');
    assert.equal(pick(pool, 's', [], new Set([1])), 'c', 'a key tried for this request is skipped');
    pool.keys[2]!.failed = true;
    assert.equal(pick(pool, 's'), 'a');
  });

  test('nothing to choose: cooling with the earliest end, or none', () => {
    const pool = new KeyPool('p', ['a', 'b', 'c'], 'round_robin');
    assert.deepEqual(pool.choose('s', [5000, 3000, 4000], 1000, new Set()), { kind: 'cooling', until: 3000 });
    assert.deepEqual(pool.choose('s', [5000, 0, 4000], 1000, new Set([1])), { kind: 'cooling', until: 4000 }, 'tried keys do not count');
    assert.deepEqual(pool.choose('s', [], 1000, new Set([0, 1, 2])), { kind: 'none' });
    for (const k of pool.keys) k.failed = true;
    assert.deepEqual(pool.choose('s', [], 1000, new Set()), { kind: 'none' });
  });

  test('cooldown ids name the provider and the fingerprint, never the key', () => {
    const pool = new KeyPool('main', ['sk-ant-secret-1234'], 'round_robin');
    assert.equal(pool.cooldownId(pool.keys[0]!), `cooldown:main:${keyFingerprint('sk-ant-secret-1234')}`);
    assert.ok(!pool.cooldownId(pool.keys[0]!).includes('secret'));
  });
});

describe('cooldown length after a 429', () => {
  const now = Date.parse('2026-11-25T12:00:00Z');
  test('retry-after seconds, at least 1 s', () => {
    assert.equal(cooldownMs({ 'retry-after': '17' }, now), 17_000);
    assert.equal(cooldownMs({ 'retry-after': '0' }, now), 1000);
    assert.equal(cooldownMs({ 'retry-after': '0.5' }, now), 1000);
    assert.equal(cooldownMs({ 'retry-after': '2.5' }, now), 2500);
  });
  test('else the earliest anthropic-ratelimit-*-reset in the future; else 60 s', () => {
    assert.equal(
      cooldownMs({ 'anthropic-ratelimit-requests-reset': '2026-11-25T12:00:30Z', 'anthropic-ratelimit-tokens-reset': '2026-11-25T12:00:05Z', 'anthropic-ratelimit-tokens-remaining': '0' }, now),
      5000,
    );
    assert.equal(
      cooldownMs({ 'anthropic-ratelimit-requests-reset': '2026-11-25T11:59:00Z', 'anthropic-ratelimit-input-tokens-reset': '2026-11-25T12:01:00Z' }, now),
      60_000,
      'a reset in the past is ignored',
    );
    assert.equal(cooldownMs({ 'retry-after': 'soon', 'anthropic-ratelimit-requests-reset': 'not a date' }, now), 60_000);
    assert.equal(cooldownMs({ 'x-reset': '2026-11-25T12:00:05Z' }, now), 60_000, 'other headers do not count');
    assert.equal(cooldownMs({}, now), 60_000);
  });
  test('fingerprints: last four characters and six hex digits of the SHA-256', () => {
    const key = 'sk-ant-api03-abcdWXYZ';
    assert.equal(keyFingerprint(key), `…WXYZ#${createHash('sha256').update(key).digest('hex').slice(0, 6)}`);
  });
});

describe('headers sent upstream', () => {
  const incoming = {
    host: 'gateway:8080',
    'content-length': '999',
    'content-type': 'application/json',
    connection: 'keep-alive, X-Hop',
    'x-hop': 'one hop',
    'keep-alive': 'timeout=5',
    'transfer-encoding': 'chunked',
    te: 'trailers',
    trailer: 'x-t',
    upgrade: 'h2c',
    expect: '100-continue',
    'proxy-authorization': 'Basic x',
    'proxy-connection': 'keep-alive',
    'proxy-custom': 'y',
    'anthropic-version': '2023-06-01',
    'anthropic-beta': 'a,b',
    'x-api-key': 'sk-client',
    authorization: 'Bearer client',
    'x-claude-code-session-id': 's1',
  };
  const none = { set: {}, remove: [] };

  test('end-to-end headers pass; hop-by-hop, Connection-listed, proxy-*, host, expect and the old length do not', () => {
    const out = upstreamRequestHeaders(incoming, { kind: 'client' }, none, 42);
    assert.deepEqual(out, {
      'content-type': 'application/json',
      'anthropic-version': '2023-06-01',
      'anthropic-beta': 'a,b',
      'x-api-key': 'sk-client',
      authorization: 'Bearer client',
      'x-claude-code-session-id': 's1',
      'content-length': '42',
    });
    assert.equal(upstreamRequestHeaders(incoming, { kind: 'client' }, none, null)['content-length'], undefined, 'no length when the body length is unknown');
  });

  test("credentials: the provider key replaces the client's; none sends no credential", () => {
    const keyed = upstreamRequestHeaders(incoming, { kind: 'key', key: 'sk-provider' }, none, 1);
    assert.equal(keyed['x-api-key'], 'sk-provider');
    assert.equal(keyed.authorization, undefined);
    const bare = upstreamRequestHeaders(incoming, { kind: 'none' }, none, 1);
    assert.equal(bare['x-api-key'], undefined);
    assert.equal(bare.authorization, undefined);
    assert.deepEqual(credentialFor('sk-p', true), { kind: 'key', key: 'sk-p' });
    assert.deepEqual(credentialFor(null, true), { kind: 'none' });
    assert.deepEqual(credentialFor(undefined, false), { kind: 'client' });
    assert.deepEqual(credentialFor('', false), { kind: 'client' });
  });

  test("a rule's changes: removals, then sets (a set wins over a removal of the same name)", () => {
    const out = upstreamRequestHeaders(incoming, { kind: 'client' }, { set: { 'x-route': 'bg', 'anthropic-beta': 'c' }, remove: ['x-claude-code-session-id', 'x-route'] }, 1);
    assert.equal(out['x-claude-code-session-id'], undefined);
    assert.equal(out['x-route'], 'bg');
    assert.equal(out['anthropic-beta'], 'c');
  });

  test("the client's answer: the upstream's headers less hop-by-hop and CORS; SSE marked for no buffering", () => {
    const json = clientResponseHeaders({
      'content-type': 'application/json',
      'content-length': '10',
      connection: 'close',
      'keep-alive': 'x',
      'access-control-allow-origin': '*',
      'request-id': 'r1',
      'x-u': undefined,
    });
    assert.deepEqual(json, { headers: { 'content-type': 'application/json', 'content-length': '10', 'request-id': 'r1' }, sse: false });
    const sse = clientResponseHeaders({ 'content-type': 'text/event-stream; charset=utf-8', 'transfer-encoding': 'chunked', 'cache-control': 'no-cache' });
    assert.deepEqual(sse, { headers: { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache, no-transform', 'x-accel-buffering': 'no' }, sse: true });
  });
});

describe('client authentication', () => {
  const sha = (s: string) => createHash('sha256').update(s).digest();
  const clients = [
    { id: 'alice', sha256: sha('sk-sy-alice-0001'), tags: {} },
    { id: 'bob', sha256: sha('sk-sy-bob-0002'), tags: {} },
  ] as never;

  test('x-api-key or Authorization: Bearer; the first match wins', () => {
    assert.equal(authenticateClient({ 'x-api-key': 'sk-sy-bob-0002' }, clients).id, 'bob');
    assert.equal(authenticateClient({ authorization: 'Bearer sk-sy-alice-0001' }, clients).id, 'alice');
    const twice = [...(clients as Array<{ id: string }>), { id: 'alice-again', sha256: sha('sk-sy-alice-0001'), tags: {} }] as never;
    assert.equal(authenticateClient({ 'x-api-key': 'sk-sy-alice-0001' }, twice).id, 'alice');
  });

  test('missing, unknown and near-miss keys are 401 with a message that says what to do', () => {
    assert.throws(
      () => authenticateClient({}, clients),
      (e: unknown) => e instanceof AuthenticationError && e.status === 401 && /x-api-key or Authorization: Bearer/.test(e.message),
    );
    for (const key of ['sk-sy-alice-0002', 'sk-sy-alice-000', 'sk-sy-alice-00011', 'SK-SY-ALICE-0001']) {
      assert.throws(
        () => authenticateClient({ 'x-api-key': key }, clients),
        (e: unknown) => e instanceof AuthenticationError && /not known to this switchyard gateway/.test(e.message),
        key,
      );
    }
  });

  test('the admin bearer token: exact match only, scheme case-insensitive', () => {
    assert.equal(bearerMatches('Bearer admin-token-1', 'admin-token-1'), true);
    assert.equal(bearerMatches('bearer  admin-token-1 ', 'admin-token-1'), true);
    for (const h of ['Bearer admin-token-2', 'Bearer admin-token-1x', 'Bearer admin-token-', 'Basic admin-token-1', 'admin-token-1', 'Bearer ', undefined]) {
      assert.equal(bearerMatches(h, 'admin-token-1'), false, String(h));
    }
  });
});
