/**
 * Rule tests (`switchyard test`): YAML files of cases, each a request and what the rules must decide for it,
 * checked against the gateway's own decision (rules/offline.ts) — route and provider, upstream model,
 * fallback chain, tags, denials, throttle and budget refusals under a given state, headers, cache breakpoints,
 * and the rules that matched, in order. Test files are `*.test.yaml` beside the rules or any `*.yaml` under
 * `rules/tests/`; they are validated against `schemas/rule-tests.schema.json` with file:line:col errors, as
 * rule files are. Coverage counts, over all cases, which rules matched, which conditional rules were also
 * seen not to match (the other branch), and which fallback chains a case checked.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import type { BudgetSpec } from '../actions/budget/index.js';
import type { Throttle } from '../actions/throttle/index.js';
import { loadConfig, type GatewayConfig } from '../config.js';
import { ENFORCING } from '../actions/index.js';
import { budgetExpiry, budgetKey, periodOf } from '../actions/budget/enforce.js';
import { scopeValue } from '../actions/scope.js';
import { useThrottle } from '../actions/throttle/enforce.js';
import type { EnforceDeps, Hold } from '../actions/types.js';
import { MemoryStore } from '../state/store.js';
import { compileSchema, LoadError, schemaIssues, SourceFile, type DocPath, type LoadIssue } from '../validation.js';
import { loadRuleDir, type RuleSet } from './load.js';
import { decideOffline, type OfflineDecision } from './offline.js';
import { BATCH_ITEM_PATH, batchItemParams } from './batch.js';

/** A string expectation: exact text, or `/regex/flags`. */
type TextMatch = string;

/** What a case expects; every field is optional and only the ones given are checked. */
export interface Expectations {
  /** The provider the request is sent to first. */
  provider?: string;
  /** The model sent upstream (after the provider's `models:` rename). */
  model?: string;
  /** The providers tried after the first, in order. */
  fallback?: string[];
  /** Billing tags: each named tag has this value; `null` means the tag is not set. */
  tags?: Record<string, string | null>;
  /** `false`: not denied; else the denial's status, message and rule. */
  denied?: false | { status?: number; message?: TextMatch; rule?: string };
  /** `false`: admitted; else refused by a throttle or budget under the case's `state`. */
  refused?: false | { by?: 'throttle' | 'budget'; rule?: string; status?: number; message?: TextMatch };
  /** Rule ids of the throttles that apply, in order. */
  throttles?: string[];
  /** Rule ids of the budgets that apply, in order. */
  budgets?: string[];
  /** Upstream headers: `set` names each header's value (`null`: not set); `removed` lists headers removed. */
  headers?: { set?: Record<string, string | null>; removed?: string[] };
  /** Breakpoints inject_cache added: a count, or the places (`tools`, `system`, `last_user`, `message[N]`). */
  cache_breakpoints?: { added: number | string[] };
  /** Secrets scan_secrets found, counted by gitleaks rule id (`{}`: none). */
  secret_findings?: Record<string, number>;
  /** Ids of the rules that matched, in evaluation order (exactly these). */
  matched?: string[];
  /** Whether the rules changed the body. */
  body_changed?: boolean;
}

/** One test case as written. */
export interface RuleTestCase {
  name: string;
  /** The test file and the case's position in it (1-based). */
  file: string;
  line: number;
  col: number;
  /** Absolute path of the gateway config the case runs against. */
  config: string;
  request: {
    model?: string;
    stream?: boolean;
    body?: Record<string, unknown>;
    /** Resolved against the test file's directory. */
    body_file?: string;
    /** With a Message Batch body: the `custom_id` of the item decided (as a `POST /v1/messages` of its params). */
    batch_item?: string;
    headers?: Record<string, string>;
    client?: string;
    /** A signed-in user's identity-provider groups. */
    groups?: string[];
    path?: string;
    time?: string;
  };
  /** Counters before the request: USD spent per budget rule this period; what each throttle rule used this minute. */
  state?: { budgets?: Record<string, number>; throttles?: Record<string, { requests?: number; input_tokens?: number; concurrent?: number }> };
  expect: Expectations;
}

/** One expectation that did not hold. */
export interface Mismatch {
  /** The expectation's name, e.g. `provider`, `tags.team`, `matched`. */
  field: string;
  expected: unknown;
  actual: unknown;
}

/** The outcome of one case. */
export interface CaseResult {
  name: string;
  file: string;
  line: number;
  col: number;
  ok: boolean;
  mismatches: Mismatch[];
  /** Set when the case could not be run (its config or rules do not load, a body file is missing). */
  error?: string;
  /** Run time, ms. */
  ms: number;
}

/** A coverage item: a rule, the non-matching branch of a conditional rule, or a route's fallback chain. */
export interface CoverageItem {
  kind: 'rule' | 'branch' | 'fallback';
  rule: string;
  file: string;
  line: number;
  covered: boolean;
  /** What is not exercised, for people. */
  what: string;
}

/** Coverage of one rule set by the cases run against it. */
export interface CoverageReport {
  items: CoverageItem[];
  /** Covered items / all items, percent (100 when there are no items). */
  percent: number;
}

const SCHEMA_TEXT = {
  description: 'A string, or /regex/flags to match a pattern (e.g. "/Opus/i").',
  type: 'string',
};

/** JSON Schema (2020-12) of a rule test file; written to schemas/rule-tests.schema.json. */
export function buildRuleTestsSchema(): object {
  const strings = { type: 'array', items: { type: 'string', minLength: 1 } };
  const expect = {
    type: 'object',
    additionalProperties: false,
    description: 'What the rules must decide; only the fields given are checked.',
    properties: {
      provider: { type: 'string', minLength: 1, description: 'The provider the request is sent to first.' },
      model: { type: 'string', minLength: 1, description: "The model sent upstream (after the provider's models: rename)." },
      fallback: { ...strings, description: 'Providers tried after the first, in order.' },
      tags: { type: 'object', additionalProperties: { type: ['string', 'null'] }, description: 'Each named billing tag has this value; null: not set.' },
      denied: {
        description: 'false: not denied; else what the denial says.',
        anyOf: [
          { const: false },
          {
            type: 'object',
            additionalProperties: false,
            properties: { status: { type: 'integer', minimum: 400, maximum: 599 }, message: SCHEMA_TEXT, rule: { type: 'string' } },
          },
        ],
      },
      refused: {
        description: "false: admitted; else refused by a throttle or budget under the case's state.",
        anyOf: [
          { const: false },
          {
            type: 'object',
            additionalProperties: false,
            properties: { by: { enum: ['throttle', 'budget'] }, rule: { type: 'string' }, status: { type: 'integer' }, message: SCHEMA_TEXT },
          },
        ],
      },
      throttles: { ...strings, description: 'Rule ids of the throttles that apply, in order.' },
      budgets: { ...strings, description: 'Rule ids of the budgets that apply, in order.' },
      headers: {
        type: 'object',
        additionalProperties: false,
        properties: {
          set: { type: 'object', additionalProperties: { type: ['string', 'null'] }, description: "Each header's upstream value; null: not set by the rules." },
          removed: { ...strings, description: 'Headers the rules remove.' },
        },
      },
      cache_breakpoints: {
        type: 'object',
        additionalProperties: false,
        required: ['added'],
        properties: { added: { anyOf: [{ type: 'integer', minimum: 0 }, strings], description: 'How many breakpoints inject_cache added, or where (tools, system, last_user, message[N]).' } },
      },
      secret_findings: {
        type: 'object',
        additionalProperties: { type: 'integer', minimum: 1 },
        description: 'Secrets scan_secrets found, counted by gitleaks rule id, e.g. {aws-access-token: 1} ({}: none found).',
      },
      matched: { ...strings, description: 'Ids of the rules that matched, in evaluation order (exactly these).' },
      body_changed: { type: 'boolean', description: 'Whether the rules changed the body.' },
    },
  };
  const testCase = {
    type: 'object',
    additionalProperties: false,
    required: ['name', 'expect'],
    properties: {
      name: { type: 'string', minLength: 1, description: 'What the case checks, for people; printed on each result line.' },
      request: {
        type: 'object',
        additionalProperties: false,
        description: 'The request. Without body or body_file: a one-message request for `model`.',
        properties: {
          model: { type: 'string', minLength: 1, description: 'body.model' },
          stream: { type: 'boolean', description: 'body.stream' },
          body: { type: 'object', description: 'The Messages API request body (model and stream above override its own).' },
          body_file: { type: 'string', minLength: 1, description: 'A JSON file holding the body, relative to the test file.' },
          batch_item: {
            type: 'string',
            minLength: 1,
            description:
              'The body (or body_file) is a Message Batch create body ({"requests": [{custom_id, params}]}): the item with this custom_id is decided, as the gateway decides each item at batch create (a Messages request of its params, with the create path /v1/messages/batches and this request\'s headers and client). model and stream override the item\'s.',
          },
          headers: { type: 'object', additionalProperties: { type: 'string' }, description: 'Request headers (names case-insensitive).' },
          client: { type: 'string', minLength: 1, description: 'Client id from the config (its tags apply); a signed-in user is their email.' },
          groups: { type: 'array', items: { type: 'string', minLength: 1 }, description: "A signed-in user's identity-provider groups (rules' group:)." },
          path: { type: 'string', pattern: '^/', description: 'Endpoint path and query (default /v1/messages?beta=true).' },
          time: {
            type: 'string',
            pattern: '^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}(:\\d{2}(\\.\\d+)?)?(Z|[+-]\\d{2}:\\d{2})$',
            description: 'Request time, ISO 8601 (rules read time.hour and time.weekday; budgets their period).',
          },
        },
      },
      state: {
        type: 'object',
        additionalProperties: false,
        description: 'Counters before the request.',
        properties: {
          budgets: { type: 'object', additionalProperties: { type: 'number', minimum: 0 }, description: 'USD already spent this period, per budget rule id.' },
          throttles: {
            type: 'object',
            description: 'What each throttle rule has used this minute, per rule id.',
            additionalProperties: {
              type: 'object',
              additionalProperties: false,
              properties: { requests: { type: 'integer', minimum: 0 }, input_tokens: { type: 'integer', minimum: 0 }, concurrent: { type: 'integer', minimum: 0 } },
            },
          },
        },
      },
      expect,
    },
  };
  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    $id: 'https://switchyard.dev/schemas/rule-tests.schema.json',
    title: 'Switchyard rule tests',
    type: 'object',
    additionalProperties: false,
    required: ['version', 'tests'],
    properties: {
      version: { const: 1, description: 'Format version; always 1.' },
      config: { type: 'string', minLength: 1, description: 'The gateway config the cases run against, relative to this file (default: the one switchyard test was given).' },
      tests: { type: 'array', minItems: 1, items: testCase },
    },
  };
}

/** Whether a file name is a rule test file when it sits beside the rules. */
export const isTestFileName = (name: string) => /\.test\.ya?ml$/.test(name);

/**
 * The test files under `p`: itself when a file; in a directory, its `*.test.yaml` files and every YAML file
 * of its `tests/` subdirectory, sorted.
 */
export function findTestFiles(p: string): string[] {
  if (!statSync(p).isDirectory()) return [p];
  const yaml = (dir: string, pick: (f: string) => boolean) =>
    existsSync(dir) && statSync(dir).isDirectory()
      ? readdirSync(dir)
          .filter((f) => pick(f) && statSync(path.join(dir, f)).isFile())
          .sort()
          .map((f) => path.join(dir, f))
      : [];
  return [...yaml(p, isTestFileName), ...yaml(path.join(p, 'tests'), (f) => /\.ya?ml$/.test(f))];
}

/** `p` relative to the working directory when it is inside it, else as given. */
function displayPath(p: string): string {
  const rel = path.relative(process.cwd(), path.resolve(p));
  return rel && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : p;
}

let validateTests: ReturnType<typeof compileSchema> | undefined;

/** Cases per batch when a test file is read in pieces ({@link splitTestFile}). */
const CASES_PER_BATCH = 500;

/**
 * A plain block-style test file (`tests:` at the top level, its items `- ` at one indentation, no anchors or
 * aliases) split into pieces of at most `perPiece` cases, each a test file of its own (the lines around the
 * `tests:` list repeated) with the line its cases start at in the whole file; null for any other layout (read
 * whole). Lets `switchyard test` hold one piece's YAML at a time: 100,000 cases in one file took 1.2 GB whole.
 */
export function splitTestFile(text: string, perPiece = CASES_PER_BATCH): Array<{ text: string; map: (line: number) => number }> | null {
  if (/(^|[\s[{,])[&*][A-Za-z0-9_-]/m.test(text.replace(/#.*$/gm, ''))) return null;
  const lines = text.split('\n');
  const t = lines.findIndex((l) => /^tests:\s*(#.*)?$/.test(l));
  if (t < 0) return null;
  const isContent = (l: string) => l.trim() !== '' && !l.trimStart().startsWith('#');
  const firstItem = lines.findIndex((l, i) => i > t && isContent(l));
  const indent = firstItem < 0 ? null : /^( *)- /.exec(lines[firstItem]!)?.[1];
  if (indent === undefined || indent === null) return null;
  let end = lines.length;
  const starts: number[] = [];
  for (let i = t + 1; i < lines.length; i++) {
    const l = lines[i]!;
    if (!isContent(l)) continue;
    const lead = /^ */.exec(l)![0].length;
    if (l.startsWith(`${indent}- `) || l === `${indent}-`) starts.push(i);
    else if (lead < indent.length || lead === 0) {
      // Less indented than the items (or at column 0 when they are): the next top-level key; the list is over.
      end = i;
      break;
    }
  }
  if (starts.length <= perPiece) return null;
  const head = lines.slice(0, t + 1);
  const tail = lines.slice(end);
  const pieces: Array<{ text: string; map: (line: number) => number }> = [];
  for (let k = 0; k < starts.length; k += perPiece) {
    const from = starts[k]!;
    const to = k + perPiece < starts.length ? starts[k + perPiece]! : end;
    const body = lines.slice(from, to);
    const text = [...head, ...body, ...tail].join('\n');
    // Lines are 1-based: the head keeps its numbers, the piece's items move to where they stand in the file.
    const map = (line: number) => (line <= head.length ? line : line <= head.length + body.length ? line - head.length + from : line - head.length - body.length + end);
    pieces.push({ text, map });
  }
  return pieces;
}

/**
 * Reads test files into batches of cases, one piece of a file at a time ({@link splitTestFile}), so a run holds
 * one batch's YAML, not every file's. Problems (broken YAML, schema errors, missing body files) are issues with
 * file:line:col; a piece with errors contributes no cases.
 * @param defaultConfig absolute path of the config for files that do not name one.
 */
export function* testCaseBatches(files: string[], defaultConfig: string): Generator<{ cases: RuleTestCase[]; issues: LoadIssue[] }> {
  validateTests ??= compileSchema(buildRuleTestsSchema());
  for (const given of files) {
    const file = displayPath(given);
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      yield { cases: [], issues: [{ file, line: 1, col: 1, severity: 'error', message: `cannot read: ${(err as Error).message}` }] };
      continue;
    }
    const pieces = splitTestFile(text) ?? [{ text, map: (line: number) => line }];
    const reported = new Set<string>();
    for (const piece of pieces) {
      const batch = loadTestText(file, piece.text, defaultConfig);
      // The lines around `tests:` are in every piece: a problem there is reported once.
      const issues = batch.issues
        .map((i) => ({ ...i, line: piece.map(i.line) }))
        .filter((i) => {
          const key = `${i.line}:${i.col}:${i.message}`;
          if (reported.has(key)) return false;
          reported.add(key);
          return true;
        });
      yield { cases: batch.cases.map((c) => ({ ...c, line: piece.map(c.line) })), issues };
    }
  }
}

/** One test file's text (or a piece of it) into cases; see {@link testCaseBatches}. */
function loadTestText(file: string, text: string, defaultConfig: string): { cases: RuleTestCase[]; issues: LoadIssue[] } {
  const cases: RuleTestCase[] = [];
  const issues: LoadIssue[] = [];
  const { source, issues: parseIssues } = SourceFile.parse(file, text);
  issues.push(...parseIssues);
  if (parseIssues.some((i) => i.severity === 'error')) return { cases, issues };
  const data = source.toJS();
  const validate = (validateTests ??= compileSchema(buildRuleTestsSchema()));
  if (!validate(data)) {
    issues.push(...schemaIssues(source, data, validate.errors));
    return { cases, issues };
  }
  const doc = data as { config?: string; tests: Array<Omit<RuleTestCase, 'file' | 'line' | 'col' | 'config'>> };
  const dir = path.dirname(path.resolve(file));
  const config = doc.config ? path.resolve(dir, doc.config) : defaultConfig;
  if (doc.config && !existsSync(config)) {
    issues.push(source.issueAt(['config'], `config file ${doc.config} does not exist (resolved to ${config})`));
    return { cases, issues };
  }
  const before = issues.length;
  const fileCases: RuleTestCase[] = doc.tests.map((t, i) => {
    const at: DocPath = ['tests', i];
    const request = { ...(t.request ?? {}) };
    if (request.body_file) {
      const resolved = path.resolve(dir, request.body_file);
      if (!existsSync(resolved)) issues.push(source.issueAt([...at, 'request', 'body_file'], `body file ${request.body_file} does not exist (resolved to ${resolved})`));
      request.body_file = resolved;
    }
    if (request.body && request.body_file) issues.push(source.issueAt([...at, 'request'], 'give body or body_file, not both'));
    for (const [k, v] of Object.entries(t.expect)) {
      if (typeof v === 'object' && v && 'message' in v) checkPattern(source, [...at, 'expect', k, 'message'], (v as { message?: string }).message, issues);
    }
    return { ...t, request, file, config, ...source.position([...at, 'name']) };
  });
  if (issues.length === before) cases.push(...fileCases);
  return { cases, issues };
}

function checkPattern(source: SourceFile, at: DocPath, text: string | undefined, issues: LoadIssue[]): void {
  if (text === undefined) return;
  try {
    textMatches(text, '');
  } catch (err) {
    issues.push(source.issueAt(at, `not a valid /regex/: ${(err as Error).message}`));
  }
}

/** Whether `actual` matches `expected`: exact text, or `/regex/flags`. @throws SyntaxError on a bad regex. */
function textMatches(expected: TextMatch, actual: string): boolean {
  const m = /^\/(.*)\/([dgimsuyv]*)$/s.exec(expected);
  return m ? new RegExp(m[1]!, m[2]).test(actual) : expected === actual;
}

/** The body of a case's request. */
function caseBody(c: RuleTestCase): Record<string, unknown> {
  const r = c.request;
  const given = r.body_file ? (JSON.parse(readFileSync(r.body_file, 'utf8')) as Record<string, unknown>) : (r.body ?? { max_tokens: 1024, messages: [{ role: 'user', content: 'Hello' }] });
  const base = r.batch_item === undefined ? given : batchItemParams(given, r.batch_item);
  const body = { ...base };
  if (r.model !== undefined) body.model = r.model;
  if (r.stream !== undefined) body.stream = r.stream;
  body.model ??= 'claude-sonnet-4-6';
  return body;
}

/** What admission does with the case's state: null when admitted, else who refused and why. */
async function refusal(c: RuleTestCase, o: OfflineDecision, now: Date): Promise<{ by: 'throttle' | 'budget'; rule: string; status: number; message: string } | null> {
  const store = new MemoryStore(() => now.getTime());
  const d = o.decision;
  for (const [rule, usd] of Object.entries(c.state?.budgets ?? {})) {
    for (const b of d.budgets.filter((x: BudgetSpec) => x.rule === rule)) {
      const { start, end } = periodOf(b.per, now);
      await store.addSpend(budgetKey(b, scopeValue(b.scope, o.rc, d), start), usd, budgetExpiry(end));
    }
  }
  for (const [rule, used] of Object.entries(c.state?.throttles ?? {})) {
    for (const t of d.throttles.filter((x: Throttle) => x.rule === rule)) await useThrottle(store, t, scopeValue(t.scope, o.rc, d), used);
  }
  // The same enforcers as live traffic, in the same order; what they admitted is settled as a request that did no work.
  const log = { warn() {}, error() {} } as unknown as EnforceDeps['log'];
  const deps: EnforceDeps = { state: store, log, warnOnce() {}, spendLimits: null, notifier: { reached() {} }, budgetGate: { unverified: false } };
  const holds: Hold[] = [];
  try {
    for (const action of ENFORCING) {
      try {
        const hold = await action.enforcer(deps).admit({ decision: d, rc: o.rc, requestId: 'test', now, config: { budgets: { on_ledger_failure: 'open' } } });
        if (hold) holds.push(hold);
      } catch (err) {
        const e = err as { status: number; message: string; rule?: string };
        return { by: action.name as 'throttle' | 'budget', rule: e.rule ?? '', status: e.status, message: e.message };
      }
    }
    return null;
  } finally {
    await Promise.all(holds.map((h) => h.settle({ worked: false, outputTokens: 0, costUsd: null })));
  }
}

/** The breakpoints inject_cache added, by place. */
function addedBreakpoints(extra: Record<string, unknown>): string[] {
  const cb = extra.cache_breakpoints as { places?: Array<{ place: string; status: string }> } | undefined;
  return (cb?.places ?? []).filter((p) => p.status === 'injected').map((p) => p.place);
}

/** Compares a case's expectations with what the gateway decided. */
async function check(c: RuleTestCase, o: OfflineDecision, now: Date): Promise<Mismatch[]> {
  const out: Mismatch[] = [];
  const e = c.expect;
  const d = o.decision;
  const same = (field: string, expected: unknown, actual: unknown) => {
    if (JSON.stringify(expected) !== JSON.stringify(actual)) out.push({ field, expected, actual });
  };
  const chain = o.prepared.chain;
  if (e.provider !== undefined) same('provider', e.provider, chain[0]!.provider.name);
  if (e.model !== undefined) same('model', e.model, chain[0]!.model);
  if (e.fallback !== undefined)
    same(
      'fallback',
      e.fallback,
      chain.slice(1).map((l) => l.provider.name),
    );
  for (const [k, v] of Object.entries(e.tags ?? {})) same(`tags.${k}`, v, d.tags[k] ?? null);
  if (e.denied !== undefined) {
    if (e.denied === false || d.denied === null) same('denied', e.denied === false ? false : e.denied, d.denied ? { rule: d.denied.rule, status: d.denied.status, message: d.denied.message } : false);
    else {
      if (e.denied.status !== undefined) same('denied.status', e.denied.status, d.denied.status);
      if (e.denied.rule !== undefined) same('denied.rule', e.denied.rule, d.denied.rule);
      if (e.denied.message !== undefined && !textMatches(e.denied.message, d.denied.message)) out.push({ field: 'denied.message', expected: e.denied.message, actual: d.denied.message });
    }
  }
  if (e.refused !== undefined) {
    const r = d.denied || d.error ? null : await refusal(c, o, now);
    if (e.refused === false || r === null) same('refused', e.refused === false ? false : e.refused, r ?? false);
    else {
      if (e.refused.by !== undefined) same('refused.by', e.refused.by, r.by);
      if (e.refused.rule !== undefined) same('refused.rule', e.refused.rule, r.rule);
      if (e.refused.status !== undefined) same('refused.status', e.refused.status, r.status);
      if (e.refused.message !== undefined && !textMatches(e.refused.message, r.message)) out.push({ field: 'refused.message', expected: e.refused.message, actual: r.message });
    }
  }
  if (e.throttles !== undefined)
    same(
      'throttles',
      e.throttles,
      d.throttles.map((t) => t.rule),
    );
  if (e.budgets !== undefined)
    same(
      'budgets',
      e.budgets,
      d.budgets.map((b) => b.rule),
    );
  for (const [k, v] of Object.entries(e.headers?.set ?? {})) same(`headers.set.${k.toLowerCase()}`, v, d.headers.set[k.toLowerCase()] ?? null);
  for (const k of e.headers?.removed ?? []) if (!d.headers.remove.includes(k.toLowerCase())) out.push({ field: 'headers.removed', expected: k.toLowerCase(), actual: d.headers.remove });
  if (e.cache_breakpoints) {
    const added = addedBreakpoints(d.extra);
    if (typeof e.cache_breakpoints.added === 'number') same('cache_breakpoints.added', e.cache_breakpoints.added, added.length);
    else same('cache_breakpoints.added', e.cache_breakpoints.added, added);
  }
  if (e.secret_findings !== undefined) same('secret_findings', e.secret_findings, (d.extra.secret_findings as { counts?: Record<string, number> } | undefined)?.counts ?? {});
  if (e.matched !== undefined)
    same(
      'matched',
      e.matched,
      d.rules.filter((r) => r.matched).map((r) => r.id),
    );
  if (e.body_changed !== undefined) same('body_changed', e.body_changed, d.bodyChanged || chain[0]!.model !== d.route.requested_model);
  if (d.error && !e.denied) out.push({ field: 'error', expected: null, actual: `rule "${d.error.rule}" failed: ${d.error.message}` });
  return out;
}

/** Per rule set: what the cases saw, for coverage. */
interface Seen {
  rules: RuleSet;
  matched: Set<string>;
  unmatched: Set<string>;
  fallbackChecked: Set<string>;
}

/** A config and its rule set, loaded once for every case that uses it. */
interface Target {
  config: GatewayConfig;
  rules: RuleSet;
}

/** Results of a run, and what coverage needs. */
export interface RunResult {
  results: CaseResult[];
  /** Coverage of each rule set the cases ran against, keyed by its rules directory. */
  coverage: Map<string, CoverageReport>;
}

/**
 * Runs every case against its config's rules (`rulesDir` overrides the config's, for every case), batch by batch.
 * Cases of a config or rule set that does not load fail with the loader's messages.
 */
export async function runCases(cases: RuleTestCase[] | Iterable<RuleTestCase[]>, rulesDir?: string): Promise<RunResult> {
  const targets = new Map<string, Target | Error>();
  const seen = new Map<string, Seen>();
  const results: CaseResult[] = [];
  // Cases, or batches of them read one piece of a file at a time (testCaseBatches): a batch is let go once run.
  const batches: Iterable<RuleTestCase[]> = Array.isArray(cases) ? [cases as RuleTestCase[]] : cases;
  for (const batch of batches)
    for (const c of batch) {
      const t0 = performance.now();
      const result: CaseResult = { name: c.name, file: c.file, line: c.line, col: c.col, ok: false, mismatches: [], ms: 0 };
      results.push(result);
      let target = targets.get(c.config);
      if (!target) {
        try {
          const config = loadConfig(c.config, { rulesDir, missingEnv: 'warning' });
          target = { config, rules: loadRuleDir(config.rules_dir, Object.keys(config.providers), { expressionMs: config.limits.rule_expression_ms }) };
        } catch (err) {
          target = err as Error;
        }
        targets.set(c.config, target);
      }
      if (target instanceof Error) {
        result.error = target.message;
        result.ms = performance.now() - t0;
        continue;
      }
      try {
        const now = c.request.time ? new Date(c.request.time) : new Date();
        const headers: Record<string, string> = { 'content-type': 'application/json' };
        for (const [k, v] of Object.entries(c.request.headers ?? {})) headers[k.toLowerCase()] = v;
        const o = await decideOffline(target.config, target.rules, {
          body: caseBody(c),
          headers,
          path: c.request.batch_item === undefined ? (c.request.path ?? '/v1/messages?beta=true') : BATCH_ITEM_PATH,
          clientId: c.request.client,
          groups: c.request.groups,
          now,
        });
        result.mismatches = await check(c, o, now);
        result.ok = result.mismatches.length === 0;
        const s = seen.get(target.rules.dir) ?? { rules: target.rules, matched: new Set(), unmatched: new Set(), fallbackChecked: new Set() };
        seen.set(target.rules.dir, s);
        for (const r of o.decision.rules) {
          if (r.matched) s.matched.add(r.id);
          else if (!r.reason?.startsWith('not evaluated')) s.unmatched.add(r.id);
        }
        if (c.expect.fallback !== undefined && o.decision.route.rule) s.fallbackChecked.add(o.decision.route.rule);
      } catch (err) {
        result.error = (err as Error).message;
      }
      result.ms = performance.now() - t0;
    }
  const coverage = new Map<string, CoverageReport>();
  for (const [dir, s] of seen) coverage.set(dir, coverageOf(s));
  return { results, coverage };
}

function coverageOf(s: Seen): CoverageReport {
  const items: CoverageItem[] = [];
  for (const r of s.rules.rules) {
    const at = { rule: r.id, file: r.file, line: r.line };
    items.push({ kind: 'rule', ...at, covered: s.matched.has(r.id), what: 'never matched' });
    if (r.matchers.length) {
      const conds = r.matchers.map((m) => m.name).join(', ');
      items.push({ kind: 'branch', ...at, covered: s.unmatched.has(r.id), what: `never seen not to match (its ${conds} condition${r.matchers.length > 1 ? 's' : ''} always held)` });
    }
    const fallback = r.actions.some((a) => a.name === 'route_to' && ((a.compiled as { fallback?: unknown[] }).fallback?.length ?? 0) > 0);
    if (fallback) items.push({ kind: 'fallback', ...at, covered: s.fallbackChecked.has(r.id), what: 'its fallback chain is never checked (expect.fallback)' });
  }
  const covered = items.filter((i) => i.covered).length;
  return { items, percent: items.length ? (100 * covered) / items.length : 100 };
}

/** Loads the test files under `paths` and runs them; what the CLI prints comes from the returned results. */
export async function runTestPaths(paths: string[], defaultConfig: string, rulesDir?: string): Promise<RunResult & { issues: LoadIssue[]; files: string[] }> {
  const files = paths.flatMap((p) => {
    try {
      return findTestFiles(p);
    } catch (err) {
      throw new LoadError([{ file: p, line: 1, col: 1, severity: 'error', message: `cannot read: ${(err as Error).message}` }]);
    }
  });
  const issues: LoadIssue[] = [];
  const config = path.resolve(defaultConfig);
  const batches = (function* () {
    for (const b of testCaseBatches(files, config)) {
      issues.push(...b.issues);
      yield b.cases;
    }
  })();
  const run = await runCases(batches, rulesDir);
  return { ...run, issues, files };
}

const json = (v: unknown) => JSON.stringify(v);

/** The human-readable report: a line per case, the expected/actual diff of each failure, and a summary. */
export function formatText(results: CaseResult[]): string {
  const lines: string[] = [];
  for (const r of results) {
    lines.push(`${r.ok ? 'ok  ' : 'FAIL'} ${r.file}:${r.line} ${r.name}`);
    if (r.error) lines.push(`       error: ${r.error}`);
    for (const m of r.mismatches) {
      lines.push(`       ${m.field}:`);
      lines.push(`         - expected ${json(m.expected)}`);
      lines.push(`         + actual   ${json(m.actual)}`);
    }
  }
  const failed = results.filter((r) => !r.ok).length;
  lines.push('');
  lines.push(`${results.length - failed} passed, ${failed} failed`);
  return lines.join('\n');
}

/** TAP version 13, one test point per case with a YAML diagnostic block on failure. */
export function formatTap(results: CaseResult[]): string {
  const lines = ['TAP version 13', `1..${results.length}`];
  results.forEach((r, i) => {
    lines.push(`${r.ok ? 'ok' : 'not ok'} ${i + 1} - ${r.name.replace(/#/g, '\\#')}`);
    if (!r.ok) {
      lines.push('  ---', `  at: ${json(`${r.file}:${r.line}:${r.col}`)}`);
      if (r.error) lines.push(`  error: ${json(r.error)}`);
      for (const m of r.mismatches) lines.push(`  ${m.field}:`, `    expected: ${json(m.expected)}`, `    actual: ${json(m.actual)}`);
      lines.push('  ...');
    }
  });
  return lines.join('\n');
}

const xml = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** JUnit XML (the shape CI systems read): one testsuite per test file, one testcase per case. */
export function formatJunit(results: CaseResult[]): string {
  const byFile = new Map<string, CaseResult[]>();
  for (const r of results) byFile.set(r.file, [...(byFile.get(r.file) ?? []), r]);
  const lines = ['<?xml version="1.0" encoding="UTF-8"?>', `<testsuites name="switchyard rules" tests="${results.length}" failures="${results.filter((r) => !r.ok).length}">`];
  for (const [file, rs] of byFile) {
    lines.push(`  <testsuite name="${xml(file)}" tests="${rs.length}" failures="${rs.filter((r) => !r.ok).length}">`);
    for (const r of rs) {
      const head = `    <testcase classname="${xml(file)}" name="${xml(r.name)}" file="${xml(file)}" line="${r.line}" time="${(r.ms / 1000).toFixed(4)}"`;
      if (r.ok) lines.push(`${head}/>`);
      else {
        const text = [r.error ? `error: ${r.error}` : '', ...r.mismatches.map((m) => `${m.field}: expected ${json(m.expected)}, actual ${json(m.actual)}`)].filter(Boolean).join('\n');
        lines.push(`${head}>`, `      <failure message="${xml(text.split('\n')[0]!)}">${xml(text)}</failure>`, '    </testcase>');
      }
    }
    lines.push('  </testsuite>');
  }
  lines.push('</testsuites>');
  return lines.join('\n');
}

/** The coverage section: percent per rule set, and every item not exercised with its file:line. */
export function formatCoverage(coverage: Map<string, CoverageReport>): string {
  const lines: string[] = [];
  for (const [dir, c] of coverage) {
    const missing = c.items.filter((i) => !i.covered);
    lines.push(`coverage ${dir ? displayPath(dir) : '(rules)'}: ${c.percent.toFixed(1)}% (${c.items.length - missing.length} of ${c.items.length} items)`);
    for (const i of missing) lines.push(`  ${i.file}:${i.line}: ${i.kind} "${i.rule}" ${i.what}`);
  }
  return lines.join('\n');
}
