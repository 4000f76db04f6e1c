/**
 * Resource affinity: a Message Batch, a file or a skill lives in the workspace of the upstream key that created
 * it, and only that key finds it again (a file uploaded with key A is a 404 with key B). The gateway remembers
 * `id -> provider + key fingerprint + who created it` when the upstream answers a create call, and sends every later
 * call about that id — retrieve, results, cancel, delete, content, a Messages request that references a `file_id`
 * — with the same key, whatever the pool would pick.
 *
 * Where it is kept: in the state store (Redis in a fleet, so every replica sees it at once) and, when the ledger
 * is on, in the ledger database's `resources` table, which outlives Redis restarts and gateway restarts alike.
 * A lookup reads the state store first and falls back to the ledger (then puts the entry back in the state store).
 * Never a key: the fingerprint only (`upstream/pool.ts` `keyFingerprint`).
 */
import type { Logger } from '../log.js';
import type { StateStore } from '../state/store.js';
import { keyOffsets } from '../body/json-scan.js';

/** What kind of upstream object an id names (by its prefix: `msgbatch_`, `file_`, `skill_`). */
export type ResourceKind = 'batch' | 'file' | 'skill';

/**
 * Budget running totals a batch's items are charged to when their results are known (budget enforce.ts keys),
 * with the items each applies to (`all`, or the `custom_id`s).
 */
export interface BatchCharge {
  key: string;
  expiresAtMs: number;
  items: 'all' | string[];
}

/** One remembered resource: where it lives and who made it (for the ledger's attribution of batch items). */
export interface ResourceOwner {
  id: string;
  kind: ResourceKind;
  /** The provider (config name) whose upstream holds it. */
  provider: string;
  /** Fingerprint of the upstream key that created it; null when the client's own credential was forwarded. */
  key: string | null;
  /** Who created it, as the usage record names them. */
  client_id: string | null;
  user_id: string | null;
  project: string | null;
  session_id: string | null;
  tags: Record<string, string>;
  /** The rules version that decided the create call (batch items), or null. */
  rules_version: string | null;
  /** Budget totals a batch's item costs go to once its results are read (batches only; empty otherwise). */
  charges: BatchCharge[];
  /** ISO time of the create call. */
  created_at: string;
  /** ISO time the batch's results were read whole and recorded (batches only); null until then. */
  settled_at: string | null;
}

/** The durable copy (the ledger database's `resources` table; usage/sqlite.ts, usage/postgres.ts). */
export interface ResourceStore {
  /** Inserts or replaces the entry with the same id. */
  putResource(r: ResourceOwner): Promise<void>;
  /** The entry for `id`, or null. */
  getResource(id: string): Promise<ResourceOwner | null>;
  /** Batches not yet settled, created since `since` (ISO), oldest first, at most `limit`. */
  unsettledBatches(since: string, limit: number): Promise<ResourceOwner[]>;
  /** Marks a batch settled at `at` (ISO). */
  settleBatch(id: string, at: string): Promise<void>;
}

/**
 * How long the state store keeps an entry, ms: 60 days. Batch results can be read for 29 days after creation
 * (https://platform.claude.com/docs/en/build-with-claude/batch-processing); files live until deleted, and their
 * entries come back from the ledger when the state store has let them go.
 */
export const AFFINITY_TTL_MS = 60 * 86_400_000;

/** The kind of resource an id names, by its prefix; null for an id that names none the gateway tracks. */
export function resourceKindOf(id: string): ResourceKind | null {
  if (id.startsWith('msgbatch_')) return 'batch';
  if (id.startsWith('file_')) return 'file';
  if (id.startsWith('skill_')) return 'skill';
  return null;
}

/** Largest id remembered, characters (Anthropic's ids are ~30; a client cannot make the store keep a long one). */
const MAX_ID_CHARS = 200;

/** The state-store key of an entry. */
const stateKey = (id: string) => `resource:${id}`;

/** Remembers and finds resources' owners (see the module comment). */
export class ResourceAffinity {
  constructor(
    private readonly state: StateStore,
    private readonly durable: ResourceStore | null,
    private readonly log: Logger,
  ) {}

  /**
   * Remembers `r`, in the state store and the ledger. A failure of either is logged, never thrown: the upstream
   * already created the resource, and the client must get its answer.
   */
  async remember(r: ResourceOwner): Promise<void> {
    if (r.id.length > MAX_ID_CHARS) return;
    const json = JSON.stringify(r);
    await Promise.all([
      this.state.putRecord(stateKey(r.id), json, AFFINITY_TTL_MS).catch((err: Error) => this.log.error({ resource: r.id, err: err.message }, 'could not remember a resource in the state store')),
      this.durable?.putResource(r).catch((err: Error) => this.log.error({ resource: r.id, err: err.message }, 'could not remember a resource in the ledger')),
    ]);
  }

  /** The owner of `id`, or null when the gateway never saw it created. Store failures count as not found (logged). */
  async lookup(id: string): Promise<ResourceOwner | null> {
    if (id.length > MAX_ID_CHARS) return null;
    try {
      const json = await this.state.getRecord(stateKey(id));
      if (json) return JSON.parse(json) as ResourceOwner;
    } catch (err) {
      this.log.warn({ resource: id, err: (err as Error).message }, 'could not read a resource from the state store; trying the ledger');
    }
    if (!this.durable) return null;
    try {
      const r = await this.durable.getResource(id);
      if (r) await this.state.putRecord(stateKey(id), JSON.stringify(r), AFFINITY_TTL_MS).catch(() => {});
      return r;
    } catch (err) {
      this.log.error({ resource: id, err: (err as Error).message }, 'could not read a resource from the ledger');
      return null;
    }
  }

  /** Marks a batch's results recorded: in both stores, so neither a client's read nor the poll records them again. */
  async settled(r: ResourceOwner, at: string): Promise<void> {
    const next = { ...r, settled_at: at };
    await Promise.all([
      this.state.putRecord(stateKey(r.id), JSON.stringify(next), AFFINITY_TTL_MS).catch(() => {}),
      this.durable?.settleBatch(r.id, at).catch((err: Error) => this.log.error({ resource: r.id, err: err.message }, 'could not mark a batch settled in the ledger')),
    ]);
  }

  /** Batches not yet settled, from the ledger (empty without one). */
  async unsettledBatches(since: string, limit: number): Promise<ResourceOwner[]> {
    return this.durable ? this.durable.unsettledBatches(since, limit) : [];
  }
}

/** Most distinct file ids read from one request (a request naming more is checked on these). */
const MAX_FILE_REFERENCES = 64;

/**
 * The Files API ids a Messages request references: a `document` or `image` block's `source` of `type: file`, a
 * `container_upload` block (https://platform.claude.com/docs/en/build-with-claude/files) — every `"file_id": "…"`
 * member of the body, at most {@link MAX_FILE_REFERENCES} distinct ids. Found through the body scan's record of where
 * `file_id` occurs (rules/load.ts watches it), so a request without one costs a map lookup; a body without that
 * record (a plain object, or one a rule changed) is walked, to the same ids.
 */
export function fileIdsOf(body: Record<string, unknown>): string[] {
  const k = keyOffsets(body, 'file_id');
  const ids = new Set<string>();
  // Stryker disable next-line ConditionalExpression,BlockStatement: equivalent — the walk below finds the same ids; this is the fast path.
  if (k) {
    for (const at of k.at) {
      const m = FILE_ID_AT.exec(k.raw.subarray(at, at + 256).toString('utf8'));
      if (m) ids.add(m[1]!);
      if (ids.size >= MAX_FILE_REFERENCES) break;
    }
    return [...ids];
  }
  const walk = (v: unknown, depth: number): void => {
    if (depth > 64 || ids.size >= MAX_FILE_REFERENCES || v === null || typeof v !== 'object') return;
    if (Array.isArray(v)) for (const e of v) walk(e, depth + 1);
    else
      for (const [name, member] of Object.entries(v)) {
        if (name === 'file_id' && typeof member === 'string') ids.add(member);
        else walk(member, depth + 1);
      }
  };
  walk(body, 0);
  return [...ids];
}

/** `"file_id": "<id>"` at the start of a slice of the body's bytes. */
const FILE_ID_AT = /^"file_id"\s*:\s*"([^"\\]{1,200})"/;
