/**
 * Source-aware validation of YAML files (rule files and the gateway config): parse with the `yaml`
 * package keeping source ranges, validate with ajv (JSON Schema 2020-12), and turn every problem into a
 * `file:line:col: message` issue that says what was expected, not just a JSON pointer.
 */
import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import { isMap, isPair, isScalar, LineCounter, parseDocument, visit, type Document, type Node } from 'yaml';

/** One problem found while loading a file. `line` and `col` are 1-based. */
export interface LoadIssue {
  file: string;
  line: number;
  col: number;
  severity: 'error' | 'warning';
  message: string;
}

/** `file:line:col: message` (warnings say so), the format validate-rules prints. */
/** `one key`, `2 keys`: a count for an error message. */
function plural(n: number, word: string): string {
  return n === 1 ? `one ${word}` : `${n} ${word}s`;
}

export function formatIssue(issue: LoadIssue): string {
  return `${issue.file}:${issue.line}:${issue.col}: ${issue.severity === 'warning' ? 'warning: ' : ''}${issue.message}`;
}

/** Thrown when a file set cannot be loaded; `issues` holds every error found (not just the first). */
export class LoadError extends Error {
  readonly issues: LoadIssue[];
  constructor(issues: LoadIssue[]) {
    super(issues.map(formatIssue).join('\n'));
    this.name = 'LoadError';
    this.issues = issues;
  }
}

/** The most nodes one alias may expand to (the yaml package's `maxAliasCount`). */
const MAX_ALIAS_COUNT = 100;

/** A path into a YAML document: map keys and sequence indexes. */
export type DocPath = ReadonlyArray<string | number>;

/** A parsed YAML file that can answer "where is this path" for error messages. */
export class SourceFile {
  readonly file: string;
  readonly doc: Document;
  private readonly lines: LineCounter;
  /** The document's plain value, made once by `parse` (undefined when the document had errors). */
  private value: unknown;

  private constructor(file: string, doc: Document, lines: LineCounter) {
    this.file = file;
    this.doc = doc;
    this.lines = lines;
  }

  /** Parses `text`; syntax errors (bad indentation, duplicate keys...) come back as issues. */
  static parse(file: string, text: string): { source: SourceFile; issues: LoadIssue[] } {
    const lines = new LineCounter();
    const doc = parseDocument(text, { lineCounter: lines, prettyErrors: true, uniqueKeys: true });
    const source = new SourceFile(file, doc, lines);
    const issues: LoadIssue[] = [];
    for (const e of [...doc.errors, ...doc.warnings]) {
      const pos = e.linePos?.[0] ?? { line: 1, col: 1 };
      const message = e.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
      issues.push({ file, line: pos.line, col: pos.col, severity: doc.errors.includes(e as never) ? 'error' : 'warning', message: `YAML: ${message}` });
    }
    if (doc.errors.length === 0) {
      // Aliases are expanded here, bounded: a file whose aliases expand without end (an "alias bomb") is an
      // error at its first alias, never an exception out of the loader.
      try {
        source.value = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
      } catch (err) {
        let at: { line: number; col: number } = { line: 1, col: 1 };
        visit(doc, {
          Alias(_key, node) {
            if (node.range) at = lines.linePos(node.range[0]);
            return visit.BREAK;
          },
        });
        issues.push({ file, ...at, severity: 'error', message: `YAML: ${(err as Error).message} (aliases may expand to at most ${MAX_ALIAS_COUNT} nodes each)` });
      }
    }
    return { source, issues };
  }

  /** The plain JS value of the document (after a parse without errors). */
  toJS(): unknown {
    return this.value;
  }

  /** The YAML node at `path`, or undefined. */
  node(path: DocPath): Node | undefined {
    if (path.length === 0) return this.doc.contents ?? undefined;
    return this.doc.getIn(path as (string | number)[], true) as Node | undefined;
  }

  /** Line and column of the value at `path` (or of its key with `which: 'key'`); falls back to the nearest ancestor. */
  position(path: DocPath, which: 'key' | 'value' = 'value'): { line: number; col: number } {
    for (let n = path.length; n >= 0; n--) {
      const sub = path.slice(0, n);
      if (which === 'key' && n === path.length && n > 0) {
        const parent = this.node(sub.slice(0, -1));
        if (isMap(parent)) {
          const pair = parent.items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === String(sub[sub.length - 1]));
          const range = (pair?.key as Node | undefined)?.range;
          if (range) return this.lines.linePos(range[0]);
        }
      }
      const range = this.node(sub)?.range;
      if (range) return this.lines.linePos(range[0]);
    }
    return { line: 1, col: 1 };
  }

  /**
   * An issue located at `path`. With `offset` (a 0-based character index into a single-line string
   * value, e.g. where a JSONata expression broke), the column points at that character.
   */
  issueAt(path: DocPath, message: string, severity: LoadIssue['severity'] = 'error', which: 'key' | 'value' = 'value', offset?: number): LoadIssue {
    const pos = this.position(path, which);
    const node = this.node(path);
    if (offset !== undefined && isScalar(node) && node.range && this.lines.linePos(node.range[1]).line === pos.line) {
      const quoted = node.type === 'QUOTE_DOUBLE' || node.type === 'QUOTE_SINGLE' ? 1 : 0;
      pos.col += quoted + Math.max(0, offset);
    }
    return { file: this.file, ...pos, severity, message };
  }
}

/** Compiles a JSON Schema 2020-12 document once; `allErrors` so a file reports every problem at once. */
export function compileSchema<T>(schema: object): ValidateFunction<T> {
  const ajv = new Ajv2020({ allErrors: true, strict: true, strictRequired: false, allowUnionTypes: true, verbose: true });
  return ajv.compile<T>(schema);
}

function pointerToPath(pointer: string): (string | number)[] {
  if (!pointer) return [];
  return pointer
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((s) => (/^\d+$/.test(s) ? Number(s) : s));
}

function describeValue(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a map';
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 40 ? v.slice(0, 40) + '…' : v)}`;
  return `${typeof v} ${String(v)}`;
}

function pathLabel(path: (string | number)[]): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out ? `.${p}` : p;
  return out || '(top level)';
}

/** The allowed keys of the schema node an `additionalProperties` error came from. */
function allowedKeys(err: ErrorObject): string[] {
  const props = (err.parentSchema as { properties?: Record<string, unknown> } | undefined)?.properties;
  return props ? Object.keys(props) : [];
}

function typeWord(t: unknown): string {
  const words: Record<string, string> = { object: 'a map', array: 'a list', string: 'a string', integer: 'an integer', number: 'a number', boolean: 'true or false', null: 'null' };
  return Array.isArray(t) ? t.map(typeWord).join(' or ') : (words[String(t)] ?? String(t));
}

/**
 * Turns ajv errors into located issues with messages that say what was expected. Errors of the
 * branches of an `anyOf`/`oneOf` at the same place are folded into one "expected X or Y" message.
 */
export function schemaIssues(source: SourceFile, data: unknown, errors: ErrorObject[] | null | undefined): LoadIssue[] {
  if (!errors?.length) return [];
  const unionPaths = new Set(errors.filter((e) => e.keyword === 'anyOf' || e.keyword === 'oneOf').map((e) => e.instancePath));
  // A union whose value has a deeper, more precise error (e.g. `{expr: 1}` in a string-or-{expr} field) is
  // reported by that error alone.
  const deeper = (p: string) => errors.some((e) => e.instancePath.startsWith(p + '/'));
  const issues: LoadIssue[] = [];
  const seen = new Set<string>();
  for (const err of errors) {
    const path = pointerToPath(err.instancePath);
    const where = pathLabel(path);
    let value: unknown = data;
    for (const p of path) value = (value as Record<string | number, unknown> | undefined)?.[p];
    let issue: LoadIssue;
    if (
      unionPaths.has(err.instancePath) &&
      err.keyword !== 'anyOf' &&
      err.keyword !== 'oneOf' &&
      ['type', 'const', 'enum', 'required', 'additionalProperties', 'minProperties', 'maxProperties', 'pattern'].includes(err.keyword)
    ) {
      continue; // folded into the union's own message below
    }
    if (err.keyword === 'propertyNames') continue; // reported by the inner error, which names the key
    const badName = (err as { propertyName?: string }).propertyName;
    switch (badName === undefined ? err.keyword : 'propertyName') {
      case 'propertyName':
        issue = source.issueAt(
          [...path, badName!],
          `${where} has a key "${badName}" that is not allowed: a name ${err.keyword === 'pattern' ? `must match ${(err.params as { pattern: string }).pattern}` : (err.message ?? 'is invalid')}`,
          'error',
          'key',
        );
        break;
      case 'additionalProperties': {
        const key = (err.params as { additionalProperty: string }).additionalProperty;
        const allowed = allowedKeys(err);
        issue = source.issueAt([...path, key], `unknown key "${key}" in ${where}; expected one of: ${allowed.join(', ')}`, 'error', 'key');
        break;
      }
      case 'required':
        issue = source.issueAt(path, `${where} is missing the required key "${(err.params as { missingProperty: string }).missingProperty}"`);
        break;
      case 'type':
        issue = source.issueAt(path, `${where} must be ${typeWord((err.params as { type: unknown }).type)}, got ${describeValue(value)}`);
        break;
      case 'enum':
        issue = source.issueAt(path, `${where} must be one of: ${(err.params as { allowedValues: unknown[] }).allowedValues.map((v) => JSON.stringify(v)).join(', ')}; got ${describeValue(value)}`);
        break;
      case 'const':
        issue = source.issueAt(path, `${where} must be ${JSON.stringify((err.params as { allowedValue: unknown }).allowedValue)}, got ${describeValue(value)}`);
        break;
      case 'anyOf':
      case 'oneOf': {
        if (deeper(err.instancePath)) continue;
        const desc = (err.parentSchema as { description?: string } | undefined)?.description;
        const branches = ((err.schema as Array<{ type?: unknown; description?: string }>) ?? []).map((b) => b.description ?? typeWord(b.type ?? 'object'));
        issue = source.issueAt(path, `${where} has the wrong form: expected ${branches.join(', or ')}; got ${describeValue(value)}${desc ? ` (${desc})` : ''}`);
        break;
      }
      case 'minProperties':
      case 'maxProperties': {
        const parent = err.parentSchema as { properties?: object; minProperties?: number; maxProperties?: number };
        const keys = Object.keys(parent.properties ?? {});
        const { minProperties: min, maxProperties: max } = parent;
        const count = min === max ? `exactly ${plural(min ?? 0, 'key')}` : err.keyword === 'minProperties' ? `at least ${plural(min ?? 0, 'key')}` : `at most ${plural(max ?? 0, 'key')}`;
        issue = source.issueAt(path, `${where} must have ${count}${keys.length ? `, one of: ${keys.join(', ')}` : ''}`);
        break;
      }
      default:
        issue = source.issueAt(path, `${where} ${err.message ?? 'is invalid'}`);
    }
    const k = `${issue.line}:${issue.col}:${issue.message}`;
    if (!seen.has(k)) {
      seen.add(k);
      issues.push(issue);
    }
  }
  return issues;
}
