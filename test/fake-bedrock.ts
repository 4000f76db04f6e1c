/**
 * A fake Amazon Bedrock Runtime on 127.0.0.1: `POST /model/{modelId}/invoke` and `/invoke-with-response-stream`.
 * It checks each request's SigV4 signature with AWS's own signer from the other side (the same credentials,
 * the request's own `x-amz-date`, only the headers the request says it signed) and answers in Bedrock's wire
 * format: JSON Messages, or binary event-stream messages encoded with AWS's own codec (`chunk` events carrying
 * base64 Anthropic events; `exception` messages). The fixture's framing and payload shapes are those of AWS's
 * InvokeModelWithResponseStream reference and Anthropic's Bedrock SDK tests (see test/fixtures/bedrock/SOURCES.md).
 *
 * Scenario by a suffix of the model id, `…-scenario-<name>`: `recorded` (the recorded stream of
 * test/fixtures/bedrock/claude-3-sonnet-text.jsonl), `tool` (a streamed tool_use block), `throttle` (429 ThrottlingException),
 * `denied` (403 AccessDeniedException), `invalid` (400 ValidationException naming an ARN), `stream-exception`
 * (two chunks, then a throttlingException message), `split` (the stream written a few bytes at a time),
 * `gated` (the first chunks, then waits for release()).
 */
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { EventStreamCodec } from '@smithy/core/event-streams';
import { Hash } from '@smithy/hash-node';
import { SignatureV4 } from '@smithy/signature-v4';
import { fromUtf8, toUtf8 } from '@smithy/util-utf8';
import { messageJson, sseTextEvents, sseToolEvents } from './fake-upstream.js';

export interface BedrockReceived {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: Buffer;
  /** The model id from the path (decoded). */
  modelId: string;
  /** True when the SigV4 signature verified, false when it did not, null when the request was not SigV4-signed. */
  signatureValid: boolean | null;
}

export interface FakeBedrock {
  url: string;
  received: BedrockReceived[];
  release(): void;
  close(): Promise<void>;
}

const codec = new EventStreamCodec(toUtf8, fromUtf8);
const RECORDED = readFileSync(new URL('./fixtures/bedrock/claude-3-sonnet-text.jsonl', import.meta.url), 'utf8')
  .trim()
  .split('\n');

/** One Bedrock `chunk` event-stream message carrying one Anthropic streaming event (its JSON). */
export function chunkFrame(eventJson: string): Uint8Array {
  return codec.encode({
    headers: {
      ':message-type': { type: 'string', value: 'event' },
      ':event-type': { type: 'string', value: 'chunk' },
      ':content-type': { type: 'string', value: 'application/json' },
    },
    body: fromUtf8(JSON.stringify({ bytes: Buffer.from(eventJson).toString('base64') })),
  });
}

/** One Bedrock exception message, e.g. `throttlingException`. */
export function exceptionFrame(name: string, message: string): Uint8Array {
  return codec.encode({
    headers: {
      ':message-type': { type: 'string', value: 'exception' },
      ':exception-type': { type: 'string', value: name },
      ':content-type': { type: 'string', value: 'application/json' },
    },
    body: fromUtf8(JSON.stringify({ message })),
  });
}

/** The Anthropic event JSONs of a streamed text answer (the data lines of the fake Anthropic upstream's SSE). */
export function textEventJsons(model: string, text: string): string[] {
  return dataOf(sseTextEvents(model, text));
}

/** The data lines of SSE events (comments dropped). */
function dataOf(events: string[]): string[] {
  return events.map((e) => /^data: (.*)$/m.exec(e)?.[1]).filter((d): d is string => d !== undefined);
}

/** Verifies a SigV4 `authorization` header by signing the same request again with AWS's signer. */
async function verifySignature(req: IncomingMessage, body: Buffer, credentials: { accessKeyId: string; secretAccessKey: string; sessionToken?: string }, region: string): Promise<boolean | null> {
  const auth = String(req.headers.authorization ?? '');
  const m = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, SignedHeaders=([^,]+), Signature=([0-9a-f]{64})$/.exec(auth);
  if (!m) return auth.startsWith('AWS4') ? false : null;
  const [, accessKeyId, , signedRegion, service, signedHeaders] = m;
  if (accessKeyId !== credentials.accessKeyId || signedRegion !== region || service !== 'bedrock') return false;
  const headers: Record<string, string> = {};
  for (const name of signedHeaders!.split(';')) headers[name] = String(req.headers[name] ?? '');
  const amzDate = String(req.headers['x-amz-date'] ?? '');
  const signingDate = new Date(`${amzDate.slice(0, 4)}-${amzDate.slice(4, 6)}-${amzDate.slice(6, 8)}T${amzDate.slice(9, 11)}:${amzDate.slice(11, 13)}:${amzDate.slice(13, 15)}Z`);
  const [path, search = ''] = (req.url ?? '').split('?');
  const query = Object.fromEntries(new URLSearchParams(search));
  const signer = new SignatureV4({ service: 'bedrock', region, credentials, sha256: Hash.bind(null, 'sha256') });
  const again = await signer.sign({ method: req.method!, protocol: 'http:', hostname: String(req.headers.host).split(':')[0]!, path: path!, query, headers, body }, { signingDate });
  return again.headers.authorization === auth;
}

/** Starts the fake on a free loopback port. Requests signed with other credentials get 403 InvalidSignatureException. */
export async function startFakeBedrock(opts: { region: string; credentials: { accessKeyId: string; secretAccessKey: string; sessionToken?: string } }): Promise<FakeBedrock> {
  const received: BedrockReceived[] = [];
  let gate: (() => void) | null = null;
  const gateOpen = new Promise<void>((r) => (gate = r));
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      const body = Buffer.concat(chunks);
      const m = /^\/model\/([^/]+)\/(invoke|invoke-with-response-stream)$/.exec((req.url ?? '').split('?')[0]!);
      const modelId = m ? decodeURIComponent(m[1]!) : '';
      const signatureValid = await verifySignature(req, body, opts.credentials, opts.region);
      received.push({ method: req.method!, url: req.url!, headers: req.headers, body, modelId, signatureValid });
      const requestId = `aws-req-${received.length}`;
      const error = (status: number, type: string, message: string) => {
        res.writeHead(status, { 'content-type': 'application/json', 'x-amzn-requestid': requestId, 'x-amzn-errortype': `${type}:http://internal.amazon.com/coral/com.amazon.bedrock/` });
        res.end(JSON.stringify({ message }));
      };
      if (!m) return error(404, 'UnknownOperationException', `no operation at ${req.url}`);
      if (signatureValid === false) return error(403, 'InvalidSignatureException', 'The request signature we calculated does not match the signature you provided.');
      if (signatureValid === null && !String(req.headers.authorization ?? '').startsWith('Bearer ')) return error(403, 'MissingAuthenticationTokenException', 'Missing Authentication Token');
      const scenario = /-scenario-([a-z-]+)$/.exec(modelId)?.[1] ?? '';
      if (scenario === 'throttle') return error(429, 'ThrottlingException', 'Too many requests, please wait before trying again. Account 123456789012.');
      if (scenario === 'denied')
        return error(
          403,
          'AccessDeniedException',
          'User: arn:aws:sts::123456789012:assumed-role/gw/i-0abc is not authorized to perform: bedrock:InvokeModel on resource: arn:aws:bedrock:us-east-1::foundation-model/x',
        );
      if (scenario === 'invalid') return error(400, 'ValidationException', 'messages.0: roles must alternate; see arn:aws:bedrock:us-east-1:123456789012:inference-profile/p');
      if (m[2] === 'invoke') {
        res.writeHead(200, { 'content-type': 'application/json', 'x-amzn-requestid': requestId, 'x-amzn-bedrock-input-token-count': '25', 'x-amzn-bedrock-output-token-count': '7' });
        res.end(JSON.stringify(messageJson(modelId, [{ type: 'text', text: 'Hello from Bedrock' }])));
        return;
      }
      res.writeHead(200, { 'content-type': 'application/vnd.amazon.eventstream', 'x-amzn-requestid': requestId, 'x-amzn-bedrock-content-type': 'application/json' });
      const events =
        scenario === 'recorded'
          ? RECORDED
          : scenario === 'tool'
            ? dataOf(sseToolEvents(modelId, 'get_weather', { city: 'Paris', unit: 'celsius' }))
            : textEventJsons(modelId, 'Hello from Bedrock, streamed');
      const frames = events.map((e) => Buffer.from(chunkFrame(e)));
      if (scenario === 'stream-exception') {
        res.write(Buffer.concat([frames[0]!, frames[1]!]));
        res.end(Buffer.from(exceptionFrame('throttlingException', 'Too many tokens for account 123456789012, please wait.')));
        return;
      }
      if (scenario === 'split') {
        const all = Buffer.concat(frames);
        for (let i = 0; i < all.length; i += 7) {
          res.write(all.subarray(i, i + 7));
          await new Promise((r) => setImmediate(r));
        }
        res.end();
        return;
      }
      if (scenario === 'gated') {
        res.write(Buffer.concat(frames.slice(0, 3)));
        await gateOpen;
        res.end(Buffer.concat(frames.slice(3)));
        return;
      }
      // As a live stream (and the fake Anthropic upstream): one message per write, 2 ms apart.
      for (const f of frames) {
        res.write(f);
        await new Promise((r) => setTimeout(r, 2));
      }
      res.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    received,
    release: () => gate?.(),
    close: () =>
      new Promise((r) => {
        gate?.();
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
