/**
 * `scan_secrets`: find credentials in what a request would send to the model — every content block of the messages
 * (`tool_result` and `document` blocks included), the system prompt and the tool definitions — with gitleaks' rule
 * set ({@link loadRuleSet}), and block the request, redact the secrets or only report them.
 *
 * Redaction keeps the prompt cache: a secret becomes `[REDACTED:<rule>:<6 hex>]`, the hex a keyed hash
 * (HMAC-SHA-256 under `SWITCHYARD_REDACTION_KEY`) of the secret — the same every time the same secret appears in the
 * same deployment and never reversible — so turn N+1 resends exactly the bytes turn N sent and Anthropic's prefix
 * cache still hits. A memo keyed by a hash of the bytes (64-bit xxHash, seeded at random per process; bounded in
 * bytes) makes what was scanned once cost a lookup on every later turn — first the whole `tools` array, the system
 * prompt and each message (one seen before with nothing in it is not even opened), then each block: Claude Code
 * resends the whole conversation every turn, so only the newest blocks are ever scanned.
 *
 * Not scanned: `thinking` and `redacted_thinking` blocks (signed by the API; an edit would be refused), `image`
 * blocks and base64 `document` sources (binary, not text).
 */
import { createHmac, randomBytes } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import picomatch from 'picomatch';
import xxhash from 'xxhash-wasm';
import { copyArray, copyObject, elementBytes, valueBytes } from '../../body/json-scan.js';
import { defineAction } from '../types.js';
import { candidateRules, findSecrets, loadRuleSet, type RuleSet, type SecretFinding } from './rules.js';

/** What to do when a secret is found. */
export type OnFind = 'block' | 'redact' | 'report';

/** The parts of a request scanned. */
export type ScanPart = 'messages' | 'system' | 'tools';

/** One secret found in a request, as dry-run and the trace show it: never the value. */
export interface FindingReport {
  rule: string;
  /** Where: `messages[3].content[0]`, `system[1]`, `tools[4]`. */
  where: string;
  /** The block's type (`text`, `tool_result`, `tool_use`, `document`, a tool definition: `tool`). */
  block: string;
  /** The secret's length, bytes of UTF-8 text. */
  length: number;
  /** What it is (or would be) replaced with. */
  placeholder: string;
  /** True when this process scanned the block for this request (false: the memo knew it from an earlier turn). */
  first_seen: boolean;
}

/** What `scan_secrets` leaves in `decision.extra.secret_findings`: counts by rule id (the usage record keeps them). */
export interface SecretFindingsExtra {
  rule: string;
  on_find: OnFind;
  counts: Record<string, number>;
  findings: FindingReport[];
}

/** A compiled `scan_secrets`: its parameters, the rule set, the placeholder key and its own memo. */
interface ScanSecrets {
  onFind: OnFind;
  parts: ReadonlySet<ScanPart>;
  rules: RuleSet;
  allow: ReadonlySet<string>;
  /** Files whose contents a tool read are not scanned (picomatch over the tool call's path); null: none. */
  allowPaths: ((path: string) => boolean) | null;
  key: Buffer;
  memo: LRUCache<bigint, Memo>;
}

/** The members of a tool call's input that name the file it read or wrote (Claude Code's Read, Edit, Write, NotebookEdit). */
const PATH_INPUTS = ['file_path', 'path', 'notebook_path'] as const;

/**
 * The `tool_use_id`s of the tool calls whose file matches `allowed` (from the assistant turns' `tool_use` blocks): their
 * results are not scanned.
 */
function allowedToolUses(body: Record<string, unknown>, allowed: (path: string) => boolean): Set<string> {
  const out = new Set<string>();
  const messages = Array.isArray(body.messages) ? (body.messages as Array<{ role?: unknown; content?: unknown } | null>) : [];
  for (const m of messages) {
    if (m?.role !== 'assistant' || !Array.isArray(m.content)) continue;
    for (const b of m.content as Array<{ type?: unknown; id?: unknown; input?: Record<string, unknown> } | null>) {
      if (b?.type !== 'tool_use' || typeof b.id !== 'string' || !b.input || typeof b.input !== 'object') continue;
      const file = PATH_INPUTS.map((k) => b.input![k]).find((v): v is string => typeof v === 'string');
      if (file !== undefined && allowed(file)) out.add(b.id);
    }
  }
  return out;
}

/** A memo entry: the findings of a block's bytes (empty: clean), that it is not scanned, or a message with nothing in it. */
type Memo = { findings: LeafFinding[] } | { skip: true } | typeof CLEAN;

/** The memo entry of a message none of whose blocks holds a secret. */
const CLEAN = { clean: true } as const;

/** The memo's bound, bytes (estimated per entry: 96 + 48 per finding); ~80,000 clean blocks. */
export const MEMO_BYTES = 8 * 1024 * 1024;

const PLACEHOLDER_HEX = 6;

/** The process's hashing: seeded at random, so which bytes collide cannot be worked out from outside. */
let hasher: Promise<(b: Uint8Array) => bigint> | null = null;
function blockHash(): Promise<(b: Uint8Array) => bigint> {
  hasher ??= xxhash().then(({ h64Raw }) => {
    const seed = randomBytes(8).readBigUInt64LE();
    return (b: Uint8Array) => h64Raw(b, seed);
  });
  return hasher;
}

let processKey: Buffer | null = null;
/**
 * The placeholder key: `SWITCHYARD_REDACTION_KEY` (any string; set the same on every replica), else one drawn at random
 * for this process — placeholders then change at a restart and differ between replicas, each change costing one cache
 * write of the conversation.
 */
export function redactionKey(env: NodeJS.ProcessEnv = process.env): Buffer {
  const k = env.SWITCHYARD_REDACTION_KEY;
  if (k) return Buffer.from(k, 'utf8');
  processKey ??= randomBytes(32);
  return processKey;
}

/** `[REDACTED:<rule>:<hex>]` for `secret`: deterministic under `key`, never reversible. */
export function placeholder(rule: string, secret: Buffer | string, key: Buffer): string {
  const hex = createHmac('sha256', key).update(secret).digest('hex').slice(0, PLACEHOLDER_HEX);
  return `[REDACTED:${rule}:${hex}]`;
}

/** A finding inside one string of a block: `leaf` is the path from the block to that string (empty: the block is it). */
interface LeafFinding extends SecretFinding {
  leaf: Array<string | number>;
}

/** gitleaks' catch-all rule: where a specific rule found the same secret, the specific one names it. */
const GENERIC = 'generic-api-key';

/** Findings of one string merged where they overlap (the rule id of the first, a specific rule before the catch-all). */
function merge(findings: SecretFinding[]): SecretFinding[] {
  const out: SecretFinding[] = [];
  const generic = (f: SecretFinding) => (f.rule === GENERIC ? 1 : 0);
  for (const f of [...findings].sort((a, b) => a.start - b.start || b.end - a.end || generic(a) - generic(b))) {
    const last = out.at(-1);
    if (last && f.start < last.end) last.end = Math.max(last.end, f.end);
    else out.push({ ...f });
  }
  return out;
}

/** A merged finding of one string with what replaces it. */
interface Span extends SecretFinding {
  placeholder: string;
}

/** The UTF-8 bytes of a string with each span (merged, in order) replaced by its placeholder. */
function redactText(bytes: Buffer, spans: Span[]): string {
  const parts: Buffer[] = [];
  let at = 0;
  for (const f of spans) {
    parts.push(bytes.subarray(at, f.start), Buffer.from(f.placeholder));
    at = f.end;
  }
  parts.push(bytes.subarray(at));
  return Buffer.concat(parts).toString('utf8');
}

/** Strings shorter than this hold no secret any rule finds (the shortest secrets are 16 characters and more). */
const MIN_TEXT = 8;

/** Every string inside `v` (member values at any depth, not names), with its path from `v`. */
function* strings(v: unknown, path: Array<string | number> = []): Generator<[Array<string | number>, string]> {
  if (typeof v === 'string') {
    if (v.length >= MIN_TEXT) yield [path, v];
  } else if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) yield* strings(v[i], [...path, i]);
  } else if (v !== null && typeof v === 'object') {
    for (const k of Object.keys(v)) yield* strings((v as Record<string, unknown>)[k], [...path, k]);
  }
}

/**
 * The findings in the block whose JSON is `bytes`: none, without decoding anything, when no rule's keyword occurs
 * in the bytes (most blocks); else each string of the block is scanned as text — what the model reads, not its JSON
 * escape (gitleaks' rules expect `token = "..."`, not `token = \\"...\\"`).
 */
function scanBlock(bytes: Buffer, c: ScanSecrets): LeafFinding[] {
  // The block is the fragment: its keywords decide which rules run on each of its strings (one keyword pass).
  const candidates = candidateRules(bytes, c.rules);
  if (candidates.length === 0) return [];
  const out: LeafFinding[] = [];
  for (const [leaf, text] of strings(JSON.parse(bytes.toString('utf8')))) {
    for (const f of findSecrets(Buffer.from(text, 'utf8'), c.rules, c.allow, candidates)) out.push({ ...f, leaf });
  }
  return out;
}

/** A block's findings grouped by the string they are in, in the order first found. */
function byLeaf(findings: LeafFinding[]): LeafFinding[][] {
  const groups = new Map<string, LeafFinding[]>();
  for (const f of findings) {
    const k = JSON.stringify(f.leaf);
    const list = groups.get(k);
    if (list) list.push(f);
    else groups.set(k, [f]);
  }
  return [...groups.values()];
}

/** The value at `path` inside `v`. */
function valueAt(v: unknown, path: ReadonlyArray<string | number>): unknown {
  return path.reduce<unknown>((x, k) => (x as Record<string | number, unknown>)[k], v);
}

/** A path as the report writes it: `messages[3].content[0].content`. */
function formatPath(path: ReadonlyArray<string | number>): string {
  return path.map((k, i) => (typeof k === 'number' ? `[${k}]` : i === 0 ? k : `.${k}`)).join('');
}

/** The type of a block for the report, and whether it is scanned at all. */
function blockKind(v: unknown, part: ScanPart): { type: string; scanned: boolean } {
  if (part === 'tools') return { type: 'tool', scanned: true };
  if (typeof v === 'string') return { type: 'text', scanned: true };
  const b = v as { type?: unknown; source?: { type?: unknown } } | null;
  const type = typeof b?.type === 'string' ? b.type : 'unknown';
  if (type === 'thinking' || type === 'redacted_thinking' || type === 'image') return { type, scanned: false };
  if (type === 'document' && b?.source?.type === 'base64') return { type, scanned: false };
  return { type, scanned: true };
}

/** One place a block lives, and how to put a replacement there (copy-on-write up to the body). */
interface Slot {
  /** Where the block is in the body: `['messages', 3, 'content', 0]`. */
  path: Array<string | number>;
  part: ScanPart;
  /** The block's bytes (the client's, or its JSON when an earlier action changed it). */
  bytes: Buffer;
  value: () => unknown;
}

/**
 * The blocks of the parts scanned, in groups in prompt order: the `tools` array, the system prompt, each message. A
 * group's `bytes` (as the client sent them; null after an edit by an earlier action) let a group seen before with
 * nothing in it be passed over whole — a hash and a lookup, without opening it; `slots` opens it into its blocks.
 */
interface Group {
  bytes: Buffer | null;
  slots: () => Slot[];
}

/** The elements of `arr` as slots; an element is read only when its bytes are not the client's. */
function slotsOf(arr: unknown, part: ScanPart, prefix: Array<string | number>): Slot[] {
  if (!Array.isArray(arr)) return [];
  const out: Slot[] = [];
  for (let i = 0; i < arr.length; i++) out.push({ path: [...prefix, i], part, bytes: elementBytes(arr, i) ?? Buffer.from(JSON.stringify(arr[i]) ?? 'null'), value: () => arr[i] });
  return out;
}

function* groups(body: Record<string, unknown>, parts: ReadonlySet<ScanPart>): Generator<Group> {
  if (parts.has('tools') && Array.isArray(body.tools)) yield { bytes: valueBytes(body.tools), slots: () => slotsOf(body.tools, 'tools', ['tools']) };
  if (parts.has('system')) {
    const system = body.system;
    if (typeof system === 'string') yield { bytes: null, slots: () => [{ path: ['system'], part: 'system', bytes: Buffer.from(JSON.stringify(system)), value: () => system }] };
    else if (Array.isArray(system)) yield { bytes: valueBytes(system), slots: () => slotsOf(system, 'system', ['system']) };
  }
  if (parts.has('messages') && Array.isArray(body.messages)) {
    const messages = body.messages as Array<{ content?: unknown } | null>;
    for (let i = 0; i < messages.length; i++) {
      yield {
        bytes: elementBytes(messages, i),
        slots: () => {
          const content = messages[i]?.content;
          if (typeof content === 'string') return [{ path: ['messages', i, 'content'], part: 'messages', bytes: Buffer.from(JSON.stringify(content)), value: () => content }];
          return slotsOf(content, 'messages', ['messages', i, 'content']);
        },
      };
    }
  }
}

/** `root` with the value at `path` replaced, copying (on write) only the objects and arrays along the path. */
function setAt(root: Record<string, unknown>, path: Array<string | number>, value: unknown): Record<string, unknown> {
  const copy = (v: unknown): Record<string | number, unknown> => (Array.isArray(v) ? (copyArray(v) as unknown as Record<number, unknown>) : copyObject(v as Record<string, unknown>));
  const top = copy(root) as Record<string, unknown>;
  let cur: Record<string | number, unknown> = top;
  for (let i = 0; i < path.length - 1; i++) {
    const next = copy(cur[path[i]!]);
    cur[path[i]!] = next;
    cur = next;
  }
  cur[path.at(-1)!] = value;
  return top;
}

/** The result of scanning one request. */
export interface ScanResult {
  findings: FindingReport[];
  /** The body with every secret replaced when redacting (the input itself when nothing was found). */
  body: Record<string, unknown>;
}

/**
 * Scans `body` (see the module comment): the findings of every block and, when `c.onFind` is `redact`, the body with
 * them replaced. A message whose bytes were seen before with nothing in them costs a hash and a lookup, without
 * opening its content; a block seen before, likewise.
 */
export async function scanBody(c: ScanSecrets, body: Record<string, unknown>): Promise<ScanResult> {
  const hash = await blockHash();
  const findings: FindingReport[] = [];
  let out = body;
  let allowedResults: Set<string> | null = null;
  const allowed = () => (allowedResults ??= c.allowPaths ? allowedToolUses(body, c.allowPaths) : new Set());
  for (const g of groups(body, c.parts)) {
    // A group seen before with nothing in it: passed over without opening it.
    const gh = g.bytes ? hash(g.bytes) : null;
    if (gh !== null && c.memo.get(gh) === CLEAN) continue;
    let clean = true;
    for (const s of g.slots()) {
      if (c.allowPaths && s.part === 'messages') {
        const b = s.value() as { type?: unknown; tool_use_id?: unknown } | null;
        if (b?.type === 'tool_result' && typeof b.tool_use_id === 'string' && allowed().has(b.tool_use_id)) {
          clean = false; // allowed by a path another message names: not remembered as clean
          continue;
        }
      }
      const h = hash(s.bytes);
      let memo = c.memo.get(h);
      const fresh = memo === undefined;
      if (!memo || memo === CLEAN) {
        memo = blockKind(s.value(), s.part).scanned ? { findings: scanBlock(s.bytes, c) } : { skip: true };
        c.memo.set(h, memo);
      }
      if (!('findings' in memo) || memo.findings.length === 0) continue;
      clean = false;
      // Each string with secrets once: reported, and replaced in a copy of the block when redacting.
      const type = blockKind(s.value(), s.part).type;
      const value = JSON.parse(s.bytes.toString('utf8')) as unknown;
      let redacted = value;
      for (const list of byLeaf(memo.findings)) {
        const leaf = list[0]!.leaf;
        const text = Buffer.from(valueAt(value, leaf) as string, 'utf8');
        const spans = merge(list).map((f) => ({ ...f, placeholder: placeholder(f.rule, text.subarray(f.start, f.end), c.key) }));
        const where = formatPath([...s.path, ...leaf]);
        for (const f of spans) findings.push({ rule: f.rule, where, block: type, length: f.end - f.start, placeholder: f.placeholder, first_seen: fresh });
        if (c.onFind === 'redact') redacted = leaf.length === 0 ? redactText(text, spans) : setAt(redacted as Record<string, unknown>, leaf, redactText(text, spans));
      }
      if (c.onFind === 'redact') out = setAt(out, s.path, redacted);
    }
    if (gh !== null && clean) c.memo.set(gh, CLEAN);
  }
  return { findings, body: out };
}

function memoSize(m: Memo): number {
  return 96 + ('findings' in m ? m.findings.length * 48 : 0);
}

export const scanSecrets = defineAction<ScanSecrets>({
  name: 'scan_secrets',
  schema: {
    type: 'object',
    additionalProperties: false,
    required: ['on_find'],
    description: "Find credentials (gitleaks' rule set) in the messages, system prompt and tool definitions; block, redact or report them.",
    properties: {
      on_find: {
        enum: ['block', 'redact', 'report'],
        description:
          'block: answer 400 naming the rule and block (never the secret); redact: replace each secret with [REDACTED:<rule>:<hash>], the same for the same secret every turn; report: only record the findings.',
      },
      scan: {
        type: 'array',
        minItems: 1,
        uniqueItems: true,
        items: { enum: ['messages', 'system', 'tools'], description: 'messages (every content block, tool_result and document included), system or tools' },
        description: 'The parts of the request scanned (default: all three).',
      },
      skip_rules: { type: 'array', items: { type: 'string', minLength: 1, description: 'A gitleaks rule id, e.g. generic-api-key.' }, description: 'Rules of the rule set not run.' },
      allow: { type: 'array', items: { type: 'string', minLength: 1, description: 'A value that is never a finding (an example key in docs or tests).' }, description: 'Values allowed through.' },
      allow_paths: {
        type: 'array',
        items: { type: 'string', minLength: 1, description: 'A glob, e.g. "**/test/fixtures/**" or "**/*.example".' },
        description: "Files whose contents are not scanned: the result of a tool call whose file_path, path or notebook_path (Claude Code's Read, Edit, Write) matches one of these globs.",
      },
    },
  },
  compile(params, cx) {
    const p = params as { on_find: OnFind; scan?: ScanPart[]; skip_rules?: string[]; allow?: string[]; allow_paths?: string[] };
    let rules: RuleSet;
    try {
      rules = loadRuleSet(p.skip_rules ?? []);
    } catch (err) {
      cx.error([], `scan_secrets cannot load its rule set: ${(err as Error).message}`);
      rules = { version: '', rules: [], pathOnly: [], keywords: null, keywordRules: [], always: [], global: [] };
    }
    // Every rule id of the file (the skipped ones are not in `rules`).
    const all = rules.rules.length ? loadRuleSet() : rules;
    const known = new Set([...all.rules.map((r) => r.id), ...all.pathOnly]);
    (p.skip_rules ?? []).forEach((id, i) => {
      if (rules.rules.length && !known.has(id)) cx.error(['skip_rules', i], `"${id}" is not a rule of ${all.version}; the rule ids are the "id"s of secrets/gitleaks.toml`);
    });
    return {
      onFind: p.on_find,
      parts: new Set(p.scan ?? ['messages', 'system', 'tools']),
      rules,
      allow: new Set(p.allow ?? []),
      allowPaths: p.allow_paths?.length ? picomatch(p.allow_paths, { dot: true }) : null,
      key: redactionKey(),
      memo: new LRUCache<bigint, Memo>({ maxSize: MEMO_BYTES, sizeCalculation: memoSize }),
    };
  },
  settings: () => [{ setting: 'scan_secrets', always: true }],
  async apply(c, _rc, d, rule) {
    const trace = d.claim('scan_secrets', rule, [['scan_secrets', () => {}]]);
    if (!trace.applied) return trace;
    const result = await scanBody(c, d.body);
    const counts: Record<string, number> = {};
    for (const f of result.findings) counts[f.rule] = (counts[f.rule] ?? 0) + 1;
    if (result.findings.length) d.extra.secret_findings = { rule, on_find: c.onFind, counts, findings: result.findings } satisfies SecretFindingsExtra;
    const first = result.findings[0];
    if (first && c.onFind === 'block') {
      const n = result.findings.length;
      d.denied = {
        rule,
        status: 400,
        message: `found ${n === 1 ? 'a secret' : `${n} secrets`}: ${first.rule} in ${first.where} (${first.block} block)${n > 1 ? ' and more' : ''}; remove it from the conversation (gitleaks rule ids: ${Object.keys(counts).join(', ')})`,
      };
    } else if (result.body !== d.body) {
      d.replaceBody(result.body);
    }
    trace.detail = { on_find: c.onFind, findings: result.findings };
    return trace;
  },
});
