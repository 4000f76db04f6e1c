/**
 * Writes test/fixtures/secrets/gitleaks-positives.json: the positive test cases ("tps") of gitleaks' rules, read from
 * the Go sources that generate its rule file (cmd/generate/config/rules/*.go) of a gitleaks checkout at the release
 * vendored in secrets/ — the cases gitleaks itself validates each rule against. Only cases written as literals are
 * taken: a literal string, `utils.GenerateSampleSecret(id, literal)` and `utils.GenerateSampleSecrets(id, literal)`
 * (expanded with the sample formats of cmd/generate/config/utils/generate.go); cases built from random
 * secrets (`secrets.NewSecret(regex)`) get a string drawn from a seeded generator; any other case is left out and counted.
 *
 * Usage: node scripts/extract-gitleaks-cases.mjs <gitleaks checkout at v8.30.1>
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import RandExp from 'randexp';

// Random secrets (`secrets.NewSecret(regex)`) are drawn from a seeded generator, so the fixture is reproducible.
let seed = 0x5eed;
const random = () => {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};
/** A string matching Go regex `re` (gitleaks' `secrets.NewSecret`). */
function newSecret(re) {
  const r = new RandExp(re.replace(/^\(\?i\)/, ''));
  r.max = 8;
  r.randInt = (a, b) => a + Math.floor(random() * (b - a + 1));
  return r.gen();
}
const PATTERNS = {
  Numeric: (n) => `[0-9]{${n}}`,
  Hex: (n) => `[a-f0-9]{${n}}`,
  AlphaNumeric: (n) => `[a-z0-9]{${n}}`,
  AlphaNumericExtendedShort: (n) => `[a-z0-9_-]{${n}}`,
  AlphaNumericExtended: (n) => `[a-z0-9=_\\-]{${n}}`,
  AlphaNumericExtendedLong: (n) => `[a-z0-9\\/=_\\+\\-]{${n}}`,
  Hex8_4_4_4_12: () => '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}',
};

const root = process.argv[2];
if (!root) throw new Error('usage: node scripts/extract-gitleaks-cases.mjs <gitleaks checkout>');
const rulesDir = path.join(root, 'cmd/generate/config/rules');

/** Reads one Go string literal at `s[i]`; returns [value, next index] or null. */
function goString(s, i) {
  if (s[i] === '`') {
    const end = s.indexOf('`', i + 1);
    return end === -1 ? null : [s.slice(i + 1, end), end + 1];
  }
  if (s[i] !== '"') return null;
  let out = '';
  let j = i + 1;
  for (; s[j] !== '"'; j++) {
    if (s[j] === '\n' || j >= s.length) return null;
    if (s[j] !== '\\') {
      out += s[j];
      continue;
    }
    const c = s[++j];
    const simple = { n: '\n', t: '\t', r: '\r', '"': '"', '\\': '\\', "'": "'", a: '\x07', b: '\b', f: '\f', v: '\v' };
    if (c in simple) out += simple[c];
    else if (c === 'x') (out += String.fromCharCode(parseInt(s.slice(j + 1, j + 3), 16))), (j += 2);
    else if (c === 'u') (out += String.fromCodePoint(parseInt(s.slice(j + 1, j + 5), 16))), (j += 4);
    else if (c === 'U') (out += String.fromCodePoint(parseInt(s.slice(j + 1, j + 9), 16))), (j += 8);
    else return null;
  }
  return [out, j + 1];
}

/**
 * The value of an expression of string literals, `utils.<Pattern>("n")` (a regex), `secrets.NewSecret(expr)` (a random
 * string matching it) and `+`; null for anything else.
 */
function literalExpr(e) {
  e = e.replace(/\/\/[^\n]*$/gm, '').trim();
  let out = '';
  let i = 0;
  for (;;) {
    while (/\s/.test(e[i] ?? '')) i++;
    let value;
    const r = goString(e, i);
    if (r) {
      value = r[0];
      i = r[1];
    } else {
      const call = /^(utils|secrets)\.(\w+)\(/.exec(e.slice(i));
      if (!call) return null;
      let depth = 1;
      let j = i + call[0].length;
      for (; j < e.length && depth; j++) {
        if (e[j] === '"' || e[j] === '`') {
          const q = goString(e, j);
          if (!q) return null;
          j = q[1] - 1;
        } else if (e[j] === '(') depth++;
        else if (e[j] === ')') depth--;
      }
      const args = splitTop(e.slice(i + call[0].length, j - 1)).map(literalExpr);
      if (args.some((a) => a === null)) return null;
      if (call[1] === 'utils' && PATTERNS[call[2]]) value = PATTERNS[call[2]](...args);
      else if (call[1] === 'secrets' && call[2] === 'NewSecret' && args.length === 1) value = newSecret(args[0]);
      else return null;
      i = j;
    }
    out += value;
    while (/\s/.test(e[i] ?? '')) i++;
    if (i >= e.length) return out;
    if (e[i] !== '+') return null;
    i++;
  }
}

/** Splits `s` at top-level commas (outside strings, parentheses and braces). */
function splitTop(s) {
  const parts = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === '"' || c === '`') {
      const r = goString(s, i);
      if (r) i = r[1] - 1;
      continue;
    }
    if (c === '/' && s[i + 1] === '/') {
      i = s.indexOf('\n', i);
      if (i === -1) break;
      continue;
    }
    if ('({['.includes(c)) depth++;
    else if (')}]'.includes(c)) depth--;
    else if (c === ',' && depth === 0) {
      parts.push(s.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(s.slice(start));
  return parts.map((p) => p.replace(/\/\/[^\n]*/g, '').trim()).filter(Boolean);
}

/** The text between the brace at `open` and its match. */
function braced(s, open) {
  let depth = 0;
  for (let i = open; i < s.length; i++) {
    const c = s[i];
    if (c === '"' || c === '`') {
      const r = goString(s, i);
      if (r) i = r[1] - 1;
      continue;
    }
    if (c === '{') depth++;
    else if (c === '}' && --depth === 0) return s.slice(open + 1, i);
  }
  return '';
}

const gen = readFileSync(path.join(root, 'cmd/generate/config/utils/generate.go'), 'utf8');
const mapText = braced(gen, gen.indexOf('{', gen.indexOf('samples := map[string]string')));
const formats = splitTop(mapText)
  .map((kv) => kv.slice(kv.indexOf(':', kv.search(/["`]\s*:/)) + 1))
  .map(literalExpr)
  .filter((f) => f !== null);

const sample = (id, secret) => `${id}_api_token = "${secret}"`;
const samples = (id, secret) => formats.map((f) => f.replaceAll('{i}', id).replaceAll('{I}', id.toUpperCase()).replaceAll('{s}', secret));

/** Cases of one element of a tps list, or null when it is not literal. */
function cases(e) {
  const lit = literalExpr(e);
  if (lit !== null) return [lit];
  const call = /^utils\.GenerateSampleSecrets?\(([\s\S]*)\)(\.\.\.)?$/.exec(e.trim());
  if (call) {
    const args = splitTop(call[1]).map(literalExpr);
    if (args.length !== 2 || args.some((a) => a === null)) return null;
    return e.includes('GenerateSampleSecrets(') ? samples(args[0], args[1]) : [sample(args[0], args[1])];
  }
  return null;
}

const out = {};
let skipped = 0;
for (const f of readdirSync(rulesDir).filter((f) => f.endsWith('.go') && !f.endsWith('_test.go'))) {
  const src = readFileSync(path.join(rulesDir, f), 'utf8');
  for (const fn of src.split(/\nfunc /).slice(1)) {
    const id = /RuleID:\s*"([^"]+)"/.exec(fn)?.[1];
    if (!id) continue;
    const list = [];
    // tps := []string{...}, tps = append(tps, ...), tps := utils.GenerateSampleSecrets(...)
    for (const m of fn.matchAll(/tps\s*:?=\s*(\[\]string\{|append\(tps,|utils\.GenerateSampleSecrets?\()/g)) {
      let elements;
      if (m[1] === '[]string{') elements = splitTop(braced(fn, m.index + m[0].length - 1));
      else if (m[1].startsWith('append')) {
        const open = m.index + m[0].length;
        let depth = 1;
        let i = open;
        for (; i < fn.length && depth; i++) {
          if (fn[i] === '"' || fn[i] === '`') {
            const r = goString(fn, i);
            if (r) i = r[1] - 1;
          } else if (fn[i] === '(') depth++;
          else if (fn[i] === ')') depth--;
        }
        elements = splitTop(fn.slice(open, i - 1));
        if (elements[0]?.startsWith('[]string{')) elements = splitTop(braced(elements[0], elements[0].indexOf('{')));
      } else {
        const start = m.index + m[0].length - m[1].length;
        const end = fn.indexOf('\n', start);
        elements = [fn.slice(start, end).trim()];
      }
      for (const e of elements) {
        const c = cases(e.replace(/\.\.\.$/, ''));
        if (c) list.push(...c);
        else skipped++;
      }
    }
    if (list.length) out[id] = [...new Set(list)];
  }
}
const file = path.join(import.meta.dirname, '../test/fixtures/secrets/gitleaks-positives.json');
writeFileSync(file, `${JSON.stringify(out, null, 1)}\n`);
console.log(`${Object.keys(out).length} rules, ${Object.values(out).flat().length} cases written; ${skipped} cases not written as literals left out`);
