/**
 * Rule evaluation time: 10 and 100 rules, each with a JSONata `when` condition (and a model glob on
 * half of them), evaluated against a 76 KB Claude-Code-shaped request. Median and p99 in µs.
 */
import { claudeCodeBody } from '../test/helpers.js';

// The compiled code that production runs (`npm run bench` builds dist/ first), not the tsx-transpiled source.
const { buildContext } = (await import('../dist/rules/context.js' as string)) as typeof import('../src/rules/context.js');
const { evaluate } = (await import('../dist/rules/evaluate.js' as string)) as typeof import('../src/rules/evaluate.js');
const { compileRuleSources } = (await import('../dist/rules/load.js' as string)) as typeof import('../src/rules/load.js');

function ruleFile(n: number): string {
  const rules: string[] = [];
  for (let i = 0; i < n; i++) {
    const match = i % 2 === 0 ? `      model: "claude-*"\n      when: "$count(messages) > ${i} and stream = true"` : `      when: "estimate.input_tokens > ${i * 1000} and client.id != 'nobody'"`;
    rules.push(`  - id: r${i}\n    match:\n${match}\n    actions:\n      - tag_billing: { t${i % 5}: v${i} }\n      - set_headers: { x-r${i % 7}: "${i}" }`);
  }
  return `version: 1\nrules:\n${rules.join('\n')}\n`;
}

export async function benchRules(): Promise<Record<string, { median_us: number; p99_us: number }>> {
  const body = claudeCodeBody({ targetBytes: 76_000 });
  const raw = JSON.stringify(body);
  const out: Record<string, { median_us: number; p99_us: number }> = {};
  for (const n of [10, 100]) {
    const rs = compileRuleSources([{ file: 'bench.yaml', text: ruleFile(n) }], ['anthropic']);
    const rc = buildContext({ path: '/v1/messages', body, headers: { 'x-claude-code-session-id': 's' }, bodyBytes: raw.length, clientId: 'alice' });
    for (let i = 0; i < 300; i++) await evaluate(rs, rc, 'anthropic');
    const times: number[] = [];
    for (let i = 0; i < 2000; i++) {
      const t = process.hrtime.bigint();
      await evaluate(rs, rc, 'anthropic');
      times.push(Number(process.hrtime.bigint() - t) / 1000);
    }
    times.sort((a, b) => a - b);
    out[`${n}_rules`] = { median_us: Math.round(times[1000]!), p99_us: Math.round(times[1980]!) };
  }
  return out;
}
