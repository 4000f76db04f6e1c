/**
 * Renders a Helm chart the way `helm template` does, for the chart in deploy/helm/ — the machines that run
 * `npm test` have no `helm` binary and npm has no Helm renderer. It implements the Go `text/template`
 * language (actions with `{{-`/`-}}` trimming, comments, `if`/`else if`/`else`, `with`, `range` over lists
 * and maps with `$k, $v :=`, variables, `define`/`include`/`template`, pipelines, parentheses) and the Sprig
 * and Helm functions the chart uses. Anything else — an unknown function, a field of a missing value, a map
 * printed as text — throws, so a chart edit that needs more than this fails the test instead of rendering
 * something Helm would not. Numbers from values print as Helm prints them (float64 `%v`: 1000000 becomes
 * `1e+06`), integers from arithmetic as integers.
 *
 * Sources: Go text/template (https://pkg.go.dev/text/template), Helm's template functions
 * (https://helm.sh/docs/chart_template_guide/function_list/), `helm template` (https://helm.sh/docs/helm/helm_template).
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';

type Node =
  | { t: 'text'; text: string }
  | { t: 'action'; pipe: Pipe; decl?: string }
  | { t: 'if'; branches: { pipe: Pipe; body: Node[] }[]; otherwise: Node[] }
  | { t: 'with'; pipe: Pipe; body: Node[]; otherwise: Node[] }
  | { t: 'range'; vars: string[]; pipe: Pipe; body: Node[]; otherwise: Node[] }
  | { t: 'template'; name: string; pipe: Pipe | null };
type Operand = { o: 'field'; base: string; path: string[] } | { o: 'lit'; value: unknown } | { o: 'pipe'; pipe: Pipe } | { o: 'ident'; name: string };
type Pipe = Operand[][];

/** A Go integer (from arithmetic), printed without a float's exponent. */
class GoInt {
  constructor(readonly n: number) {}
}

const TOKEN = /\s*("(?:[^"\\]|\\.)*"|`[^`]*`|\(|\)|\||:=|,|[^\s()|,]+)/y;

function tokenize(src: string): string[] {
  const out: string[] = [];
  let at = 0;
  TOKEN.lastIndex = 0;
  for (let m = TOKEN.exec(src); m; m = TOKEN.exec(src)) {
    out.push(m[1]!);
    at = TOKEN.lastIndex;
  }
  if (src.slice(at).trim()) throw new Error(`cannot read action near ${JSON.stringify(src.slice(at))}`);
  return out;
}

function parseOperand(tok: string): Operand {
  if (tok.startsWith('"')) return { o: 'lit', value: JSON.parse(tok) };
  if (tok.startsWith('`')) return { o: 'lit', value: tok.slice(1, -1) };
  if (/^-?\d+(\.\d+)?$/.test(tok)) return { o: 'lit', value: Number(tok) };
  if (tok === 'true' || tok === 'false') return { o: 'lit', value: tok === 'true' };
  if (tok === 'nil') return { o: 'lit', value: null };
  if (tok === '.') return { o: 'field', base: '.', path: [] };
  if (tok.startsWith('.')) return { o: 'field', base: '.', path: tok.slice(1).split('.') };
  if (tok.startsWith('$')) {
    const [base, ...rest] = tok.split('.');
    return { o: 'field', base: base!, path: rest };
  }
  if (/^[A-Za-z_]\w*$/.test(tok)) return { o: 'ident', name: tok };
  throw new Error(`unexpected ${tok}`);
}

function parsePipe(tokens: string[], pos = { i: 0 }, closing?: string): Pipe {
  const pipe: Pipe = [[]];
  while (pos.i < tokens.length) {
    const tok = tokens[pos.i++]!;
    if (tok === closing) return pipe;
    if (tok === '|') pipe.push([]);
    else if (tok === '(') pipe.at(-1)!.push({ o: 'pipe', pipe: parsePipe(tokens, pos, ')') });
    else pipe.at(-1)!.push(parseOperand(tok));
  }
  if (closing) throw new Error('unclosed (');
  return pipe;
}

/** Splits template source into text and trimmed action bodies. */
function lex(src: string): ({ text: string } | { action: string })[] {
  const out: ({ text: string } | { action: string })[] = [];
  let i = 0;
  let trimNext = false;
  while (i < src.length) {
    const open = src.indexOf('{{', i);
    let text = src.slice(i, open < 0 ? src.length : open);
    if (trimNext) text = text.replace(/^\s+/, '');
    if (open < 0) {
      out.push({ text });
      break;
    }
    const close = src.indexOf('}}', open);
    if (close < 0) throw new Error('unclosed {{');
    let body = src.slice(open + 2, close);
    if (body.startsWith('- ') || body.startsWith('-\n')) {
      text = text.replace(/\s+$/, '');
      body = body.slice(1);
    }
    trimNext = /\s-$/.test(body);
    if (trimNext) body = body.slice(0, -1);
    out.push({ text }, { action: body.trim() });
    i = close + 2;
  }
  return out;
}

function parse(src: string, defines: Map<string, Node[]>): Node[] {
  const items = lex(src);
  let k = 0;
  const block = (ends: string[]): { nodes: Node[]; end: string } => {
    const nodes: Node[] = [];
    while (k < items.length) {
      const item = items[k++]!;
      if ('text' in item) {
        if (item.text) nodes.push({ t: 'text', text: item.text });
        continue;
      }
      const a = item.action;
      if (a.startsWith('/*')) continue;
      const [word, ...rest] = tokenize(a);
      if (ends.includes(word!) || (word === 'else' && ends.includes('else'))) return { nodes, end: a };
      if (word === 'if') {
        const branches = [{ pipe: parsePipe(rest), body: [] as Node[] }];
        let otherwise: Node[] = [];
        for (;;) {
          const r = block(['end', 'else']);
          if (r.end === 'end') {
            branches.at(-1)!.body = r.nodes;
            break;
          }
          branches.at(-1)!.body = r.nodes;
          const elseTokens = tokenize(r.end).slice(1);
          if (elseTokens[0] === 'if') branches.push({ pipe: parsePipe(elseTokens.slice(1)), body: [] });
          else {
            otherwise = block(['end']).nodes;
            break;
          }
        }
        nodes.push({ t: 'if', branches, otherwise });
      } else if (word === 'with' || word === 'range') {
        let vars: string[] = [];
        let pipeTokens = rest;
        const decl = rest.indexOf(':=');
        if (decl >= 0) {
          vars = rest.slice(0, decl).filter((x) => x !== ',');
          pipeTokens = rest.slice(decl + 1);
        }
        const r = block(['end', 'else']);
        const otherwise = r.end === 'end' ? [] : block(['end']).nodes;
        if (word === 'with') nodes.push({ t: 'with', pipe: parsePipe(pipeTokens), body: r.nodes, otherwise });
        else nodes.push({ t: 'range', vars, pipe: parsePipe(pipeTokens), body: r.nodes, otherwise });
      } else if (word === 'define') {
        defines.set(JSON.parse(rest[0]!), block(['end']).nodes);
      } else if (word === 'template') {
        nodes.push({ t: 'template', name: JSON.parse(rest[0]!), pipe: rest.length > 1 ? parsePipe(rest.slice(1)) : null });
      } else if (word === 'end' || word === 'else') {
        throw new Error(`unexpected {{${a}}}`);
      } else if (rest[0] === ':=' && word!.startsWith('$')) {
        nodes.push({ t: 'action', decl: word, pipe: parsePipe(rest.slice(1)) });
      } else {
        nodes.push({ t: 'action', pipe: parsePipe(tokenize(a)) });
      }
    }
    if (ends.length) throw new Error(`missing {{end}} (expected one of ${ends.join(', ')})`);
    return { nodes, end: '' };
  };
  return block([]).nodes;
}

/** Go template truthiness: false, 0, nil, "" and empty lists and maps are false. */
function truthy(v: unknown): boolean {
  if (v instanceof GoInt) return v.n !== 0;
  if (v == null || v === false || v === 0 || v === '') return false;
  if (Array.isArray(v)) return v.length > 0;
  if (typeof v === 'object') return Object.keys(v as object).length > 0;
  return true;
}

/** Go's `%v` of a value as Helm prints it (values' numbers are float64). */
function print(v: unknown): string {
  if (v == null) return '';
  if (v instanceof GoInt) return String(v.n);
  if (typeof v === 'number') {
    // strconv.FormatFloat(v, 'g', -1, 64): the exponent form when the exponent is < -4 or >= 6.
    const exp = v === 0 ? 0 : Math.floor(Math.log10(Math.abs(v)));
    return exp < -4 || exp >= 6 ? v.toExponential().replace(/e([+-])(\d)$/, 'e$10$2') : String(v);
  }
  if (typeof v === 'string' || typeof v === 'boolean') return String(v);
  throw new Error(`printing ${JSON.stringify(v)} as text: Helm would print a Go map or slice here`);
}

function num(v: unknown): number {
  if (v instanceof GoInt) return v.n;
  if (typeof v === 'number') return Math.trunc(v);
  if (typeof v === 'string' && /^-?\d+$/.test(v)) return Number(v);
  throw new Error(`not a number: ${JSON.stringify(v)}`);
}

function toYaml(v: unknown): string {
  if (v == null) return 'null';
  return stringifyYaml(v instanceof GoInt ? v.n : v, { lineWidth: 0 }).replace(/\n$/, '');
}

export interface Chart {
  dir: string;
  meta: { name: string; version: string; appVersion?: string };
  values: Record<string, unknown>;
}

/** Reads Chart.yaml and values.yaml of the chart at `dir`. */
export function loadChart(dir: string): Chart {
  return {
    dir,
    meta: parseYaml(readFileSync(path.join(dir, 'Chart.yaml'), 'utf8')),
    values: parseYaml(readFileSync(path.join(dir, 'values.yaml'), 'utf8')),
  };
}

function merge(base: unknown, over: unknown): unknown {
  if (over && typeof over === 'object' && !Array.isArray(over) && base && typeof base === 'object' && !Array.isArray(base)) {
    const out: Record<string, unknown> = { ...(base as Record<string, unknown>) };
    for (const [k, v] of Object.entries(over)) out[k] = v === null ? undefined : merge(out[k], v);
    return out;
  }
  return over;
}

/**
 * `helm template RELEASE CHART --values overrides`: the rendered manifests by template file (documents
 * split on `---`, empty ones dropped), in file name order.
 * @throws on any construct or function this renderer does not implement, or a template error.
 */
export function renderChart(chart: Chart, release: { name: string; namespace?: string }, overrides: Record<string, unknown> = {}): { file: string; manifest: string }[] {
  const defines = new Map<string, Node[]>();
  const dir = path.join(chart.dir, 'templates');
  const files = readdirSync(dir).sort();
  const parsed = files.map((f) => ({ file: f, nodes: parse(readFileSync(path.join(dir, f), 'utf8'), defines) }));
  const root = {
    Values: merge(chart.values, overrides),
    Release: { Name: release.name, Namespace: release.namespace ?? 'default', Service: 'Helm', IsInstall: true, IsUpgrade: false },
    Chart: { Name: chart.meta.name, Version: chart.meta.version, AppVersion: chart.meta.appVersion },
  };

  const run = (nodes: Node[], dot: unknown, vars: Map<string, unknown>): string => {
    let out = '';
    const evalOperand = (op: Operand, dotv: unknown): unknown => {
      if (op.o === 'lit') return op.value;
      if (op.o === 'pipe') return evalPipe(op.pipe, dotv);
      if (op.o === 'ident') return call(op.name, []);
      let v: unknown;
      if (op.base === '.') v = dotv;
      else if (op.base === '$') v = root;
      else if (vars.has(op.base)) v = vars.get(op.base);
      else throw new Error(`undefined variable ${op.base}`);
      for (const [i, key] of op.path.entries()) {
        if (v == null || typeof v !== 'object') throw new Error(`nil pointer evaluating .${op.path.slice(0, i).join('.')}.${key}`);
        v = (v as Record<string, unknown>)[key];
      }
      return v;
    };
    const call = (name: string, args: unknown[]): unknown => {
      const fn = FUNCS[name];
      if (name === 'include') {
        const body = defines.get(args[0] as string);
        if (!body) throw new Error(`include: no template "${String(args[0])}"`);
        return run(body, args[1], new Map());
      }
      if (!fn) throw new Error(`function "${name}" not defined (this renderer knows ${Object.keys(FUNCS).join(', ')}, include)`);
      return fn(...args);
    };
    const evalPipe = (pipe: Pipe, dotv: unknown): unknown => {
      let prev: unknown;
      pipe.forEach((cmd, i) => {
        const [head, ...args] = cmd;
        if (!head) throw new Error('empty command');
        const extra = i > 0 ? [prev] : [];
        if (head.o === 'ident') prev = call(head.name, [...args.map((a) => evalOperand(a, dotv)), ...extra]);
        else {
          if (args.length || extra.length) throw new Error('a value cannot take arguments');
          prev = evalOperand(head, dotv);
        }
      });
      return prev;
    };
    for (const n of nodes) {
      if (n.t === 'text') out += n.text;
      else if (n.t === 'action') {
        const v = evalPipe(n.pipe, dot);
        if (n.decl) vars.set(n.decl, v);
        else out += print(v);
      } else if (n.t === 'if') {
        const hit = n.branches.find((b) => truthy(evalPipe(b.pipe, dot)));
        out += run(hit ? hit.body : n.otherwise, dot, vars);
      } else if (n.t === 'with') {
        const v = evalPipe(n.pipe, dot);
        out += truthy(v) ? run(n.body, v, vars) : run(n.otherwise, dot, vars);
      } else if (n.t === 'range') {
        const v = evalPipe(n.pipe, dot);
        const entries: [unknown, unknown][] = Array.isArray(v)
          ? v.map((x, i) => [i, x])
          : v && typeof v === 'object'
            ? Object.keys(v)
                .sort()
                .map((k) => [k, (v as Record<string, unknown>)[k]])
            : [];
        if (!entries.length) out += run(n.otherwise, dot, vars);
        for (const [k, x] of entries) {
          if (n.vars.length === 1) vars.set(n.vars[0]!, x);
          if (n.vars.length === 2) vars.set(n.vars[0]!, k).set(n.vars[1]!, x);
          out += run(n.body, x, vars);
        }
      } else {
        const body = defines.get(n.name);
        if (!body) throw new Error(`template: no template "${n.name}"`);
        out += run(body, n.pipe ? evalPipe(n.pipe, dot) : null, new Map());
      }
    }
    return out;
  };

  const result: { file: string; manifest: string }[] = [];
  for (const { file, nodes } of parsed) {
    if (file.startsWith('_')) continue;
    let text: string;
    try {
      text = run(nodes, root, new Map());
    } catch (err) {
      throw new Error(`${path.join(dir, file)}: ${(err as Error).message}`);
    }
    for (const doc of text.split(/^---\s*$/m)) if (doc.replace(/^\s*#.*$/gm, '').trim()) result.push({ file, manifest: doc });
  }
  return result;
}

const FUNCS: Record<string, (...args: unknown[]) => unknown> = {
  toYaml,
  nindent: (n, s) => `\n${indent(num(n), String(s ?? ''))}`,
  indent: (n, s) => indent(num(n), String(s ?? '')),
  quote: (...xs) => xs.map((x) => JSON.stringify(x == null ? '' : print(x))).join(' '),
  default: (d, v) => (truthy(v) ? v : d),
  printf: (fmt, ...xs) => {
    let i = 0;
    return String(fmt).replace(/%[sdv%]/g, (m) => (m === '%%' ? '%' : m === '%d' ? String(num(xs[i++])) : print(xs[i++])));
  },
  trunc: (n, s) => String(s).slice(0, num(n)),
  trimSuffix: (suffix, s) => (String(s).endsWith(String(suffix)) ? String(s).slice(0, -String(suffix).length || undefined) : String(s)),
  contains: (sub, s) => String(s).includes(String(sub)),
  sha256sum: (s) => createHash('sha256').update(String(s)).digest('hex'),
  add: (...xs) => new GoInt(xs.reduce<number>((a, x) => a + num(x), 0)),
  div: (a, b) => new GoInt(Math.trunc(num(a) / num(b))),
  not: (v) => !truthy(v),
  eq: (a, b) => a === b,
  ne: (a, b) => a !== b,
  and: (...xs) => xs.find((x) => !truthy(x)) ?? xs.at(-1),
  or: (...xs) => xs.find((x) => truthy(x)) ?? xs.at(-1),
  required: (msg, v) => {
    if (v == null || v === '') throw new Error(String(msg));
    return v;
  },
};

function indent(n: number, s: string): string {
  const pad = ' '.repeat(n);
  return s
    .split('\n')
    .map((l) => pad + l)
    .join('\n');
}
