/**
 * Who gets which credential (issue 35; docs/security.md): a client's gateway key authenticates it to the gateway and
 * never goes upstream — not even to a provider without keys of its own; a provider's key goes up when it has one; with
 * no client keys and no provider keys (transparent) the client's own credential is forwarded, in the header it used.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { request } from 'undici';
import { startFakeUpstream, type FakeUpstream } from './fake-upstream.js';
import { startTestGateway } from './helpers.js';

const ALICE = 'sk-sy-alice-gateway-key-000000000000000001';
const PROVIDER_KEY = 'sk-ant-provider-key-0000000000000000000001';
let fake: FakeUpstream;
before(async () => {
  fake = await startFakeUpstream();
  process.env.SY_CRED_ALICE = ALICE;
  process.env.SY_CRED_PROVIDER = PROVIDER_KEY;
});
after(() => fake.close());

const body = JSON.stringify({ model: 'claude-sonnet-4-6', max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] });
/** Sends as a client with `auth` headers through a gateway on `providers` + `extra`; the headers the upstream got. */
async function upstreamSaw(providers: string, extra: string, auth: Record<string, string>): Promise<{ status: number; headers: Record<string, unknown> }> {
  const g = await startTestGateway({ upstream: fake.url, providers, extraConfig: `ledger: off\n${extra}` });
  try {
    const before = fake.received.length;
    const r = await request(`${g.gw.url}/v1/messages`, { method: 'POST', headers: { 'content-type': 'application/json', 'anthropic-version': '2023-06-01', ...auth }, body });
    await r.body.dump();
    const got = fake.received.slice(before);
    return { status: r.statusCode, headers: got.length ? (got.at(-1)!.headers as Record<string, unknown>) : {} };
  } finally {
    await g.gw.close();
  }
}

const bare = (url: string) => `  anthropic:\n    type: anthropic\n    base_url: ${url}\n    retries: { max: 0 }\n`;
const keyed = (url: string) => `${bare(url)}    keys: [ "\${SY_CRED_PROVIDER}" ]\n`;
const clients = 'clients:\n  alice: { key: "${SY_CRED_ALICE}" }\n';
const carries = (h: Record<string, unknown>, secret: string) => JSON.stringify(h).includes(secret);

describe('client keys configured', () => {
  test('a provider with neither keys nor auth: none is refused at load, naming the provider and the fix', async () => {
    await assert.rejects(
      upstreamSaw(bare(fake.url), clients, { 'x-api-key': ALICE }),
      /provider "anthropic" has no keys:, and with clients: configured the client's own credential is never forwarded.*auth: none/,
    );
  });

  for (const [style, auth] of [
    ['x-api-key', { 'x-api-key': ALICE }],
    ['Authorization: Bearer', { authorization: `Bearer ${ALICE}` }],
  ] as const) {
    test(`a provider that takes no credential (auth: none): alice's gateway key (${style}) is not forwarded`, async () => {
      const { headers } = await upstreamSaw(`${bare(fake.url)}    auth: none\n`, clients, auth);
      assert.ok(!carries(headers, ALICE), `the upstream saw alice's key: ${JSON.stringify(headers)}`);
      assert.equal(headers['x-api-key'], undefined);
      assert.equal(headers.authorization, undefined);
    });

    test(`a provider with a key: that key goes up, alice's (${style}) does not`, async () => {
      const { status, headers } = await upstreamSaw(keyed(fake.url), clients, auth);
      assert.equal(status, 200);
      assert.equal(headers['x-api-key'], PROVIDER_KEY);
      assert.ok(!carries(headers, ALICE));
    });
  }
});

test("transparent (no client keys, no provider keys): the client's own credential is forwarded as it came", async () => {
  const own = 'sk-ant-client-own-key-00000000000000000001';
  assert.equal((await upstreamSaw(bare(fake.url), '', { 'x-api-key': own })).headers['x-api-key'], own);
  assert.equal((await upstreamSaw(bare(fake.url), '', { authorization: `Bearer ${own}` })).headers.authorization, `Bearer ${own}`);
});
