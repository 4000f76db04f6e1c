/**
 * One pass over a request body's bytes that checks it is a JSON object, measures its nesting depth and
 * finds where each top-level member's value lies — without decoding it. Decoding is the expensive part of
 * a Claude Code body: 76 KB holding a few characters beyond Latin-1 (an em dash, a check mark) take ~0.8 ms
 * to turn into a JavaScript string on Node 20, ten times JSON.parse itself. Strings are jumped over with
 * `indexOf`, so the scan costs ~10–20 µs. Values are then decoded one member at a time, only when something
 * reads them ({@link lazyBody}).
 *
 * What the scan checks: the JSON grammar outside strings (structure, commas, colons, numbers, literals) and
 * the escapes inside strings. What it leaves to JSON.parse when a member is decoded: raw control characters
 * inside strings (RFC 8259 §7), which the upstream rejects as well.
 */
import { InvalidRequestError } from '../errors.js';

/** Byte offsets of a value: `[start, end)`. */
export interface Span {
  start: number;
  end: number;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/** Thrown inside the scanner; turned into an {@link InvalidRequestError} at the top. */
class ScanError extends Error {
  constructor(
    readonly at: number,
    what: string,
  ) {
    super(what);
  }
}

/** Bytes of a string looked through byte by byte before {@link Scanner.string} calls indexOf. */
const SHORT_STRING = 24;

const isWs = (c: number | undefined) => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
const isDigit = (c: number | undefined) => c !== undefined && c >= 0x30 && c <= 0x39;
const HEX = /^[0-9a-fA-F]{4}$/;

/** The members or elements of one object or array. */
type Children = { members?: Map<string, Span>; elements?: readonly Span[] };

/**
 * Containers nested at most this deep (the body is depth 1) have their children recorded by the first scan:
 * `tools`, `system` and `messages`, each tool, message and content array — what rules and actions walk —
 * so reading them later does not scan their bytes again (each level would otherwise re-scan what it holds).
 */
const RECORD_DEPTH = 2;

class Scanner {
  depth = 0;
  /** Children of containers at depth 2..RECORD_DEPTH by start offset, when recording. */
  record: Map<number, Children> | null = null;
  /** Member names (and their quoted bytes) whose every occurrence is recorded in `found`, at any depth. */
  watch: ReadonlyArray<{ name: string; quoted: Buffer }> = [];
  /** Offsets of the watched member names (their opening quote), by name, in order. */
  found: Map<string, number[]> | null = null;
  /** The next backslash at or after the scan position (-1: none left), searched again only once passed. */
  private bs: number;
  /**
   * @param from where scanning starts (the backslash cursor starts there too).
   * @param end where the scanned value ends: a scan of one part of the body looks for backslashes only within it.
   */
  constructor(
    readonly b: Uint8Array,
    readonly maxDepth: number,
    from = 0,
    private readonly end = b.length,
  ) {
    this.bs = this.find(BACKSLASH, from);
  }

  /** The first byte `c` at or after `j` and before `end`, or -1. */
  private find(c: number, j: number): number {
    if (this.end === this.b.length) return this.b.indexOf(c, j);
    const k = this.b.subarray(j, this.end).indexOf(c);
    return k < 0 ? -1 : j + k;
  }

  /** The first backslash at or after `j`, or -1: one pass over the body in all, not one per string. */
  private backslash(j: number): number {
    if (this.bs !== -1 && this.bs < j) this.bs = this.find(BACKSLASH, j);
    return this.bs;
  }

  ws(i: number): number {
    while (isWs(this.b[i])) i++;
    return i;
  }

  /** End of the string starting at `i` (a quote), just past its closing quote; escapes are checked. */
  string(i: number): number {
    const b = this.b;
    let j = i + 1;
    // A short string without escapes (most member names and values) ends within a few bytes read here: cheaper
    // than a call to indexOf. A backslash or a longer string goes the indexOf way below.
    for (const stop = Math.min(b.length, j + SHORT_STRING); j < stop; j++) {
      const c = b[j];
      if (c === QUOTE) return j + 1;
      if (c === BACKSLASH) break;
    }
    let q = -1; // the next quote at or after j, reused while escapes come before it
    for (;;) {
      if (q < j) {
        q = b.indexOf(QUOTE, j);
        if (q < 0) throw new ScanError(i, 'unterminated string');
      }
      const k = this.backslash(j);
      if (k < 0 || k > q) return q + 1;
      const e = b[k + 1];
      if (e === 0x75) {
        if (!HEX.test(String.fromCharCode(b[k + 2] ?? 0, b[k + 3] ?? 0, b[k + 4] ?? 0, b[k + 5] ?? 0))) throw new ScanError(k, 'bad \\u escape');
        j = k + 6;
      } else if (e === QUOTE || e === BACKSLASH || e === 0x2f || e === 0x62 || e === 0x66 || e === 0x6e || e === 0x72 || e === 0x74) {
        j = k + 2;
      } else throw new ScanError(k, 'bad escape');
    }
  }

  /**
   * Records the member name at `[start, end)` (quotes included) when it is watched. A name written with escapes
   * (`"cache\u005fcontrol"`) is longer than its plain form, up to six bytes a character: such a name is decoded.
   */
  private note(start: number, end: number): void {
    const b = this.b;
    const len = end - start;
    for (const { name, quoted } of this.watch) {
      const hit = len === quoted.length ? quoted.compare(b, start, end) === 0 : len > quoted.length && len <= 6 * quoted.length && decodeKey(b, start, end) === name;
      if (hit) this.found!.get(name)!.push(start);
    }
  }

  number(i: number): number {
    const b = this.b;
    let j = i;
    if (b[j] === 0x2d) j++;
    if (b[j] === 0x30) j++;
    else if (isDigit(b[j])) while (isDigit(b[j])) j++;
    else throw new ScanError(i, 'bad number');
    if (b[j] === 0x2e) {
      j++;
      if (!isDigit(b[j])) throw new ScanError(j, 'bad number');
      while (isDigit(b[j])) j++;
    }
    if (b[j] === 0x65 || b[j] === 0x45) {
      j++;
      if (b[j] === 0x2b || b[j] === 0x2d) j++;
      if (!isDigit(b[j])) throw new ScanError(j, 'bad number');
      while (isDigit(b[j])) j++;
    }
    return j;
  }

  literal(i: number, word: string): number {
    for (let k = 0; k < word.length; k++) if (this.b[i + k] !== word.charCodeAt(k)) throw new ScanError(i, 'unexpected token');
    return i + word.length;
  }

  /** End of the value starting at `i` (no leading whitespace); members of a top-level object go to `members`. */
  value(i: number, members?: Map<string, Span>): number {
    const c = this.b[i];
    if (c === QUOTE) return this.string(i);
    if ((c === 0x7b || c === 0x5b) && this.record && !members && this.depth < RECORD_DEPTH) {
      const members = c === 0x7b ? new Map<string, Span>() : undefined;
      const elements = members ? undefined : ([] as Span[]);
      this.record.set(i, { members, elements });
      return this.container(i, c === 0x7b ? 0x7d : 0x5d, members, elements);
    }
    if (c === 0x7b) return this.container(i, 0x7d, members);
    if (c === 0x5b) return this.container(i, 0x5d);
    if (c === 0x74) return this.literal(i, 'true');
    if (c === 0x66) return this.literal(i, 'false');
    if (c === 0x6e) return this.literal(i, 'null');
    if (c === 0x2d || isDigit(c)) return this.number(i);
    throw new ScanError(i, c === undefined ? 'unexpected end' : 'unexpected token');
  }

  container(i: number, close: number, members?: Map<string, Span>, elements?: Span[]): number {
    if (++this.depth > this.maxDepth) throw new ScanError(i, 'too deep');
    const b = this.b;
    const object = close === 0x7d;
    let j = this.ws(i + 1);
    if (b[j] === close) {
      this.depth--;
      return j + 1;
    }
    for (;;) {
      let keyStart = 0;
      let keyEnd = 0;
      if (object) {
        if (b[j] !== QUOTE) throw new ScanError(j, 'expected a member name');
        keyStart = j;
        keyEnd = this.string(j);
        if (this.watch.length) this.note(keyStart, keyEnd);
        j = this.ws(keyEnd);
        if (b[j] !== 0x3a) throw new ScanError(j, "expected ':'");
        j = this.ws(j + 1);
      }
      const start = j;
      j = this.value(j);
      if (members) members.set(decodeKey(b, keyStart, keyEnd), { start, end: j });
      else if (elements) elements.push({ start, end: j });
      j = this.ws(j);
      if (b[j] === 0x2c) {
        j = this.ws(j + 1);
        continue;
      }
      if (b[j] === close) {
        this.depth--;
        return j + 1;
      }
      throw new ScanError(j, b[j] === undefined ? 'unexpected end' : `expected ',' or '${String.fromCharCode(close)}'`);
    }
  }
}

/** A member name (short): decoded, escapes included, by JSON.parse when it has any, else directly. */
function decodeKey(b: Uint8Array, start: number, end: number): string {
  const raw = b as Buffer;
  for (let i = start + 1; i < end - 1; i++) if (b[i] === BACKSLASH) return JSON.parse(raw.toString('utf8', start, end)) as string;
  return raw.toString('utf8', start + 1, end - 1);
}

/** A scanned body: its bytes and where each top-level member's value is. */
export interface ScannedBody {
  raw: Buffer;
  /** Top-level members in order (a repeated name: the last one, as JSON.parse). */
  members: Map<string, Span>;
  /** Children of the shallow containers by start offset ({@link RECORD_DEPTH}). */
  index: Map<number, Children>;
  /** Where each watched member name occurs at any depth (offsets of its opening quote, in order; see {@link keyOffsets}). */
  keys: Map<string, number[]>;
}

/**
 * Checks that `raw` is one JSON object nested at most `maxDepth` deep and finds its members.
 * @param watch member names whose every occurrence, at any depth, is recorded ({@link keyOffsets}).
 * @throws InvalidRequestError (400) naming what is wrong and where (byte offset), or the depth limit.
 */
export function scanJsonObject(raw: Buffer, maxDepth: number, watch: readonly string[] = []): ScannedBody {
  const s = new Scanner(raw, maxDepth);
  const members = new Map<string, Span>();
  const index = (s.record = new Map());
  const keys = (s.found = new Map<string, number[]>(watch.map((k) => [k, []])));
  s.watch = watch.map((name) => ({ name, quoted: Buffer.from(JSON.stringify(name)) }));
  try {
    let i = s.ws(0);
    if (raw[i] !== 0x7b) throw new ScanError(i, raw[i] === undefined ? 'empty body' : 'not an object');
    i = s.ws(s.value(i, members));
    if (i !== raw.length) throw new ScanError(i, 'unexpected data after the object');
  } catch (err) {
    if (!(err instanceof ScanError)) throw err;
    if (err.message === 'too deep') throw new InvalidRequestError(`request body nests arrays and objects deeper than ${maxDepth} levels (limits.max_json_depth in the gateway config)`);
    if (err.message === 'not an object' || err.message === 'empty body') throw new InvalidRequestError('request body must be a JSON object');
    throw new InvalidRequestError(`request body is not valid JSON: ${err.message} at byte ${err.at}`);
  }
  return { raw, members, index, keys };
}

/** The key under which a lazy view answers with its {@link View} (hidden, non-enumerable). */
const VIEW = Symbol('switchyard.view');

/** A member or element not decoded yet (its bytes are still the client's). */
const UNREAD: unique symbol = Symbol('switchyard.unread');

/** Member names up to this many are looked up by a linear search; more get a Map on first lookup. */
const LINEAR_NAMES = 12;

/**
 * One lazy view: where its bytes are, its members or elements (decoded on first read and kept), whether it changed —
 * and the Proxy handler of the view, so that opening a view allocates this object, its value array and the Proxy,
 * not a closure per trap.
 */
class View implements ProxyHandler<object> {
  /** Set when a member or element was assigned: the bytes no longer describe the value. */
  dirty: boolean;
  /** Per member or element, in order: its value, or {@link UNREAD} while its bytes are as the client sent them. */
  readonly values: unknown[];
  private position: Map<string, number> | null = null;

  constructor(
    readonly raw: Buffer,
    readonly span: Span,
    /** Only on objects: the member names in order (null on arrays). */
    readonly names: readonly string[] | null,
    /** Where each member or element is (null: a member added by {@link withAdded}). */
    readonly spans: readonly (Span | null)[],
    private readonly where: string,
    /** Only on the top-level body: its scan. */
    readonly scanned: ScannedBody | undefined,
    /** The view holding this one: changing a part changes every whole it is in. */
    readonly parent: View | undefined,
    /** The scan's record of shallow containers' children, shared by every view of one body. */
    readonly index: Map<number, Children> | undefined,
  ) {
    this.values = new Array<unknown>(spans.length).fill(UNREAD);
    this.dirty = false;
  }

  /** Only on arrays: where each element is. */
  get elements(): readonly Span[] | undefined {
    return this.names ? undefined : (this.spans as readonly Span[]);
  }

  /** True once member or element `i` was read or assigned (its client bytes may no longer be reused as they are). */
  touched(i: number): boolean {
    return this.values[i] !== UNREAD;
  }

  /** The index of a member name or an array index, or -1. */
  at(key: string | symbol): number {
    if (typeof key !== 'string') return -1;
    const names = this.names;
    if (names) {
      if (names.length <= LINEAR_NAMES) return names.indexOf(key);
      this.position ??= new Map(names.map((name, i) => [name, i]));
      return this.position.get(key) ?? -1;
    }
    const i = key.length > 0 && key.length < 11 && /^(0|[1-9]\d*)$/.test(key) ? Number(key) : -1;
    return i < this.spans.length ? i : -1;
  }

  read(i: number): unknown {
    let v = this.values[i];
    if (v === UNREAD) v = this.values[i] = lazyValue(this.raw, this.spans[i]!, `${this.where}.${this.names ? this.names[i] : i}`, this);
    return v;
  }

  /** Assignment is the only change a view takes; it marks every view holding it dirty (their bytes are stale). */
  write(i: number, v: unknown): void {
    this.values[i] = v;
    for (let p: View | undefined = this; p; p = p.parent) p.dirty = true;
  }

  get(t: object, key: string | symbol, receiver: unknown): unknown {
    if (key === VIEW) return this;
    const i = this.at(key);
    return i >= 0 ? this.read(i) : Reflect.get(t, key, receiver);
  }

  /** Members cannot be added, deleted or redefined (false: a TypeError in strict code), only assigned. */
  set(_t: object, key: string | symbol, v: unknown): boolean {
    const i = this.at(key);
    if (i < 0) return false;
    this.write(i, v);
    return true;
  }

  has(t: object, key: string | symbol): boolean {
    return key === VIEW || this.at(key) >= 0 || Reflect.has(t, key);
  }

  ownKeys(t: object): (string | symbol)[] {
    return this.names ? [...this.names] : [...Array.from({ length: this.spans.length }, (_, i) => String(i)), ...Reflect.ownKeys(t)];
  }

  getOwnPropertyDescriptor(t: object, key: string | symbol): PropertyDescriptor | undefined {
    const i = this.at(key);
    // An accessor, so that listing the keys (Object.keys, a spread's enumeration) decodes nothing.
    if (i >= 0) return { get: () => this.read(i), set: (v: unknown) => this.write(i, v), enumerable: true, configurable: true };
    return Reflect.getOwnPropertyDescriptor(t, key);
  }

  defineProperty(): boolean {
    return false;
  }

  deleteProperty(): boolean {
    return false;
  }

  /** A new view over the same bytes, names and spans (assigning to it changes only it), with `added` set on it. */
  copy(added?: { name: string; value: unknown }): unknown {
    return viewProxy(this.raw, this.span, this.names, this.spans, 'body', undefined, undefined, this.index, added);
  }
}

/**
 * The children of an object or array span, found by scanning it (strings jumped over). The children of the
 * containers among them go into `index` on the way, so opening one of those (a message's `content`) scans nothing
 * again.
 */
function childrenOf(raw: Buffer, span: Span, index: Map<number, Children> | undefined): Children {
  const s = new Scanner(raw, Infinity, span.start, span.end);
  if (index) s.record = index;
  if (raw[span.start] === 0x7b) {
    const members = new Map<string, Span>();
    s.container(span.start, 0x7d, members);
    return { members };
  }
  const elements: Span[] = [];
  s.container(span.start, 0x5d, undefined, elements);
  return { elements };
}

/**
 * The value at `span` of `raw`, decoded as little as possible: an object or array becomes a lazy view whose
 * members or elements are decoded on first read (and kept); a string, number or literal is decoded at once.
 * @throws InvalidRequestError when JSON.parse rejects a slice (a control character inside a string).
 */
function lazyValue(raw: Buffer, span: Span, where: string, parent?: View): unknown {
  const c = raw[span.start];
  if (c === 0x7b || c === 0x5b) return lazyContainer(raw, span, parent?.index?.get(span.start) ?? childrenOf(raw, span, parent?.index), where, undefined, parent);
  try {
    return JSON.parse(raw.toString('utf8', span.start, span.end));
  } catch (err) {
    throw new InvalidRequestError(`request body is not valid JSON in ${where}: ${(err as Error).message}`, err);
  }
}

/** A lazy view of the object or array at `span` whose children the scan found. */
function lazyContainer(raw: Buffer, span: Span, children: Children, where: string, scanned?: ScannedBody, parent?: View, index = scanned?.index ?? parent?.index): unknown {
  const members = children.members;
  return viewProxy(raw, span, members ? [...members.keys()] : null, members ? [...members.values()] : children.elements!, where, scanned, parent, index);
}

/**
 * A lazy view: a Proxy over an empty object or array, a {@link View} its handler. `added`: a member set on a copy
 * ({@link withAdded}) — it has no bytes of its own: it is last, or replaces one of the same name.
 */
function viewProxy(
  raw: Buffer,
  span: Span,
  names: readonly string[] | null,
  spans: readonly (Span | null)[],
  where: string,
  scanned: ScannedBody | undefined,
  parent: View | undefined,
  index: Map<number, Children> | undefined,
  added?: { name: string; value: unknown },
): unknown {
  let addedAt = -1;
  if (added && names) {
    addedAt = names.indexOf(added.name);
    if (addedAt < 0) {
      addedAt = names.length;
      names = [...names, added.name];
      spans = [...spans, null];
    }
  }
  const view = new View(raw, span, names, spans, where, scanned, parent, index);
  if (addedAt >= 0) {
    view.values[addedAt] = added!.value;
    view.dirty = true;
  }
  const target: Record<string, unknown> | unknown[] = names ? {} : [];
  if (!names) (target as unknown[]).length = spans.length;
  return new Proxy(target, view);
}

/**
 * The body as a plain-looking object decoded only as far as it is read: objects and arrays at every depth
 * are views whose members are decoded on first access (getters that keep the result), strings and numbers
 * when reached. Reading `model` or `stream` costs microseconds; walking every message's `role` decodes no
 * text; spreading or serializing decodes everything. Enumerable like JSON.parse's result, in the same order.
 * @throws InvalidRequestError (400) from a getter whose slice JSON.parse rejects (a control character in a string).
 */
export function lazyBody(scanned: ScannedBody): Record<string, unknown> {
  return lazyContainer(scanned.raw, { start: 0, end: scanned.raw.length }, { members: scanned.members }, 'body', scanned) as Record<string, unknown>;
}

function viewOf(v: unknown): View | null {
  return v !== null && typeof v === 'object' ? ((v as { [VIEW]?: View })[VIEW] ?? null) : null;
}

/** The bytes and spans behind a body made by {@link lazyBody}, or null for any other object. */
export function scannedOf(body: Record<string, unknown>): ScannedBody | null {
  return viewOf(body)?.scanned ?? null;
}

/**
 * A plain copy of a JSON value (`JSON.parse(JSON.stringify(v))`): an unchanged lazy view is parsed from its
 * bytes at once instead of being walked member by member through its Proxy.
 */
export function plainCopy(v: unknown): unknown {
  const info = viewOf(v);
  if (info && !info.dirty) return JSON.parse(info.raw.toString('utf8', info.span.start, info.span.end));
  return v === undefined ? undefined : JSON.parse(JSON.stringify(v));
}

/**
 * Bytes the value occupies in the client's body when it is an unchanged lazy view (the cacheable-length
 * check measures the prompt this way, without decoding text); null for anything else.
 */
export function viewBytes(v: unknown): number | null {
  const info = viewOf(v);
  return info && !info.dirty ? info.span.end - info.span.start : null;
}

/**
 * The client's bytes of `v` (a subarray, not a copy) when it is an unchanged lazy view — a whole `tools` array, say —
 * else null, without decoding anything.
 */
export function valueBytes(v: unknown): Buffer | null {
  const info = viewOf(v);
  return info && !info.dirty ? info.raw.subarray(info.span.start, info.span.end) : null;
}

/**
 * The client's bytes of element `i` of `arr` (a subarray, not a copy) when `arr` is an unchanged lazy view, else
 * null — without decoding the element or making a view of it. A caller that only needs an element's size, or
 * whether it mentions a member name at all (`bytes.includes('"cache_control"')`), asks this first and reads the
 * element only when it must.
 */
export function elementBytes(arr: unknown, i: number): Buffer | null {
  const info = viewOf(arr);
  const sp = info && !info.dirty ? info.elements?.[i] : undefined;
  return sp ? info!.raw.subarray(sp.start, sp.end) : null;
}

/** The byte length of element `i` of `arr` as the client sent it when `arr` is an unchanged lazy view, else null (nothing is read). */
export function elementSize(arr: unknown, i: number): number | null {
  const info = viewOf(arr);
  const sp = info && !info.dirty ? info.elements?.[i] : undefined;
  return sp ? sp.end - sp.start : null;
}

/**
 * What member `name` of `obj` is, read from the client's bytes without decoding it, when `obj` is an unchanged lazy
 * object: `'absent'`, `'empty-string'` (`""`), `'string'` (any other string) or `'other'`; null for anything else.
 * inject_cache asks whether a block's text is a non-empty string without decoding a 40 KB text.
 */
export function memberKind(obj: unknown, name: string): 'absent' | 'empty-string' | 'string' | 'other' | null {
  const info = cleanObject(obj);
  if (!info) return null;
  const i = info.at(name);
  if (i < 0) return 'absent';
  const sp = info.spans[i];
  if (!sp || info.touched(i)) return null;
  if (info.raw[sp.start] !== 0x22) return 'other';
  return sp.end - sp.start === 2 ? 'empty-string' : 'string';
}

/**
 * The bytes string member `name` of `obj` occupies in the client's body (quotes included), read without
 * decoding it, when `obj` is an unchanged lazy object and the member an unread string; null otherwise.
 */
export function stringMemberBytes(obj: unknown, name: string): number | null {
  const info = cleanObject(obj);
  const i = info ? info.at(name) : -1;
  const sp = i >= 0 ? info!.spans[i] : null;
  return sp && !info!.touched(i) && info!.raw[sp.start] === 0x22 ? sp.end - sp.start : null;
}

/**
 * `{ type: "text", text: obj[name], ...extra }` for an unread string member `name` of an unchanged lazy object,
 * as a view whose `text` is the client's bytes of that string: never decoded, and serialized by copying those
 * bytes — so marking a 31 MB string prompt as a text block costs the marker, not two more copies of the prompt.
 * Null when `obj` is not such an object (the caller builds the block from the decoded string).
 */
export function textBlockOf(obj: unknown, name: string, extra: Record<string, unknown>): Record<string, unknown> | null {
  const info = cleanObject(obj);
  const i = info ? info.at(name) : -1;
  const sp = i >= 0 ? info!.spans[i] : null;
  if (!sp || info!.touched(i) || info!.raw[sp.start] !== 0x22) return null;
  const extraNames = Object.keys(extra);
  const view = new View(info!.raw, sp, ['type', 'text', ...extraNames], [null, sp, ...extraNames.map(() => null)], `${name}`, undefined, undefined, info!.index);
  view.values[0] = 'text';
  extraNames.forEach((n, j) => {
    view.values[2 + j] = extra[n];
  });
  view.dirty = true;
  return new Proxy({}, view) as Record<string, unknown>;
}

/**
 * The number of elements of the array member `name` of `body` (0 when absent or not an array), read from the
 * scan when `body` is an unchanged lazy view — without making a view of the array.
 */
export function memberLength(body: Record<string, unknown>, name: string): number {
  const info = viewOf(body);
  const span = info && !info.dirty ? info.scanned?.members.get(name) : undefined;
  const recorded = span ? info!.index?.get(span.start)?.elements : undefined;
  if (recorded) return recorded.length;
  const v = body[name];
  return Array.isArray(v) ? v.length : 0;
}

/**
 * A shallow copy of `arr` for copy-on-write edits: when `arr` is an unchanged lazy view, a new view over the same
 * bytes (elements decoded only when read; assigning one marks only the copy changed), else `[...arr]`. Copying
 * Claude Code's two dozen tools to mark the last one thus decodes one tool, not all of them.
 */
export function copyArray<T>(arr: T[]): T[] {
  const info = viewOf(arr);
  if (!info || info.dirty || !info.elements) return [...arr];
  return info.copy() as T[];
}

/** Where a watched member name occurs in a body's bytes: offsets of its opening quote, in order. */
export interface KeyOffsets {
  raw: Buffer;
  at: readonly number[];
}

/**
 * Where member `name` occurs at any depth of `body`, when `body` is an unchanged lazy body whose scan watched
 * `name` ({@link scanJsonObject}); null otherwise (then the caller looks through the body itself).
 */
export function keyOffsets(body: Record<string, unknown>, name: string): KeyOffsets | null {
  const info = viewOf(body);
  const at = info && !info.dirty ? info.scanned?.keys.get(name) : undefined;
  return at ? { raw: info!.raw, at } : null;
}

/**
 * The indexes of the elements of `arr` whose bytes hold one of `k`'s offsets, when `arr` is an unchanged lazy view
 * of the same body; null otherwise. With {@link keyOffsets}: the blocks that mention a member name, found without
 * reading any block.
 */
export function elementsHolding(arr: unknown, k: KeyOffsets): number[] | null {
  const info = viewOf(arr);
  if (!info || info.dirty || !info.elements || info.raw !== k.raw) return null;
  const out: number[] = [];
  const { at } = k;
  let j = 0;
  for (let i = 0; i < info.elements.length && j < at.length; i++) {
    const sp = info.elements[i]!;
    while (j < at.length && at[j]! < sp.start) j++;
    if (j < at.length && at[j]! < sp.end) out.push(i);
  }
  return out;
}

/** The view of an unchanged lazy object, or null. */
function cleanObject(v: unknown): View | null {
  const info = viewOf(v);
  return info && !info.dirty && info.names ? info : null;
}

/**
 * A shallow copy of `obj` for copy-on-write edits (`{ ...obj }`): when `obj` is an unchanged lazy object, a new view
 * over the same bytes (members decoded only when read; assigning one marks only the copy changed, and serializing
 * it copies the client's bytes of every member never read nor assigned), else a spread.
 */
export function copyObject<T extends Record<string, unknown>>(obj: T): T {
  const info = cleanObject(obj);
  return info ? (info.copy() as T) : { ...obj };
}

/**
 * `{ ...obj, [name]: value }`: when `obj` is an unchanged lazy object, a view over the same bytes with the member
 * added last (or replacing one of that name), so serializing it copies every other member's bytes as sent — a
 * `cache_control` added to a 40 KB text block costs its own few bytes, not the block's.
 */
export function withAdded<T extends Record<string, unknown>>(obj: T, name: string, value: unknown): T {
  const info = cleanObject(obj);
  return info ? (info.copy({ name, value }) as T) : { ...obj, [name]: value };
}

/**
 * The body's bytes with top-level member `name` set to `value`: the member's value bytes are replaced (or the
 * member appended) and every other byte stays as the client sent it — the body parses to exactly
 * `{ ...JSON.parse(raw), [name]: value }`.
 */
export function withMember(scanned: ScannedBody, name: string, value: unknown): Buffer {
  const json = Buffer.from(JSON.stringify(value));
  const span = scanned.members.get(name);
  const { raw } = scanned;
  if (span) return Buffer.concat([raw.subarray(0, span.start), json, raw.subarray(span.end)]);
  const close = raw.lastIndexOf(0x7d);
  const sep = scanned.members.size ? ',' : '';
  return Buffer.concat([raw.subarray(0, close), Buffer.from(`${sep}${JSON.stringify(name)}:`), json, raw.subarray(close)]);
}

/** Unchanged parts up to this many bytes are copied as text by {@link serializeBody}, longer ones as buffers. */
const SHORT_PART = 256;

/**
 * Serializes `body` reusing the client's bytes for every part that is still an unchanged lazy view: actions
 * copy on write along the path they edit, so an edit deep in the history (a `cache_control` on the last user
 * block) re-serializes that path only and copies the rest as the client sent it. Parses to exactly
 * `JSON.parse(JSON.stringify(body))`.
 * @param _original the request's own lazy body (unused: views carry their bytes; kept for call sites' clarity).
 */
export function serializeBody(body: Record<string, unknown>, _original?: Record<string, unknown> | null): Buffer {
  const parts: Buffer[] = [];
  let text = '';
  const flush = () => {
    if (text) parts.push(Buffer.from(text));
    text = '';
  };
  // The client's bytes of an unchanged part: a short one joins the text (a Buffer per `"model":"…"` costs more).
  const bytes = (raw: Buffer, sp: Span): void => {
    if (sp.end - sp.start <= SHORT_PART) text += raw.toString('utf8', sp.start, sp.end);
    else {
      flush();
      parts.push(raw.subarray(sp.start, sp.end));
    }
  };
  const write = (v: unknown): void => {
    const info = viewOf(v);
    if (info && !info.dirty) {
      bytes(info.raw, info.span);
      return;
    }
    if (v === null || typeof v !== 'object' || typeof (v as { toJSON?: unknown }).toJSON === 'function') {
      text += JSON.stringify(v) ?? 'null';
      return;
    }
    if (Array.isArray(v)) {
      text += '[';
      for (let i = 0; i < v.length; i++) {
        if (i) text += ',';
        // Elements of a changed view never read nor assigned: their bytes as the client sent them, a run of them
        // in one piece (with the client's separators between them).
        const sp = info && !info.touched(i) ? info.elements?.[i] : undefined;
        if (sp) {
          let last = i;
          while (last + 1 < v.length && !info!.touched(last + 1)) last++;
          bytes(info!.raw, last === i ? sp : { start: sp.start, end: info!.elements![last]!.end });
          i = last;
          continue;
        }
        const e = v[i];
        if (e === undefined || typeof e === 'function' || typeof e === 'symbol') text += 'null';
        else write(e);
      }
      text += ']';
      return;
    }
    text += '{';
    let first = true;
    if (info?.names) {
      // A changed view: members never read nor assigned go as the client's bytes, the rest serialized.
      const { names, spans } = info;
      for (let i = 0; i < names.length; i++) {
        const sp = info.touched(i) ? null : spans[i];
        const e = sp ? undefined : (v as Record<string, unknown>)[names[i]!];
        if (!sp && (e === undefined || typeof e === 'function' || typeof e === 'symbol')) continue;
        text += `${first ? '' : ','}${JSON.stringify(names[i])}:`;
        first = false;
        if (sp) {
          bytes(info.raw, sp);
        } else write(e);
      }
      text += '}';
      return;
    }
    for (const [k, e] of Object.entries(v)) {
      if (e === undefined || typeof e === 'function' || typeof e === 'symbol') continue;
      text += `${first ? '' : ','}${JSON.stringify(k)}:`;
      first = false;
      write(e);
    }
    text += '}';
  };
  write(body);
  flush();
  return Buffer.concat(parts);
}
