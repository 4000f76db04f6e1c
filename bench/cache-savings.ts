/**
 * `npm run bench:cache`: what inject_cache saves. A fake upstream that models Anthropic's prefix cache
 * answers a synthetic 50-turn agent session (a ~25K-token tools + system prefix and a growing history)
 * sent through the real gateway, once with no rules and once with the bundled rules/ (which inject
 * breakpoints). Each run is priced with Anthropic's multipliers: base input 1×, 5m cache writes 1.25×,
 * 1h writes 2×, cache reads 0.1× (https://platform.claude.com/docs/en/build-with-claude/prompt-caching,
 * "Pricing"). Output tokens are the same in every run and left out. The same is done for a
 * Claude-Code-shaped session that already carries 3 breakpoints, to show injection never makes it worse.
 *
 * The cache model: the prompt is a sequence of blocks in prompt order (each tool, each system block, each
 * message content block); a breakpoint caches the prefix ending at its block for its TTL (refreshed on a
 * hit); a lookup at a breakpoint also finds entries up to 20 blocks earlier (Anthropic's lookback); prefixes
 * below the model's minimum cacheable length are not cached. Tokens are estimated as characters / 4.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { request } from 'undici';
import { createLogger } from '../src/log.js';
import { startGateway } from '../src/server/serve.js';
import { PrefixCache, startCacheUpstream, type Usage } from './prefix-cache.js';

const MULTIPLIER = { input: 1, write5m: 1.25, write1h: 2, read: 0.1 };

const ROOT = path.resolve(import.meta.dirname, '..');
const text = (n: number, seed: string) => {
  let s = '';
  for (let i = 0; s.length < n; i++) s += `${seed} line ${i}: the synthetic agent reads, edits and tests code. `;
  return s.slice(0, n);
};

/** A 50-turn agent session: the body of each request, history growing by a tool_use + tool_result per turn. */
function* session(opts: { clientMarkers: boolean }): Generator<Record<string, unknown>> {
  const tools = Array.from({ length: 20 }, (_, i) => ({ name: `tool_${i}`, description: text(4000, `tool ${i}`), input_schema: { type: 'object', properties: { arg: { type: 'string' } } } }));
  const cc = { type: 'ephemeral' };
  const system = opts.clientMarkers
    ? [
        { type: 'text', text: 'x-anthropic-billing-header: cc_version=2.1.0; cc_entrypoint=cli' },
        { type: 'text', text: text(12_000, 'system'), cache_control: cc },
        { type: 'text', text: text(8_000, 'context'), cache_control: cc },
      ]
    : [{ type: 'text', text: text(20_000, 'system') }];
  const messages: Array<Record<string, unknown>> = [{ role: 'user', content: [{ type: 'text', text: text(2000, 'task') }] }];
  for (let turn = 0; turn < 50; turn++) {
    const last = messages.at(-1) as { content: Array<Record<string, unknown>> };
    const content = opts.clientMarkers ? last.content.map((b, j) => (j === last.content.length - 1 ? { ...b, cache_control: cc } : b)) : last.content;
    yield { model: 'claude-sonnet-4-6', max_tokens: 4096, tools, system, messages: [...messages.slice(0, -1), { ...last, content }] };
    messages.push({ role: 'assistant', content: [{ type: 'tool_use', id: `toolu_${turn}`, name: `tool_${turn % 20}`, input: { arg: text(600, `call ${turn}`) } }] });
    messages.push({ role: 'user', content: [{ type: 'tool_result', tool_use_id: `toolu_${turn}`, content: text(6000, `result ${turn}`) }] });
  }
}

function cost(u: Usage): number {
  return (
    u.input_tokens * MULTIPLIER.input +
    u.cache_creation.ephemeral_5m_input_tokens * MULTIPLIER.write5m +
    u.cache_creation.ephemeral_1h_input_tokens * MULTIPLIER.write1h +
    u.cache_read_input_tokens * MULTIPLIER.read
  );
}

/** Sends a session through a gateway serving `rulesDir` to a fresh cache model; returns the summed cost in input-token units. */
async function run(rulesDir: string, clientMarkers: boolean): Promise<{ cost: number; usage: Usage }> {
  const cache = new PrefixCache();
  const upstream = await startCacheUpstream(cache);
  const dir = mkdtempSync(path.join(tmpdir(), 'switchyard-cache-bench-'));
  const config = path.join(dir, 'switchyard.yaml');
  writeFileSync(config, `listen: { host: 127.0.0.1, port: 0 }\nrules: ${rulesDir}\nproviders:\n  anthropic:\n    type: anthropic\n    base_url: ${upstream.url}\n`);
  const gw = await startGateway({ configFile: config, watch: false, logger: createLogger({ level: 'silent' }) });
  const total: Usage = { input_tokens: 0, cache_creation_input_tokens: 0, cache_creation: { ephemeral_5m_input_tokens: 0, ephemeral_1h_input_tokens: 0 }, cache_read_input_tokens: 0 };
  let sum = 0;
  try {
    for (const body of session({ clientMarkers })) {
      cache.now += 20_000; // a turn every 20 s
      const r = await request(gw.url + '/v1/messages', { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': 'sk-sim' }, body: JSON.stringify(body) });
      const u = ((await r.body.json()) as { usage: Usage }).usage;
      sum += cost(u);
      total.input_tokens += u.input_tokens;
      total.cache_creation_input_tokens += u.cache_creation_input_tokens;
      total.cache_creation.ephemeral_5m_input_tokens += u.cache_creation.ephemeral_5m_input_tokens;
      total.cache_creation.ephemeral_1h_input_tokens += u.cache_creation.ephemeral_1h_input_tokens;
      total.cache_read_input_tokens += u.cache_read_input_tokens;
    }
  } finally {
    await gw.close();
    upstream.close();
  }
  return { cost: sum, usage: total };
}

const emptyRules = mkdtempSync(path.join(tmpdir(), 'switchyard-no-rules-'));
// An empty rule set is said so (an empty directory is a load error: a mount that did not happen).
writeFileSync(path.join(emptyRules, '00-none.yaml'), 'version: 1\nrules: []\n');
const bundled = path.join(ROOT, 'rules');
const USD_PER_MTOK_INPUT = 3; // Claude Sonnet 4.6 base input price, for scale only
const usd = (units: number) => Math.round((units / 1e6) * USD_PER_MTOK_INPUT * 1000) / 1000;

const plain = await run(emptyRules, false);
const injected = await run(bundled, false);
const ccPlain = await run(emptyRules, true);
const ccInjected = await run(bundled, true);
const result = {
  unmarked_session: {
    without_injection_usd: usd(plain.cost),
    with_bundled_rules_usd: usd(injected.cost),
    cost_ratio: Math.round((injected.cost / plain.cost) * 1000) / 1000,
    usage_with_injection: injected.usage,
  },
  claude_code_session_with_3_markers: {
    without_injection_usd: usd(ccPlain.cost),
    with_bundled_rules_usd: usd(ccInjected.cost),
    cost_ratio: Math.round((ccInjected.cost / ccPlain.cost) * 1000) / 1000,
  },
};
console.log(JSON.stringify(result, null, 2));
