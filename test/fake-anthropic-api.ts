/**
 * A fake Anthropic API that keeps Message Batches, files and skills per API key, as the real one keeps them per
 * workspace: a file uploaded with key A is a 404 (`not_found_error`) with key B. Object shapes follow the API
 * reference (fixtures in test/fixtures/resources/, SOURCES.md there). Uploads are counted and hashed as they stream,
 * never held whole (the first 1 MB is kept for downloads). Test controls: `POST /_fake/end/{batch id}` ends a batch
 * (every item succeeds, with usage from `fixtures/resources/batch-results.jsonl`'s shape); `calls` lists every
 * request (method, path, key) in order.
 */
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

interface Batch {
  id: string;
  key: string;
  created_at: string;
  status: 'in_progress' | 'canceling' | 'ended';
  canceled: boolean;
  requests: Array<{ custom_id: string; params: { model?: string; messages?: unknown } }>;
  ended_at: string | null;
  /** The create call's body as it arrived. */
  raw: Buffer;
}

interface StoredFile {
  id: string;
  key: string;
  filename: string;
  mime_type: string;
  size_bytes: number;
  sha256: string;
  head: Buffer;
  created_at: string;
}

/** One request the fake saw. */
export interface ApiCall {
  method: string;
  path: string;
  key: string;
  /** The accept-encoding the call asked for. */
  encoding?: string;
  /** For POST /v1/messages: the file ids the body references. */
  files?: string[];
}

export interface FakeAnthropicApi {
  url: string;
  calls: ApiCall[];
  batches: Map<string, Batch>;
  files: Map<string, StoredFile>;
  /** Usage each succeeded item reports: input tokens per item, output tokens per item. */
  usage: { input_tokens: number; output_tokens: number };
  close(): Promise<void>;
}

let seq = 0;
const newId = (prefix: string) => `${prefix}_01${createHash('sha256').update(`${prefix}${seq++}${Math.random()}`).digest('hex').slice(0, 22)}`;

const json = (res: ServerResponse, status: number, body: unknown) => {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'request-id': `req_fake_${seq++}`, 'content-length': Buffer.byteLength(text) });
  res.end(text);
};
const notFound = (res: ServerResponse, what: string) => json(res, 404, { type: 'error', error: { type: 'not_found_error', message: `${what} not found` } });

async function readAll(req: IncomingMessage): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of req as AsyncIterable<Buffer>) parts.push(c);
  return Buffer.concat(parts);
}

/** Starts the fake on 127.0.0.1. */
export async function startFakeAnthropicApi(): Promise<FakeAnthropicApi> {
  const calls: ApiCall[] = [];
  const batches = new Map<string, Batch>();
  const files = new Map<string, StoredFile>();
  const usage = { input_tokens: 11, output_tokens: 36 };
  let url = '';
  const batchObject = (b: Batch) => {
    const n = b.requests.length;
    const ended = b.status === 'ended';
    return {
      id: b.id,
      type: 'message_batch',
      processing_status: b.status,
      request_counts: { processing: ended ? 0 : n, succeeded: ended && !b.canceled ? n : 0, errored: 0, canceled: ended && b.canceled ? n : 0, expired: 0 },
      ended_at: b.ended_at,
      created_at: b.created_at,
      expires_at: new Date(Date.parse(b.created_at) + 86_400_000).toISOString(),
      archived_at: null,
      cancel_initiated_at: b.canceled ? b.ended_at : null,
      results_url: ended ? `${url}/v1/messages/batches/${b.id}/results` : null,
    };
  };
  const fileObject = (f: StoredFile) => ({ id: f.id, type: 'file', filename: f.filename, mime_type: f.mime_type, size_bytes: f.size_bytes, created_at: f.created_at, downloadable: true });

  const server: Server = createServer(async (req, res) => {
    // The SDK sends its key as `Authorization: Bearer`; the gateway sends a pool key as `x-api-key`.
    const key = String(req.headers['x-api-key'] ?? /^Bearer (.+)$/.exec(String(req.headers.authorization ?? ''))?.[1] ?? '');
    const path = (req.url ?? '/').split('?')[0]!;
    const m = req.method ?? 'GET';
    const call: ApiCall = { method: m, path, key, encoding: req.headers['accept-encoding'] };
    calls.push(call);
    if (m === 'POST' && path.startsWith('/_fake/end/')) {
      const b = batches.get(path.slice('/_fake/end/'.length));
      if (!b) return notFound(res, 'batch');
      b.status = 'ended';
      b.ended_at = new Date().toISOString();
      return json(res, 200, batchObject(b));
    }
    if (path === '/v1/messages' && m === 'POST') {
      const body = JSON.parse((await readAll(req)).toString('utf8')) as { model: string };
      const ids = [...JSON.stringify(body).matchAll(/"file_id":"([^"]+)"/g)].map((x) => x[1]!);
      call.files = ids;
      for (const id of ids) {
        const f = files.get(id);
        if (!f || f.key !== key) return notFound(res, `File ${id}`);
      }
      return json(res, 200, {
        id: newId('msg'),
        type: 'message',
        role: 'assistant',
        model: body.model,
        content: [{ type: 'text', text: 'ok' }],
        stop_reason: 'end_turn',
        stop_sequence: null,
        usage: { input_tokens: 20, output_tokens: 3 },
      });
    }
    // Message Batches
    if (path === '/v1/messages/batches' && m === 'POST') {
      const raw = await readAll(req);
      const body = JSON.parse(raw.toString('utf8')) as { requests: Batch['requests'] };
      const b: Batch = { id: newId('msgbatch'), key, created_at: new Date().toISOString(), status: 'in_progress', canceled: false, requests: body.requests, ended_at: null, raw };
      batches.set(b.id, b);
      return json(res, 200, batchObject(b));
    }
    if (path === '/v1/messages/batches' && m === 'GET') {
      const data = [...batches.values()].filter((b) => b.key === key).map(batchObject);
      return json(res, 200, { data, has_more: false, first_id: data[0]?.id ?? null, last_id: data.at(-1)?.id ?? null });
    }
    const batchPath = /^\/v1\/messages\/batches\/([^/]+)(?:\/(cancel|results))?$/.exec(path);
    if (batchPath) {
      const b = batches.get(batchPath[1]!);
      if (!b || b.key !== key) return notFound(res, 'Message batch');
      const action = batchPath[2];
      if (action === 'cancel' && m === 'POST') {
        b.canceled = true;
        b.status = 'ended';
        b.ended_at = new Date().toISOString();
        return json(res, 200, batchObject(b));
      }
      if (action === 'results' && m === 'GET') {
        if (b.status !== 'ended') return json(res, 400, { type: 'error', error: { type: 'invalid_request_error', message: 'batch has not ended' } });
        res.writeHead(200, { 'content-type': 'application/binary', 'request-id': `req_fake_${seq++}` });
        for (const r of b.requests) {
          const result = b.canceled
            ? { type: 'canceled' }
            : {
                type: 'succeeded',
                message: {
                  id: newId('msg'),
                  type: 'message',
                  role: 'assistant',
                  model: r.params.model,
                  content: [{ type: 'text', text: `answer to ${r.custom_id}` }],
                  stop_reason: 'end_turn',
                  stop_sequence: null,
                  usage,
                },
              };
          if (!res.write(`${JSON.stringify({ custom_id: r.custom_id, result })}\n`)) await new Promise((resolve) => res.once('drain', resolve));
        }
        return res.end();
      }
      if (!action && m === 'GET') return json(res, 200, batchObject(b));
      if (!action && m === 'DELETE') {
        if (b.status !== 'ended') return json(res, 400, { type: 'error', error: { type: 'invalid_request_error', message: 'a batch must end before it is deleted' } });
        batches.delete(b.id);
        return json(res, 200, { id: b.id, type: 'message_batch_deleted' });
      }
    }
    // Files
    if (path === '/v1/files' && m === 'POST') {
      const hash = createHash('sha256');
      let size = 0;
      const head: Buffer[] = [];
      let headBytes = 0;
      for await (const c of req as AsyncIterable<Buffer>) {
        hash.update(c);
        size += c.length;
        if (headBytes < 1 << 20) {
          head.push(c);
          headBytes += c.length;
        }
      }
      const first = Buffer.concat(head).toString('latin1');
      const filename = /filename="([^"]+)"/.exec(first)?.[1] ?? 'upload';
      const mime = /\r\nContent-Type: ([^\r]+)\r\n\r\n/i.exec(first)?.[1] ?? 'application/octet-stream';
      const f: StoredFile = { id: newId('file'), key, filename, mime_type: mime, size_bytes: size, sha256: hash.digest('hex'), head: Buffer.concat(head), created_at: new Date().toISOString() };
      files.set(f.id, f);
      return json(res, 200, fileObject(f));
    }
    if (path === '/v1/files' && m === 'GET') {
      const data = [...files.values()].filter((f) => f.key === key).map(fileObject);
      return json(res, 200, { data, has_more: false, first_id: data[0]?.id ?? null, last_id: data.at(-1)?.id ?? null });
    }
    const filePath = /^\/v1\/files\/([^/]+)(\/content)?$/.exec(path);
    if (filePath) {
      const f = files.get(filePath[1]!);
      if (!f || f.key !== key) return notFound(res, `File ${filePath[1]}`);
      if (filePath[2] && m === 'GET') {
        res.writeHead(200, { 'content-type': f.mime_type, 'content-length': f.head.length });
        return res.end(f.head);
      }
      if (m === 'GET') return json(res, 200, fileObject(f));
      if (m === 'DELETE') {
        files.delete(f.id);
        return json(res, 200, { id: f.id, type: 'file_deleted' });
      }
    }
    // Skills: created per key, read back per key.
    if (path === '/v1/skills' && m === 'POST') {
      await readAll(req);
      const id = newId('skill');
      files.set(id, { id, key, filename: 'skill', mime_type: 'application/zip', size_bytes: 0, sha256: '', head: Buffer.alloc(0), created_at: new Date().toISOString() });
      return json(res, 200, { id, type: 'skill', display_title: 'fake skill', source: 'custom', created_at: new Date().toISOString() });
    }
    const skillPath = /^\/v1\/skills\/([^/]+)$/.exec(path);
    if (skillPath && m === 'GET') {
      const s = files.get(skillPath[1]!);
      if (!s || s.key !== key) return notFound(res, 'Skill');
      return json(res, 200, { id: s.id, type: 'skill', display_title: 'fake skill', source: 'custom', created_at: s.created_at });
    }
    if (path === '/v1/experimental/ping' && m === 'GET') return json(res, 200, { type: 'pong', key });
    return notFound(res, `${m} ${path}`);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    calls,
    batches,
    files,
    usage,
    close: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
