/**
 * `inject_cache`: add prompt-cache breakpoints (`cache_control`) where the client sent none, within
 * Anthropic's rules, so a stable tools + system prefix (20–30K tokens for Claude Code) is read from the cache
 * at a tenth of the price instead of paid in full every turn. It only ever fills free slots: it never moves,
 * removes or duplicates a breakpoint the client sent, and never reorders or merges `system` blocks.
 *
 * Anthropic's rules, from https://platform.claude.com/docs/en/build-with-claude/prompt-caching (as of
 * 2026-11):
 * - at most 4 breakpoints per request (a 5th is a 400); a top-level `cache_control` (automatic caching)
 *   takes one of the 4 slots;
 * - the cache prefix runs in prompt order: `tools`, then `system`, then `messages`;
 * - when TTLs are mixed, a longer-TTL (1h) breakpoint must not come after a shorter (5m) one;
 * - a prefix shorter than the model's minimum cacheable length is silently not cached
 *   ({@link MIN_CACHEABLE_TOKENS});
 * - `thinking` / `redacted_thinking` blocks and empty text blocks cannot carry `cache_control`.
 * Claude Code's first system block (text beginning `x-anthropic-billing-header:`) is recognised by the API
 * only by its exact position and text, so it is never touched.
 */
import { CHARS_PER_TOKEN } from '../rules/context.js';
import { copyArray, copyObject, elementBytes, elementSize, elementsHolding, type KeyOffsets, keyOffsets, memberKind, stringMemberBytes, textBlockOf, viewBytes, withAdded } from '../body/json-scan.js';
import { defineAction } from './types.js';

/** A place to put a breakpoint, as written in rule files. */
export type CachePlace = 'tools' | 'system' | 'last_user' | 'second_last_user' | { message: number };

/** Breakpoint lifetime: 5 minutes (default, 1.25× input price to write) or 1 hour (2×). */
export type CacheTtl = '5m' | '1h';

interface InjectCache {
  at: CachePlace[];
  ttl: CacheTtl;
  minTokens?: number;
}

/** What happened at one place, for dry-run (`cache_breakpoints`) and the debug log. */
export interface BreakpointReport {
  place: string;
  ttl: CacheTtl;
  status: 'injected' | 'skipped';
  reason?: string;
  /** Estimated tokens of the prompt prefix up to and including the marked block. */
  prefix_tokens?: number;
}

/**
 * Minimum cacheable prompt length per model, tokens, from the "Cache limitations" section of
 * https://platform.claude.com/docs/en/build-with-claude/prompt-caching (read 2026-11-24). First match wins;
 * models not listed use {@link DEFAULT_MIN_CACHEABLE_TOKENS}.
 */
export const MIN_CACHEABLE_TOKENS: ReadonlyArray<[pattern: RegExp, tokens: number]> = [
  [/^claude-(opus|fable|mythos)-5/, 512],
  [/^claude-mythos-preview/, 4096],
  [/^claude-opus-4-[56]/, 4096],
  [/^claude-haiku-4-5/, 4096],
  [/^claude-opus-4-7/, 2048],
  [/^claude-(3-5-haiku|3-haiku|haiku-3)/, 2048],
  [/^claude-(opus-4-8|sonnet-5|sonnet-4|opus-4|3-7-sonnet)/, 1024],
];

/** Minimum used for models the table does not know. */
export const DEFAULT_MIN_CACHEABLE_TOKENS = 1024;

/** The most breakpoints one request may carry (Anthropic's limit). */
export const MAX_BREAKPOINTS = 4;

/** The minimum cacheable prompt length of `model`, tokens. */
export function minCacheableTokens(model: string): number {
  for (const [re, tokens] of MIN_CACHEABLE_TOKENS) if (re.test(model)) return tokens;
  return DEFAULT_MIN_CACHEABLE_TOKENS;
}

const ATTRIBUTION_PREFIX = 'x-anthropic-billing-header:';

type Block = Record<string, unknown>;
type Message = { role?: unknown; content?: unknown };

/** A position in prompt order: section (0 tools, 1 system, 2 messages, 3 automatic), then indexes. */
type Position = [number, number, number];

const before = (a: Position, b: Position) => a[0] - b[0] || a[1] - b[1] || a[2] - b[2];

interface Breakpoint {
  pos: Position;
  ttl: CacheTtl;
}

function ttlOf(cc: unknown): CacheTtl {
  return (cc as { ttl?: unknown } | null)?.ttl === '1h' ? '1h' : '5m';
}

/** `"cache_control"` as it appears in JSON when it is a member name. */
const CACHE_CONTROL_KEY = Buffer.from('"cache_control"');

/**
 * Whether element `i` of `arr` may carry a `cache_control` member: false only when the client's bytes of the
 * element do not contain the name at all, so most blocks are ruled out without decoding them.
 */
function mayCarryMarker(arr: unknown[], i: number): boolean {
  return elementBytes(arr, i)?.includes(CACHE_CONTROL_KEY) ?? true;
}

/**
 * The indexes of `arr`'s elements that may carry a `cache_control` member: from where the body's scan found the
 * name (`k`) when it has it, else those whose bytes mention it; every index for anything else.
 */
function candidates(arr: unknown[], k: KeyOffsets | null): Iterable<number> {
  const held = k ? elementsHolding(arr, k) : null;
  if (held) return held;
  return Array.from({ length: arr.length }, (_, i) => i).filter((i) => mayCarryMarker(arr, i));
}

/** The breakpoints among the elements of `blocks` (tools, system blocks or content blocks), pushed at `pos(i)`. */
function markedElements(blocks: unknown, out: Breakpoint[], k: KeyOffsets | null, pos: (i: number) => Position): void {
  if (!Array.isArray(blocks)) return;
  for (const i of candidates(blocks, k)) {
    const cc = (blocks[i] as Block | null)?.cache_control;
    if (cc) out.push({ pos: pos(i), ttl: ttlOf(cc) });
  }
}

/** Every breakpoint the request already carries, in prompt order. */
export function existingBreakpoints(body: Record<string, unknown>): Breakpoint[] {
  const out: Breakpoint[] = [];
  // Where the scan saw `cache_control` (bodyKeys below): none at all, and no block is read.
  const k = keyOffsets(body, 'cache_control');
  if (k && k.at.length === 0) return out;
  markedElements(body.tools, out, k, (i) => [0, i, 0]);
  markedElements(body.system, out, k, (i) => [1, i, 0]);
  const messages = Array.isArray(body.messages) ? (body.messages as Message[]) : [];
  for (const i of candidates(messages, k)) markedElements(messages[i]?.content, out, k, (j) => [2, i, j]);
  if (body.cache_control) out.push({ pos: [3, 0, 0], ttl: ttlOf(body.cache_control) });
  return out;
}

/** The length of element `i` of `arr` as it appears in the prompt, without decoding it when it is unchanged. */
function elementLength(arr: unknown[], i: number): number {
  return elementSize(arr, i) ?? charLength(arr[i]);
}

/**
 * Length of a value as it appears in the prompt (text for text blocks, JSON otherwise), in characters — or in
 * bytes of the client's JSON for a part still undecoded (json-scan's views), so the check decodes no text.
 */
function charLength(v: unknown): number {
  if (typeof v === 'string') return v.length;
  const bytes = viewBytes(v);
  if (bytes !== null) return bytes;
  const b = v as Block | null;
  if (b && b.type === 'text' && typeof b.text === 'string') return b.text.length;
  return JSON.stringify(v)?.length ?? 0;
}

/** Estimated tokens of the prompt prefix up to and including the block at `pos`. */
function prefixTokens(body: Record<string, unknown>, pos: Position): number {
  let chars = 0;
  const tools = Array.isArray(body.tools) ? (body.tools as unknown[]) : [];
  const toolEnd = pos[0] === 0 ? pos[1] + 1 : tools.length;
  for (let i = 0; i < toolEnd; i++) chars += elementLength(tools, i);
  if (pos[0] >= 1) {
    // A string prompt is measured in the client's bytes when unread (never decoded: it may be megabytes).
    const systemBytes = stringMemberBytes(body, 'system');
    const system = systemBytes === null ? body.system : undefined;
    if (systemBytes !== null) chars += systemBytes;
    else if (typeof system === 'string') chars += system.length;
    else if (Array.isArray(system)) {
      const end = pos[0] === 1 ? pos[1] + 1 : system.length;
      for (let i = 0; i < end; i++) chars += elementLength(system, i);
    }
  }
  if (pos[0] === 2) {
    const messages = body.messages as Message[];
    for (let i = 0; i <= pos[1]; i++) {
      const bytes = stringMemberBytes(messages[i], 'content');
      if (bytes !== null) {
        chars += bytes;
        continue;
      }
      const content = messages[i]?.content;
      if (typeof content === 'string') chars += content.length;
      else if (Array.isArray(content)) {
        const end = i === pos[1] ? pos[2] + 1 : content.length;
        for (let j = 0; j < end; j++) chars += elementLength(content, j);
      }
    }
  }
  return Math.ceil(chars / CHARS_PER_TOKEN);
}

function placeName(p: CachePlace): string {
  return typeof p === 'string' ? p : `message[${p.message}]`;
}

/** Where a place points in this body, or why it points nowhere. */
function resolve(body: Record<string, unknown>, place: CachePlace): { pos: Position } | { missing: string } {
  if (place === 'tools') {
    const tools = body.tools;
    return Array.isArray(tools) && tools.length ? { pos: [0, tools.length - 1, 0] } : { missing: 'the request has no tools' };
  }
  if (place === 'system') {
    const system = body.system;
    if (typeof system === 'string') return system ? { pos: [1, 0, 0] } : { missing: 'the system prompt is empty' };
    return Array.isArray(system) && system.length ? { pos: [1, system.length - 1, 0] } : { missing: 'the request has no system prompt' };
  }
  const messages = Array.isArray(body.messages) ? (body.messages as Message[]) : [];
  let index: number;
  if (place === 'last_user' || place === 'second_last_user') {
    // From the end: the history before the turn looked for is never read.
    let skip = place === 'last_user' ? 0 : 1;
    let found: number | undefined;
    for (let i = messages.length - 1; i >= 0 && found === undefined; i--) if (messages[i]?.role === 'user' && skip-- === 0) found = i;
    if (found === undefined) return { missing: place === 'last_user' ? 'the request has no user turn' : 'the request has fewer than two user turns' };
    index = found;
  } else {
    index = place.message < 0 ? messages.length + place.message : place.message;
    if (index < 0 || index >= messages.length) return { missing: `there is no message ${place.message} (the request has ${messages.length})` };
  }
  const kind = memberKind(messages[index], 'content');
  if (kind === 'string') return { pos: [2, index, 0] };
  if (kind === 'empty-string') return { missing: 'the message is empty' };
  const content = messages[index]!.content;
  if (typeof content === 'string') return content ? { pos: [2, index, 0] } : { missing: 'the message is empty' };
  if (!Array.isArray(content) || content.length === 0) return { missing: 'the message has no content blocks' };
  return { pos: [2, index, content.length - 1] };
}

/** Whether a text block's `text` is a non-empty string (told from the client's bytes when the block is unread: no 40 KB decode). */
function nonEmptyText(b: Block): boolean {
  const kind = memberKind(b, 'text');
  if (kind !== null) return kind === 'string';
  return typeof b.text === 'string' && b.text !== '';
}

/** Why the block at `pos` cannot carry a marker, or null. */
function uncacheable(body: Record<string, unknown>, pos: Position): string | null {
  let block: unknown;
  if (pos[0] === 0) block = (body.tools as unknown[])[pos[1]];
  else if (pos[0] === 1) {
    block = typeof body.system === 'string' ? { type: 'text', text: body.system } : (body.system as unknown[])[pos[1]];
    const text = pos[1] === 0 ? (block as Block | undefined)?.text : undefined; // only the first block can be the attribution block
    if (typeof text === 'string' && text.startsWith(ATTRIBUTION_PREFIX)) {
      return "the only system block is Claude Code's attribution block, which must stay exactly as sent";
    }
  } else {
    const m = (body.messages as Message[])[pos[1]]!;
    // A non-empty string prompt (told from its bytes) is a text block the marker can go on, unmarked by definition.
    if (memberKind(m, 'content') === 'string') return null;
    const content = m.content;
    block = typeof content === 'string' ? { type: 'text', text: content } : (content as unknown[])[pos[2]];
  }
  const b = block as Block | null;
  if (!b || typeof b !== 'object') return 'the block is not an object';
  if (b.type === 'thinking' || b.type === 'redacted_thinking') return `a ${b.type} block cannot carry cache_control`;
  if (b.type === 'text' && !nonEmptyText(b)) return 'an empty text block cannot carry cache_control';
  if (b.cache_control) return 'already marked by the client';
  return null;
}

/** A copy of `body` with a marker on the block at `pos` (copy-on-write along the path only). */
function mark(body: Record<string, unknown>, pos: Position, ttl: CacheTtl): Record<string, unknown> {
  const cc = ttl === '1h' ? { type: 'ephemeral', ttl: '1h' } : { type: 'ephemeral' };
  // Copies over the client's bytes (json-scan): the marked block and the path to it change, nothing else is read.
  const out = copyObject(body);
  if (pos[0] === 0) {
    const tools = copyArray(body.tools as Block[]);
    tools[pos[1]] = withAdded(tools[pos[1]]!, 'cache_control', cc);
    out.tools = tools;
  } else if (pos[0] === 1) {
    // A string system prompt becomes one text block so it can carry the marker.
    const system = typeof body.system === 'string' ? [{ type: 'text', text: body.system }] : copyArray(body.system as Block[]);
    system[pos[1]] = withAdded(system[pos[1]]!, 'cache_control', cc);
    out.system = system;
  } else {
    const messages = copyArray(body.messages as Message[]);
    const m = messages[pos[1]]!;
    // A string prompt becomes one text block over the client's bytes of the string (not decoded, not re-encoded).
    const over = textBlockOf(m, 'content', { cache_control: cc });
    const content = over ? [over] : typeof m.content === 'string' ? [{ type: 'text', text: m.content }] : copyArray(m.content as Block[]);
    if (!over) content[pos[2]] = withAdded(content[pos[2]]!, 'cache_control', cc);
    messages[pos[1]] = withAdded(m as Record<string, unknown>, 'content', content) as Message;
    out.messages = messages;
  }
  return out;
}

/**
 * Injects breakpoints at `at` (earlier places win when slots run out) into `body`.
 * @returns the new body (=== `body` when nothing was injected) and what happened at each place.
 */
export function injectBreakpoints(
  body: Record<string, unknown>,
  opts: { at: CachePlace[]; ttl: CacheTtl; minTokens: number },
): { body: Record<string, unknown>; report: BreakpointReport[]; existing: number } {
  const marks = existingBreakpoints(body);
  const existing = marks.length;
  const report: BreakpointReport[] = [];
  let current = body;
  for (const place of opts.at) {
    const entry: BreakpointReport = { place: placeName(place), ttl: opts.ttl, status: 'skipped' };
    report.push(entry);
    const where = resolve(current, place);
    if ('missing' in where) {
      entry.reason = where.missing;
      continue;
    }
    const { pos } = where;
    const why = uncacheable(current, pos);
    if (why) {
      entry.reason = why;
      continue;
    }
    if (marks.length >= MAX_BREAKPOINTS) {
      entry.reason = `the request already has ${MAX_BREAKPOINTS} breakpoints, Anthropic's limit`;
      continue;
    }
    const conflict = marks.find((m) => (opts.ttl === '1h' ? m.ttl === '5m' && before(m.pos, pos) < 0 : m.ttl === '1h' && before(m.pos, pos) > 0));
    if (conflict) {
      entry.reason =
        opts.ttl === '1h' ? 'a 1h breakpoint may not come after a 5m one, and an earlier 5m breakpoint exists' : 'a 5m breakpoint may not come before a 1h one, and a later 1h breakpoint exists';
      continue;
    }
    const tokens = prefixTokens(current, pos);
    entry.prefix_tokens = tokens;
    if (tokens < opts.minTokens) {
      entry.reason = `the prefix is ~${tokens} tokens, below the model's minimum cacheable length of ${opts.minTokens}`;
      continue;
    }
    current = mark(current, pos, opts.ttl);
    marks.push({ pos, ttl: opts.ttl });
    entry.status = 'injected';
  }
  return { body: current, report, existing };
}

export const injectCache = defineAction<InjectCache>({
  name: 'inject_cache',
  schema: {
    type: 'object',
    additionalProperties: false,
    description: "Add prompt-cache breakpoints (cache_control) where the client sent none, within Anthropic's limit of 4 per request.",
    properties: {
      at: {
        type: 'array',
        minItems: 1,
        description: 'Places to mark, in priority order (earlier places win when slots run out). Default: [tools, system, last_user].',
        items: {
          description: 'tools (last tool definition), system (last system block), last_user / second_last_user (last content block of that user turn), or {message: N} (index, negative from the end).',
          anyOf: [
            { enum: ['tools', 'system', 'last_user', 'second_last_user'], description: 'tools, system, last_user or second_last_user' },
            {
              type: 'object',
              additionalProperties: false,
              required: ['message'],
              description: 'a map {message: N}',
              properties: { message: { type: 'integer', description: 'Message index; negative counts from the end (-1 is the last message).' } },
            },
          ],
        },
      },
      ttl: { enum: ['5m', '1h'], description: 'Breakpoint lifetime: 5m (default; writes cost 1.25× input) or 1h (writes cost 2× input).' },
      min_tokens: { type: 'integer', minimum: 1, description: "Override of the model's minimum cacheable prefix length, tokens (default: per-model table)." },
    },
  },
  compile(params) {
    const p = (params ?? {}) as { at?: CachePlace[]; ttl?: CacheTtl; min_tokens?: number };
    return { at: p.at ?? ['tools', 'system', 'last_user'], ttl: p.ttl ?? '5m', minTokens: p.min_tokens };
  },
  settings: () => [{ setting: 'cache', always: true }],
  bodyKeys: ['cache_control'],
  apply(c, rc, d, rule) {
    return d.claim('inject_cache', rule, [
      [
        'cache',
        () => {
          const minTokens = c.minTokens ?? minCacheableTokens(d.route.model ?? rc.model);
          const { body, report, existing } = injectBreakpoints(d.body, { at: c.at, ttl: c.ttl, minTokens });
          if (body !== d.body) d.replaceBody(body);
          d.extra.cache_breakpoints = { rule, existing, min_tokens: minTokens, places: report };
        },
      ],
    ]);
  },
});
