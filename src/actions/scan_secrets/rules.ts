/**
 * The secret-detection rule set `scan_secrets` runs: gitleaks' default rules (`secrets/gitleaks.toml`, v8.30.1, MIT;
 * secrets/SOURCES.md), read as gitleaks reads them and run as gitleaks' detector runs them on one fragment
 * (detect/detect.go, `detectRule`):
 * 1. keywords first: one pass of an RE2 set over the bytes finds which rules' keywords occur (case-insensitive); a
 *    rule with keywords none of which occurs is not run — most content blocks run no rule at all;
 * 2. the rule's regex (Go RE2 syntax, run on RE2 itself through the `re2` package: linear time, never backtracking),
 *    every match;
 * 3. the secret is the rule's `secretGroup`, else the first non-empty capture group, else the whole match;
 * 4. a rule's `entropy` is a floor on the secret's Shannon entropy (bits per character): at or under it, no finding;
 * 5. the global allowlist, then the rule's own allowlists (regexes against the secret, the match or the line;
 *    stopwords the secret contains; `condition = "AND"` needs every check to hold); a line holding `gitleaks:allow`
 *    is skipped.
 * What differs: content blocks have no file path, so path-only rules and rules limited to paths never fire, and an
 * allowlist entry that needs a path or a commit never allows; gitleaks' decoding passes (base64, hex, percent) are
 * not run. The bytes scanned are the block's JSON as the client sent it (a newline inside a string is the two
 * characters `\n`, which gitleaks' rules already accept as the end of a secret: `(?:[\x60'"\s;]|\\[nr]|$)`).
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type RE2Type from 're2';
import { parse as parseToml } from 'smol-toml';

/** Where the vendored rule set is (the package's `secrets/` directory, beside `src/` and `dist/`). */
export const GITLEAKS_FILE = fileURLToPath(new URL('../../../secrets/gitleaks.toml', import.meta.url));

/** The release of gitleaks the vendored rule file is from (secrets/SOURCES.md). */
export const GITLEAKS_VERSION = 'v8.30.1';

type RE2 = RE2Type;
type RE2Ctor = typeof RE2Type;

let re2: RE2Ctor | null = null;
/** The `re2` native module, loaded on first use: a gateway that scans no secrets never loads it (~2 MB). */
function RE2(): RE2Ctor {
  re2 ??= createRequire(import.meta.url)('re2') as RE2Ctor;
  return re2;
}

/** One allowlist as gitleaks reads it: a finding it matches is not reported. */
interface Allowlist {
  target: 'secret' | 'match' | 'line';
  and: boolean;
  regexes: RE2[];
  /** Lower-cased; the secret (lower-cased) containing one is allowed. */
  stopwords: string[];
  /** Paths or commits: never true for a content block. */
  needsPathOrCommit: boolean;
}

/** One detection rule. */
export interface SecretRule {
  /** gitleaks' rule id, e.g. `aws-access-token`: what findings, usage records and placeholders name. */
  id: string;
  description: string;
  regex: RE2;
  /** Lower-cased; empty: the rule runs on every block. */
  keywords: string[];
  /** Minimum Shannon entropy of the secret, bits per character (0: none). */
  entropy: number;
  /** The capture group that is the secret (0: the first non-empty one). */
  secretGroup: number;
  allowlists: Allowlist[];
}

/** A compiled rule set. */
export interface RuleSet {
  version: string;
  rules: SecretRule[];
  /** Rule ids the file defines but that cannot fire on a content block (path-only rules). */
  pathOnly: string[];
  /** Every rule's keywords, one RE2 set: `match(bytes)` gives the indexes into {@link keywordRules}. */
  keywords: InstanceType<RE2Ctor['Set']> | null;
  /** For each keyword of the set, the indexes of the rules it enables. */
  keywordRules: number[][];
  /** Rules without keywords: run on every block. */
  always: number[];
  global: Allowlist[];
}

/** One secret found: byte offsets into the scanned bytes (end exclusive). Never carries the value itself. */
export interface SecretFinding {
  rule: string;
  start: number;
  end: number;
}

interface RawAllowlist {
  regexTarget?: string;
  condition?: string;
  regexes?: string[];
  stopwords?: string[];
  paths?: string[];
  commits?: string[];
}

interface RawRule {
  id: string;
  description?: string;
  regex?: string;
  path?: string;
  keywords?: string[];
  entropy?: number;
  secretGroup?: number;
  allowlists?: RawAllowlist[];
}

function allowlist(a: RawAllowlist, where: string): Allowlist {
  const target = a.regexTarget ?? 'secret';
  if (target !== 'secret' && target !== 'match' && target !== 'line') throw new Error(`${where}: unknown regexTarget "${target}"`);
  return {
    target,
    and: (a.condition ?? 'OR').toUpperCase() === 'AND',
    regexes: (a.regexes ?? []).map((r) => new (RE2())(r)),
    stopwords: (a.stopwords ?? []).map((w) => w.toLowerCase()),
    needsPathOrCommit: (a.paths?.length ?? 0) > 0 || (a.commits?.length ?? 0) > 0,
  };
}

/** Escapes `s` for use as a literal in a regular expression. */
function literal(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');
}

const cache = new Map<string, RuleSet>();

/**
 * The rule set of a gitleaks config file, without the rules named in `skip` (compiled once per file and skip list).
 * @param file a gitleaks TOML config (default: the vendored one).
 * @throws Error naming the rule whose regex RE2 rejects, or an unreadable file.
 */
export function loadRuleSet(skip: readonly string[] = [], file = GITLEAKS_FILE): RuleSet {
  const cacheKey = `${file}\0${[...skip].sort().join(',')}`;
  const hit = cache.get(cacheKey);
  if (hit) return hit;
  const doc = parseToml(readFileSync(file, 'utf8')) as { rules?: RawRule[]; allowlist?: RawAllowlist; allowlists?: RawAllowlist[] };
  const skipped = new Set(skip);
  const rules: SecretRule[] = [];
  const pathOnly: string[] = [];
  for (const r of doc.rules ?? []) {
    if (skipped.has(r.id)) continue;
    // A rule limited to file paths cannot hold for a content block (it has no path).
    if (!r.regex || r.path) {
      pathOnly.push(r.id);
      continue;
    }
    let regex: RE2;
    try {
      regex = new (RE2())(r.regex, 'gd');
    } catch (err) {
      throw new Error(`gitleaks rule ${r.id}: RE2 rejects its regex: ${(err as Error).message}`);
    }
    rules.push({
      id: r.id,
      description: r.description ?? '',
      regex,
      keywords: (r.keywords ?? []).map((k) => k.toLowerCase()),
      entropy: r.entropy ?? 0,
      secretGroup: r.secretGroup ?? 0,
      allowlists: (r.allowlists ?? []).map((a, i) => allowlist(a, `gitleaks rule ${r.id} allowlist ${i}`)),
    });
  }
  const global = [...(doc.allowlist ? [doc.allowlist] : []), ...(doc.allowlists ?? [])].map((a, i) => allowlist(a, `global allowlist ${i}`));
  const words: string[] = [];
  const keywordRules: number[][] = [];
  const always: number[] = [];
  rules.forEach((rule, i) => {
    if (rule.keywords.length === 0) always.push(i);
    for (const k of new Set(rule.keywords)) {
      let at = words.indexOf(k);
      if (at === -1) {
        at = words.push(k) - 1;
        keywordRules.push([]);
      }
      keywordRules[at]!.push(i);
    }
  });
  const keywords = words.length ? new (RE2().Set)(words.map(literal), 'i') : null;
  const set: RuleSet = { version: file === GITLEAKS_FILE ? `gitleaks ${GITLEAKS_VERSION}` : file, rules, pathOnly, keywords, keywordRules, always, global };
  cache.set(cacheKey, set);
  return set;
}

/** Shannon entropy of `s`, bits per character (gitleaks' `shannonEntropy`). */
export function shannonEntropy(s: string): number {
  const counts = new Map<string, number>();
  let n = 0;
  for (const ch of s) {
    counts.set(ch, (counts.get(ch) ?? 0) + 1);
    n++;
  }
  let h = 0;
  for (const c of counts.values()) {
    const p = c / n;
    h -= p * Math.log2(p);
  }
  return h;
}

const NEWLINE_ESCAPE = Buffer.from('\\n');

/** The line around [start, end) of `bytes`: up to the nearest newline, raw or escaped (`\n` inside a JSON string). */
function lineAround(bytes: Buffer, start: number, end: number): string {
  // (A negative offset would search from the end: at the start there is nothing before.)
  let from = start > 0 ? bytes.lastIndexOf(0x0a, start - 1) + 1 : 0;
  const esc = start > 0 ? bytes.lastIndexOf(NEWLINE_ESCAPE, start - 1) : -1;
  if (esc !== -1 && esc + 2 <= start) from = Math.max(from, esc + 2);
  let to = bytes.indexOf(0x0a, end);
  if (to === -1) to = bytes.length;
  const escTo = bytes.indexOf(NEWLINE_ESCAPE, end);
  if (escTo !== -1) to = Math.min(to, escTo);
  return bytes.toString('utf8', from, to);
}

function allowed(lists: Allowlist[], secret: string, match: string, line: () => string): boolean {
  for (const a of lists) {
    const target = a.target === 'secret' ? secret : a.target === 'match' ? match : line();
    const lower = secret.toLowerCase();
    const regexOk = a.regexes.some((r) => {
      r.lastIndex = 0;
      return r.test(target);
    });
    const stopOk = a.stopwords.some((w) => lower.includes(w));
    if (a.and) {
      if (a.needsPathOrCommit) continue;
      const checks: boolean[] = [];
      if (a.regexes.length) checks.push(regexOk);
      if (a.stopwords.length) checks.push(stopOk);
      if (checks.length && checks.every(Boolean)) return true;
    } else if (regexOk || stopOk) {
      return true;
    }
  }
  return false;
}

const ALLOW_SIGNATURE = 'gitleaks:allow';

/**
 * The rules of `rs` whose keywords occur in `bytes` (case-insensitive), and those without keywords, as indexes into
 * `rs.rules`, in rule order. Empty for most blocks: then no regex runs.
 */
export function candidateRules(bytes: Buffer, rs: RuleSet): number[] {
  const hit = new Set<number>(rs.always);
  if (rs.keywords) for (const k of rs.keywords.match(bytes)) for (const r of rs.keywordRules[k]!) hit.add(r);
  return [...hit].sort((a, b) => a - b);
}

/**
 * Every secret in `bytes` by the rules of `rs`, as gitleaks' detector reports them (module comment), in the order of
 * the rules then of the matches; overlapping findings are all returned (the caller merges them).
 * @param allowValues secrets never reported (exact values).
 * @param candidates the rules to run (default: {@link candidateRules} of `bytes`); a caller scanning the strings of one
 *   content block passes the block's, so the block is the fragment whose keywords decide, as a file is for gitleaks.
 */
export function findSecrets(bytes: Buffer, rs: RuleSet, allowValues: ReadonlySet<string> = new Set(), candidates: readonly number[] = candidateRules(bytes, rs)): SecretFinding[] {
  const out: SecretFinding[] = [];
  for (const i of candidates) {
    const rule = rs.rules[i]!;
    const re = rule.regex;
    re.lastIndex = 0;
    for (let m = re.exec(bytes); m !== null; m = re.exec(bytes)) {
      const indices = (m as unknown as { indices: Array<[number, number] | undefined> }).indices;
      const [mStart, mEnd] = indices[0]!;
      if (mEnd === mStart) {
        re.lastIndex = mEnd + 1;
        continue;
      }
      // The secret: the configured group, else the first non-empty one, else the whole match.
      let span: [number, number] = [mStart, mEnd];
      if (indices.length > 1) {
        if (rule.secretGroup > 0) {
          const g = indices[rule.secretGroup];
          if (!g) continue;
          span = g;
        } else {
          const g = indices.slice(1).find((x) => x !== undefined && x[1] > x[0]);
          if (g) span = g;
        }
      }
      const secret = bytes.toString('utf8', span[0], span[1]);
      if (rule.entropy > 0 && shannonEntropy(secret) <= rule.entropy) continue;
      if (allowValues.has(secret)) continue;
      let lineText: string | null = null;
      const line = () => (lineText ??= lineAround(bytes, mStart, mEnd));
      if (line().includes(ALLOW_SIGNATURE)) continue;
      const match = bytes.toString('utf8', mStart, mEnd);
      if (allowed(rs.global, secret, match, line) || allowed(rule.allowlists, secret, match, line)) continue;
      out.push({ rule: rule.id, start: span[0], end: span[1] });
    }
  }
  return out;
}
