/**
 * Rule matchers, compiled once at load: `model` and `key` (globs), `header` (present / regex / exact,
 * names case-insensitive) and `when` (JSONata, must return a boolean). A matcher answers whether it holds
 * and, when it does not, a short reason for dry-run.
 *
 * Header regexes run on re2js, a port of RE2: matching takes time linear in the header's length whatever the
 * pattern, so a client cannot stall the gateway with a header crafted against a backtracking pattern
 * (`/^([a-z]+)+$/` and 30 letters took 41 s on JavaScript's own engine). RE2 has no backreferences or
 * lookarounds; a pattern that uses them is a load error.
 */
import picomatch from 'picomatch';
import { RE2JS } from 're2js';
import type { CompileContext } from './compile-context.js';
import type { RequestContext } from './context.js';
import { compileJsonata, describeResult, evalErrorMessage, evaluateExpression, isRunaway } from './jsonata.js';

/**
 * Outcome of one matcher: `null` when it holds, else why not. `warning` marks an evaluation error; `fatal`
 * a runaway expression stopped by its budget, which fails the request with an error naming the rule.
 */
export type MatchResult = null | { reason: string; warning?: boolean; fatal?: boolean };

/** A compiled condition. Cheap matchers run first; `when` (JSONata, which may answer asynchronously) last. */
export interface Matcher {
  name: 'model' | 'key' | 'group' | 'header' | 'when';
  /** For `model`: the entries that are exact model ids (no glob characters), which `GET /v1/models` can list. */
  literals?: string[];
  /** True when `test` may return a Promise. */
  async: boolean;
  test(rc: RequestContext): MatchResult | Promise<MatchResult>;
}

/** The entries of a glob list that are exact names (no glob characters): the ones a catalogue can list. */
export function literalNames(globs: readonly string[]): string[] {
  return globs.filter((m) => !/[*?[\]{}()!+@]/.test(m));
}

function globList(v: string | string[]): { list: string[]; test: (s: string) => boolean } {
  const list = Array.isArray(v) ? v : [v];
  return { list, test: picomatch(list, { dot: true, nobrace: false }) };
}

/** The raw `match` block of a rule, as validated by the schema. */
export interface MatchSpec {
  model?: string | string[];
  key?: string | string[];
  group?: string | string[];
  header?: Record<string, string>;
  when?: string;
}

/** Parses `/re/flags`; returns null when `s` is not in that form. */
function parseRegex(s: string): { source: string; flags: string } | null {
  const m = /^\/(.*)\/([dgimsuyv]*)$/s.exec(s);
  return m ? { source: m[1]!, flags: m[2]!.replace(/[gy]/g, '') } : null;
}

/** RE2 flags for JavaScript regex flags: i, s and m carry over; u, v and d change nothing on RE2. */
function re2Flags(flags: string): number {
  return (flags.includes('i') ? RE2JS.CASE_INSENSITIVE : 0) | (flags.includes('s') ? RE2JS.DOTALL : 0) | (flags.includes('m') ? RE2JS.MULTILINE : 0);
}

/** Compiles a rule's `match` block; problems go to `cx.error` with a path relative to `match`. */
export function compileMatchers(spec: MatchSpec | undefined, cx: CompileContext): Matcher[] {
  const out: Matcher[] = [];
  if (!spec) return out;
  if (spec.model !== undefined) {
    const g = globList(spec.model);
    out.push({
      name: 'model',
      literals: literalNames(g.list),
      async: false,
      test: (rc) => (g.test(rc.model) ? null : { reason: `model "${rc.model}" does not match ${g.list.join(', ')}` }),
    });
  }
  if (spec.key !== undefined) {
    const g = globList(spec.key);
    out.push({ name: 'key', async: false, test: (rc) => (g.test(rc.client.id) ? null : { reason: `client "${rc.client.id}" does not match ${g.list.join(', ')}` }) });
  }
  if (spec.group !== undefined) {
    const g = globList(spec.group);
    out.push({
      name: 'group',
      async: false,
      test: (rc) =>
        rc.client.groups.some((x) => g.test(x))
          ? null
          : { reason: rc.client.groups.length ? `groups ${rc.client.groups.join(', ')} do not match ${g.list.join(', ')}` : `client "${rc.client.id}" is in no group (groups come with a sign-in)` },
    });
  }
  if (spec.header) {
    for (const [rawName, want] of Object.entries(spec.header)) {
      const name = rawName.toLowerCase();
      let check: (v: string) => boolean;
      let label: string;
      const re = parseRegex(want);
      if (want === '*') {
        check = () => true;
        label = 'present';
      } else if (re) {
        try {
          const rx = RE2JS.compile(re.source, re2Flags(re.flags));
          check = (v) => rx.test(v);
          label = `matching ${want}`;
        } catch (err) {
          cx.error(['header', rawName], `invalid regular expression ${want} (RE2 syntax: linear-time, no backreferences or lookarounds): ${(err as Error).message}`);
          continue;
        }
      } else {
        check = (v) => v === want;
        label = `equal to ${JSON.stringify(want)}`;
      }
      out.push({
        name: 'header',
        async: false,
        test: (rc) => {
          const v = rc.headers[name];
          if (v === undefined) return { reason: `header ${name} is absent (wanted ${label})` };
          return check(v) ? null : { reason: `header ${name} is not ${label}` };
        },
      });
    }
  }
  if (spec.when !== undefined) {
    const expr = compileJsonata(spec.when, cx, ['when']);
    if (expr) {
      const judge = (r: unknown): MatchResult => {
        if (r === true) return null;
        if (r === false || r === undefined) return { reason: `when is ${r === false ? 'false' : 'nothing (treated as false)'}` };
        return { reason: `when returned ${describeResult(r)}, not true or false`, warning: true };
      };
      const failed = (err: unknown): MatchResult => ({ reason: `when failed: ${evalErrorMessage(err)}`, warning: true, fatal: isRunaway(err) });
      out.push({
        name: 'when',
        async: true,
        test(rc) {
          let r: unknown;
          try {
            r = evaluateExpression(expr, rc);
          } catch (err) {
            return failed(err);
          }
          return r instanceof Promise ? r.then(judge, failed) : judge(r);
        },
      });
    }
  }
  // Cheap synchronous matchers first; JSONata last.
  return out.sort((a, b) => Number(a.async) - Number(b.async));
}
