/**
 * Header handling between client and upstream (DESIGN §6): headers are an open list. Everything the
 * client sent is forwarded except hop-by-hop headers (RFC 9110 §7.6.1), `host`, `content-length`
 * (recomputed) and the client's credential when the gateway supplies its own upstream key.
 * `anthropic-version` and `anthropic-beta` always pass through unchanged.
 */
import type { IncomingHttpHeaders } from 'node:http';

/** Hop-by-hop headers: meaningful for one connection only, never forwarded (RFC 9110 §7.6.1). */
export const HOP_BY_HOP: readonly string[] = ['connection', 'keep-alive', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'proxy-authorization', 'proxy-authenticate', 'proxy-connection'];

const DROP_REQUEST = new Set([...HOP_BY_HOP, 'host', 'content-length', 'expect']);

/** How the upstream request is authenticated. */
export type UpstreamCredential =
  | { kind: 'client' } // transparent: forward x-api-key / authorization as the client sent them
  | { kind: 'key'; key: string } // the gateway's provider key, sent as x-api-key
  | { kind: 'none' }; // client keys are configured and the provider has none: send no credential

/**
 * The credential used upstream: the pool's chosen provider key; else, in transparent mode (no `clients:`),
 * the client's own; else none (a client's gateway key is never forwarded).
 */
export function credentialFor(key: string | null | undefined, clientsConfigured: boolean): UpstreamCredential {
  if (key) return { kind: 'key', key };
  return clientsConfigured ? { kind: 'none' } : { kind: 'client' };
}

/**
 * Headers for the upstream request.
 * @param incoming the client's request headers (Node lower-cases names).
 * @param credential whether to forward the client's credential or use a provider key.
 * @param changes `set_headers` / `remove_headers` from the decision (lower-cased names).
 * @param bodyLength the byte length of the body that will be sent.
 */
export function upstreamRequestHeaders(
  incoming: IncomingHttpHeaders,
  credential: UpstreamCredential,
  changes: { set: Record<string, string>; remove: string[] },
  bodyLength: number | null,
): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  const connectionListed = new Set(
    String(incoming.connection ?? '')
      .split(',')
      .map((s) => s.trim().toLowerCase())
      .filter(Boolean),
  );
  for (const [name, value] of Object.entries(incoming)) {
    if (value === undefined || DROP_REQUEST.has(name) || connectionListed.has(name) || name.startsWith('proxy-')) continue;
    out[name] = value;
  }
  if (credential.kind !== 'client') {
    delete out['authorization'];
    delete out['x-api-key'];
    if (credential.kind === 'key') out['x-api-key'] = credential.key;
  }
  for (const name of changes.remove) delete out[name];
  for (const [name, value] of Object.entries(changes.set)) out[name] = value;
  if (bodyLength !== null) out['content-length'] = String(bodyLength);
  return out;
}

/**
 * Headers for the response to the client: the upstream's, less hop-by-hop and `access-control-*` ones. The body is passed
 * through byte for byte, so `content-encoding` and `content-length` still describe it and are kept.
 * SSE responses get `cache-control: no-cache, no-transform` and `x-accel-buffering: no` so that a
 * proxy in front (nginx) neither buffers nor compresses the stream.
 */
export function clientResponseHeaders(upstream: Record<string, string | string[] | undefined>): {
  headers: Record<string, string | string[]>;
  sse: boolean;
} {
  const headers: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(upstream)) {
    // CORS is the gateway's decision (cors: in the config), never the upstream's.
    if (value === undefined || HOP_BY_HOP.includes(name) || name.startsWith('access-control-')) continue;
    headers[name] = value;
  }
  const sse = String(upstream['content-type'] ?? '').startsWith('text/event-stream');
  if (sse) {
    headers['cache-control'] = 'no-cache, no-transform';
    headers['x-accel-buffering'] = 'no';
  }
  return { headers, sse };
}
