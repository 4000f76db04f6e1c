/**
 * Loads a rule set: every `*.yaml` of a directory in file-name order, parsed with source positions,
 * validated against the rules schema, then a semantic pass (unique ids, known providers, JSONata and
 * regexes that compile, rules that can never take effect) and compiled once. All-or-nothing: any error
 * means no rule set, and every error is reported as `file:line:col: message`.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { ACTIONS } from '../actions/index.js';
import type { ActionModule } from '../actions/types.js';
import type { CompileContext } from './compile-context.js';
import { compileSchema, LoadError, schemaIssues, SourceFile, type DocPath, type LoadIssue } from '../validation.js';
import { compileMatchers, type Matcher, type MatchSpec } from './matchers.js';
import { ruleReads, type RuleReads } from './reads.js';
import { buildRulesSchema } from './schema.js';

/** One action of a compiled rule. */
export interface CompiledAction {
  name: string;
  module: ActionModule<unknown>;
  compiled: unknown;
}

/** A rule ready to evaluate. */
export interface CompiledRule {
  id: string;
  /** File name relative to the rules directory. */
  file: string;
  /** Position of the rule's `id` in its file (1-based). */
  line: number;
  col: number;
  description?: string;
  final: boolean;
  matchers: Matcher[];
  actions: CompiledAction[];
  /** What the rule reads of a request (headers it names; whether it reads beyond the ledger's request facts). */
  reads: RuleReads;
}

/** An immutable, compiled rule set. A request uses one rule set from start to end. */
export interface RuleSet {
  /** Content hash of the files' names (within the directory) and texts, 12 hex digits: equal on every replica. */
  version: string;
  /** ISO time it was loaded. */
  loadedAt: string;
  /** Absolute directory, or '' for an in-memory set. */
  dir: string;
  files: string[];
  /** Enabled rules in evaluation order. */
  rules: CompiledRule[];
  /** Non-fatal findings (e.g. a rule that can never take effect). */
  warnings: LoadIssue[];
  /** Every header a rule names, lower-cased (their values are kept in usage records for replay). */
  headersRead: string[];
  /** Member names the rules' actions look for anywhere in a body (ActionModule.bodyKeys): the scan records them. */
  bodyKeys: string[];
}

/** Settings from the gateway config that compiling needs. */
export interface CompileOptions {
  /** Time budget of one JSONata evaluation, ms (`limits.rule_expression_ms`). */
  expressionMs?: number;
}

interface RawRule {
  id: string;
  description?: string;
  enabled?: boolean;
  final?: boolean;
  match?: MatchSpec;
  actions: Array<Record<string, unknown>>;
}

let validateRules: ReturnType<typeof compileSchema> | undefined;

/** The YAML rule files of `dir`, sorted by name; rule test files (`*.test.yaml`) sit beside them and are not rules. */
export function ruleFiles(dir: string): string[] {
  return readdirSync(dir)
    .filter((f) => /\.ya?ml$/.test(f) && !f.startsWith('.') && !/\.test\.ya?ml$/.test(f))
    .filter((f) => statSync(path.join(dir, f)).isFile())
    .sort();
}

/** A rule file's name and text (for loading from disk or from memory in tests). */
export interface RuleSource {
  /** Name shown in messages (relative path). */
  file: string;
  text: string;
  /** Name within the rules directory (what the version hash covers, so it is the same from any working directory). */
  name?: string;
}

/** Reads the rule files of `dir` (display names relative to the current directory, or absolute when outside it). */
export function readRuleDir(dir: string): RuleSource[] {
  const abs = path.resolve(dir);
  return ruleFiles(abs).map((f) => {
    const full = path.join(abs, f);
    const rel = path.relative(process.cwd(), full);
    return { file: rel && !rel.startsWith('..') ? rel : full, text: readFileSync(full, 'utf8'), name: f };
  });
}

/**
 * Loads and compiles the rule files of `dir`.
 * @param providers names of the providers defined in the gateway config.
 * @throws LoadError listing every error (warnings are kept on the returned set).
 */
export function loadRuleDir(dir: string, providers: Iterable<string>, opts: CompileOptions = {}): RuleSet {
  let sources: RuleSource[];
  try {
    sources = readRuleDir(dir);
  } catch (err) {
    throw new LoadError([{ file: dir, line: 1, col: 1, severity: 'error', message: `cannot read rules directory: ${(err as Error).message}` }]);
  }
  if (sources.length === 0) {
    // Like an empty file: deleting the last rule file (or a half-synced checkout) must not silently drop every
    // deny, throttle and route. A rule set with no rules is a file that says so.
    throw new LoadError([
      { file: dir, line: 1, col: 1, severity: 'error', message: 'the rules directory holds no rule files (*.yaml); an intentionally empty rule set is a file with `version: 1` and `rules: []`' },
    ]);
  }
  return compileRuleSources(sources, providers, path.resolve(dir), opts);
}

/**
 * Compiles rule sources (already in evaluation order).
 * @throws LoadError listing every error.
 */
export function compileRuleSources(sources: RuleSource[], providers: Iterable<string>, dir = '', opts: CompileOptions = {}): RuleSet {
  validateRules ??= compileSchema(buildRulesSchema());
  const providerSet = new Set(providers);
  const issues: LoadIssue[] = [];
  const rules: CompiledRule[] = [];
  const seen = new Map<string, string>();
  const hash = createHash('sha256');

  for (const src of sources) {
    hash
      .update(src.name ?? src.file)
      .update('\0')
      .update(src.text)
      .update('\0');
    const { source, issues: parseIssues } = SourceFile.parse(src.file, src.text);
    issues.push(...parseIssues);
    if (parseIssues.some((i) => i.severity === 'error')) continue;
    const data = source.toJS();
    if (data === null || data === undefined) {
      // Editors and deploy tools that truncate then write, or a half-synced ConfigMap, leave an empty file
      // for a moment: loading it as "no rules" would silently drop every deny, throttle and route in it.
      issues.push({
        file: src.file,
        line: 1,
        col: 1,
        severity: 'error',
        message: 'the file holds no rules (empty, whitespace or only comments; a truncated write?); an intentionally empty file says `version: 1` and `rules: []`',
      });
      continue;
    }
    if (!validateRules(data)) {
      issues.push(...schemaIssues(source, data, validateRules.errors));
      continue;
    }
    const raw = (data as { rules: RawRule[] }).rules;
    raw.forEach((r, i) => {
      const at: DocPath = ['rules', i];
      const firstFile = seen.get(r.id);
      if (firstFile !== undefined) {
        issues.push(source.issueAt([...at, 'id'], `duplicate rule id "${r.id}" (first defined in ${firstFile})`));
        return;
      }
      seen.set(r.id, `${src.file}:${source.position([...at, 'id']).line}`);
      if (r.enabled === false) return;
      const cx = (base: DocPath): CompileContext => ({
        providers: providerSet,
        expressionMs: opts.expressionMs,
        error: (sub, message, offset) => issues.push(source.issueAt([...base, ...sub], `rule "${r.id}": ${message}`, 'error', 'value', offset)),
        warning: (sub, message) => issues.push(source.issueAt([...base, ...sub], `rule "${r.id}": ${message}`, 'warning')),
      });
      const matchers = compileMatchers(r.match, cx([...at, 'match']));
      const actions = r.actions.map((a, j): CompiledAction => {
        const [name, params] = Object.entries(a)[0]!;
        const module = ACTIONS.get(name)!;
        return { name, module, compiled: module.compile(params, cx([...at, 'actions', j, name])) };
      });
      rules.push({ id: r.id, file: src.file, ...source.position([...at, 'id']), description: r.description, final: r.final ?? false, matchers, actions, reads: ruleReads(r.match, r.actions) });
    });
  }
  if (issues.some((i) => i.severity === 'error')) throw new LoadError(issues);
  const warnings = [...issues, ...deadRuleWarnings(rules)];
  return {
    version: hash.digest('hex').slice(0, 12),
    loadedAt: new Date().toISOString(),
    dir,
    files: sources.map((s) => s.file),
    rules,
    warnings,
    headersRead: [...new Set(rules.flatMap((r) => r.reads.headers))].sort(),
    // `file_id` always: forwarding finds a request's Files API references through it (resource affinity).
    bodyKeys: [...new Set(['file_id', ...rules.flatMap((r) => r.actions.flatMap((a) => a.module.bodyKeys ?? []))])].sort(),
  };
}

/**
 * Rules that can never take effect: after an earlier rule with no conditions that ends evaluation
 * (deny or final), or whose every action only writes settings an earlier unconditional rule always writes.
 */
function deadRuleWarnings(rules: CompiledRule[]): LoadIssue[] {
  const out: LoadIssue[] = [];
  const owned = new Map<string, string>(); // setting -> id of the unconditional rule that always writes it
  let stopper: string | null = null;
  const where = (rule: CompiledRule) => ({ file: rule.file, line: rule.line, col: rule.col });
  for (const rule of rules) {
    if (stopper) {
      out.push({ ...where(rule), severity: 'warning', message: `rule "${rule.id}" can never take effect: rule "${stopper}" matches every request and ends evaluation` });
      continue;
    }
    const perAction = rule.actions.map((a) => a.module.settings(a.compiled));
    const shadowedBy = perAction.every((s) => s.length > 0 && s.every((w) => owned.has(w.setting))) ? [...new Set(perAction.flat().map((w) => owned.get(w.setting)!))] : null;
    if (shadowedBy && rule.actions.length > 0) {
      out.push({
        ...where(rule),
        severity: 'warning',
        message: `rule "${rule.id}" can never take effect: everything it sets is already set by ${shadowedBy.map((s) => `"${s}"`).join(', ')}, which ${shadowedBy.length === 1 ? 'matches' : 'match'} every request`,
      });
    }
    if (rule.matchers.length === 0) {
      for (const s of perAction.flat()) if (s.always && !owned.has(s.setting)) owned.set(s.setting, rule.id);
      if (rule.final || rule.actions.some((a) => a.name === 'deny')) stopper = rule.id;
    }
  }
  return out;
}

export { LoadError };
