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

const isWs = (c: number | undefined) => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
const isDigit = (c: number | undefined) => c !== undefined && c >= 0x30 && c <= 0x39;
const HEX = /^[0-9a-fA-F]{4}$/;

class Scanner {
  depth = 0;
  /** The next backslash at or after the scan position (-1: none left), searched again only once passed. */
  private bs: number;
  constructor(
    readonly b: Uint8Array,
    readonly maxDepth: number,
  ) {
    this.bs = b.indexOf(BACKSLASH);
  }

  /** The first backslash at or after `j`, or -1: one pass over the body in all, not one per string. */
  private backslash(j: number): number {
    if (this.bs !== -1 && this.bs < j) this.bs = this.b.indexOf(BACKSLASH, j);
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
    if (c === 0x7b) return this.container(i, 0x7d, members);
    if (c === 0x5b) return this.container(i, 0x5d);
    if (c === 0x74) return this.literal(i, 'true');
    if (c === 0x66) return this.literal(i, 'false');
    if (c === 0x6e) return this.literal(i, 'null');
    if (c === 0x2d || isDigit(c)) return this.number(i);
    throw new ScanError(i, c === undefined ? 'unexpected end' : 'unexpected token');
  }

  container(i: number, close: number, members?: Map<string, Span>): number {
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
        j = this.ws(keyEnd);
        if (b[j] !== 0x3a) throw new ScanError(j, "expected ':'");
        j = this.ws(j + 1);
      }
      const start = j;
      j = this.value(j);
      if (members) members.set(decodeKey(b, keyStart, keyEnd), { start, end: j });
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
  const raw = Buffer.from(b.buffer, b.byteOffset + start + 1, end - start - 2);
  return raw.includes(BACKSLASH) ? (JSON.parse(`"${raw.toString('utf8')}"`) as string) : raw.toString('utf8');
}

/** A scanned body: its bytes and where each top-level member's value is. */
export interface ScannedBody {
  raw: Buffer;
  /** Top-level members in order (a repeated name: the last one, as JSON.parse). */
  members: Map<string, Span>;
}

/**
 * Checks that `raw` is one JSON object nested at most `maxDepth` deep and finds its members.
 * @throws InvalidRequestError (400) naming what is wrong and where (byte offset), or the depth limit.
 */
export function scanJsonObject(raw: Buffer, maxDepth: number): ScannedBody {
  const s = new Scanner(raw, maxDepth);
  const members = new Map<string, Span>();
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
  return { raw, members };
}

/** The symbols under which a lazy body keeps its bytes and spans (see {@link scannedOf}) and what it decoded. */
const SCANNED = Symbol('switchyard.scanned');
const DECODED = Symbol('switchyard.decoded');

/**
 * The body as a plain-looking object whose top-level members are decoded on first read (getters that
 * JSON.parse their own slice and keep the result). Reading `model` or `stream` costs microseconds; reading
 * `messages` decodes the history; spreading or serializing decodes everything. Enumerable like JSON.parse's
 * result, in the same key order.
 * @throws InvalidRequestError (400) from a getter whose slice JSON.parse rejects (a control character in a string).
 */
export function lazyBody(scanned: ScannedBody): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  const { raw } = scanned;
  const done = new Set<string>();
  for (const [name, span] of scanned.members) {
    let decoded = false;
    let value: unknown;
    Object.defineProperty(body, name, {
      enumerable: true,
      configurable: true,
      get() {
        if (!decoded) {
          try {
            value = JSON.parse(raw.toString('utf8', span.start, span.end));
          } catch (err) {
            throw new InvalidRequestError(`request body is not valid JSON in "${name}": ${(err as Error).message}`, err);
          }
          decoded = true;
          done.add(name);
        }
        return value;
      },
      set(v: unknown) {
        value = v;
        decoded = true;
        done.delete(name); // no longer the client's bytes
      },
    });
  }
  Object.defineProperty(body, SCANNED, { value: scanned, enumerable: false });
  Object.defineProperty(body, DECODED, { value: done, enumerable: false });
  return body;
}

/** The bytes and spans behind a body made by {@link lazyBody}, or null for any other object. */
export function scannedOf(body: Record<string, unknown>): ScannedBody | null {
  return (body as { [SCANNED]?: ScannedBody })[SCANNED] ?? null;
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

/**
 * Serializes `body` reusing the client's bytes for every top-level member whose value is still the very
 * object decoded from them (actions copy on write, so an untouched member keeps its identity); only members
 * an action replaced are serialized again. Parses to exactly `JSON.parse(JSON.stringify(body))`.
 * @param original the request's own lazy body (from {@link lazyBody}), or null to serialize everything.
 */
export function serializeBody(body: Record<string, unknown>, original: Record<string, unknown> | null): Buffer {
  const scanned = original ? scannedOf(original) : null;
  if (!scanned) return Buffer.from(JSON.stringify(body));
  const parts: Buffer[] = [];
  for (const [name, value] of Object.entries(body)) {
    if (value === undefined || typeof value === 'function' || typeof value === 'symbol') continue;
    const span = scanned.members.get(name);
    const same = span !== undefined && isDecoded(original!, name) && original![name] === value;
    parts.push(Buffer.from(`${parts.length ? ',' : '{'}${JSON.stringify(name)}:`));
    parts.push(same ? scanned.raw.subarray(span.start, span.end) : Buffer.from(JSON.stringify(value)));
  }
  parts.push(Buffer.from(parts.length ? '}' : '{}'));
  return Buffer.concat(parts);
}

/** True when member `name` of a lazy body has been decoded already (reading it would not decode it now). */
function isDecoded(body: Record<string, unknown>, name: string): boolean {
  return (body as { [DECODED]?: Set<string> })[DECODED]?.has(name) ?? false;
}
