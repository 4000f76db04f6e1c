/**
 * JSONata compilation with errors that point into the rule file, and evaluation helpers.
 * Expressions are compiled once at load; evaluation is asynchronous in jsonata 2.x.
 *
 * Runaway expressions are stopped: every expression is compiled with jsonata's own guardrails (`timeout`,
 * ms per evaluation; `stack`, nesting depth of evaluation; `sequence`, longest sequence built), so a
 * recursive function or a huge range cannot hold the event loop for more than its budget, and its regex
 * literals run on RE2 (re2js, linear time) instead of JavaScript's backtracking engine.
 */
import jsonata from 'jsonata';
import { RE2JS } from 're2js';
import type { CompileContext } from './compile-context.js';
import type { DocPath } from '../validation.js';
import { compileFast, FALLBACK, type FastFn } from './fast-jsonata.js';

/** A compiled expression: jsonata's, plus the synchronous fast path when the expression fits it. */
export interface Expression {
  jsonata: jsonata.Expression;
  fast: FastFn | null;
}

/**
 * Evaluates against `input`: synchronously through the fast path when it can answer exactly, else with
 * jsonata (a Promise). `bindings` (e.g. `$context`) always go to jsonata.
 * @throws (or rejects with) jsonata's evaluation errors.
 */
export function evaluateExpression(e: Expression, input: unknown, bindings?: Record<string, unknown>): unknown {
  if (e.fast && !bindings) {
    const v = e.fast(input);
    if (v !== FALLBACK) return v;
  }
  return e.jsonata.evaluate(input, bindings);
}

/** Default time budget of one JSONata evaluation, ms (`limits.rule_expression_ms`). */
export const DEFAULT_EXPRESSION_MS = 10;
/** Deepest evaluation nesting allowed (recursion), and longest sequence an expression may build. */
const MAX_STACK = 300;
const MAX_SEQUENCE = 100_000;

/** jsonata's guardrail error codes: stack too deep, timeout, sequence too long. */
const GUARDRAIL_CODES = new Set(['D1011', 'D1012', 'D2015']);

/** True for an evaluation stopped by a guardrail (a runaway expression), not an ordinary evaluation error. */
export function isRunaway(err: unknown): boolean {
  return GUARDRAIL_CODES.has(String((err as { code?: unknown })?.code)) || err instanceof RangeError;
}

/**
 * A RegExp-shaped wrapper over RE2 for jsonata's `RegexEngine` option: jsonata calls `new Engine(literal)`,
 * sets `lastIndex` and calls `exec(str)`, reading `match[0..n]` and `index`.
 * @throws the RE2 syntax error for a pattern RE2 cannot run (backreferences, lookarounds).
 */
class Re2RegExp {
  lastIndex = 0;
  private readonly re: RE2JS;
  constructor(literal: RegExp) {
    const f = literal.flags;
    // JSONata's regex literals take the flags i and m only (its parser refuses any other).
    this.re = RE2JS.compile(literal.source, (f.includes('i') ? RE2JS.CASE_INSENSITIVE : 0) | (f.includes('m') ? RE2JS.MULTILINE : 0));
  }
  exec(str: string): (string[] & { index: number }) | null {
    const m = this.re.matcher(str);
    if (this.lastIndex > str.length || !m.find(this.lastIndex)) return null;
    const groups: string[] = [];
    for (let i = 0; i <= m.groupCount(); i++) groups.push(m.group(i) ?? (undefined as unknown as string));
    this.lastIndex = m.end();
    return Object.assign(groups, { index: m.start() });
  }
}

/**
 * Warnings for what can be seen to be unbounded before running: a function that calls itself (recursion)
 * and a range literal of more than {@link MAX_SEQUENCE} items. Both are stopped at run time anyway.
 */
function unboundedParts(ast: unknown): string[] {
  const out: string[] = [];
  const walk = (node: unknown, bound: Set<string>) => {
    if (!node || typeof node !== 'object') return;
    const n = node as { type?: string; value?: unknown; lhs?: { type?: string; value?: unknown }; rhs?: { type?: string; value?: unknown }; procedure?: { value?: unknown } };
    if (n.type === 'bind' && n.lhs?.type === 'variable' && n.rhs?.type === 'lambda') {
      const name = String(n.lhs.value);
      const inner = new Set(bound).add(name);
      walk(n.rhs, inner);
      return;
    }
    if (n.type === 'function' && typeof n.procedure?.value === 'string' && bound.has(n.procedure.value)) {
      out.push(`function $${n.procedure.value} calls itself (recursion runs until the time budget stops it)`);
    }
    if (n.type === 'binary' && n.value === '..' && n.lhs?.type === 'number' && n.rhs?.type === 'number' && Number(n.rhs.value) - Number(n.lhs.value) > MAX_SEQUENCE) {
      out.push(`range [${String(n.lhs.value)}..${String(n.rhs.value)}] builds more than ${MAX_SEQUENCE} items`);
    }
    for (const v of Object.values(n)) {
      if (Array.isArray(v)) for (const x of v) walk(x, bound);
      else if (v && typeof v === 'object') walk(v, bound);
    }
  };
  walk(ast, new Set());
  return [...new Set(out)];
}

/**
 * Compiles `text` with the guardrails above; a syntax error is reported at `subpath` with JSONata's own
 * message and offset, and expressions seen to be unbounded get a warning.
 */
export function compileJsonata(text: string, cx: CompileContext, subpath: DocPath): Expression | undefined {
  try {
    const expr = jsonata(text, { timeout: cx.expressionMs ?? DEFAULT_EXPRESSION_MS, stack: MAX_STACK, sequence: MAX_SEQUENCE, RegexEngine: Re2RegExp } as unknown as Parameters<typeof jsonata>[1]);
    for (const w of unboundedParts(expr.ast())) cx.warning?.(subpath, `JSONata expression may not terminate in time: ${w}`);
    return { jsonata: expr, fast: compileFast(expr) };
  } catch (err) {
    const e = err as { message?: string; position?: number; token?: string };
    // jsonata's `position` counts characters up to and including the offending token (1-based end).
    cx.error(subpath, `JSONata syntax error: ${e.message ?? String(err)}`, e.position !== undefined ? e.position - 1 : undefined);
    return undefined;
  }
}

/** A short, printable description of a JSONata result, for messages. */
export function describeResult(v: unknown): string {
  if (v === undefined) return 'nothing';
  const s = JSON.stringify(v);
  return s.length > 60 ? s.slice(0, 60) + '…' : s;
}

/** The message of a JSONata evaluation error. */
export function evalErrorMessage(err: unknown): string {
  const e = err as { message?: string; code?: string };
  if (err instanceof RangeError) return `evaluation too deep (${err.message})`;
  return `${e.code ? e.code + ': ' : ''}${e.message ?? String(err)}`;
}
