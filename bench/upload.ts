/**
 * `npm run bench -- upload`: a 100 MB Files API upload streamed through the built gateway (its own process) to a
 * fake Anthropic API that keeps files per key (test/fake-anthropic-api.ts), against the same upload sent to the fake
 * directly, in one run. The gateway's RSS is sampled from /proc every 10 ms during its upload: the figure is its
 * rise over its RSS just before (issue 32's bound: at most 20 MB). Also the wall time of each upload, and the
 * gateway's CPU per MB (utime + stime, /proc).
 */
import { writeFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { request } from 'undici';
import { startFakeAnthropicApi } from '../test/fake-anthropic-api.js';
import { writeConfig } from '../test/helpers.js';
import { cpuMicros, r3, rssOf, startGatewayProcess, stopAll } from './procs.js';

const MB = 1024 * 1024;

/** Uploads `size` bytes as one multipart file to `url`/v1/files; resolves with the seconds it took. */
async function upload(url: string, size: number, key: string): Promise<number> {
  const boundary = 'switchyard-bench-boundary';
  const head = Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.bin"\r\nContent-Type: application/octet-stream\r\n\r\n`);
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  const chunk = Buffer.alloc(MB, 0x61);
  const body = async function* () {
    yield head;
    for (let sent = 0; sent < size; sent += MB) yield chunk;
    yield tail;
  };
  const t0 = performance.now();
  const r = await request(`${url}/v1/files`, {
    method: 'POST',
    headers: {
      'x-api-key': key,
      'anthropic-version': '2023-06-01',
      'anthropic-beta': 'files-api-2025-04-14',
      'content-type': `multipart/form-data; boundary=${boundary}`,
      'content-length': String(head.length + size + tail.length),
    },
    body: Readable.from(body()),
  });
  const answer = (await r.body.json()) as { size_bytes?: number };
  if (r.statusCode !== 200 || answer.size_bytes !== head.length + size + tail.length) throw new Error(`upload answered ${r.statusCode}: ${JSON.stringify(answer)}`);
  return (performance.now() - t0) / 1000;
}

/** The upload figures (see the module comment). */
export async function benchUpload(sizeMb = 100): Promise<Record<string, number>> {
  const api = await startFakeAnthropicApi();
  const { configFile } = writeConfig({
    upstream: api.url,
    providers: `  anthropic:\n    type: anthropic\n    base_url: ${api.url}\n    keys: ["sk-bench-a", "sk-bench-b"]\n`,
    extraConfig: 'limits: { request_timeout_ms: 600000 }\n',
  });
  writeFileSync(configFile.replace(/switchyard\.yaml$/, 'rules/50-default.yaml'), 'version: 1\nrules: []\n');
  const gw = await startGatewayProcess(configFile);
  try {
    const pid = gw.child.pid!;
    await upload(gw.url, MB, 'sk-client'); // warm-up: connections, code paths
    const direct = await upload(api.url, sizeMb * MB, 'sk-bench-a');
    global.gc?.();
    await new Promise((r) => setTimeout(r, 200));
    const before = rssOf(pid);
    const cpu0 = cpuMicros(pid);
    let peak = before;
    const sampler = setInterval(() => {
      peak = Math.max(peak, rssOf(pid));
    }, 10);
    const through = await upload(gw.url, sizeMb * MB, 'sk-client');
    clearInterval(sampler);
    const cpu = cpuMicros(pid) - cpu0;
    return {
      size_mb: sizeMb,
      gateway_rss_before_mb: r3(before / MB),
      gateway_rss_peak_mb: r3(peak / MB),
      gateway_rss_growth_mb: r3((peak - before) / MB),
      direct_s: r3(direct),
      gateway_s: r3(through),
      gateway_cpu_ms_per_mb: r3(cpu / 1000 / sizeMb),
    };
  } finally {
    await stopAll({ gw });
    await api.close();
  }
}
