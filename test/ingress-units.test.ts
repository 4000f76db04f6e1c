/**
 * Cloud-format clients (`server/ingress.ts`), function-level: Bedrock and Vertex AI model ids to Anthropic model names,
 * a cloud body to a Messages body (model and stream from the path, `anthropic_version` and `anthropic_beta` to
 * headers), and which Vertex AI methods are served (paths as Anthropic's Bedrock and Vertex SDKs send them).
 */
import assert from 'node:assert/strict';
import type { IncomingHttpHeaders } from 'node:http';
import { test } from 'node:test';
import { InvalidRequestError } from '../src/errors.js';
import { anthropicModelName, messagesBody, vertexIngress } from '../src/server/ingress.js';

test('model ids: Bedrock ids, inference profiles and ARNs, and Vertex ids, become Anthropic names; others are kept', () => {
  const cases: Array<['bedrock' | 'vertex', string, string]> = [
    ['bedrock', 'anthropic.claude-sonnet-4-5-20250929-v1:0', 'claude-sonnet-4-5-20250929'],
    ['bedrock', 'us.anthropic.claude-sonnet-4-5-20250929-v1:0', 'claude-sonnet-4-5-20250929'],
    ['bedrock', 'global.anthropic.claude-haiku-4-5-20251001-v1', 'claude-haiku-4-5-20251001'],
    ['bedrock', 'anthropic.claude-opus-4-1', 'claude-opus-4-1'],
    ['bedrock', 'arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-opus-4-1-20250805-v1:0', 'claude-opus-4-1-20250805'],
    ['bedrock', 'arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abc123', 'arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abc123'],
    ['bedrock', 'meta.llama3-70b', 'meta.llama3-70b'],
    ['vertex', 'claude-sonnet-4-5@20250929', 'claude-sonnet-4-5-20250929'],
    ['vertex', 'claude-opus-4-1', 'claude-opus-4-1'],
  ];
  for (const [dialect, id, want] of cases) assert.equal(anthropicModelName(dialect, id), want, `${dialect} ${id}`);
});

test('a Bedrock body: model and stream from the path; anthropic_version (a platform value) gives the default API version; betas become the header', () => {
  const headers: IncomingHttpHeaders = {};
  const out = messagesBody(
    { dialect: 'bedrock', model: 'us.anthropic.claude-sonnet-4-6-v1:0', stream: true },
    Buffer.from(JSON.stringify({ anthropic_version: 'bedrock-2023-05-31', anthropic_beta: ['context-1m-2025-08-07', 'x'], max_tokens: 5, messages: [], stream: false })),
    headers,
  );
  assert.deepEqual(JSON.parse(out.toString()), { model: 'claude-sonnet-4-6', max_tokens: 5, messages: [], stream: true });
  assert.deepEqual(headers, { 'anthropic-version': '2023-06-01', 'anthropic-beta': 'context-1m-2025-08-07,x' });
  const kept: IncomingHttpHeaders = { 'anthropic-beta': 'from-client' };
  messagesBody({ dialect: 'bedrock', model: 'm', stream: false }, Buffer.from('{"anthropic_beta":["b"],"anthropic_version":"2024-01-01"}'), kept);
  assert.deepEqual(kept, { 'anthropic-beta': 'from-client', 'anthropic-version': '2024-01-01' }, "the client's own header wins; an API date is kept");
  const none: IncomingHttpHeaders = {};
  assert.deepEqual(JSON.parse(messagesBody({ dialect: 'bedrock', model: 'm', stream: false }, Buffer.from('{"anthropic_beta":[]}'), none).toString()), { model: 'm', stream: false });
  assert.equal(none['anthropic-beta'], undefined, 'no betas, no header');
});

test('a Vertex body: the model from the path or the body; stream from the path, else as the body says', () => {
  const h: IncomingHttpHeaders = {};
  assert.deepEqual(
    JSON.parse(
      messagesBody({ dialect: 'vertex', model: 'claude-haiku-4-5@20251001', stream: null }, Buffer.from('{"anthropic_version":"vertex-2023-10-16","stream":true,"max_tokens":1}'), h).toString(),
    ),
    {
      model: 'claude-haiku-4-5-20251001',
      max_tokens: 1,
      stream: true,
    },
  );
  assert.equal(h['anthropic-version'], '2023-06-01');
  assert.deepEqual(
    JSON.parse(messagesBody({ dialect: 'vertex', model: null, stream: null }, Buffer.from('{"model":"claude-opus-4-1@x","messages":[]}'), {}).toString()),
    { model: 'claude-opus-4-1-x', messages: [] },
    'count-tokens: the model in the body; no stream member added',
  );
  assert.deepEqual(JSON.parse(messagesBody({ dialect: 'vertex', model: null, stream: null }, Buffer.from('{"model":5}'), {}).toString()), { model: '' });
});

test('bodies that are not a JSON object are 400s naming the dialect', () => {
  assert.throws(
    () => messagesBody({ dialect: 'bedrock', model: 'm', stream: false }, Buffer.from('{nope'), {}),
    (e: unknown) => e instanceof InvalidRequestError && /^the Bedrock request body is not valid JSON: /.test(e.message),
  );
  assert.throws(
    () => messagesBody({ dialect: 'vertex', model: 'm', stream: null }, Buffer.from('{nope'), {}),
    (e: unknown) => e instanceof InvalidRequestError && /^the Vertex AI request body is not valid JSON: /.test(e.message),
  );
  for (const raw of ['[1]', 'null', '"text"']) {
    assert.throws(
      () => messagesBody({ dialect: 'vertex', model: 'm', stream: null }, Buffer.from(raw), {}),
      (e: unknown) => e instanceof InvalidRequestError && e.message === 'the request body must be a JSON object',
      raw,
    );
  }
});

test('Vertex methods: rawPredict (the body decides streaming), streamRawPredict (streaming), count-tokens:rawPredict; nothing else', () => {
  assert.deepEqual(vertexIngress('claude-sonnet-4-6:rawPredict'), { ingress: { dialect: 'vertex', model: 'claude-sonnet-4-6', stream: null }, endpoint: 'messages' });
  assert.deepEqual(vertexIngress('claude-sonnet-4-6@2025:streamRawPredict'), { ingress: { dialect: 'vertex', model: 'claude-sonnet-4-6@2025', stream: true }, endpoint: 'messages' });
  assert.deepEqual(vertexIngress('count-tokens:rawPredict'), { ingress: { dialect: 'vertex', model: null, stream: null }, endpoint: 'count_tokens' });
  assert.equal(vertexIngress('count-tokens:streamRawPredict'), null);
  assert.equal(vertexIngress('claude-sonnet-4-6:predict'), null);
  assert.equal(vertexIngress('claude-sonnet-4-6'), null, 'no method');
  assert.equal(vertexIngress(':rawPredict'), null, 'no model');
  assert.deepEqual(vertexIngress('a:rawPredict')?.ingress.model, 'a', 'a one-letter model is a model');
});
