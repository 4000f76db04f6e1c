/**
 * A fast path for the JSONata expressions rules use most: paths of plain names, literals, comparisons,
 * `and` / `or` / `in`, arithmetic, and `$count`, `$exists`, `$not`, `$boolean`. Such an expression is
 * compiled once (from jsonata's own AST) to a plain synchronous function, about 50× cheaper per call than
 * jsonata 2.x's asynchronous evaluate (~5 µs whatever the expression).
 *
 * Exactness over coverage: the compiled function answers only when the values it meets are ones whose
 * JSONata semantics it reproduces exactly (objects along a path, primitive operands); anything else —
 * an array in the middle of a path (JSONata maps over it), comparing non-primitives, a type error JSONata
 * would raise — returns {@link FALLBACK} and the caller evaluates with jsonata itself. A differential
 * property test (test/fast-jsonata.test.ts) checks the two agree.
 */
import type jsonata from 'jsonata';

/** Returned when the fast path cannot answer exactly; evaluate with jsonata instead. */
export const FALLBACK: unique symbol = Symbol('fallback');

/** A compiled expression: a value, `undefined` (JSONata's "nothing"), or {@link FALLBACK}. */
export type FastFn = (input: unknown) => unknown;

type Node = {
  type: string;
  value?: unknown;
  steps?: Node[];
  lhs?: Node;
  rhs?: Node;
  expression?: Node;
  expressions?: Node[];
  arguments?: Node[];
  procedure?: Node;
  stages?: unknown[];
  predicate?: unknown;
  group?: unknown;
  focus?: unknown;
  index?: unknown;
  tuple?: unknown;
  keepArray?: unknown;
  consarray?: unknown;
};

type Primitive = string | number | boolean | null;

const isPrimitive = (v: unknown): v is Primitive => v === null || typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean';
const isComparable = (v: unknown) => v === undefined || typeof v === 'number' || typeof v === 'string';
const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** JSONata's $boolean for primitives; FALLBACK for arrays and objects (their rules are subtler). */
function toBool(v: unknown): boolean | typeof FALLBACK {
  if (v === undefined || v === null) return false;
  if (typeof v === 'boolean') return v;
  if (typeof v === 'number') return v !== 0;
  if (typeof v === 'string') return v.length > 0;
  return FALLBACK;
}

function compileNode(n: Node): FastFn | null {
  switch (n.type) {
    case 'string':
    case 'number':
    case 'value': {
      const v = n.value;
      return () => v;
    }
    case 'variable':
      return n.value === '' ? (input) => input : null;
    case 'path':
      return compilePath(n);
    case 'unary':
      if (n.value === '-' && n.expression) {
        const e = compileNode(n.expression);
        if (!e) return null;
        return (input) => {
          const v = e(input);
          return v === undefined ? undefined : typeof v === 'number' ? -v : FALLBACK;
        };
      }
      if (n.value === '[' && n.expressions && !n.consarray) {
        // Only arrays of literals: enough for `x in ['a', 'b']`, exact by construction.
        if (!n.expressions.every((e) => ['string', 'number', 'value'].includes(e.type))) return null;
        const values = n.expressions.map((e) => e.value);
        return () => values;
      }
      return null;
    case 'binary':
      return compileBinary(n);
    case 'function':
      return compileFunction(n);
    default:
      return null;
  }
}

function compilePath(n: Node): FastFn | null {
  const names: string[] = [];
  if (n.keepArray || n.tuple) return null;
  for (const s of n.steps ?? []) {
    if (s.type !== 'name' || s.stages || s.predicate || s.group || s.focus || s.index || s.tuple || s.keepArray) return null;
    const name = String(s.value);
    if (name in Object.prototype) return null; // JSONata would find inherited properties such as `constructor`
    names.push(name);
  }
  if (names.length === 0) return null;
  return (input) => {
    let cur: unknown = input;
    for (let i = 0; i < names.length; i++) {
      if (Array.isArray(cur)) return FALLBACK; // JSONata maps the rest of the path over the array
      if (!isPlainObject(cur)) return undefined;
      cur = Object.hasOwn(cur, names[i]!) ? cur[names[i]!] : undefined;
    }
    // A path ending on an array: JSONata returns the array, except that it treats an empty one and nested
    // arrays as sequences; keep to flat, non-empty arrays of primitives or objects.
    if (Array.isArray(cur) && (cur.length === 0 || cur.some(Array.isArray))) return FALLBACK;
    return cur;
  };
}

/** Evaluates both operands (as JSONata does) and applies `f`, unless either needs the fallback. */
function both(l: FastFn, r: FastFn, f: (a: unknown, b: unknown) => unknown): FastFn {
  return (input) => {
    const a = l(input);
    const b = r(input);
    return a === FALLBACK || b === FALLBACK ? FALLBACK : f(a, b);
  };
}

function compileBinary(n: Node): FastFn | null {
  const op = String(n.value);
  const l = n.lhs && compileNode(n.lhs);
  const r = n.rhs && compileNode(n.rhs);
  if (!l || !r) return null;
  switch (op) {
    case 'and':
    case 'or':
      return (input) => {
        const a = toBool(l(input));
        if (a === FALLBACK) return FALLBACK;
        if (op === 'and' ? !a : a) return a;
        return toBool(r(input));
      };
    case '=':
    case '!=':
      return both(l, r, (a, b) => {
        if (a === undefined || b === undefined) return false;
        if (!isPrimitive(a) || !isPrimitive(b)) return FALLBACK;
        return op === '=' ? a === b : a !== b;
      });
    case '<':
    case '<=':
    case '>':
    case '>=':
      return both(l, r, (a, b) => {
        // JSONata raises T2010 for a non-comparable operand even when the other is undefined.
        if (!isComparable(a) || !isComparable(b)) return FALLBACK;
        if (a === undefined || b === undefined) return undefined;
        if (typeof a !== typeof b) return FALLBACK; // JSONata raises T2009
        const [x, y] = [a as number | string, b as number | string];
        return op === '<' ? x < y : op === '<=' ? x <= y : op === '>' ? x > y : x >= y;
      });
    case 'in':
      return both(l, r, (a, b) => {
        if (a === undefined || b === undefined) return false;
        if (!isPrimitive(a)) return FALLBACK;
        const list = Array.isArray(b) ? b : [b];
        if (!list.every(isPrimitive)) return FALLBACK;
        return list.includes(a);
      });
    case '+':
    case '-':
    case '*':
    case '/':
    case '%':
      return both(l, r, (a, b) => {
        // JSONata raises T2001/T2002 for a non-numeric operand even when the other is undefined.
        if ((a !== undefined && typeof a !== 'number') || (b !== undefined && typeof b !== 'number')) return FALLBACK;
        if (a === undefined || b === undefined) return undefined;
        const [x, y] = [a as number, b as number];
        const v = op === '+' ? x + y : op === '-' ? x - y : op === '*' ? x * y : op === '/' ? x / y : x % y;
        return Number.isFinite(v) ? v : FALLBACK; // JSONata raises D1001 on overflow
      });
    default:
      return null;
  }
}

function compileFunction(n: Node): FastFn | null {
  if (n.procedure?.type !== 'variable' || n.arguments?.length !== 1) return null;
  const arg = compileNode(n.arguments[0]!);
  if (!arg) return null;
  switch (n.procedure.value) {
    case 'count':
      return (input) => {
        const v = arg(input);
        if (v === FALLBACK) return FALLBACK;
        return v === undefined ? 0 : Array.isArray(v) ? v.length : 1;
      };
    case 'exists':
      return (input) => {
        const v = arg(input);
        return v === FALLBACK ? FALLBACK : v !== undefined;
      };
    case 'boolean':
    case 'not':
      return (input) => {
        const v = arg(input);
        if (v === FALLBACK) return FALLBACK;
        if (v === undefined) return undefined;
        const b = toBool(v);
        return b === FALLBACK ? FALLBACK : n.procedure!.value === 'not' ? !b : b;
      };
    default:
      return null;
  }
}

/** The fast function for a compiled jsonata expression, or null when it uses anything outside the subset. */
export function compileFast(expr: jsonata.Expression): FastFn | null {
  return compileNode(expr.ast() as Node);
}
