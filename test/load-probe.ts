/**
 * Child process of test/lazy-load.test.ts: starts a gateway in this process on the config named by argv[2], sends one
 * request through it for each model in PROBE_MODELS (comma-separated; default claude-sonnet-4-5), and prints one JSON
 * line `{ statuses, esm, cjs }`: the answers' statuses, the ES modules loaded (recorded by load-hooks.mjs) and the
 * CommonJS modules in require's cache.
 */
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';

// Run as `node --import ./test/load-register.mjs --import tsx test/load-probe.ts <config>`.
const { startGateway } = await import('../src/server/serve.js');
const { createLogger } = await import('../src/log.js');
const gw = await startGateway({ configFile: process.argv[2]!, watch: false, logger: createLogger({ level: 'silent' }) });
const statuses: number[] = [];
for (const model of (process.env.PROBE_MODELS ?? 'claude-sonnet-4-5').split(',')) {
  const r = await fetch(`${gw.url}/v1/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'anthropic-version': '2023-06-01', 'x-api-key': 'sk-probe' },
    body: JSON.stringify({ model, max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] }),
  });
  await r.arrayBuffer();
  statuses.push(r.status);
}
await gw.close();
const esm = readFileSync(process.env.SWITCHYARD_LOADS_FILE!, 'utf8').split('\n').filter(Boolean);
console.log(JSON.stringify({ statuses, esm, cjs: Object.keys(createRequire(import.meta.url).cache) }));
