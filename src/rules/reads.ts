/**
 * What a rule reads of a request, found from its text at load time: the headers it names (in `match.header`
 * and in JSONata expressions) and whether it reads anything beyond the request facts the ledger keeps
 * (message text, system prompt, tool definitions, any other body member). Replay (`switchyard replay`)
 * re-evaluates recorded requests from those facts; a request that reaches a rule reading more is counted as
 * not replayable instead of guessed.
 */

/** Body members kept as request facts in each usage record (never message text or credentials). */
export const FACT_MEMBERS = ['model', 'stream', 'metadata', 'max_tokens'] as const;

/** What one rule reads. */
export interface RuleReads {
  /** Lower-cased header names it reads. */
  headers: string[];
  /** True when its `when` reads the body beyond {@link FACT_MEMBERS} and the message and tool counts. */
  whenContent: boolean;
  /** True when an action does (a tag expression that reads message text, any `transform`). */
  actionContent: boolean;
}

/** `headers.'x-team'`, `headers."x-team"`, headers.`x-team`, `headers.x_team`, `$lookup(headers, 'x-team')`. */
const HEADER_REFS = [/\bheaders\s*\.\s*(?:'([^']+)'|"([^"]+)"|`([^`]+)`|([A-Za-z_][\w$]*))/g, /\$lookup\s*\(\s*headers\s*,\s*(?:'([^']+)'|"([^"]+)")\s*\)/g];

/** A reference to the body or the history that is not one of the kept facts. */
function readsContent(expr: string): boolean {
  // `$count(messages)` and `$count(body.tools)` are kept facts (the counts); any other use of them is not.
  const rest = expr.replace(/\$count\s*\(\s*(?:body\s*\.\s*)?(?:messages|tools)\s*\)/g, '');
  if (/\bmessages\b/.test(rest)) return true;
  for (const m of rest.matchAll(/\bbody\b(\s*\.\s*(?:'([^']+)'|"([^"]+)"|`([^`]+)`|([A-Za-z_][\w$]*)))?/g)) {
    const member = m[2] ?? m[3] ?? m[4] ?? m[5];
    if (!member || !(FACT_MEMBERS as readonly string[]).includes(member)) return true;
  }
  return false;
}

/** Every JSONata expression among an action's parameters (`{expr: …}` values, at any depth). */
function expressionsIn(v: unknown, out: string[] = []): string[] {
  if (Array.isArray(v)) for (const x of v) expressionsIn(x, out);
  else if (v && typeof v === 'object') {
    for (const [k, x] of Object.entries(v)) {
      if (k === 'expr' && typeof x === 'string') out.push(x);
      else expressionsIn(x, out);
    }
  }
  return out;
}

/**
 * What a rule, as written, reads.
 * @param match the rule's `match` block; `actions` its actions (`[{name: params}]`).
 */
export function ruleReads(match: { header?: Record<string, string>; when?: string } | undefined, actions: Array<Record<string, unknown>>): RuleReads {
  const headers = new Set(Object.keys(match?.header ?? {}).map((h) => h.toLowerCase()));
  const actionExprs = expressionsIn(actions);
  for (const e of [...(match?.when ? [match.when] : []), ...actionExprs]) {
    for (const re of HEADER_REFS) for (const m of e.matchAll(re)) headers.add((m[1] ?? m[2] ?? m[3] ?? m[4])!.toLowerCase());
  }
  return {
    headers: [...headers].sort(),
    whenContent: match?.when !== undefined && readsContent(match.when),
    actionContent: actionExprs.some(readsContent) || actions.some((a) => 'transform' in a),
  };
}
