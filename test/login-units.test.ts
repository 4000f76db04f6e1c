/**
 * The parts of Claude Code's sign-in that the end-to-end test (login.test.ts) cannot reach in a test's time:
 * a device code's expiry, key rotation, policy merging, the telemetry join's arithmetic and the config's
 * refusals.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { mock, test } from 'node:test';
import { exportJWK, generateKeyPair, importJWK, SignJWT } from 'jose';
import { loadConfig, type LoginConfig, type PolicyConfig } from '../src/config.js';
import { DeviceFlow, normalizeUserCode, type OAuthError } from '../src/login/device.js';
import { Policies } from '../src/login/policy.js';
import { activityFromMetrics, recordTelemetry } from '../src/login/telemetry.js';
import { newSigningJwk, TokenService } from '../src/login/tokens.js';
import { MemoryStore } from '../src/state/store.js';
import { SqliteStore } from '../src/usage/sqlite.js';
import { LoadError } from '../src/validation.js';

const login = (over: Partial<LoginConfig> = {}): LoginConfig => ({
  public_url: 'https://gw.example.com',
  oidc: { issuer: 'https://idp.example.com', client_id: 'sy', client_secret: null, scopes: ['openid'], groups_claim: 'groups' },
  signing_keys: [],
  access_token_ttl_s: 3600,
  refresh_token_ttl_s: 86400,
  device_code_ttl_s: 600,
  poll_interval_s: 5,
  device_requests_per_minute: 10,
  telemetry_forward: null,
  collect_telemetry: false,
  ...over,
});
const alice = { sub: 's-alice', email: 'alice@example.com', name: 'Alice', groups: ['platform'] };

/** Runs `fn` at a fixed, mocked time with a fresh device flow (memory state, the default login config). */
async function withDeviceFlow(fn: (f: { state: MemoryStore; tokens: TokenService; flow: DeviceFlow }) => Promise<void>): Promise<void> {
  mock.timers.enable({ apis: ['Date'], now: Date.parse('2026-11-30T10:00:00Z') });
  try {
    const state = new MemoryStore();
    const { tokens } = await TokenService.create(login(), state);
    await fn({ state, tokens, flow: new DeviceFlow(login(), state, tokens) });
  } finally {
    mock.timers.reset();
  }
}

test('a device code not approved within device_code_ttl_s answers expired_token, and can no longer be approved', async () => {
  await withDeviceFlow(async ({ flow }) => {
    const d = await flow.authorize();
    await assert.rejects(flow.poll(d.device_code), (e: OAuthError) => e.error === 'authorization_pending');
    mock.timers.tick(600_001);
    await assert.rejects(flow.poll(d.device_code), (e: OAuthError) => e.error === 'expired_token' && e.status === 400);
    assert.equal(await flow.settle(d.device_code, alice), false, 'too late to approve');
    assert.equal(await flow.deviceCodeFor(d.user_code), null, 'the user code is gone');
  });
});

test('polls in time keep answering authorization_pending; each too-early poll adds 5 s to the interval', async () => {
  await withDeviceFlow(async ({ tokens, flow }) => {
    const { device_code } = await flow.authorize();
    const err = async () => flow.poll(device_code).catch((e: OAuthError) => e.error);
    assert.equal(await err(), 'authorization_pending');
    mock.timers.tick(5000);
    assert.equal(await err(), 'authorization_pending');
    mock.timers.tick(1000);
    await assert.rejects(flow.poll(device_code), (e: OAuthError) => e.error === 'slow_down' && /every 10 s/.test(e.description), 'the interval grew to 10 s');
    mock.timers.tick(5000); // 5 s later: inside the new 10 s interval
    assert.equal(await err(), 'slow_down');
    mock.timers.tick(15_000); // the interval is now 15 s
    assert.equal(await err(), 'authorization_pending');
    await flow.settle(device_code, alice);
    const issued = await flow.poll(device_code);
    assert.equal((await tokens.verifyAccess(issued.access_token)).email, 'alice@example.com');
  });
});

test('key rotation: a token signed by the old key verifies while it is listed second; once removed, it is refused', async () => {
  const oldKey = JSON.stringify(await newSigningJwk());
  const { privateKey } = await generateKeyPair('Ed25519', { extractable: true });
  const newKey = JSON.stringify({ ...(await exportJWK(privateKey)), kid: 'ed-2026' });
  const state = new MemoryStore();
  const before = (await TokenService.create(login({ signing_keys: [oldKey] }), state)).tokens;
  const old = await before.issue(alice);
  const during = (await TokenService.create(login({ signing_keys: [newKey, oldKey] }), state)).tokens;
  assert.equal((await during.verifyAccess(old.access_token)).sub, 's-alice', 'the old key still verifies');
  const fresh = await during.issue(alice);
  assert.equal(JSON.parse(Buffer.from(fresh.access_token.split('.')[0]!, 'base64url').toString()).alg, 'EdDSA', 'the first key signs');
  const after = (await TokenService.create(login({ signing_keys: [newKey] }), state)).tokens;
  assert.equal((await after.verifyAccess(fresh.access_token)).sub, 's-alice');
  await assert.rejects(after.verifyAccess(old.access_token), /no longer has/);
  await assert.rejects(TokenService.create(login({ signing_keys: ['{"kty":"RSA","n":"x","e":"AQAB","d":"y"}'] }), state), /EC P-256 or Ed25519/);
  await assert.rejects(TokenService.create(login({ signing_keys: ['not json'] }), state), /login new-key/);
});

test('policies: the first group policy over the catch-all; models from the specific one, else the catch-all; none applies → no settings', () => {
  const policies: PolicyConfig[] = [
    { name: 'platform', groups: ['platform'], models: null, settings: { permissions: { deny: ['WebFetch'] }, env: { A: '1' }, availableModels: ['x'] } },
    { name: 'design', groups: ['design', 'platform'], models: ['claude-haiku-*'], settings: { model: 'claude-haiku-4-5' } },
    { name: 'all', groups: null, models: ['claude-sonnet-*'], settings: { permissions: { allow: ['Read'] }, env: { A: '0', B: '2' }, availableModels: ['y', 'z'] } },
  ];
  const p = new Policies(policies, login());
  const a = p.for({ ...alice, groups: ['platform', 'design'] });
  assert.equal(a.name, 'platform over all', 'the first policy naming a group wins, not the later one');
  assert.deepEqual(a.settings, { permissions: { allow: ['Read'], deny: ['WebFetch'] }, env: { A: '1', B: '2' }, availableModels: ['x'] }, 'maps merge, lists are replaced');
  const m = p.models({ ...alice, groups: ['platform'] });
  assert.equal(m.name, 'all', 'platform names no models: the catch-all decides');
  assert.ok(m.allows('claude-sonnet-4-6') && !m.allows('claude-haiku-4-5'));
  assert.equal(p.models({ ...alice, groups: ['design'] }).name, 'design');
  const onlySpecific = new Policies([policies[1]!], login());
  assert.equal(onlySpecific.for({ ...alice, groups: ['sales'] }).settings, null, 'no policy: 404, not {}');
  assert.ok(onlySpecific.models({ ...alice, groups: ['sales'] }).allows('claude-opus-4-1'), 'and no model restriction');
  const withTelemetry = new Policies([{ name: 'all', groups: null, models: null, settings: { env: { OTEL_LOGS_EXPORTER: 'none' } } }], login({ collect_telemetry: true }));
  const env = withTelemetry.for(alice).settings!.env as Record<string, string>;
  assert.equal(env.CLAUDE_CODE_ENABLE_TELEMETRY, '1');
  assert.equal(env.OTEL_LOGS_EXPORTER, 'none', "the policy's own env wins");
  assert.equal(new Policies([], login({ collect_telemetry: true })).for(alice).settings!.env !== undefined, true, 'telemetry alone makes a policy');
});

test('telemetry join: delta counters add up, cumulative ones keep the highest; other metrics and points without a session are ignored', async () => {
  const point = (session: string | null, v: number, extra: Record<string, string> = {}) => ({
    asInt: String(v),
    attributes: [...(session ? [{ key: 'session.id', value: { stringValue: session } }] : []), ...Object.entries(extra).map(([key, s]) => ({ key, value: { stringValue: s } }))],
  });
  const body = (temporality: number, commits: number) => ({
    resourceMetrics: [
      {
        scopeMetrics: [
          {
            metrics: [
              { name: 'claude_code.commit.count', sum: { aggregationTemporality: temporality, dataPoints: [point('s1', commits), point(null, 99)] } },
              { name: 'claude_code.token.usage', sum: { aggregationTemporality: 1, dataPoints: [point('s1', 1000, { type: 'input' })] } },
              { name: 'claude_code.lines_of_code.count', sum: { aggregationTemporality: 1, dataPoints: [point('s1', 7, { type: 'added' }), point('s1', 2, { type: 'moved' })] } },
              { name: 'other.commit.count', sum: { dataPoints: [point('s1', 5)] } },
            ],
          },
        ],
      },
    ],
  });
  assert.deepEqual(activityFromMetrics(body(1, 2), 'alice'), [
    { session_id: 's1', user_id: 'alice', column: 'commits', value: 2, mode: 'add' },
    { session_id: 's1', user_id: 'alice', column: 'lines_added', value: 7, mode: 'add' },
  ]);
  const store = new SqliteStore(path.join(mkdtempSync(path.join(tmpdir(), 'switchyard-activity-')), 'usage.db'));
  await store.init();
  await store.addActivity(activityFromMetrics(body(1, 2), 'alice'));
  await store.addActivity(activityFromMetrics(body(1, 3), 'alice'));
  assert.equal((await store.activity('2000-01-01'))[0]!.commits, 5, 'delta: 2 + 3');
  await store.addActivity(activityFromMetrics(body(2, 4), 'alice'));
  assert.equal((await store.activity('2000-01-01'))[0]!.commits, 5, 'cumulative 4 < 5: kept');
  await store.addActivity(activityFromMetrics(body(2, 9), 'alice'));
  assert.equal((await store.activity('2000-01-01'))[0]!.commits, 9, 'cumulative 9: raised');
  assert.equal((await store.activity('2000-01-01'))[0]!.lines_added, 28);
  await store.close();
});

test('config: a policy with a wrong env or availableModels is a load error; an unknown setting a warning; http public_url only on loopback; login needs provider keys', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'switchyard-login-config-'));
  const file = path.join(dir, 'switchyard.yaml');
  const base = (login: string, policies = '', keys = '    keys: [ k ]\n') =>
    `providers:\n  anthropic:\n    type: anthropic\n    base_url: https://api.anthropic.com\n${keys}login:\n${login}${policies}`;
  const ok = '  public_url: https://gw.example.com\n  oidc: { issuer: https://idp.example.com, client_id: sy }\n';
  const load = (text: string) => {
    writeFileSync(file, text);
    return loadConfig(file, {}, {});
  };
  const fails = (text: string, re: RegExp) =>
    assert.throws(
      () => load(text),
      (e: LoadError) => e instanceof LoadError && e.issues.some((i) => re.test(i.message)),
    );
  fails(base(ok, 'policies:\n  - name: p\n    settings: { env: { A: 1 } }\n'), /policy "p": env must map variable names to strings/);
  fails(base(ok, 'policies:\n  - name: p\n    settings: { availableModels: claude }\n'), /availableModels must be a list/);
  const warned = load(base(ok, 'policies:\n  - name: p\n    settings: { apiKeyHelpr: x }\n'));
  assert.ok(warned.warnings.some((w) => /"apiKeyHelpr" is not a setting/.test(w.message)));
  fails(base('  public_url: http://gw.example.com\n  oidc: { issuer: https://idp.example.com, client_id: sy }\n'), /https:\/\/ only/);
  assert.equal(load(base('  public_url: http://127.0.0.1:8790\n  oidc: { issuer: https://idp.example.com, client_id: sy }\n')).login!.public_url, 'http://127.0.0.1:8790');
  fails(base(ok, '', ''), /with login: configured the client's own credential is never forwarded/);
  assert.equal(load(base(ok)).login!.access_token_ttl_s, 3600);
});

test('device codes: user codes as people type them, verification links, settling once, and what a poll hears after', async () => {
  const state = new MemoryStore();
  const cfg = login({ poll_interval_s: 1 });
  const { tokens } = await TokenService.create(cfg, state);
  const flow = new DeviceFlow(cfg, state, tokens);
  const d = await flow.authorize();
  assert.match(d.user_code, /^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$/);
  assert.equal(d.verification_uri, 'https://gw.example.com/device');
  assert.equal(d.verification_uri_complete, `https://gw.example.com/device?user_code=${d.user_code}`);
  assert.deepEqual([d.expires_in, d.interval], [600, 1]);
  assert.equal(normalizeUserCode(' wdjb-mjht '), 'WDJBMJHT');
  assert.equal(await flow.deviceCodeFor(d.user_code.toLowerCase().replace('-', ' ')), d.device_code, 'lower case and a space instead of the dash');
  assert.equal(await flow.deviceCodeFor(d.user_code.slice(0, 8)), null, 'seven letters are no code');
  assert.equal(await flow.settle('no-such-device-code', alice), false);
  assert.equal(await flow.settle(d.device_code, null), true, 'denied');
  assert.equal(await flow.settle(d.device_code, alice), false, 'settled once');
  assert.equal(await flow.deviceCodeFor(d.user_code), null, 'the user code is spent');
  await assert.rejects(flow.poll(d.device_code), (e: OAuthError) => e.error === 'access_denied' && e.status === 400);
  await assert.rejects(flow.poll(d.device_code), (e: OAuthError) => e.error === 'invalid_grant' && /already used/.test(e.description), 'taken on the first poll');
  await assert.rejects(flow.poll('never-issued'), (e: OAuthError) => e.error === 'invalid_grant' && /unknown/.test(e.description));
  const approved = await flow.authorize();
  await flow.settle(approved.device_code, alice);
  const issued = await flow.poll(approved.device_code);
  assert.equal((await tokens.verifyAccess(issued.access_token)).sub, 's-alice');
  await assert.rejects(flow.poll(approved.device_code), (e: OAuthError) => e.error === 'invalid_grant', 'a replayed device code');
});

test('a device code answers expired_token for a minute past its expiry, then it is unknown (invalid_grant)', async () => {
  await withDeviceFlow(async ({ flow }) => {
    const d = await flow.authorize();
    mock.timers.tick(599_000);
    assert.equal(await flow.settle(d.device_code, alice), true, 'a second before expiry: still approvable');
    const late = await flow.authorize();
    mock.timers.tick(600_000);
    await assert.rejects(flow.poll(late.device_code), (e: OAuthError) => e.error === 'expired_token');
    mock.timers.tick(60_001);
    await assert.rejects(flow.poll(late.device_code), (e: OAuthError) => e.error === 'invalid_grant');
  });
});

test('tokens: the pair issued, the claims read back, a cached token still expiring on time, and what is refused', async () => {
  mock.timers.enable({ apis: ['Date'], now: Date.parse('2026-11-30T10:00:00Z') });
  try {
    const state = new MemoryStore();
    const jwk = await newSigningJwk();
    const { tokens, ephemeral } = await TokenService.create(login({ signing_keys: [JSON.stringify({ ...jwk, kid: undefined })], access_token_ttl_s: 600 }), state);
    assert.equal(ephemeral, false);
    assert.equal((await TokenService.create(login(), state)).ephemeral, true);
    const pair = await tokens.issue(alice);
    assert.equal(pair.token_type, 'Bearer');
    assert.equal(pair.expires_in, 600);
    const [header, payload] = pair.access_token
      .split('.')
      .slice(0, 2)
      .map((p) => JSON.parse(Buffer.from(p, 'base64url').toString()));
    assert.deepEqual(header, { alg: 'ES256', kid: jwk.kid, typ: 'JWT' }, 'without a kid, the key is named by its thumbprint');
    assert.equal(payload.exp - payload.iat, 600);
    assert.deepEqual([payload.iss, payload.aud, payload.sub, payload.use], ['https://gw.example.com', 'https://gw.example.com', 's-alice', 'access']);
    assert.deepEqual(await tokens.verifyAccess(pair.access_token), alice);
    await assert.rejects(tokens.verifyAccess(pair.refresh_token), /not an access token/);
    await assert.rejects(tokens.refresh(pair.access_token), /not a refresh token/);
    mock.timers.tick(599_000);
    assert.equal((await tokens.verifyAccess(pair.access_token)).email, 'alice@example.com', 'cached, still valid');
    mock.timers.tick(2000);
    await assert.rejects(tokens.verifyAccess(pair.access_token), /expired/, 'the cache honours the expiry');
    await assert.rejects(tokens.verifyAccess(pair.access_token), /exp/, 'and once dropped, the signature check says so too');
    // Claims of other types are not trusted as they are.
    const key = await importJWK(jwk, 'ES256');
    const odd = await new SignJWT({ use: 'access', email: 7, name: ['x'], groups: ['ok', 3, null] })
      .setProtectedHeader({ alg: 'ES256', kid: jwk.kid })
      .setSubject('s-odd')
      .setIssuer('https://gw.example.com')
      .setAudience('https://gw.example.com')
      .setIssuedAt()
      .setExpirationTime('5m')
      .sign(key);
    assert.deepEqual(await tokens.verifyAccess(odd), { sub: 's-odd', email: null, name: null, groups: ['ok'] });
    const noSub = await new SignJWT({ use: 'access' })
      .setProtectedHeader({ alg: 'ES256', kid: jwk.kid })
      .setIssuer('https://gw.example.com')
      .setAudience('https://gw.example.com')
      .setExpirationTime('5m')
      .sign(key);
    await assert.rejects(tokens.verifyAccess(noSub), /not an access token/);
  } finally {
    mock.timers.reset();
  }
});

test('refresh: a new pair until the user is revoked (by email or subject); a later sign-in refreshes again; others are untouched', async () => {
  mock.timers.enable({ apis: ['Date'], now: Date.parse('2026-11-30T10:00:00Z') });
  try {
    const state = new MemoryStore();
    const { tokens } = await TokenService.create(login({ refresh_token_ttl_s: 3600 }), state);
    const bob = { sub: 's-bob', email: 'bob@example.com', name: null, groups: [] };
    const a = await tokens.issue(alice);
    const b = await tokens.issue(bob);
    const renewed = await tokens.refresh(a.refresh_token);
    assert.equal((await tokens.verifyAccess(renewed.access_token)).sub, 's-alice');
    mock.timers.tick(5000);
    await tokens.revoke('alice@example.com');
    await assert.rejects(tokens.refresh(renewed.refresh_token), /revoked/);
    await assert.rejects(tokens.refresh(a.refresh_token), /revoked/);
    assert.ok(await tokens.refresh(b.refresh_token), "bob's sign-in is untouched");
    mock.timers.tick(2000);
    const again = await tokens.issue(alice);
    assert.ok(await tokens.refresh(again.refresh_token), 'a sign-in after the revocation refreshes');
    await tokens.revoke('s-bob');
    await assert.rejects(tokens.refresh(b.refresh_token), /revoked/, 'by subject too');
    mock.timers.tick(3_600_000 + 1000);
    await assert.rejects(tokens.refresh(again.refresh_token), /exp/, 'a refresh token lives refresh_token_ttl_s');
  } finally {
    mock.timers.reset();
  }
});

test('refresh tokens rotate: a rotated token presented again revokes its whole sign-in (RFC 9700 §4.14.2), and no other', async () => {
  const state = new MemoryStore();
  const { tokens } = await TokenService.create(login({ refresh_token_ttl_s: 3600 }), state);
  const first = await tokens.issue(alice);
  const other = await tokens.issue(alice); // a second sign-in of the same user (another machine)
  const second = await tokens.refresh(first.refresh_token);
  assert.notEqual(second.refresh_token, first.refresh_token);
  await assert.rejects(tokens.refresh(first.refresh_token), /already used \(tokens rotate at every refresh\)/, 'the rotated token is single-use');
  await assert.rejects(tokens.refresh(second.refresh_token), /revoked because one of its refresh tokens was used twice/, 'its whole family is revoked');
  const fresh = await tokens.refresh(other.refresh_token);
  assert.ok(fresh.refresh_token, 'another sign-in of the user is untouched');
  // Two refreshes racing with one token: exactly one wins.
  const raced = await Promise.allSettled([tokens.refresh(fresh.refresh_token), tokens.refresh(fresh.refresh_token)]);
  assert.deepEqual(raced.map((r) => r.status).sort(), ['fulfilled', 'rejected']);
});

test('signing keys: EC P-256 and Ed25519 private JWKs only', async () => {
  const state = new MemoryStore();
  const ec384 = await exportJWK((await generateKeyPair('ES384', { extractable: true })).privateKey);
  await assert.rejects(TokenService.create(login({ signing_keys: [JSON.stringify(ec384)] }), state), /EC P-256 or Ed25519 private JWK \(got kty EC crv P-384\)/);
  const x25519 = { kty: 'OKP', crv: 'X25519', x: 'x', d: 'd' };
  await assert.rejects(TokenService.create(login({ signing_keys: [JSON.stringify(x25519)] }), state), /got kty OKP crv X25519/);
  const { d: _d, ...publicOnly } = await newSigningJwk();
  await assert.rejects(TokenService.create(login({ signing_keys: [JSON.stringify(publicOnly)] }), state), /signing_keys\[0\] is a public key/);
});

test('policies: the exact models a policy lists for /v1/models; none when no policy restricts models', () => {
  const p = new Policies(
    [
      { name: 'eng', groups: ['eng'], models: ['claude-sonnet-4-6', 'claude-haiku-*'], settings: null },
      { name: 'all', groups: null, models: ['claude-haiku-4-5'], settings: null },
    ],
    login(),
  );
  assert.deepEqual(p.listedModels({ ...alice, groups: ['eng'] }), ['claude-sonnet-4-6']);
  assert.deepEqual(p.listedModels({ ...alice, groups: [] }), ['claude-haiku-4-5']);
  assert.equal(new Policies([{ name: 'x', groups: ['x'], models: null, settings: { model: 'm' } }], login()).listedModels(alice), null);
  assert.equal(p.for({ ...alice, groups: [] }).name, 'all');
  assert.equal(new Policies([], login()).for(alice).name, '(none)');
  assert.equal(p.models({ ...alice, groups: ['eng'] }), p.models({ ...alice, groups: ['eng'] }), 'cached per set of groups');
  assert.ok(!p.models({ ...alice, groups: ['eng', 'x'] }).allows('claude-opus-4-1'));
});

test('telemetry join: each counter Claude Code reports, sessions named on the data point or the resource, odd values skipped', () => {
  const kv = (key: string, v: { stringValue?: string; intValue?: string }) => ({ key, value: v });
  const body = {
    resourceMetrics: [
      {
        resource: { attributes: [kv('session.id', { stringValue: 'from-resource' })] },
        scopeMetrics: [
          {
            metrics: [
              { name: 'claude_code.pull_request.count', sum: { aggregationTemporality: 1, dataPoints: [{ asInt: '2', attributes: [] }] } },
              { name: 'claude_code.active_time.total', sum: { aggregationTemporality: 1, dataPoints: [{ asDouble: 12.5, attributes: [kv('session.id', { stringValue: 's2' })] }] } },
              { name: 'claude_code.lines_of_code.count', sum: { dataPoints: [{ asInt: 4, attributes: [kv('session.id', { intValue: '99' }), kv('type', { stringValue: 'removed' })] }] } },
              { name: 'claude_code.commit.count', sum: { dataPoints: [{ asInt: '-1' }, { asDouble: Number.NaN }] } },
              { name: 'claude_code.commit.count', gauge: {} },
              { name: 'claude_code.cost.usage', sum: { dataPoints: [{ asDouble: 0.5 }] } },
            ],
          },
        ],
      },
    ],
  };
  assert.deepEqual(activityFromMetrics(body as never, 'u'), [
    { session_id: 'from-resource', user_id: 'u', column: 'pull_requests', value: 2, mode: 'add' },
    { session_id: 's2', user_id: 'u', column: 'active_time_s', value: 12.5, mode: 'add' },
    { session_id: '99', user_id: 'u', column: 'lines_removed', value: 4, mode: 'add' },
  ]);
  assert.deepEqual(activityFromMetrics({} as never, 'u'), []);
});

test('telemetry join: a JSON body goes to the ledger; a body that is not OTLP JSON is reported once and dropped; no ledger, nothing', async () => {
  const added: unknown[] = [];
  const warned: string[] = [];
  const deps = {
    ledger: { store: { addActivity: async (d: unknown[]) => void added.push(...d) } },
    warnOnce: (key: string) => void warned.push(key),
  } as unknown as Parameters<typeof recordTelemetry>[0];
  const metrics = {
    resourceMetrics: [{ scopeMetrics: [{ metrics: [{ name: 'claude_code.commit.count', sum: { dataPoints: [{ asInt: '1', attributes: [{ key: 'session.id', value: { stringValue: 's' } }] }] } }] }] }],
  };
  recordTelemetry(deps, 'alice', Buffer.from(JSON.stringify(metrics)));
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(added, [{ session_id: 's', user_id: 'alice', column: 'commits', value: 1, mode: 'add' }]);
  recordTelemetry(deps, 'alice', Buffer.from('{not json'));
  assert.deepEqual(warned, ['otlp-json']);
  recordTelemetry({ ...deps, ledger: null } as never, 'alice', Buffer.from(JSON.stringify(metrics)));
  await new Promise((r) => setImmediate(r));
  assert.equal(added.length, 1, 'no ledger: nothing written');
  const failing = { ...deps, ledger: { store: { addActivity: async () => Promise.reject(new Error('disk full')) } } } as never;
  recordTelemetry(failing, 'alice', Buffer.from(JSON.stringify(metrics)));
  await new Promise((r) => setImmediate(r));
  assert.ok(warned.includes('activity:disk full'), 'a failed write is reported');
});

test('device codes at their edges: approval at the expiry instant, an approved code outliving its window, a code two pollers race for', async () => {
  await withDeviceFlow(async ({ tokens, flow }) => {
    const a = await flow.authorize();
    mock.timers.tick(600_000);
    assert.equal(await flow.settle(a.device_code, alice), false, 'at the expiry instant it is too late');
    const b = await flow.authorize();
    await flow.settle(b.device_code, alice);
    mock.timers.tick(600_000 + 60_001);
    await assert.rejects(flow.poll(b.device_code), (e: OAuthError) => e.error === 'invalid_grant', 'an approved code is kept only until its window ends');
    // Another replica took the approved code between this poll's read and its take.
    const racing = new (class extends MemoryStore {
      override async takeRecord(): Promise<string | null> {
        return null;
      }
    })();
    const raced = new DeviceFlow(login(), racing, tokens);
    const c = await raced.authorize();
    await raced.settle(c.device_code, alice);
    await assert.rejects(raced.poll(c.device_code), (e: OAuthError) => e.error === 'invalid_grant' && /already used/.test(e.description));
  });
});
