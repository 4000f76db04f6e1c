/**
 * Who a request is (src/server/auth.ts): a configured client by its key, in transparent mode the fingerprint of
 * the credential or `anonymous`; the admin bearer check refuses anything that is not `Bearer <token>`.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import type { ClientConfig } from '../src/config.js';
import { AuthenticationError } from '../src/errors.js';
import { credentialFingerprint } from '../src/rules/context.js';
import { bearerMatches, identifyClient, secretMatches } from '../src/server/auth.js';

const client = (id: string, key: string): ClientConfig => ({ id, sha256: createHash('sha256').update(key).digest(), tags: { team: id }, decision_header: null });
const clients = [client('alice', 'sk-sy-alice'), client('bob', 'sk-sy-bob')];

test('with clients configured: the client whose key it is, by x-api-key or bearer; unknown or missing keys refused', () => {
  assert.deepEqual(identifyClient({ 'x-api-key': 'sk-sy-bob' }, clients), { client: clients[1], clientId: 'bob' });
  assert.deepEqual(identifyClient({ authorization: 'Bearer sk-sy-alice' }, clients), { client: clients[0], clientId: 'alice' });
  assert.throws(() => identifyClient({ 'x-api-key': 'sk-sy-eve' }, clients), AuthenticationError);
  assert.throws(() => identifyClient({}, clients), AuthenticationError);
});

test('transparent: no client, the id is the fingerprint of the credential, or anonymous without one', () => {
  assert.deepEqual(identifyClient({ 'x-api-key': 'sk-ant-own' }, null), { client: null, clientId: credentialFingerprint('sk-ant-own') });
  assert.deepEqual(identifyClient({}, null), { client: null, clientId: 'anonymous' });
});

test('the admin bearer check: only "Bearer <token>", any case of Bearer, spaces around the token ignored', () => {
  assert.equal(bearerMatches('Bearer tok-1', 'tok-1'), true);
  assert.equal(bearerMatches('bearer   tok-1  ', 'tok-1'), true);
  assert.equal(bearerMatches('Basic tok-1', 'tok-1'), false);
  assert.equal(bearerMatches('xBearer tok-1', 'tok-1'), false);
  assert.equal(bearerMatches('Bearer tok-2', 'tok-1'), false);
  assert.equal(bearerMatches(undefined, 'tok-1'), false);
  assert.equal(secretMatches(undefined, 'tok-1'), false);
  assert.equal(secretMatches('tok-1', 'tok-1'), true);
});
