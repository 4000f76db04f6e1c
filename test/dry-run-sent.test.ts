/**
 * Dry-run shows exactly what is sent (issue 13): for each provider type, the request a loopback upstream
 * receives equals what `serve --dry-run` reports for the same request — method, URL, headers (credentials
 * masked the same way) and the model in the body. And the rules version is the same whatever the working
 * directory, so replicas and the CLI agree.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { request } from 'undici';
import { maskHeaders } from '../src/rules/report.js';
import { startFakeBedrock, type FakeBedrock } from './fake-bedrock.js';
import { startFakeOpenAI, type FakeOpenAI } from './fake-openai.js';
import { startFakeUpstream, type FakeUpstream } from './fake-upstream.js';
import { startTestGateway, writeConfig } from './helpers.js';

let fake: FakeUpstream;
let openai: FakeOpenAI;
let bedrock: FakeBedrock;
const AWS = { accessKeyId: 'AKIDDRYRUNTEST000001', secretAccessKey: 'dry-run-secret-key' };
process.env.AWS_ACCESS_KEY_ID = AWS.accessKeyId;
process.env.AWS_SECRET_ACCESS_KEY = AWS.secretAccessKey;
process.env.AWS_EC2_METADATA_DISABLED = 'true';
before(async () => {
  fake = await startFakeUpstream();
  openai = await startFakeOpenAI();
  bedrock = await startFakeBedrock({ region: 'eu-west-1', credentials: AWS });
});
after(async () => {
  await fake.close();
  await openai.close();
  await bedrock.close();
});

process.env.SY_DRY_KEY = 'sk-ant-upstream-key-for-dry-run-0001';
const body = JSON.stringify({ model: 'claude-haiku-4-5', max_tokens: 16, stream: false, metadata: { user_id: 'u' }, messages: [{ role: 'user', content: 'hi' }], an_unknown_field: 1 });
const clientHeaders = {
  'content-type': 'application/json',
  'anthropic-version': '2023-06-01',
  'anthropic-beta': 'a-beta,b-beta',
  'x-api-key': 'sk-ant-client-own-key',
  'x-claude-code-session-id': 'sess-dry',
  connection: 'keep-alive, x-hop',
  'x-hop': 'per-connection',
};
// Headers the HTTP client adds on the wire by itself.
const WIRE = new Set(['host', 'connection']);

interface Report {
  request: { method: string; url: string; model: string | null; dropped_fields: string[]; signed_when_sent?: string };
  headers: Record<string, string>;
}

const cases = [
  {
    name: 'anthropic, transparent (the client credential is forwarded)',
    providers: () => `  anthropic:\n    type: anthropic\n    base_url: ${fake.url}\n    retries: { max: 0 }\n`,
    rules: 'version: 1\nrules:\n  - id: r\n    actions: [ { route_to: { provider: anthropic }, }, { set_headers: { x-team: search } }, { remove_headers: [ anthropic-beta ] } ]\n',
    last: () => ({
      method: fake.received.at(-1)!.method,
      url: fake.url + fake.received.at(-1)!.url,
      headers: fake.received.at(-1)!.headers,
      model: (JSON.parse(fake.received.at(-1)!.body.toString()) as { model: string }).model,
    }),
  },
  {
    name: 'anthropic-compatible with a betas: list (only the accepted anthropic-beta values go, the others are listed as dropped)',
    providers: () => `  anthropic:\n    type: anthropic\n    base_url: ${fake.url}\n    retries: { max: 0 }\n    betas: [ b-beta ]\n`,
    rules: 'version: 1\nrules:\n  - id: r\n    actions: [ { route_to: { provider: anthropic } } ]\n',
    dropped: ['anthropic-beta: a-beta'],
    last: () => ({
      method: fake.received.at(-1)!.method,
      url: fake.url + fake.received.at(-1)!.url,
      headers: fake.received.at(-1)!.headers,
      model: (JSON.parse(fake.received.at(-1)!.body.toString()) as { model: string }).model,
    }),
  },
  {
    name: 'anthropic with a key pool and a model rename',
    providers: () =>
      `  anthropic:\n    type: anthropic\n    base_url: ${fake.url}/\n    keys: [ "\${SY_DRY_KEY}" ]\n    retries: { max: 0 }\n    models: { claude-haiku-4-5: claude-haiku-4-5-20251001 }\n`,
    rules: 'version: 1\nrules:\n  - id: r\n    actions: [ { route_to: { provider: anthropic } } ]\n',
    last: () => ({
      method: fake.received.at(-1)!.method,
      url: fake.url + fake.received.at(-1)!.url,
      headers: fake.received.at(-1)!.headers,
      model: (JSON.parse(fake.received.at(-1)!.body.toString()) as { model: string }).model,
    }),
  },
  {
    name: 'openai-compatible: Chat Completions path, bearer key, the provider model',
    providers: () =>
      `  anthropic:\n    type: anthropic\n    base_url: ${fake.url}\n  cheap:\n    type: openai\n    base_url: ${openai.url}/v1\n    keys: [ "\${SY_DRY_KEY}" ]\n    retries: { max: 0 }\n`,
    rules: 'version: 1\nrules:\n  - id: r\n    actions: [ { route_to: { provider: cheap, model: gpt-4o-mini } } ]\n',
    last: () => ({
      method: openai.received.at(-1)!.method,
      url: openai.url + openai.received.at(-1)!.url,
      headers: openai.received.at(-1)!.headers,
      model: String(openai.received.at(-1)!.body.model),
    }),
  },
  {
    name: 'bedrock: InvokeModel path with the Bedrock model id, the Bedrock headers; the SigV4 headers added when sent',
    providers: () =>
      `  anthropic:\n    type: anthropic\n    base_url: ${fake.url}\n  bedrock:\n    type: bedrock\n    region: eu-west-1\n    base_url: ${bedrock.url}\n    retries: { max: 0 }\n    betas: [ b-beta ]\n    models: { claude-haiku-4-5: "eu.anthropic.claude-haiku-4-5-v1:0" }\n`,
    rules: 'version: 1\nrules:\n  - id: r\n    actions: [ { route_to: { provider: bedrock } } ]\n',
    dropped: ['anthropic-beta: a-beta'],
    signed: ['authorization', 'x-amz-date', 'x-amz-content-sha256'],
    last: () => ({
      method: bedrock.received.at(-1)!.method,
      url: bedrock.url + bedrock.received.at(-1)!.url,
      headers: bedrock.received.at(-1)!.headers,
      model: bedrock.received.at(-1)!.modelId,
      betas: (JSON.parse(bedrock.received.at(-1)!.body.toString()) as { anthropic_beta?: string[] }).anthropic_beta,
    }),
  },
];

describe('dry-run equals what is sent', () => {
  for (const c of cases) {
    test(c.name, async () => {
      const rules = { '50.yaml': c.rules };
      const dry = await startTestGateway({ upstream: fake.url, providers: c.providers(), rules, dryRun: true });
      let report: Report;
      try {
        const r = await request(dry.gw.url + '/v1/messages?beta=true', { method: 'POST', headers: clientHeaders, body });
        assert.equal(r.statusCode, 200);
        report = (await r.body.json()) as Report;
      } finally {
        await dry.gw.close();
      }
      const live = await startTestGateway({ upstream: fake.url, providers: c.providers(), rules });
      try {
        const r = await request(live.gw.url + '/v1/messages?beta=true', { method: 'POST', headers: clientHeaders, body });
        assert.equal(r.statusCode, 200);
        await r.body.dump();
      } finally {
        await live.gw.close();
      }
      const sent = c.last();
      assert.equal(report.request.method, sent.method);
      assert.equal(report.request.url, sent.url);
      assert.equal(report.request.model, sent.model);
      const signed = new Set('signed' in c ? c.signed : []);
      const onWire = Object.fromEntries(Object.entries(sent.headers).filter(([k]) => !WIRE.has(k) && !signed.has(k))) as Record<string, string>;
      assert.deepEqual(report.headers, maskHeaders(onWire));
      assert.ok(!JSON.stringify(report).includes('sk-ant-'), 'credentials are masked');
      if ('dropped' in c) {
        assert.deepEqual(report.request.dropped_fields, c.dropped);
        if ('betas' in sent) assert.deepEqual(sent.betas, ['b-beta'], 'the accepted betas go in the body');
        else assert.equal(sent.headers['anthropic-beta'], 'b-beta');
      }
      if ('signed' in c) {
        assert.equal(report.request.signed_when_sent, 'aws-sigv4');
        assert.equal(bedrock.received.at(-1)!.signatureValid, true);
        for (const h of c.signed ?? []) assert.ok(sent.headers[h], `${h} on the wire`);
      }
    });
  }
});

describe('rules version', () => {
  test('the CLI and a running gateway report the same rules version, whatever the working directory', async () => {
    const { gw, configFile } = await startTestGateway({ upstream: fake.url });
    try {
      const req = path.join(tmpdir(), `sy-dry-version-${process.pid}.json`);
      writeFileSync(req, body);
      const cli = path.resolve(import.meta.dirname, '../src/cli.ts');
      const run = spawnSync(process.execPath, ['--import', import.meta.resolve('tsx'), cli, 'dry-run', '--config', configFile, '--request', req, '--json'], {
        cwd: tmpdir(),
        encoding: 'utf8',
        env: { ...process.env, NODE_PATH: '' },
      });
      assert.equal(run.status, 0, run.stderr);
      const fromCli = (JSON.parse(run.stdout) as { ruleset: string }).ruleset;
      const admin = (await (await request(gw.url + '/admin/rules')).body.json()) as { version: string };
      assert.equal(fromCli, admin.version);
    } finally {
      await gw.close();
    }
  });
});

test("dry-run's text view names the model the provider is sent (its models: map), beside the one requested", () => {
  const { configFile } = writeConfig({
    upstream: 'http://127.0.0.1:1',
    providers: `  local:\n    type: openai\n    base_url: http://127.0.0.1:1/v1\n    models: { claude-haiku-4-5: qwen3-coder-30b }\n`,
    rules: { '50.yaml': 'version: 1\nrules:\n  - id: local\n    actions: [ { route_to: { provider: local } } ]\n' },
  });
  const req = path.join(tmpdir(), `switchyard-dry-model-${process.pid}.json`);
  writeFileSync(req, body);
  const out = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'dry-run', '--config', configFile, '--request', req], { cwd: path.resolve(import.meta.dirname, '..'), encoding: 'utf8' });
  assert.equal(out.status, 0, out.stderr);
  assert.match(out.stdout, /^model {5}qwen3-coder-30b \(requested claude-haiku-4-5\)$/m);
  const json = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'dry-run', '--json', '--config', configFile, '--request', req], {
    cwd: path.resolve(import.meta.dirname, '..'),
    encoding: 'utf8',
  });
  assert.equal((JSON.parse(json.stdout) as Report).request.model, 'qwen3-coder-30b', 'the text view and --json agree');
});
