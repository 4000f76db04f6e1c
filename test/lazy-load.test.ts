/**
 * Issue 34: a gateway loads what its configuration uses. With no telemetry and no cloud provider it never loads the
 * OpenTelemetry SDK, AWS's or Google's libraries (about 30 MB of an idle process); configured, they load and work.
 * Each case runs test/load-probe.ts in a child process (a module once loaded stays loaded, so a shared process
 * could not tell).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { startFakeUpstream, type FakeUpstream } from './fake-upstream.js';
import { writeConfig } from './helpers.js';

const OPTIONAL = [/@opentelemetry\/sdk-/, /@opentelemetry\/exporter-/, /@aws-sdk\//, /@smithy\//, /google-auth-library/];

let upstream: FakeUpstream;
before(async () => {
  upstream = await startFakeUpstream();
});
after(() => upstream.close());

/** Runs the probe on `configFile` with `env`; the modules it loaded. */
async function probe(configFile: string, env: Record<string, string> = {}): Promise<{ statuses: number[]; loaded: string[] }> {
  const loads = path.join(mkdtempSync(path.join(tmpdir(), 'switchyard-loads-')), 'loads.txt');
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ['--import', path.join(import.meta.dirname, 'load-register.mjs'), '--import', 'tsx', path.join(import.meta.dirname, 'load-probe.ts'), configFile],
    {
      env: { ...process.env, ...env, SWITCHYARD_LOADS_FILE: loads },
      timeout: 60_000,
    },
  );
  const out = JSON.parse(stdout.trim().split('\n').at(-1)!) as { statuses: number[]; esm: string[]; cjs: string[] };
  return { statuses: out.statuses, loaded: [...out.esm, ...out.cjs] };
}

const matching = (loaded: string[], re: RegExp) => loaded.filter((m) => re.test(m));

test('`switchyard --version` and `--help` load none of the gateway (issue 33: they answer at once)', async () => {
  for (const args of [['--version'], ['--help'], ['usage', '--help']]) {
    const loads = path.join(mkdtempSync(path.join(tmpdir(), 'switchyard-loads-')), 'loads.txt');
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ['--import', path.join(import.meta.dirname, 'load-register.mjs'), '--import', 'tsx', path.join(import.meta.dirname, '../src/cli.ts'), ...args],
      {
        env: { ...process.env, SWITCHYARD_LOADS_FILE: loads },
        timeout: 60_000,
      },
    );
    assert.ok(stdout.length > 0, `${args.join(' ')} printed something`);
    const loaded = readFileSync(loads, 'utf8').split('\n').filter(Boolean);
    assert.ok(
      loaded.some((m) => m.endsWith('/src/cli.ts')),
      'the probe sees the CLI load',
    );
    for (const re of [/\/node_modules\/(ajv|hono|undici|jsonata|pino|yaml|prom-client)\//, /\/src\/(server|config|validation|rules|upstream)\b/]) {
      assert.deepEqual(matching(loaded, re), [], `${args.join(' ')} loaded ${re}`);
    }
  }
});

test('no telemetry and no cloud provider: none of their libraries is loaded', async () => {
  const { configFile } = writeConfig({ upstream: upstream.url, extraConfig: 'ledger: off\n' });
  const { statuses, loaded } = await probe(configFile, { OTEL_EXPORTER_OTLP_ENDPOINT: '', OTEL_SDK_DISABLED: 'true' });
  assert.deepEqual(statuses, [200]);
  assert.ok(
    loaded.some((m) => m.includes('/hono/')),
    'the probe sees what is loaded',
  );
  for (const re of OPTIONAL) assert.deepEqual(matching(loaded, re), [], `${re} loaded without being configured`);
});

test('telemetry on, and requests routed to Bedrock and to Vertex: their libraries load', async () => {
  const providers =
    `  anthropic:\n    type: anthropic\n    base_url: ${upstream.url}\n    retries: { max: 0 }\n` +
    `  bedrock:\n    type: bedrock\n    region: us-east-1\n    base_url: http://127.0.0.1:1\n    retries: { max: 0 }\n` +
    `  vertex:\n    type: vertex\n    region: us-east5\n    project: p\n    base_url: http://127.0.0.1:1\n    retries: { max: 0 }\n`;
  const rules = {
    '50.yaml':
      'version: 1\nrules:\n' +
      '  - { id: haiku, match: { model: "claude-haiku-*" }, actions: [ { route_to: { provider: bedrock } } ] }\n' +
      '  - { id: opus, match: { model: "claude-opus-*" }, actions: [ { route_to: { provider: vertex } } ] }\n' +
      '  - { id: default, actions: [ { route_to: { provider: anthropic } } ] }\n',
  };
  const { configFile } = writeConfig({ upstream: upstream.url, providers, rules, extraConfig: 'ledger: off\n' });
  const { statuses, loaded } = await probe(configFile, {
    OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:1',
    OTEL_SDK_DISABLED: 'false',
    OTEL_METRIC_EXPORT_INTERVAL: '600000',
    PROBE_MODELS: 'claude-sonnet-4-5,claude-haiku-4-5,claude-opus-4-5',
    AWS_ACCESS_KEY_ID: 'AKIDPROBE',
    AWS_SECRET_ACCESS_KEY: 'probe-secret',
    AWS_EC2_METADATA_DISABLED: 'true',
    GOOGLE_APPLICATION_CREDENTIALS: path.join(tmpdir(), 'switchyard-no-such-credentials.json'),
  });
  // Anthropic answers; Bedrock and Vertex at 127.0.0.1:1 cannot (refused, or no Google credentials), after signing.
  assert.equal(statuses[0], 200);
  assert.ok(
    statuses.slice(1).every((s) => s >= 500),
    `statuses ${statuses}`,
  );
  for (const re of [/@opentelemetry\/sdk-trace/, /@opentelemetry\/exporter-trace-otlp-http/, /@aws-sdk\/credential-providers/, /@smithy\/signature-v4/, /google-auth-library/]) {
    assert.notDeepEqual(matching(loaded, re), [], `${re} not loaded though used`);
  }
});
