import { loadRuleDir } from './src/rules/load.ts';
import { buildContext } from './src/rules/context.ts';
import { evaluate } from './src/rules/evaluate.ts';
import { lazyBody, scanJsonObject, serializeBody } from './src/server/json-scan.ts';
import { claudeCodeBody } from './test/helpers.ts';
const rules = loadRuleDir('rules', ['anthropic']);
const raw = Buffer.from(JSON.stringify(claudeCodeBody({ targetBytes: 76_000, stream: false })));
const headers = { 'content-type': 'application/json', 'x-api-key': 'sk-x', 'x-claude-code-session-id': 's1' };
const t = { scan: 0, ctx: 0, eval: 0, ser: 0 };
const N = Number(process.argv[2] ?? 3000);
for (let i = 0; i < N; i++) {
  const a = performance.now();
  const body = lazyBody(scanJsonObject(raw, 64));
  const b = performance.now();
  const rc = buildContext({ path: '/v1/messages', body, headers, bodyBytes: raw.length });
  const c = performance.now();
  const d = await evaluate(rules, rc, 'anthropic');
  const e = performance.now();
  const out = d.bodyChanged ? serializeBody(d.body, body) : raw;
  const f = performance.now();
  if (i >= N / 3) { t.scan += b - a; t.ctx += c - b; t.eval += e - c; t.ser += f - e; }
  if (i === 0) console.log('changed', d.bodyChanged, out.length, JSON.stringify(d.extra).slice(0, 300));
}
const n = N - N / 3;
console.log(Object.fromEntries(Object.entries(t).map(([k, v]) => [k, ((v / n) * 1000).toFixed(1) + ' us'])));
