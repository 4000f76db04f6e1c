/**
 * Hardening: client keys (both header styles, constant-time comparison), the open-gateway refusal, admin
 * access, every request limit, attempts to steer the upstream, HTTPS, CORS, secrets and prompts never
 * reaching logs or dry-run output, and property-based fuzzing of the running gateway.
 */
import crypto from 'node:crypto';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { syncBuiltinESMExports } from 'node:module';
import { connect, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, mock, test } from 'node:test';
import fc from 'fast-check';
import selfsigned from 'selfsigned';
import { Agent, request } from 'undici';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/log.js';
import { startGateway, type Gateway } from '../src/server/serve.js';
import { authenticateClient } from '../src/server/auth.js';
import { LoadError } from '../src/validation.js';
import { startFakeUpstream, type FakeUpstream } from './fake-upstream.js';
import { startTestGateway, writeConfig, type LogCapture } from './helpers.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const ALICE_KEY = 'sk-sy-PLANTED-ALICE-CLIENT-KEY-0001';
const BOB_KEY = 'sk-sy-PLANTED-BOB-CLIENT-KEY-0002';
const PROVIDER_KEY = 'sk-ant-PLANTED-PROVIDER-KEY-0003';
const PROMPT = 'PLANTED-PROMPT-this-text-must-never-be-logged';
const sha = (s: string) => crypto.createHash('sha256').update(s).digest('hex');

process.env.SY_TEST_ALICE_KEY = ALICE_KEY;
process.env.SY_TEST_PROVIDER_KEY = PROVIDER_KEY;

const CLIENTS = `clients:\n  alice: { key: "\${SY_TEST_ALICE_KEY}", tags: { team: platform } }\n  bob: { key_sha256: "${sha(BOB_KEY)}", tags: { team: infra } }\n`;
const KEYED = (url: string) => `  anthropic:\n    type: anthropic\n    base_url: ${url}\n    keys: [ "\${SY_TEST_PROVIDER_KEY}" ]\n`;
const RULES = {
  '10-tag.yaml':
    'version: 1\nrules:\n  - id: platform-header\n    match: { key: alice }\n    actions: [ { set_headers: { x-seen-team: platform } } ]\n  - id: team-tag\n    actions: [ { tag_billing: { team: { expr: "client.tags.team" } } } ]\n',
};

const body = (extra: Record<string, unknown> = {}) => JSON.stringify({ model: 'claude-sonnet-4-6', max_tokens: 10, messages: [{ role: 'user', content: PROMPT }], ...extra });
const post = (url: string, headers: Record<string, string> = {}, payload = body()) =>
  request(url + '/v1/messages', { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: payload });

function isAnthropicError(json: unknown): boolean {
  const j = json as { type?: unknown; error?: { type?: unknown; message?: unknown } };
  return j?.type === 'error' && typeof j.error?.type === 'string' && typeof j.error?.message === 'string' && j.error.message.length > 0;
}

let fake: FakeUpstream;
let gw: Gateway;
let logs: LogCapture;

before(async () => {
  fake = await startFakeUpstream();
  const providers = `  anthropic:\n    type: anthropic\n    base_url: ${fake.url}\n    keys: [ "\${SY_TEST_PROVIDER_KEY}" ]\n`;
  ({ gw, logs } = await startTestGateway({
    upstream: fake.url,
    providers,
    extraConfig: `${CLIENTS}limits: { max_header_bytes: 16384, request_timeout_ms: 1000, max_concurrent_requests: 3 }\n`,
    rules: RULES,
  }));
  logs.lines.length = 0;
});
after(async () => {
  await gw.close();
  await fake.close();
});

describe('client keys', () => {
  test('x-api-key and Authorization: Bearer are both accepted; the provider key goes upstream, never the client key', async () => {
    for (const headers of [{ 'x-api-key': ALICE_KEY }, { authorization: `Bearer ${BOB_KEY}` }] as Array<Record<string, string>>) {
      const r = await post(gw.url, headers);
      assert.equal(r.statusCode, 200);
      await r.body.dump();
      const got = fake.received.at(-1)!.headers;
      assert.equal(got['x-api-key'], PROVIDER_KEY);
      assert.equal(got.authorization, undefined);
    }
    // The client id and its tags are what rules see.
    await (await post(gw.url, { 'x-api-key': ALICE_KEY })).body.dump();
    assert.equal(fake.received.at(-1)!.headers['x-seen-team'], 'platform');
  });

  test('a missing or unknown key is 401 authentication_error and nothing is forwarded', async () => {
    const before = fake.received.length;
    const nearMiss = `${ALICE_KEY.slice(0, -1)}2`; // all but the last character right
    for (const headers of [
      {},
      { 'x-api-key': 'sk-sy-wrong' },
      { authorization: 'Bearer sk-sy-wrong' },
      { authorization: `Basic ${ALICE_KEY}` },
      { 'x-api-key': nearMiss },
      { authorization: `Bearer ${nearMiss}` },
      { 'x-api-key': `${ALICE_KEY}0` },
    ] as Array<Record<string, string>>) {
      const r = await post(gw.url, headers);
      assert.equal(r.statusCode, 401);
      const json = (await r.body.json()) as { error: { type: string; message: string } };
      assert.equal(json.error.type, 'authentication_error');
    }
    assert.equal(fake.received.length, before);
  });

  test('keys are compared with crypto.timingSafeEqual against every client', () => {
    const spy = mock.method(crypto, 'timingSafeEqual');
    syncBuiltinESMExports();
    try {
      const clients = loadConfig(writeConfig({ upstream: 'http://127.0.0.1:9', providers: KEYED('http://127.0.0.1:9'), extraConfig: CLIENTS }).configFile).clients!;
      assert.equal(authenticateClient({ 'x-api-key': ALICE_KEY }, clients).id, 'alice');
      assert.equal(spy.mock.callCount(), clients.length, 'every client is compared even after a match');
    } finally {
      spy.mock.restore();
      syncBuiltinESMExports();
    }
  });

  test('keys new prints a key whose SHA-256 is in the config line it prints', () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'keys', 'new', 'carol'], { cwd: ROOT, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const key = r.stdout.split('\n').find((l) => l.startsWith('sk-sy-'))!;
    assert.ok(key.length > 40);
    assert.match(r.stdout, new RegExp(`carol: \\{ key_sha256: "${sha(key)}", tags: \\{\\} \\}`));
  });
});

describe('hop-by-hop headers', () => {
  test("headers the client's Connection header names, and the fixed hop-by-hop set, are not forwarded (RFC 9110 §7.6.1)", async () => {
    // node:http, not undici: undici refuses to send a Connection header of the caller's choosing.
    const { request: httpRequest } = await import('node:http');
    const payload = body();
    const status = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(gw.url + '/v1/messages', {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(payload),
          'x-api-key': ALICE_KEY,
          connection: 'keep-alive, X-Hop-Secret,x-hop-other',
          'x-hop-secret': 'for-the-next-hop-only',
          'x-hop-other': '1',
          'keep-alive': 'timeout=5',
          te: 'trailers',
          'proxy-authorization': 'Basic cHJveHk6c2VjcmV0',
          'x-end-to-end': 'kept',
        },
      });
      req.on('response', (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', reject);
      req.end(payload);
    });
    assert.equal(status, 200);
    const got = fake.received.at(-1)!.headers;
    assert.equal(got['x-end-to-end'], 'kept');
    for (const name of ['x-hop-secret', 'x-hop-other', 'keep-alive', 'te', 'proxy-authorization']) assert.equal(got[name], undefined, `${name} was forwarded`);
  });
});

describe('refusing to be an open gateway', () => {
  const providers = `  anthropic:\n    type: anthropic\n    base_url: http://127.0.0.1:9\n    keys: [ "\${SY_TEST_PROVIDER_KEY}" ]\n`;
  test('provider keys, no clients and a non-loopback address: refuses, saying why', () => {
    const { configFile } = writeConfig({ upstream: '', providers });
    assert.throws(
      () => loadConfig(configFile, { host: '0.0.0.0' }),
      (err: unknown) => {
        assert.ok(err instanceof LoadError);
        assert.match(
          err.message,
          /refusing to listen on 0\.0\.0\.0: provider "anthropic" has upstream keys and no clients: are configured, so anyone who can reach this address would spend those keys; configure clients:, listen on a loopback address, or set allow_open: true/,
        );
        return true;
      },
    );
    assert.equal(loadConfig(configFile, { host: '127.0.0.1' }).listen.host, '127.0.0.1');
  });

  test('clients: with a provider that has no keys is refused at load, saying what to add; auth: none accepts it', () => {
    const { configFile } = writeConfig({ upstream: 'http://127.0.0.1:9', extraConfig: CLIENTS });
    assert.throws(
      () => loadConfig(configFile),
      (err: Error) => {
        assert.match(
          err.message,
          /switchyard\.yaml:\d+:\d+: provider "anthropic" has no keys:, and with clients: configured the client's own credential is never forwarded, so its requests would go upstream with no credential; add keys: \[ "\$\{YOUR_UPSTREAM_KEY\}" \] to it, or auth: none/,
        );
        return true;
      },
    );
    const open = writeConfig({ upstream: '', providers: '  local:\n    type: openai\n    base_url: http://127.0.0.1:9/v1\n    auth: none\n', extraConfig: CLIENTS });
    assert.equal(loadConfig(open.configFile).clients!.length, 2);
  });

  test('allow_open: true or clients: lift the refusal', () => {
    assert.equal(loadConfig(writeConfig({ upstream: '', providers, extraConfig: 'allow_open: true\n' }).configFile, { host: '0.0.0.0' }).allow_open, true);
    assert.equal(loadConfig(writeConfig({ upstream: '', providers, extraConfig: CLIENTS }).configFile, { host: '0.0.0.0' }).clients!.length, 2);
  });
});

describe('admin routes', () => {
  test('with an admin token: closed without it or with a wrong one, open with it', async () => {
    const { gw: g } = await startTestGateway({ upstream: fake.url, extraConfig: 'admin: { token: "admin-PLANTED-token" }\n' });
    try {
      // Wrong tokens that share all but the last character, or the whole token plus more, or another scheme.
      const wrong = ['Bearer nope', 'Bearer admin-PLANTED-tokeN', 'Bearer admin-PLANTED-token-and-more', 'Bearer admin-PLANTED-toke', 'Basic admin-PLANTED-token'];
      for (const headers of [{}, ...wrong.map((authorization) => ({ authorization }))]) {
        const r = await request(g.url + '/admin/rules', { headers });
        assert.equal(r.statusCode, 401, JSON.stringify(headers));
        assert.ok(isAnthropicError(await r.body.json()));
      }
      for (const path of ['/admin/providers', '/admin/usage', '/metrics']) {
        const r = await request(g.url + path, { headers: { authorization: 'Bearer admin-PLANTED-tokeN' } });
        assert.equal(r.statusCode, 401, path);
        assert.ok(isAnthropicError(await r.body.json()));
      }
      const ok = await request(g.url + '/admin/rules', { headers: { authorization: 'Bearer admin-PLANTED-token' } });
      assert.equal(ok.statusCode, 200);
      await ok.body.dump();
    } finally {
      await g.close();
    }
  });
});

describe('limits', () => {
  test('headers over limits.max_header_bytes: 431 in Anthropic shape', async () => {
    const r = await post(gw.url, { 'x-api-key': ALICE_KEY, 'x-huge': 'a'.repeat(20_000) });
    assert.equal(r.statusCode, 431);
    const json = await r.body.json();
    assert.ok(isAnthropicError(json));
    assert.match((json as { error: { message: string } }).error.message, /16384 bytes \(limits\.max_header_bytes\)/);
  });

  test('a request not received within limits.request_timeout_ms: 408 in Anthropic shape', async () => {
    const { port } = new URL(gw.url);
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = connect(Number(port), '127.0.0.1', () => {
        socket.write(`POST /v1/messages HTTP/1.1\r\nhost: x\r\nx-api-key: ${ALICE_KEY}\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{"model":`);
      });
      let data = '';
      socket.on('data', (d) => (data += d.toString()));
      socket.on('close', () => resolve(data));
      socket.on('error', reject);
      setTimeout(() => reject(new Error('no answer within 10 s')), 10_000).unref();
    });
    assert.match(answer, /^HTTP\/1\.1 408 /);
    assert.ok(isAnthropicError(JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4))));
  });

  test('more than limits.max_concurrent_requests in flight: 529 overloaded_error; the others complete', async () => {
    const open = await Promise.all([1, 2, 3].map(() => post(gw.url, { 'x-api-key': ALICE_KEY, 'x-fake': 'gated-sse' }, body({ stream: true }))));
    const r = await post(gw.url, { 'x-api-key': ALICE_KEY });
    assert.equal(r.statusCode, 529);
    const json = (await r.body.json()) as { error: { type: string; message: string } };
    assert.equal(json.error.type, 'overloaded_error');
    assert.match(json.error.message, /limit of 3 concurrent requests/);
    fake.release();
    for (const o of open) assert.match(await o.body.text(), /message_stop/);
    const again = await post(gw.url, { 'x-api-key': ALICE_KEY });
    assert.equal(again.statusCode, 200);
    await again.body.dump();
  });
});

describe('the upstream comes only from the config', () => {
  let canary: Server;
  let canaryHits = 0;
  let canaryUrl: string;
  before(async () => {
    canary = createServer((_req, res) => {
      canaryHits++;
      res.end('{}');
    });
    await new Promise<void>((r) => canary.listen(0, '127.0.0.1', r));
    canaryUrl = `http://127.0.0.1:${(canary.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((r) => canary.close(() => r())));

  test('headers, body fields, query strings and absolute-form targets cannot choose the upstream', async () => {
    const canaryHost = new URL(canaryUrl).host;
    const before = fake.received.length;
    const attempts = [
      post(gw.url, { 'x-api-key': ALICE_KEY, 'x-forwarded-host': canaryHost, 'x-upstream-url': canaryUrl, forwarded: `host=${canaryHost}`, 'x-original-url': canaryUrl }),
      post(gw.url, { 'x-api-key': ALICE_KEY }, body({ base_url: canaryUrl, url: canaryUrl, provider: { base_url: canaryUrl } })),
      request(`${gw.url}/v1/messages?base_url=${encodeURIComponent(canaryUrl)}&url=${encodeURIComponent(canaryUrl)}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-api-key': ALICE_KEY },
        body: body(),
      }),
    ];
    for (const a of attempts) {
      const r = await a;
      assert.equal(r.statusCode, 200);
      await r.body.dump();
    }
    // An absolute-form request target naming the canary host.
    const { port } = new URL(gw.url);
    const raw = await new Promise<string>((resolve, reject) => {
      const socket = connect(Number(port), '127.0.0.1', () => {
        const payload = body();
        socket.write(
          `POST ${canaryUrl}/v1/messages HTTP/1.1\r\nhost: ${canaryHost}\r\nx-api-key: ${ALICE_KEY}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(payload)}\r\nconnection: close\r\n\r\n${payload}`,
        );
      });
      let data = '';
      socket.on('data', (d) => (data += d.toString()));
      socket.on('close', () => resolve(data));
      socket.on('error', reject);
    });
    assert.match(raw, /^HTTP\/1\.1 200 /);
    assert.equal(canaryHits, 0, 'a request reached the canary');
    assert.equal(fake.received.length, before + attempts.length + 1);
    assert.equal(fake.received.at(-1)!.url, '/v1/messages');
  });
});

test('HTTPS with a certificate the test generates', async () => {
  const pems = await selfsigned.generate([{ name: 'commonName', value: 'localhost' }], { keySize: 2048, extensions: [{ name: 'subjectAltName', altNames: [{ type: 7, ip: '127.0.0.1' }] }] });
  const { configFile, dir } = writeConfig({ upstream: fake.url });
  writeFileSync(path.join(dir, 'cert.pem'), pems.cert);
  writeFileSync(path.join(dir, 'key.pem'), pems.private);
  // Paths are relative to the config file.
  writeFileSync(configFile, readFileSync(configFile, 'utf8').replace('listen: { host: 127.0.0.1, port: 0 }', 'listen: { host: 127.0.0.1, port: 0, tls: { cert: cert.pem, key: key.pem } }'));
  const tlsGw = await startGateway({ configFile, watch: false, logger: createLogger({ level: 'silent' }) });
  try {
    assert.match(tlsGw.url, /^https:\/\/127\.0\.0\.1:\d+$/);
    const agent = new Agent({ connect: { ca: pems.cert } });
    const r = await request(tlsGw.url + '/v1/messages', { method: 'POST', headers: { 'content-type': 'application/json' }, body: body(), dispatcher: agent });
    assert.equal(r.statusCode, 200);
    assert.equal(((await r.body.json()) as { type: string }).type, 'message');
    await agent.close();
    await assert.rejects(request(tlsGw.url.replace('https', 'http') + '/healthz').then((x) => x.body.text()));
  } finally {
    await tlsGw.close();
  }
});

describe('CORS', () => {
  test('off by default: no CORS headers (upstream ones are dropped) and no preflight', async () => {
    const r = await post(gw.url, { 'x-api-key': ALICE_KEY, origin: 'https://app.example' });
    assert.equal(r.statusCode, 200);
    await r.body.dump();
    assert.equal(r.headers['access-control-allow-origin'], undefined);
    const pre = await request(gw.url + '/v1/messages', { method: 'OPTIONS', headers: { origin: 'https://app.example', 'access-control-request-method': 'POST' } });
    assert.equal(pre.statusCode, 404);
    await pre.body.dump();
  });

  test('cors.origins: preflight answered, allowed origins get headers on proxied answers, others do not', async () => {
    const { gw: g } = await startTestGateway({ upstream: fake.url, extraConfig: 'cors: { origins: [ "https://app.example" ], max_age_s: 120 }\n' });
    try {
      const pre = await request(g.url + '/v1/messages', {
        method: 'OPTIONS',
        headers: {
          origin: 'https://app.example',
          'access-control-request-method': 'POST',
          'access-control-request-headers': 'x-api-key, anthropic-version, content-type, anthropic-dangerous-direct-browser-access',
        },
      });
      assert.equal(pre.statusCode, 204);
      assert.equal(pre.headers['access-control-allow-origin'], 'https://app.example');
      assert.match(String(pre.headers['access-control-allow-methods']), /POST/);
      assert.match(String(pre.headers['access-control-allow-methods']), /DELETE/, 'batches, files and skills are deleted too');
      assert.equal(pre.headers['access-control-allow-headers'], 'x-api-key, anthropic-version, content-type, anthropic-dangerous-direct-browser-access');
      assert.equal(pre.headers['access-control-max-age'], '120');
      await pre.body.dump();
      for (const stream of [false, true]) {
        const r = await post(g.url, { origin: 'https://app.example' }, body({ stream }));
        assert.equal(r.statusCode, 200);
        assert.equal(r.headers['access-control-allow-origin'], 'https://app.example');
        assert.match(String(r.headers['access-control-expose-headers']), /request-id/);
        await r.body.dump();
      }
      const other = await post(g.url, { origin: 'https://evil.example' });
      assert.equal(other.headers['access-control-allow-origin'], undefined);
      await other.body.dump();
      const err = await post(g.url, { origin: 'https://app.example' }, '{bad');
      assert.equal(err.statusCode, 400);
      assert.equal(err.headers['access-control-allow-origin'], 'https://app.example');
      await err.body.dump();
    } finally {
      await g.close();
    }
  });
});

describe('secrets and prompts stay out', () => {
  test('no planted key or prompt in logs at any level, nor in dry-run output', async () => {
    const { gw: g, logs: traceLogs } = await startTestGateway({ upstream: fake.url, providers: KEYED(fake.url), extraConfig: CLIENTS, rules: RULES });
    try {
      for (const headers of [{ 'x-api-key': ALICE_KEY }, { authorization: `Bearer ${BOB_KEY}` }, { 'x-api-key': 'sk-sy-PLANTED-WRONG' }] as Array<Record<string, string>>) {
        const r = await post(g.url, headers, body({ stream: true }));
        await r.body.dump();
      }
      await (await post(g.url, { 'x-api-key': ALICE_KEY }, '{not json ' + PROMPT)).body.dump();
    } finally {
      await g.close();
    }
    const all = traceLogs.text() + '\n' + logs.text();
    assert.ok(traceLogs.lines.length > 3);
    for (const secret of [ALICE_KEY, BOB_KEY, PROVIDER_KEY, 'sk-sy-PLANTED-WRONG', PROMPT]) assert.ok(!all.includes(secret), `logs contain ${secret}`);

    const req = path.join(tmpdir(), `sy-dry-${process.pid}.json`);
    writeFileSync(req, body());
    const { configFile } = writeConfig({
      upstream: fake.url,
      providers: `  anthropic:\n    type: anthropic\n    base_url: ${fake.url}\n    keys: [ "\${SY_TEST_PROVIDER_KEY}" ]\n`,
      extraConfig: CLIENTS,
      rules: RULES,
    });
    for (const args of [['--json'], []]) {
      const out = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'dry-run', '--config', configFile, '--request', req, '--key', 'alice', '--header', `x-api-key=${ALICE_KEY}`, ...args], {
        cwd: ROOT,
        encoding: 'utf8',
        env: { ...process.env },
      });
      assert.equal(out.status, 0, out.stderr);
      for (const secret of [ALICE_KEY, PROVIDER_KEY]) assert.ok(!out.stdout.includes(secret), `dry-run printed ${secret}`);
      assert.match(out.stdout, /x-api-key.*\[masked fp-[0-9a-f]{10}\]/);
    }
  });
});

test('fuzzing: every answer is an Anthropic error or a forwarded answer; the gateway keeps serving', async () => {
  const { gw: g } = await startTestGateway({ upstream: fake.url });
  try {
    const token = fc.stringMatching(/^[a-z][a-z0-9-]{0,20}$/);
    const headerValue = fc.stringMatching(/^[\x21-\x7e][\x20-\x7e]{0,60}$/);
    const json = fc.oneof(fc.jsonValue(), fc.record({ model: fc.string(), messages: fc.anything(), stream: fc.boolean(), max_tokens: fc.integer() }, { requiredKeys: [] }));
    const payload = fc.oneof(
      json.map((v) => JSON.stringify(v) ?? 'null'),
      fc.string(),
      fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a).toString('latin1')),
    );
    const path_ = fc.constantFrom('/v1/messages', '/v1/messages?beta=true', '/v1/messages/count_tokens', '/v1/models', '/v1/nope', '/', '/admin/rules', '/%2e%2e/etc', '/v1/messages/../models');
    await fc.assert(
      fc.asyncProperty(fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'), path_, fc.dictionary(token, headerValue, { maxKeys: 6 }), payload, async (method, p, headers, data) => {
        delete headers['content-length'];
        delete headers['transfer-encoding'];
        delete headers.host;
        delete headers.connection;
        delete headers.expect;
        delete headers.upgrade;
        delete headers['x-fake'];
        const r = await request(g.url + p, { method, headers, body: method === 'GET' ? undefined : data });
        const text = await r.body.text();
        if (r.statusCode >= 400 && r.headers['request-id'] === undefined) {
          assert.ok(isAnthropicError(JSON.parse(text)), `${method} ${p} -> ${r.statusCode}: ${text.slice(0, 200)}`);
        } else if (r.statusCode !== 204) {
          // A forwarded answer carries the upstream's request-id; the gateway's own 200s are health/admin JSON.
          assert.ok(r.headers['request-id'] !== undefined || r.headers['content-type']?.toString().startsWith('application/json'), `${method} ${p} -> ${r.statusCode}`);
        }
      }),
      { numRuns: 300, interruptAfterTimeLimit: 60_000 },
    );
    const ok = await post(g.url);
    assert.equal(ok.statusCode, 200);
    assert.equal(((await ok.body.json()) as { type: string }).type, 'message');
  } finally {
    await g.close();
  }
});
