/**
 * Microsoft Foundry and Claude Platform on AWS: a `type: foundry` upstream gets the Messages API at its `/anthropic`
 * path with an `api-key` key (or a Microsoft Entra ID token, here from a managed-identity endpoint on loopback), never
 * the client's credential; the real Claude Code CLI in Foundry mode (`CLAUDE_CODE_USE_FOUNDRY=1`) and in Claude
 * Platform on AWS mode (`CLAUDE_CODE_USE_ANTHROPIC_AWS=1`), pointed at the gateway under a platform base path,
 * completes a Bash round trip; a provider's `workspace_id` goes as `anthropic-workspace-id` on every request.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import Anthropic from '@anthropic-ai/sdk';
import { assertBashRoundTrip, type ClaudeCodeUpstream, runClaudeBashRoundTrip, startClaudeCodeUpstream } from './claude-code-bin.js';
import { messageJson } from './fake-upstream.js';
import { startTestGateway } from './helpers.js';

const sha = (s: string) => createHash('sha256').update(s).digest('hex');
const FOUNDRY_KEYS = ['foundry-key-one-0001', 'foundry-key-two-0002'];

const foundryProvider = (url: string, keys = `    keys: [${FOUNDRY_KEYS.map((k) => `"${k}"`).join(', ')}]\n`) =>
  `  foundry:\n    type: foundry\n    base_url: ${url}/anthropic\n${keys}    timeouts: { connect_ms: 2000, headers_ms: 20000, first_byte_ms: 20000, body_ms: 20000 }\n    retries: { max: 0 }\n`;

const ccEnv = (extra: NodeJS.ProcessEnv): NodeJS.ProcessEnv => ({
  PATH: process.env.PATH,
  HOME: mkdtempSync(path.join(tmpdir(), 'switchyard-cc-platform-home-')),
  CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
  DISABLE_AUTOUPDATER: '1',
  CI: '1',
  ...extra,
});

/**
 * For a suite: a Claude Code upstream (claude-code-bin.ts) driving a Bash round trip for `marker`, and a gateway that
 * routes every request to the provider `name`, whose config entry `entry` makes from the upstream's URL.
 */
function cliRoundTrip(marker: string, name: string, entry: (url: string) => string, extraConfig = ''): { upstream: ClaudeCodeUpstream; g: Awaited<ReturnType<typeof startTestGateway>> } {
  const s = {} as { upstream: ClaudeCodeUpstream; g: Awaited<ReturnType<typeof startTestGateway>> };
  before(async () => {
    s.upstream = await startClaudeCodeUpstream(marker);
    s.g = await startTestGateway({
      upstream: s.upstream.url,
      providers: entry(s.upstream.url),
      rules: { '50-default.yaml': `version: 1\nrules:\n  - id: default\n    actions:\n      - route_to: { provider: ${name} }\n` },
      extraConfig,
    });
  });
  after(async () => {
    await s.g.gw.close();
    await s.upstream.close();
  });
  return s;
}

describe('Claude Code in Foundry mode through switchyard to a Foundry upstream', () => {
  const MARKER = 'switchyard-foundry-round-trip-ok';
  const s = cliRoundTrip(MARKER, 'foundry', (url) => foundryProvider(url), `clients:\n  alice: { key_sha256: "${sha('sk-alice-gateway-key')}" }\n`);

  test('claude -p with CLAUDE_CODE_USE_FOUNDRY=1 completes a Bash tool round trip; Foundry gets api-key keys at /anthropic, never the client key', { timeout: 900_000 }, async () => {
    const env = ccEnv({ CLAUDE_CODE_USE_FOUNDRY: '1', ANTHROPIC_FOUNDRY_BASE_URL: `${s.g.gw.url}/foundry`, ANTHROPIC_FOUNDRY_API_KEY: 'sk-alice-gateway-key' });
    const out = await runClaudeBashRoundTrip(env, mkdtempSync(path.join(tmpdir(), 'switchyard-cc-foundry-work-')));
    assertBashRoundTrip(out, s.upstream.calls, MARKER);
    assert.ok(s.upstream.calls.length >= 2);
    for (const c of s.upstream.calls) {
      assert.ok(c.path.startsWith('/anthropic/v1/messages'), `Foundry's path: ${c.path}`);
      assert.ok(FOUNDRY_KEYS.includes(String(c.headers['api-key'])), 'a Foundry key as api-key');
      assert.equal(c.headers['x-api-key'], undefined, "the client's gateway key never reaches Foundry");
      assert.equal(c.headers.authorization, undefined);
    }
    assert.ok(!JSON.stringify(s.upstream.calls.map((c) => c.headers)).includes('sk-alice-gateway-key'));
  });
});

describe('Foundry without keys: Microsoft Entra ID', () => {
  test('a managed identity token goes as Authorization: Bearer, for the scope https://ai.azure.com; the client credential does not', async () => {
    const tokenAsks: Array<{ url: string; headers: IncomingHttpHeaders }> = [];
    const identity = createServer((req, res) => {
      tokenAsks.push({ url: req.url ?? '', headers: req.headers });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ access_token: 'entra-token-for-foundry', expires_on: String(Math.floor(Date.now() / 1000) + 3600), resource: 'https://ai.azure.com', token_type: 'Bearer' }));
    });
    await new Promise<void>((r) => identity.listen(0, '127.0.0.1', r));
    const seen: IncomingHttpHeaders[] = [];
    const foundry = createServer((req, res) => {
      seen.push(req.headers);
      req.resume();
      req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(messageJson('claude-sonnet-4-6', [{ type: 'text', text: 'hi' }]))));
    });
    await new Promise<void>((r) => foundry.listen(0, '127.0.0.1', r));
    const foundryUrl = `http://127.0.0.1:${(foundry.address() as AddressInfo).port}`;
    // App Service's managed identity endpoint, as @azure/identity's ManagedIdentityCredential finds it.
    process.env.IDENTITY_ENDPOINT = `http://127.0.0.1:${(identity.address() as AddressInfo).port}/msi/token`;
    process.env.IDENTITY_HEADER = 'identity-header-secret';
    const { gw } = await startTestGateway({
      upstream: foundryUrl,
      providers: foundryProvider(foundryUrl, ''),
      rules: { '50-default.yaml': 'version: 1\nrules:\n  - id: default\n    actions:\n      - route_to: { provider: foundry }\n' },
    });
    try {
      const client = new Anthropic({ apiKey: 'sk-client-own-key', baseURL: gw.url, maxRetries: 0 });
      for (let i = 0; i < 2; i++) await client.messages.create({ model: 'claude-sonnet-4-6', max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] });
      assert.equal(seen.length, 2);
      for (const h of seen) {
        assert.equal(h.authorization, 'Bearer entra-token-for-foundry');
        assert.equal(h['x-api-key'], undefined);
        assert.equal(h['api-key'], undefined);
      }
      assert.equal(tokenAsks.length, 1, 'the token is cached, not fetched per request');
      assert.match(tokenAsks[0]!.url, /resource=https%3A%2F%2Fai\.azure\.com/);
      assert.equal(tokenAsks[0]!.headers['x-identity-header'], 'identity-header-secret');
    } finally {
      delete process.env.IDENTITY_ENDPOINT;
      delete process.env.IDENTITY_HEADER;
      await gw.close();
      identity.close();
      foundry.close();
    }
  });
});

describe('Claude Platform on AWS', () => {
  const MARKER = 'switchyard-anthropic-aws-round-trip-ok';
  const s = cliRoundTrip(
    MARKER,
    'aws',
    (url) => `  aws:\n    type: anthropic\n    base_url: ${url}\n    keys: ["aws-workspace-key-0001", "aws-workspace-key-0002"]\n    workspace_id: wrkspc_01GATEWAY\n    retries: { max: 0 }\n`,
  );

  test("claude -p with CLAUDE_CODE_USE_ANTHROPIC_AWS=1 completes a Bash round trip; every request carries the provider's workspace", { timeout: 900_000 }, async () => {
    const env = ccEnv({
      CLAUDE_CODE_USE_ANTHROPIC_AWS: '1',
      ANTHROPIC_AWS_BASE_URL: `${s.g.gw.url}/anthropic-aws`,
      ANTHROPIC_AWS_WORKSPACE_ID: 'wrkspc_01CLIENT',
      CLAUDE_CODE_SKIP_ANTHROPIC_AWS_AUTH: '1',
      AWS_REGION: 'us-east-1',
    });
    const out = await runClaudeBashRoundTrip(env, mkdtempSync(path.join(tmpdir(), 'switchyard-cc-aws-work-')));
    assertBashRoundTrip(out, s.upstream.calls, MARKER);
    for (const c of s.upstream.calls) {
      assert.ok(c.path.startsWith('/v1/messages'), `the platform prefix is the gateway's, not the upstream's: ${c.path}`);
      assert.equal(c.headers['anthropic-workspace-id'], 'wrkspc_01GATEWAY', "the provider's keys belong to its workspace");
      assert.match(String(c.headers['x-api-key']), /^aws-workspace-key-000[12]$/);
    }
  });
});
