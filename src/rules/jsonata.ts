/**
 * JSONata compilation with errors that point into the rule file, and evaluation helpers.
 * Expressions are compiled once at load; evaluation is asynchronous in jsonata 2.x.
 */
import jsonata from 'jsonata';
import type { CompileContext } from '../actions/types.js';
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

/** Compiles `text`; a syntax error is reported at `subpath` with JSONata's own message and offset. */
export function compileJsonata(text: string, cx: CompileContext, subpath: DocPath): Expression | undefined {
  try {
    const expr = jsonata(text);
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
  return `${e.code ? e.code + ': ' : ''}${e.message ?? String(err)}`;
}
