/**
 * examples/sign-in-local (issue 33): the try-it recipe for sign-in works as its README says — the development identity
 * provider, the example's gateway config, and the device flow without a browser; the token it gives is the platform
 * policy's (managed settings, the model policy), and DEV_GROUPS empty signs in under the catch-all.
 */
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startFakeUpstream, type FakeUpstream } from './fake-upstream.js';
import { startTestGateway } from './helpers.js';

const EXAMPLE = path.resolve(import.meta.dirname, '../examples/sign-in-local');
// The example's scripts, as its README runs them (plain JavaScript, no declarations).
const { startDevIdp } = (await import(path.join(EXAMPLE, 'dev-idp.mjs'))) as {
  startDevIdp(opts: { port: number; gatewayUrl: string; user: string; groups: string[]; groupsClaim?: string }): Promise<{ issuer: string; close(): Promise<void> }>;
};
const { signInWithoutBrowser } = (await import(path.join(EXAMPLE, 'sign-in.mjs'))) as {
  signInWithoutBrowser(gateway: string): Promise<{ access_token: string; refresh_token: string }>;
};

const freePort = () =>
  new Promise<number>((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });

describe('examples/sign-in-local', () => {
  let upstream: FakeUpstream;
  let gw: Awaited<ReturnType<typeof startTestGateway>>;
  let base: string;
  let idpPort: number;
  let configFile: string;
  before(async () => {
    upstream = await startFakeUpstream();
    const gwPort = await freePort();
    idpPort = await freePort();
    base = `http://127.0.0.1:${gwPort}`;
    // The example's config, on free ports instead of 8790 and 9400, in front of the fake upstream.
    const text = readFileSync(path.join(EXAMPLE, 'switchyard.yaml'), 'utf8')
      .replaceAll('127.0.0.1:8790', `127.0.0.1:${gwPort}`)
      .replace('port: 8790', `port: ${gwPort}`)
      .replaceAll('127.0.0.1:9400', `127.0.0.1:${idpPort}`);
    const dir = mkdtempSync(path.join(tmpdir(), 'switchyard-sign-in-local-'));
    cpSync(path.join(EXAMPLE, 'rules'), path.join(dir, 'rules'), { recursive: true });
    configFile = path.join(dir, 'switchyard.yaml');
    writeFileSync(configFile, text);
    process.env.ANTHROPIC_UPSTREAM_URL = upstream.url;
    gw = await startTestGateway({ upstream: upstream.url, configFile });
  });
  after(async () => {
    await gw?.gw.close();
    await upstream?.close();
  });

  test('dev@example.com in platform signs in without a browser and gets the platform policy', async () => {
    const idp = await startDevIdp({ port: idpPort, gatewayUrl: base, user: 'dev@example.com', groups: ['platform'] });
    try {
      const token = await signInWithoutBrowser(base);
      assert.ok(token.access_token && token.refresh_token);
      const settings = await fetch(`${base}/managed/settings`, { headers: { authorization: `Bearer ${token.access_token}` } });
      assert.equal(settings.status, 200);
      assert.equal(((await settings.json()) as { settings: { env: Record<string, string> } }).settings.env.CLAUDE_CODE_ENABLE_GATEWAY_MODEL_DISCOVERY, '1');
      const send = (model: string) =>
        fetch(`${base}/v1/messages`, {
          method: 'POST',
          headers: { authorization: `Bearer ${token.access_token}`, 'content-type': 'application/json', 'anthropic-version': '2023-06-01' },
          body: JSON.stringify({ model, max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] }),
        });
      const ok = await send('claude-sonnet-4-6');
      assert.equal(ok.status, 200, await ok.clone().text());
      await ok.arrayBuffer();
      assert.equal((await send('claude-opus-4-1')).status, 400, 'Opus is outside the platform policy');
    } finally {
      await idp.close();
    }
  });

  test('no group: the catch-all policy (Haiku only)', async () => {
    const idp = await startDevIdp({ port: idpPort, gatewayUrl: base, user: 'guest@example.com', groups: [] });
    try {
      const token = await signInWithoutBrowser(base);
      const r = await fetch(`${base}/v1/messages`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token.access_token}`, 'content-type': 'application/json', 'anthropic-version': '2023-06-01' },
        body: JSON.stringify({ model: 'claude-sonnet-4-6', max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] }),
      });
      assert.equal(r.status, 400);
      assert.match(((await r.json()) as { error: { message: string } }).error.message, /policy "everyone"/);
    } finally {
      await idp.close();
    }
  });

  test("the managed settings' ETag changes when a policy's settings change (a reload), and a client's copy is then stale", async () => {
    const idp = await startDevIdp({ port: idpPort, gatewayUrl: base, user: 'dev@example.com', groups: ['platform'] });
    try {
      const token = (await signInWithoutBrowser(base)).access_token;
      const get = (etag?: string) => fetch(`${base}/managed/settings`, { headers: { authorization: `Bearer ${token}`, ...(etag ? { 'if-none-match': etag } : {}) } });
      const first = await get();
      const etag = first.headers.get('etag')!;
      assert.ok(etag);
      assert.equal((await get(etag)).status, 304, 'unchanged: not modified');
      writeFileSync(configFile, readFileSync(configFile, 'utf8').replace('CLAUDE_CODE_ENABLE_GATEWAY_MODEL_DISCOVERY: "1"', 'CLAUDE_CODE_ENABLE_GATEWAY_MODEL_DISCOVERY: "0"'));
      assert.equal(gw.gw.runtime.reload('test: policy settings'), true);
      const changed = await get(etag);
      assert.equal(changed.status, 200, 'the old ETag no longer matches');
      assert.notEqual(changed.headers.get('etag'), etag);
      assert.equal(((await changed.json()) as { settings: { env: Record<string, string> } }).settings.env.CLAUDE_CODE_ENABLE_GATEWAY_MODEL_DISCOVERY, '0');
    } finally {
      await idp.close();
    }
  });
});

describe('login.oidc.groups_claim', () => {
  test('groups read from the claim the config names (roles, as Entra ID sends app roles) choose the policy', async () => {
    const upstream = await startFakeUpstream();
    const gwPort = await freePort();
    const idpPort = await freePort();
    const base = `http://127.0.0.1:${gwPort}`;
    const text = readFileSync(path.join(EXAMPLE, 'switchyard.yaml'), 'utf8')
      .replaceAll('127.0.0.1:8790', `127.0.0.1:${gwPort}`)
      .replace('port: 8790', `port: ${gwPort}`)
      .replaceAll('127.0.0.1:9400', `127.0.0.1:${idpPort}`)
      .replace('client_secret: dev-idp-secret', 'client_secret: dev-idp-secret\n    groups_claim: roles');
    const dir = mkdtempSync(path.join(tmpdir(), 'switchyard-groups-claim-'));
    cpSync(path.join(EXAMPLE, 'rules'), path.join(dir, 'rules'), { recursive: true });
    writeFileSync(path.join(dir, 'switchyard.yaml'), text);
    process.env.ANTHROPIC_UPSTREAM_URL = upstream.url;
    const g = await startTestGateway({ upstream: upstream.url, configFile: path.join(dir, 'switchyard.yaml') });
    const idp = await startDevIdp({ port: idpPort, gatewayUrl: base, user: 'dev@example.com', groups: ['platform'], groupsClaim: 'roles' });
    try {
      const token = (await signInWithoutBrowser(base)).access_token;
      const payload = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as { groups: string[] };
      assert.deepEqual(payload.groups, ['platform'], 'the roles claim became the groups');
      const settings = (await (await fetch(`${base}/managed/settings`, { headers: { authorization: `Bearer ${token}` } })).json()) as { settings: { env?: Record<string, string> } };
      assert.equal(settings.settings.env?.CLAUDE_CODE_ENABLE_GATEWAY_MODEL_DISCOVERY, '1', 'the platform policy applies');
    } finally {
      await idp.close();
      await g.gw.close();
      await upstream.close();
    }
  });
});
