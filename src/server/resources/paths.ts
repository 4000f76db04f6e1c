/**
 * The Anthropic API's resource endpoints the gateway serves besides Messages, as their paths name them
 * (https://platform.claude.com/docs/en/api/messages/batches, /api/files, /api/skills):
 *
 * | path | calls |
 * |---|---|
 * | `/v1/messages/batches` | create (POST), list (GET) |
 * | `/v1/messages/batches/{id}` | retrieve (GET), delete (DELETE) |
 * | `/v1/messages/batches/{id}/cancel` | cancel (POST) |
 * | `/v1/messages/batches/{id}/results` | results (GET, JSONL) |
 * | `/v1/files` | upload (POST, multipart), list (GET) |
 * | `/v1/files/{id}` | metadata (GET), delete (DELETE) |
 * | `/v1/files/{id}/content` | download (GET) |
 * | `/v1/skills`, `/v1/skills/{id}[/...]` | create, list, and everything about one skill |
 *
 * Any other `/v1/...` path is `other`: forwarded only to a provider with `passthrough: true`.
 */
import type { ResourceKind } from '../../upstream/affinity.js';

/** One resource call, as its method and path say. */
export interface ResourceCall {
  /** The family of endpoints; `other` for a path none of them has. */
  family: ResourceKind | 'other';
  /** The id the path names (`msgbatch_…`, `file_…`, `skill_…`), or null for the collection. */
  id: string | null;
  /** What the call does, for the log line: `create`, `list`, `retrieve`, `delete`, `cancel`, `results`, `content`, … */
  action: string;
}

/** The collections by path, and their kind. */
const COLLECTIONS: ReadonlyArray<[string, ResourceKind]> = [
  ['/v1/messages/batches', 'batch'],
  ['/v1/files', 'file'],
  ['/v1/skills', 'skill'],
];

/** What a `method path` (path without its query) asks. */
export function resourceCall(method: string, path: string): ResourceCall {
  for (const [prefix, family] of COLLECTIONS) {
    if (path === prefix || path === `${prefix}/`) return { family, id: null, action: method === 'POST' ? 'create' : method === 'GET' ? 'list' : method.toLowerCase() };
    if (!path.startsWith(`${prefix}/`)) continue;
    const [id, ...rest] = path.slice(prefix.length + 1).split('/');
    const sub = rest.filter(Boolean).join('/');
    const action = sub ? sub : method === 'DELETE' ? 'delete' : method === 'GET' ? 'retrieve' : method.toLowerCase();
    return { family, id: id ? decodeURIComponent(id) : null, action };
  }
  return { family: 'other', id: null, action: method.toLowerCase() };
}
