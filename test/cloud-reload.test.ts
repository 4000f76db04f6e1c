/**
 * Reload and cloud credentials (issue 35): a reload that changes a Bedrock provider's region signs for the new region
 * (a signer kept by provider name alone would sign for the old one, and AWS refuses that signature); the signer and the
 * Google token source are kept while nothing about them changes and replaced when something does.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { request } from 'undici';
import { awsSignerFor } from '../src/upstream/providers/bedrock/auth.js';
import { googleTokensFor } from '../src/upstream/providers/vertex/auth.js';
import { startFakeBedrock, type FakeBedrock } from './fake-bedrock.js';
import { startFakeUpstream, type FakeUpstream } from './fake-upstream.js';
import { startTestGateway } from './helpers.js';

const CREDENTIALS = { accessKeyId: 'AKIDRELOADTEST000001', secretAccessKey: 'reload-test-secret' };
process.env.AWS_ACCESS_KEY_ID = CREDENTIALS.accessKeyId;
process.env.AWS_SECRET_ACCESS_KEY = CREDENTIALS.secretAccessKey;
process.env.AWS_EC2_METADATA_DISABLED = 'true';

let east: FakeBedrock;
let west: FakeBedrock;
let anthropic: FakeUpstream;
before(async () => {
  east = await startFakeBedrock({ region: 'us-east-1', credentials: CREDENTIALS });
  west = await startFakeBedrock({ region: 'eu-west-1', credentials: CREDENTIALS });
  anthropic = await startFakeUpstream();
});
after(async () => {
  await east.close();
  await west.close();
  await anthropic.close();
});

const providers = (region: string, url: string) =>
  `  anthropic:\n    type: anthropic\n    base_url: ${anthropic.url}\n  bedrock:\n    type: bedrock\n    region: ${region}\n    base_url: ${url}\n    retries: { max: 0 }\n`;
const rules = { '50.yaml': 'version: 1\nrules:\n  - id: all\n    actions: [ { route_to: { provider: bedrock } } ]\n' };

test('a reload that moves a Bedrock provider to another region signs for the new region', async () => {
  const g = await startTestGateway({ upstream: anthropic.url, providers: providers('us-east-1', east.url), rules, extraConfig: 'ledger: off\n' });
  const send = async () => {
    const r = await request(`${g.gw.url}/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'anthropic-version': '2023-06-01' },
      body: JSON.stringify({ model: 'claude-sonnet-4-6', max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] }),
    });
    return { status: r.statusCode, body: await r.body.text() };
  };
  try {
    assert.equal((await send()).status, 200, 'signed for us-east-1');
    writeFileSync(g.configFile, readFileSync(g.configFile, 'utf8').replace('region: us-east-1', 'region: eu-west-1').replace(east.url, west.url));
    assert.equal(g.gw.runtime.reload('test: region'), true);
    const after = await send();
    assert.equal(after.status, 200, `signed for eu-west-1 after the reload: ${after.body}`);
    assert.equal(west.received.length, 1, 'the request went to the new region');
  } finally {
    await g.gw.close();
  }
});

test('signers and token sources: the same while nothing changes, a new one when region, profile or credentials file do', () => {
  const a = awsSignerFor('b1', 'us-east-1', null);
  assert.equal(awsSignerFor('b1', 'us-east-1', null), a);
  assert.notEqual(awsSignerFor('b1', 'eu-west-1', null), a);
  assert.notEqual(awsSignerFor('b1', 'eu-west-1', 'ops'), awsSignerFor('b1', 'eu-west-1', null));
  const g = googleTokensFor('v1', '/etc/a.json');
  assert.equal(googleTokensFor('v1', '/etc/a.json'), g);
  const other = googleTokensFor('v1', '/etc/b.json');
  assert.notEqual(other, g);
  assert.equal(other.status.source, 'google credentials file /etc/b.json');
});
