/**
 * JSONata compilation with errors that point into the rule file, and evaluation helpers.
 * Expressions are compiled once at load; evaluation is asynchronous in jsonata 2.x.
 */
import jsonata from 'jsonata';
import type { CompileContext } from '../actions/types.js';
import type { DocPath } from '../validation.js';

export type Expression = jsonata.Expression;

/** Compiles `text`; a syntax error is reported at `subpath` with JSONata's own message and offset. */
export function compileJsonata(text: string, cx: CompileContext, subpath: DocPath): Expression | undefined {
  try {
    return jsonata(text);
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
