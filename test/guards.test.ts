/**
 * The admin guards on their own (server/guards.ts): which writes another web page could forge are refused, and
 * how wrong admin tokens back off per address. The gateway-level tests are in invariants.test.ts.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Hono } from 'hono';
import { AdminBackoffError, CrossSiteError } from '../src/errors.js';
import { AdminBackoff, sameOriginWrites } from '../src/server/guards.js';

function app() {
  const a = new Hono();
  a.use('*', sameOriginWrites as never);
  a.all('*', (c) => c.text('ok'));
  a.onError((err, c) => c.text(err instanceof CrossSiteError ? `refused: ${err.message}` : 'other', err instanceof CrossSiteError ? 403 : 500));
  return a;
}

// Node's HTTP server sees a body's content-length (or transfer-encoding); a fetch Request here has to say it.
const write = (headers: Record<string, string>, body: string | null = '{}', method = 'POST', path = '/admin/x') =>
  app().request(`http://gw.local:8790${path}`, { method, headers: { host: 'gw.local:8790', ...(body === null ? {} : { 'content-length': String(Buffer.byteLength(body)) }), ...headers }, body });

test('reads pass whatever their origin; JSON writes from a non-browser or the same origin pass', async () => {
  assert.equal((await app().request('http://gw.local:8790/admin/x', { headers: { host: 'gw.local:8790', origin: 'http://evil.example' } })).status, 200);
  assert.equal((await write({ 'content-type': 'application/json' })).status, 200);
  assert.equal((await write({ 'content-type': 'application/json; charset=utf-8', origin: 'http://gw.local:8790' })).status, 200);
  assert.equal((await write({ 'content-type': 'application/json', 'sec-fetch-site': 'same-origin', origin: 'null' })).status, 200, 'Sec-Fetch-Site wins over an opaque Origin');
  assert.equal((await write({ 'content-type': 'application/json', 'sec-fetch-site': 'none' })).status, 200, 'typed in the address bar / a bookmark');
  assert.equal((await write({}, null, 'DELETE')).status, 200, 'a write without a body needs no content type');
});

test('cross-site, other origins and non-JSON bodies are refused, for every write method', async () => {
  for (const method of ['POST', 'PUT', 'PATCH', 'DELETE']) {
    const cross = await write({ 'content-type': 'application/json', 'sec-fetch-site': 'cross-site' }, '{}', method);
    assert.equal(cross.status, 403, method);
    assert.match(await cross.text(), /Sec-Fetch-Site: cross-site/);
  }
  assert.equal((await write({ 'content-type': 'application/json', 'sec-fetch-site': 'same-site' })).status, 403, 'a sibling subdomain is another site');
  const other = await write({ 'content-type': 'application/json', origin: 'http://gw.local:9999' });
  assert.equal(other.status, 403, 'same host, other port');
  assert.match(await other.text(), /another origin \(http:\/\/gw\.local:9999\)/);
  for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', '']) {
    const r = await write(type ? { 'content-type': type } : {});
    assert.equal(r.status, 403, type || 'no content-type');
    assert.match(await r.text(), /take a JSON body/);
  }
  // The type is read as HTTP says (case-insensitive, parameters after ';', spaces around); an absent one is named.
  assert.equal((await write({ 'content-type': ' Application/JSON ; charset=utf-8' })).status, 200);
  assert.match(await (await write({ 'content-type': '' })).text(), /not no content-type$/);
  // A declared empty body needs no type; a chunked one (no content-length) does.
  assert.equal((await write({ 'content-type': 'text/plain', 'content-length': '0' }, null)).status, 200);
  assert.equal((await write({ 'content-type': 'text/plain', 'transfer-encoding': 'chunked' }, null)).status, 403);
  // An Origin with no Host to compare it with is refused.
  assert.equal(
    (await app().request('http://gw.local:8790/admin/x', { method: 'POST', headers: { origin: 'http://gw.local:8790', 'content-type': 'application/json', 'content-length': '2' }, body: '{}' }))
      .status,
    403,
  );
  // The dashboard's own sign-in form is the one form post, and only same-origin.
  assert.equal((await write({ 'content-type': 'application/x-www-form-urlencoded' }, 'token=x', 'POST', '/admin/ui/login')).status, 200);
  assert.equal((await write({ 'content-type': 'application/x-www-form-urlencoded', 'sec-fetch-site': 'cross-site' }, 'token=x', 'POST', '/admin/ui/login')).status, 403);
  assert.equal((await write({ 'content-type': 'text/plain' }, 'token=x', 'POST', '/admin/ui/login')).status, 403, 'only the form type');
});

test('admin back-off: nine wrong tokens pass to their 401, the tenth locks the address out, doubling, at most 5 minutes', () => {
  const b = new AdminBackoff();
  const t0 = 1_000_000;
  for (let i = 0; i < 9; i++) {
    b.check('10.0.0.1', t0);
    b.failed('10.0.0.1', t0);
  }
  b.check('10.0.0.1', t0);
  b.failed('10.0.0.1', t0); // the tenth: locked for 2^0 = 1 s
  assert.throws(
    () => b.check('10.0.0.1', t0 + 999),
    (e: unknown) => e instanceof AdminBackoffError && e.headers['retry-after'] === '1',
  );
  b.check('10.0.0.1', t0 + 1000);
  b.failed('10.0.0.1', t0 + 1000); // the eleventh: 2 s
  assert.throws(
    () => b.check('10.0.0.1', t0 + 1500),
    (e: unknown) => e instanceof AdminBackoffError && e.headers['retry-after'] === '2',
    'retry-after rounds up',
  );
  b.check('10.0.0.1', t0 + 3000);
  for (let i = 0; i < 20; i++) b.failed('10.0.0.1', t0 + 3000);
  assert.throws(
    () => b.check('10.0.0.1', t0 + 3000 + 299_000),
    (e: unknown) => e instanceof AdminBackoffError && e.headers['retry-after'] === '1',
    'capped at 300 s',
  );
  b.check('10.0.0.1', t0 + 3000 + 300_000);
  b.check('10.0.0.2', t0); // another address is not locked
  b.succeeded('10.0.0.1');
  b.failed('10.0.0.1', t0 + 400_000);
  b.check('10.0.0.1', t0 + 400_000); // a right token cleared the count: one wrong token is not a lockout
});
