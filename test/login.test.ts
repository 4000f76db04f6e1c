/**
 * Claude Code's sign-in (issue 21): the device flow end to end against a real OpenID provider (oidc-provider)
 * on loopback, the browser step driven in Chromium; tokens (refresh, revocation, expiry, wrong audience or
 * issuer, a refresh token used as an access token), a replayed device code, slow_down, the per-IP limit;
 * identity in rules and usage records, per-group model policy at /v1/messages and /v1/models; managed settings
 * with ETag/304 and 404 vs {}; Claude Code's OTLP telemetry in both encodings, forwarded verbatim and joined
 * to the ledger; and the real Claude Code CLI in gateway mode with a token from a completed sign-in.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { gzipSync } from 'node:zlib';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { type AddressInfo, createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { importJWK, SignJWT } from 'jose';
import Provider from 'oidc-provider';
import { chromium, type Browser } from 'playwright-core';
import { newSigningJwk } from '../src/login/tokens.js';
import type { Gateway } from '../src/server/serve.js';
import { assertBashRoundTrip, type ClaudeCodeUpstream, runClaudeBashRoundTrip, startClaudeCodeUpstream } from './claude-code-bin.js';
import { startTestGateway, until, writeConfig } from './helpers.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
const MARKER = 'switchyard-gateway-login-round-trip-ok';
const GROUPS: Record<string, string[]> = { alice: ['platform', 'staff'], bob: [], carol: ['design'], dave: ['research'], erin: ['research'] };

async function freePort(): Promise<number> {
  const srv = createNetServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address() as AddressInfo;
  await new Promise((r) => srv.close(r));
  return port;
}

let idp: Server;
let idpUrl: string;
let upstream: ClaudeCodeUpstream;
let collector: Server;
const collected: Array<{ path: string; type: string; body: Buffer; auth: string | undefined }> = [];
let gw: Gateway;
let base: string;
let jwk: Awaited<ReturnType<typeof newSigningJwk>>;
let browser: Browser;
/** The main gateway's config file (the CLI reads it too). */
let mainConfig: string;

before(async () => {
  const gwPort = await freePort();
  base = `http://127.0.0.1:${gwPort}`;
  const idpPort = await freePort();
  idpUrl = `http://127.0.0.1:${idpPort}`;
  const provider = new Provider(idpUrl, {
    clients: [
      {
        client_id: 'switchyard',
        client_secret: 'switchyard-idp-secret',
        redirect_uris: [`${base}/oauth/callback`],
        grant_types: ['authorization_code'],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_post',
      },
    ],
    scopes: ['openid', 'email', 'profile', 'groups'],
    claims: { openid: ['sub'], email: ['email'], profile: ['name'], groups: ['groups'] },
    // Scope claims in the ID token itself (what Okta, Entra and Dex do for groups when asked).
    conformIdTokenClaims: false,
    pkce: { required: () => true },
    features: { devInteractions: { enabled: true } },
    findAccount: (_ctx: unknown, id: string) => ({ accountId: id, claims: () => ({ sub: `sub-${id}`, email: `${id}@example.com`, name: id, groups: GROUPS[id] ?? [] }) }),
  });
  idp = provider.listen(idpPort);
  await new Promise((r) => idp.once('listening', r));

  upstream = await startClaudeCodeUpstream(MARKER);
  collector = createServer((req: IncomingMessage, res) => {
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => {
      collected.push({ path: req.url ?? '', type: String(req.headers['content-type']), body: Buffer.concat(parts), auth: req.headers.authorization });
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((r) => collector.listen(0, '127.0.0.1', r));

  jwk = await newSigningJwk();
  process.env.SWITCHYARD_TEST_LOGIN_KEY = JSON.stringify(jwk);
  const providers = `  anthropic:\n    type: anthropic\n    base_url: ${upstream.url}\n    keys: [ "sk-ant-upstream-login-test" ]\n    retries: { max: 0 }\n`;
  const extraConfig = `admin: { token: admin-secret }
ledger: { sqlite: ./usage.db, flush_interval_ms: 20 }
login:
  public_url: ${base}
  oidc: { issuer: ${idpUrl}, client_id: switchyard, client_secret: switchyard-idp-secret }
  signing_keys: [ "\${SWITCHYARD_TEST_LOGIN_KEY}" ]
  poll_interval_s: 1
  device_requests_per_minute: 40
  telemetry_forward: http://127.0.0.1:${(collector.address() as AddressInfo).port}
policies:
  - name: platform-team
    groups: [ platform ]
    models: [ "claude-sonnet-*", "claude-haiku-*" ]
    settings:
      permissions: { deny: [ "Bash(rm -rf:*)" ] }
      env: { CLAUDE_CODE_ENABLE_GATEWAY_MODEL_DISCOVERY: "1" }
  - name: everyone
    models: [ claude-haiku-4-5 ]
    settings:
      companyAnnouncements: [ "Welcome to the gateway" ]
      permissions: { allow: [ "Read" ] }
`;
  const rules = {
    '50.yaml': `version: 1
rules:
  - id: platform-billing
    match: { group: platform }
    actions: [ { tag_billing: { team: platform } } ]
  - id: research-shared
    match: { group: research }
    actions:
      - tag_billing: { team: research }
      - throttle: { scope: "tag:team", requests_per_minute: 2 }
  - id: route
    actions: [ { route_to: { provider: anthropic } } ]
`,
  };
  const { configFile } = writeConfig({ upstream: upstream.url, providers, extraConfig, rules });
  writeFileSync(configFile, readFileSync(configFile, 'utf8').replace('port: 0', `port: ${gwPort}`));
  mainConfig = configFile;
  ({ gw } = await startTestGateway({ upstream: upstream.url, configFile }));
  assert.ok(existsSync(CHROMIUM), `Chromium not found at ${CHROMIUM}: install Debian's chromium package or set CHROMIUM_PATH`);
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
});

after(async () => {
  await browser?.close();
  await gw?.close();
  await upstream?.close();
  await new Promise((r) => collector?.close(r));
  idp?.closeAllConnections?.();
  await new Promise((r) => idp?.close(r));
});

const form = (fields: Record<string, string>) => ({ method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(fields).toString() });
const poll = async (deviceCode: string) => {
  const r = await fetch(`${base}/oauth/token`, form({ grant_type: DEVICE_GRANT, device_code: deviceCode }));
  return { status: r.status, body: (await r.json()) as Record<string, string | number> };
};
const startDevice = async () => (await (await fetch(`${base}/oauth/device_authorization`, form({ client_id: 'claude-code' }))).json()) as Record<string, string | number>;

/** The browser half: open the verification link, confirm the code, sign in at the IdP as `who`, consent. */
async function signInInBrowser(verificationUri: string, who: string, opts: { cancel?: boolean } = {}): Promise<string> {
  const context = await browser.newContext();
  const page = await context.newPage();
  try {
    await page.goto(verificationUri);
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.waitForSelector('input[name=login]');
    if (opts.cancel) {
      await page.getByText('[ Cancel ]').click();
    } else {
      await page.fill('input[name=login]', who);
      await page.fill('input[name=password]', 'any');
      await page.click('button[type=submit]');
      await page.waitForSelector('button[type=submit]');
      if ((await page.title()) !== 'You are signed in · Switchyard') await page.click('button[type=submit]'); // consent
    }
    await page.waitForSelector('h1');
    await page.waitForFunction(() => !location.href.includes('/interaction/'));
    return (await page.textContent('body')) ?? '';
  } finally {
    await context.close();
  }
}

/** A complete device sign-in as `who`; the token response. */
async function signIn(who: string): Promise<Record<string, string | number>> {
  const d = await startDevice();
  const text = await signInInBrowser(String(d.verification_uri_complete), who);
  assert.match(text, new RegExp(`Signed in as ${who}@example.com`));
  const r = await poll(String(d.device_code));
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body;
}

describe('device sign-in', () => {
  test('discovery names same-origin device authorization and token endpoints and the two grants', async () => {
    const meta = (await (await fetch(`${base}/.well-known/oauth-authorization-server`)).json()) as Record<string, unknown>;
    assert.equal(meta.issuer, base);
    assert.equal(meta.device_authorization_endpoint, `${base}/oauth/device_authorization`);
    assert.equal(meta.token_endpoint, `${base}/oauth/token`);
    assert.deepEqual(meta.grant_types_supported, [DEVICE_GRANT, 'refresh_token']);
    assert.equal(meta.authorization_endpoint, undefined, 'a device flow, not a redirect flow');
  });

  test('device codes are high-entropy and single-use; user codes are 8 of RFC 8628 base-20; polling says pending, then slow_down', async () => {
    const a = await startDevice();
    const b = await startDevice();
    assert.notEqual(a.device_code, b.device_code);
    assert.ok(Buffer.from(String(a.device_code), 'base64url').length >= 32, '≥ 256 bits');
    assert.match(String(a.user_code), /^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$/);
    assert.equal(a.verification_uri, `${base}/device`);
    assert.equal(a.verification_uri_complete, `${base}/device?user_code=${a.user_code}`);
    assert.equal(a.interval, 1);
    const first = await poll(String(a.device_code));
    assert.deepEqual([first.status, first.body.error], [400, 'authorization_pending']);
    const fast = await poll(String(a.device_code));
    assert.deepEqual([fast.status, fast.body.error], [400, 'slow_down'], 'a poll inside the interval');
    const unknown = await poll('not-a-device-code');
    assert.deepEqual([unknown.status, unknown.body.error], [400, 'invalid_grant']);
  });

  test('a completed sign-in yields tokens once; the replayed device code is refused', async () => {
    const d = await startDevice();
    assert.match(await signInInBrowser(String(d.verification_uri_complete), 'alice'), /Signed in as alice@example.com/);
    const r = await poll(String(d.device_code));
    assert.equal(r.status, 200);
    assert.equal(r.body.token_type, 'Bearer');
    assert.equal(r.body.expires_in, 3600);
    assert.ok(r.body.access_token && r.body.refresh_token);
    const replay = await poll(String(d.device_code));
    assert.deepEqual([replay.status, replay.body.error], [400, 'invalid_grant']);
  });

  test('a sign-in cancelled at the identity provider answers access_denied to the poll', async () => {
    const d = await startDevice();
    assert.match(await signInInBrowser(String(d.verification_uri_complete), 'alice', { cancel: true }), /Sign-in did not complete/);
    const r = await poll(String(d.device_code));
    assert.deepEqual([r.status, r.body.error], [400, 'access_denied']);
  });

  test('the verification form refuses a post without its CSRF cookie, and an unknown code', async () => {
    const forged = await fetch(`${base}/device`, { ...form({ user_code: 'BCDF-GHJK', csrf: 'x' }), redirect: 'manual' });
    assert.equal(forged.status, 403);
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${base}/device?user_code=BCDF-GHJK`);
    await page.getByRole('button', { name: 'Continue' }).click();
    assert.match((await page.textContent('h1')) ?? '', /Code not found/);
    await context.close();
  });
});

describe('tokens', () => {
  let alice: Record<string, string | number>;
  before(async () => {
    alice = await signIn('alice');
  });

  const messages = (token: string, model = 'claude-sonnet-4-6') =>
    fetch(`${base}/v1/messages`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'anthropic-version': '2023-06-01', 'x-claude-code-session-id': 'sess-login-1' },
      body: JSON.stringify({ model, max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] }),
    });

  test('a signed-in request goes upstream with the provider key, never the token; its usage record names the user and the group rule tagged it', async () => {
    const r = await messages(String(alice.access_token));
    assert.equal(r.status, 200, await r.clone().text());
    await r.arrayBuffer();
    const sent = upstream.calls.at(-1)!.headers;
    assert.equal(sent['x-api-key'], 'sk-ant-upstream-login-test');
    assert.ok(!JSON.stringify(sent).includes(String(alice.access_token)), 'the sign-in token is not forwarded');
    // The ledger groups by user and by the billing tag the group rule set.
    const report = (await (await fetch(`${base}/admin/usage?by=user&by=tag:team&where=user=alice@example.com&format=json`, { headers: { authorization: 'Bearer admin-secret' } })).json()) as {
      rows: Array<{ group: Record<string, string>; requests: number }>;
    };
    assert.deepEqual(
      report.rows.map((row) => row.group),
      [{ user: 'alice@example.com', 'tag:team': 'platform' }],
    );
    const trace = (await (await fetch(`${base}/admin/requests/${r.headers.get('request-id')}`, { headers: { authorization: 'Bearer admin-secret' } })).json()) as {
      rules: Array<{ id: string; matched: boolean }>;
    };
    assert.ok(trace.rules.find((x) => x.id === 'platform-billing')?.matched, 'the group rule matched');
  });

  test('a model outside the group policy answers 400 invalid_request_error naming the policy; /v1/models lists what the policy allows', async () => {
    const denied = await messages(String(alice.access_token), 'claude-opus-4-1');
    assert.equal(denied.status, 400);
    const body = (await denied.json()) as { type: string; error: { type: string; message: string } };
    assert.equal(body.error.type, 'invalid_request_error');
    assert.match(body.error.message, /claude-opus-4-1.*alice@example\.com.*policy "platform-team"/);
    const bob = await signIn('bob');
    const bobDenied = await messages(String(bob.access_token), 'claude-sonnet-4-6');
    assert.match(((await bobDenied.json()) as { error: { message: string } }).error.message, /policy "everyone"/);
    const list = (await (await fetch(`${base}/v1/models`, { headers: { authorization: `Bearer ${bob.access_token}` } })).json()) as { data: Array<{ id: string }> };
    assert.deepEqual(
      list.data.map((m) => m.id),
      ['claude-haiku-4-5'],
    );
  });

  test('`switchyard login token` gives a CI job an access token that the same policies govern; it ends with its lifetime', async () => {
    const cli = (...args: string[]) =>
      spawnSync(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'login', 'token', '--config', mainConfig, ...args], {
        cwd: path.resolve(import.meta.dirname, '..'),
        encoding: 'utf8',
        env: process.env,
      });
    const made = cli('--subject', 'ci-nightly', '--email', 'ci@example.com', '--group', 'platform', '--ttl', '2h');
    assert.equal(made.status, 0, made.stderr);
    assert.match(made.stderr, /access token for "ci-nightly" \(groups platform\), valid 7200 s/);
    const token = made.stdout.trim();
    const ok = await messages(token, 'claude-sonnet-4-6');
    assert.equal(ok.status, 200, await ok.clone().text());
    await ok.arrayBuffer();
    const refused = await messages(token, 'claude-opus-4-1');
    assert.equal(refused.status, 400);
    assert.match(((await refused.json()) as { error: { message: string } }).error.message, /policy "platform-team"/);
    const payload = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as { exp: number; iat: number; sub: string };
    assert.deepEqual([payload.sub, payload.exp - payload.iat], ['ci-nightly', 7200]);
    // No group: the catch-all policy (haiku only) governs it.
    const plain = cli('--subject', 'ci-other').stdout.trim();
    assert.equal((await messages(plain, 'claude-sonnet-4-6')).status, 400);
    const tooLong = cli('--subject', 'x', '--ttl', '31d');
    assert.equal(tooLong.status, 1);
    assert.match(tooLong.stderr, /switchyard login token: a token lives 1 s to 30 days/);
  });

  test("a throttle shared by a group's members: the group rule's billing tag is the scope", async () => {
    const dave = String((await signIn('dave')).access_token);
    const erin = String((await signIn('erin')).access_token);
    for (const token of [dave, dave]) {
      const r = await messages(token, 'claude-haiku-4-5');
      assert.equal(r.status, 200);
      await r.arrayBuffer();
    }
    const refused = await messages(erin, 'claude-haiku-4-5');
    assert.equal(refused.status, 429, 'erin shares the research group bucket dave emptied');
    assert.match(((await refused.json()) as { error: { message: string } }).error.message, /research-shared.*"research"/);
    assert.equal((await messages(String(alice.access_token), 'claude-haiku-4-5')).status, 200, 'another group is not counted');
  });

  test('refresh gives a new pair; after an admin revokes the user, refresh answers 401 invalid_grant', async () => {
    const u = await signIn('carol');
    const refreshed = await fetch(`${base}/oauth/token`, form({ grant_type: 'refresh_token', refresh_token: String(u.refresh_token) }));
    assert.equal(refreshed.status, 200);
    const pair = (await refreshed.json()) as Record<string, string>;
    assert.ok(pair.access_token && pair.refresh_token);
    assert.equal((await messages(pair.access_token, 'claude-haiku-4-5')).status, 200);
    const revoke = await fetch(`${base}/admin/login/revoke`, {
      method: 'POST',
      headers: { authorization: 'Bearer admin-secret', 'content-type': 'application/json' },
      body: JSON.stringify({ user: 'carol@example.com' }),
    });
    assert.equal(revoke.status, 200);
    const again = await fetch(`${base}/oauth/token`, form({ grant_type: 'refresh_token', refresh_token: pair.refresh_token }));
    assert.equal(again.status, 401);
    assert.equal(((await again.json()) as { error: string }).error, 'invalid_grant');
    // Another user's sign-in is untouched.
    assert.equal((await fetch(`${base}/oauth/token`, form({ grant_type: 'refresh_token', refresh_token: String(alice.refresh_token) }))).status, 200);
  });

  test('expired, wrongly addressed, foreign-signed or refresh tokens are refused with 401 authentication_error', async () => {
    const key = await importJWK(jwk, 'ES256');
    const claims = { email: 'alice@example.com', groups: ['platform'], use: 'access' };
    const mint = (over: { iss?: string; aud?: string; exp?: number; use?: string }, signWith = key) =>
      new SignJWT({ ...claims, use: over.use ?? 'access' })
        .setProtectedHeader({ alg: 'ES256', kid: jwk.kid })
        .setSubject('sub-alice')
        .setIssuer(over.iss ?? base)
        .setAudience(over.aud ?? base)
        .setIssuedAt()
        .setExpirationTime(over.exp ?? Math.floor(Date.now() / 1000) + 600)
        .sign(signWith);
    const valid = await mint({});
    assert.equal((await messages(valid)).status, 200, 'a token minted like the gateway mints is accepted (the cases below differ in one thing)');
    const other = await importJWK(await newSigningJwk(), 'ES256');
    for (const [label, token] of [
      ['expired', await mint({ exp: Math.floor(Date.now() / 1000) - 5 })],
      ['wrong audience', await mint({ aud: 'https://other-gateway.example.com' })],
      ['wrong issuer', await mint({ iss: 'https://other-gateway.example.com' })],
      ['a refresh token', String(alice.refresh_token)],
      ['signed by another key', await mint({}, other)],
    ] as const) {
      const r = await messages(token);
      assert.equal(r.status, 401, label);
      const body = (await r.json()) as { error: { type: string; message: string } };
      assert.equal(body.error.type, 'authentication_error', label);
      assert.match(body.error.message, /run \/login/, label);
    }
    const none = await fetch(`${base}/v1/messages`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    assert.equal(none.status, 401);
    assert.match(((await none.json()) as { error: { message: string } }).error.message, /needs a sign-in: run \/login/);
  });

  test('managed settings: the group policy merged over the catch-all, with the telemetry env; ETag then 304', async () => {
    const r = await fetch(`${base}/managed/settings`, { headers: { authorization: `Bearer ${alice.access_token}` } });
    assert.equal(r.status, 200);
    const etag = r.headers.get('etag')!;
    const body = (await r.json()) as { uuid: string; checksum: string; settings: Record<string, any> };
    assert.equal(etag, `"${body.checksum}"`);
    assert.deepEqual(body.settings.permissions, { allow: ['Read'], deny: ['Bash(rm -rf:*)'] });
    assert.deepEqual(body.settings.companyAnnouncements, ['Welcome to the gateway']);
    assert.equal(body.settings.env.CLAUDE_CODE_ENABLE_GATEWAY_MODEL_DISCOVERY, '1');
    assert.equal(body.settings.env.CLAUDE_CODE_ENABLE_TELEMETRY, '1');
    assert.equal(body.settings.env.OTEL_EXPORTER_OTLP_ENDPOINT, base);
    const again = await fetch(`${base}/managed/settings`, { headers: { authorization: `Bearer ${alice.access_token}`, 'if-none-match': etag } });
    assert.equal(again.status, 304);
    const unauth = await fetch(`${base}/managed/settings`);
    assert.equal(unauth.status, 401);
  });
});

/** An access token for `who`, ten minutes, as a gateway with `public_url: http://127.0.0.1:1` signs it with `key`. */
async function accessToken(key: Awaited<ReturnType<typeof newSigningJwk>>, who: { sub: string; email: string; groups: string[] }): Promise<string> {
  return new SignJWT({ email: who.email, groups: who.groups, use: 'access' })
    .setProtectedHeader({ alg: 'ES256', kid: key.kid })
    .setSubject(who.sub)
    .setIssuer('http://127.0.0.1:1')
    .setAudience('http://127.0.0.1:1')
    .setIssuedAt()
    .setExpirationTime('10m')
    .sign(await importJWK(key, 'ES256'));
}

describe("/v1/models under a policy of globs, when the provider's own list is the catalogue", () => {
  test('the upstream list comes back filtered by the policy: never unfiltered; a model outside it is 404', async () => {
    const key = await newSigningJwk();
    process.env.SWITCHYARD_TEST_LOGIN_KEY_3 = JSON.stringify(key);
    // The provider's list: three models, gzip-compressed as Anthropic may send it.
    const listed = ['claude-opus-4-1', 'claude-sonnet-4-6', 'claude-haiku-4-5'].map((id) => ({ type: 'model', id, display_name: id, created_at: '2025-09-29T00:00:00Z' }));
    let listCalls = 0;
    const lists = createServer((req, res) => {
      const id = /^\/v1\/models\/([^/?]+)/.exec(req.url ?? '')?.[1];
      if (!id) listCalls++;
      const body = id ? listed.find((m) => m.id === id) : { data: listed, has_more: false, first_id: listed[0]!.id, last_id: listed.at(-1)!.id };
      res.writeHead(body ? 200 : 404, { 'content-type': 'application/json', 'content-encoding': 'gzip' }).end(gzipSync(JSON.stringify(body ?? { type: 'error' })));
    });
    await new Promise<void>((r) => lists.listen(0, '127.0.0.1', r));
    const listsUrl = `http://127.0.0.1:${(lists.address() as AddressInfo).port}`;
    const extraConfig = `login:
  public_url: http://127.0.0.1:1
  oidc: { issuer: ${idpUrl}, client_id: switchyard }
  signing_keys: [ "\${SWITCHYARD_TEST_LOGIN_KEY_3}" ]
  collect_telemetry: false
policies:
  - name: sonnet-only
    groups: [ eng ]
    models: [ "claude-sonnet-*" ]
`;
    // No rule and no provider names a model: the catalogue is the provider's own list.
    const providers = `  anthropic:\n    type: anthropic\n    base_url: ${listsUrl}\n    keys: [ "k" ]\n`;
    const g = await startTestGateway({ upstream: listsUrl, providers, extraConfig, rules: { '50.yaml': 'version: 1\nrules: []\n' } });
    try {
      const token = await accessToken(key, { sub: 'sub-bob', email: 'bob@example.com', groups: ['eng'] });
      const get = (p: string) => fetch(`${g.gw.url}${p}`, { headers: { authorization: `Bearer ${token}` } });
      const list = await get('/v1/models');
      assert.equal(list.status, 200, await list.clone().text());
      const body = (await list.json()) as { data: Array<{ id: string }>; first_id: string; last_id: string };
      assert.deepEqual(
        body.data.map((m) => m.id),
        ['claude-sonnet-4-6'],
      );
      assert.deepEqual([body.first_id, body.last_id], ['claude-sonnet-4-6', 'claude-sonnet-4-6']);
      // Kept a minute: the next session's list comes from the gateway, filtered the same way.
      const again = (await (await get('/v1/models')).json()) as { data: Array<{ id: string }> };
      assert.deepEqual(
        again.data.map((m) => m.id),
        ['claude-sonnet-4-6'],
      );
      assert.equal(listCalls, 1, 'the provider was asked for its list once');
      assert.equal((await get('/v1/models/claude-sonnet-4-6')).status, 200);
      const opus = await get('/v1/models/claude-opus-4-1');
      assert.equal(opus.status, 404);
      assert.equal(((await opus.json()) as { error: { type: string } }).error.type, 'not_found_error');
    } finally {
      await g.gw.close();
      lists.close();
    }
  });
});

describe('managed settings without a catch-all', () => {
  test('a user no policy names gets 404 (no policy); a policy of {} gets 200 {} — not the same thing', async () => {
    const key = await newSigningJwk();
    process.env.SWITCHYARD_TEST_LOGIN_KEY_2 = JSON.stringify(key);
    const extraConfig = `login:
  public_url: http://127.0.0.1:1
  oidc: { issuer: ${idpUrl}, client_id: switchyard }
  signing_keys: [ "\${SWITCHYARD_TEST_LOGIN_KEY_2}" ]
  collect_telemetry: false
policies:
  - name: design
    groups: [ design ]
    settings: {}
`;
    const providers = `  anthropic:\n    type: anthropic\n    base_url: ${upstream.url}\n    keys: [ "k" ]\n`;
    const g = await startTestGateway({ upstream: upstream.url, providers, extraConfig });
    try {
      const mint = (groups: string[]) => accessToken(key, { sub: 'sub-x', email: 'x@example.com', groups });
      const none = await fetch(`${g.gw.url}/managed/settings`, { headers: { authorization: `Bearer ${await mint(['sales'])}` } });
      assert.equal(none.status, 404, await none.clone().text());
      assert.equal(((await none.json()) as { error: { type: string } }).error.type, 'not_found_error');
      const empty = await fetch(`${g.gw.url}/managed/settings`, { headers: { authorization: `Bearer ${await mint(['design'])}` } });
      assert.equal(empty.status, 200);
      assert.deepEqual(((await empty.json()) as { settings: unknown }).settings, {});
    } finally {
      await g.gw.close();
    }
  });
});

describe("Claude Code's telemetry", () => {
  let token: string;
  before(async () => {
    token = String((await signIn('alice')).access_token);
  });

  const metrics = (session: string, commits: number, prs: number, added: number) => ({
    resourceMetrics: [
      {
        resource: { attributes: [{ key: 'service.name', value: { stringValue: 'claude-code' } }] },
        scopeMetrics: [
          {
            scope: { name: 'com.anthropic.claude_code' },
            metrics: [
              {
                name: 'claude_code.commit.count',
                sum: { aggregationTemporality: 1, isMonotonic: true, dataPoints: [{ asInt: String(commits), attributes: [{ key: 'session.id', value: { stringValue: session } }] }] },
              },
              {
                name: 'claude_code.pull_request.count',
                sum: { aggregationTemporality: 1, isMonotonic: true, dataPoints: [{ asInt: String(prs), attributes: [{ key: 'session.id', value: { stringValue: session } }] }] },
              },
              {
                name: 'claude_code.lines_of_code.count',
                sum: {
                  aggregationTemporality: 1,
                  isMonotonic: true,
                  dataPoints: [
                    {
                      asInt: String(added),
                      attributes: [
                        { key: 'session.id', value: { stringValue: session } },
                        { key: 'type', value: { stringValue: 'added' } },
                      ],
                    },
                    {
                      asInt: '3',
                      attributes: [
                        { key: 'session.id', value: { stringValue: session } },
                        { key: 'type', value: { stringValue: 'removed' } },
                      ],
                    },
                  ],
                },
              },
            ],
          },
        ],
      },
    ],
  });

  test('OTLP JSON and protobuf are answered 200 in their encoding and forwarded byte for byte; the JSON counters join the ledger by session', async () => {
    // A cost for the session first (the usage record), then two metric exports (delta temporality: they add up).
    const m = await fetch(`${base}/v1/messages`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'x-claude-code-session-id': 'sess-otlp' },
      body: JSON.stringify({ model: 'claude-haiku-4-5', max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] }),
    });
    assert.equal(m.status, 200);
    await m.arrayBuffer();
    collected.length = 0;
    for (const body of [metrics('sess-otlp', 1, 0, 40), metrics('sess-otlp', 1, 1, 2)]) {
      const text = JSON.stringify(body);
      const r = await fetch(`${base}/v1/metrics`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: text });
      assert.equal(r.status, 200);
      assert.deepEqual(await r.json(), {});
    }
    const proto = Buffer.from([0x0a, 0x02, 0x0a, 0x00]); // a tiny ExportLogsServiceRequest
    const p = await fetch(`${base}/v1/logs`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/x-protobuf' }, body: proto });
    assert.equal(p.status, 200);
    assert.equal(p.headers.get('content-type'), 'application/x-protobuf');
    for (let i = 0; i < 50 && collected.length < 3; i++) await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(
      collected.map((c) => c.path),
      ['/v1/metrics', '/v1/metrics', '/v1/logs'],
    );
    assert.deepEqual(collected[2]!.body, proto, 'forwarded verbatim');
    assert.equal(collected[0]!.body.toString(), JSON.stringify(metrics('sess-otlp', 1, 0, 40)));
    assert.equal(collected[0]!.auth, undefined, "the developer's token is not forwarded to the collector");
    let session: Record<string, number | string | null> | undefined;
    for (let i = 0; i < 50 && !(session && Number(session.requests) > 0); i++) {
      const a = (await (await fetch(`${base}/admin/usage/activity`, { headers: { authorization: 'Bearer admin-secret' } })).json()) as { sessions: Array<Record<string, number | string | null>> };
      session = a.sessions.find((s) => s.session_id === 'sess-otlp');
      if (!(session && Number(session.requests) > 0)) await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(session);
    assert.equal(session.user_id, 'alice@example.com');
    assert.deepEqual([session.commits, session.pull_requests, session.lines_added, session.lines_removed], [2, 1, 42, 6]);
    assert.equal(session.requests, 1);
    assert.ok(Number(session.cost_usd) > 0, 'the session has a cost');
    assert.equal(session.usd_per_commit, Math.round((Number(session.cost_usd) / 2) * 1e6) / 1e6);
    assert.equal(session.usd_per_pull_request, session.cost_usd);
  });

  test('an OTLP body over its bound is refused with 413 request_too_large, in the Anthropic envelope', async () => {
    const r = await fetch(`${base}/v1/metrics`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/x-protobuf' }, body: new Uint8Array(8 * 1024 * 1024 + 1) });
    assert.equal(r.status, 413);
    const body = (await r.json()) as { type: string; error: { type: string; message: string } };
    assert.equal(body.type, 'error');
    assert.equal(body.error.type, 'request_too_large');
    assert.match(body.error.message, /limit of 8388608 bytes \(the bound of an OTLP telemetry body\)/);
  });

  test('telemetry without a valid sign-in is refused', async () => {
    const r = await fetch(`${base}/v1/metrics`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    assert.equal(r.status, 401);
  });
});

describe('Claude Code in gateway mode', () => {
  test('claude -p with CLAUDE_CODE_USE_GATEWAY=1 and a token from a completed sign-in completes a Bash tool round trip', { timeout: 900_000 }, async () => {
    const { access_token } = await signIn('alice');
    upstream.calls.length = 0;
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      HOME: mkdtempSync(path.join(tmpdir(), 'switchyard-cc-login-home-')),
      CLAUDE_CODE_USE_GATEWAY: '1',
      ANTHROPIC_BASE_URL: base,
      ANTHROPIC_AUTH_TOKEN: String(access_token),
      ANTHROPIC_MODEL: 'claude-sonnet-4-6',
      ANTHROPIC_SMALL_FAST_MODEL: 'claude-haiku-4-5',
      CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
      DISABLE_AUTOUPDATER: '1',
      CI: '1',
    };
    const out = await runClaudeBashRoundTrip(env, mkdtempSync(path.join(tmpdir(), 'switchyard-cc-login-work-')));
    assertBashRoundTrip(out, upstream.calls, MARKER);
    assert.ok(
      upstream.calls.every((c) => c.headers['x-api-key'] === 'sk-ant-upstream-login-test'),
      'every call went upstream with the provider key',
    );
  });
});

describe('dependencies that fail', () => {
  test('an identity provider that refuses connections: the browser gets a 502 page naming it, the poll stays pending; a collector that refuses: telemetry is still answered 200 and joined', async () => {
    const closed = await freePort(); // nothing listens here
    const key = await newSigningJwk();
    process.env.SWITCHYARD_TEST_LOGIN_KEY_3 = JSON.stringify(key);
    const port = await freePort();
    const gwBase = `http://127.0.0.1:${port}`;
    const extraConfig = `ledger: { sqlite: ./usage.db, flush_interval_ms: 20 }
admin: { token: admin-secret }
login:
  public_url: ${gwBase}
  oidc: { issuer: http://127.0.0.1:${closed}, client_id: switchyard }
  signing_keys: [ "\${SWITCHYARD_TEST_LOGIN_KEY_3}" ]
  telemetry_forward: http://127.0.0.1:${closed}
`;
    const providers = `  anthropic:\n    type: anthropic\n    base_url: ${upstream.url}\n    keys: [ "k" ]\n`;
    const { configFile } = writeConfig({ upstream: upstream.url, providers, extraConfig });
    writeFileSync(configFile, readFileSync(configFile, 'utf8').replace('port: 0', `port: ${port}`));
    const g = await startTestGateway({ upstream: upstream.url, configFile });
    try {
      const d = (await (await fetch(`${gwBase}/oauth/device_authorization`, form({}))).json()) as Record<string, string>;
      const page = await fetch(`${gwBase}/device?user_code=${d.user_code}`);
      const cookie = page.headers.get('set-cookie')!.split(';')[0]!;
      const csrf = /name="csrf" value="([^"]+)"/.exec(await page.text())![1]!;
      const post = await fetch(`${gwBase}/device`, { ...form({ csrf, user_code: d.user_code! }), headers: { 'content-type': 'application/x-www-form-urlencoded', cookie }, redirect: 'manual' });
      assert.equal(post.status, 502);
      assert.match(post.headers.get('content-type') ?? '', /text\/html/);
      assert.match(await post.text(), new RegExp(`Sign-in is unavailable.*the identity provider http://127\\.0\\.0\\.1:${closed} could not be reached`, 's'));
      const polled = await fetch(`${gwBase}/oauth/token`, form({ grant_type: DEVICE_GRANT, device_code: d.device_code! }));
      assert.equal(((await polled.json()) as { error: string }).error, 'authorization_pending', 'the code can still be approved once the provider is back');
      // Telemetry with a token this gateway signed (its key is the test's): the collector is down, the client is not told.
      const token = await new SignJWT({ use: 'access', email: 'ops@example.com', groups: [] })
        .setProtectedHeader({ alg: 'ES256', kid: key.kid })
        .setSubject('s-ops')
        .setIssuer(gwBase)
        .setAudience(gwBase)
        .setIssuedAt()
        .setExpirationTime('5m')
        .sign(await importJWK(key, 'ES256'));
      const metrics = {
        resourceMetrics: [
          { scopeMetrics: [{ metrics: [{ name: 'claude_code.commit.count', sum: { dataPoints: [{ asInt: '3', attributes: [{ key: 'session.id', value: { stringValue: 'sess-down' } }] }] } }] }] },
        ],
      };
      const r = await fetch(`${gwBase}/v1/metrics`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(metrics) });
      assert.equal(r.status, 200);
      let commits: unknown;
      for (let i = 0; i < 50 && commits === undefined; i++) {
        const a = (await (await fetch(`${gwBase}/admin/usage/activity`, { headers: { authorization: 'Bearer admin-secret' } })).json()) as { sessions: Array<{ session_id: string; commits: number }> };
        commits = a.sessions.find((x) => x.session_id === 'sess-down')?.commits;
        if (commits === undefined) await new Promise((res) => setTimeout(res, 50));
      }
      assert.equal(commits, 3, 'joined to the ledger though the collector is down');
      await until(() => g.logs.text().includes('forwarding Claude Code telemetry'), 5000, 'the failed forward logged');
      assert.ok(!g.logs.text().includes(token), 'the token is never logged');
    } finally {
      await g.gw.close();
    }
  });
});

describe('abuse', () => {
  test('device authorizations are limited per client address (429 slow_down, Retry-After)', async () => {
    let limited: Response | null = null;
    for (let i = 0; i < 60 && !limited; i++) {
      const r = await fetch(`${base}/oauth/device_authorization`, form({}));
      if (r.status === 429) limited = r;
      else await r.arrayBuffer();
    }
    assert.ok(limited, 'refused within the minute');
    assert.equal(((await limited.json()) as { error: string }).error, 'slow_down');
    assert.ok(Number(limited.headers.get('retry-after')) >= 1);
  });
});
