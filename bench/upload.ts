/**
 * `npm run bench -- upload`: a 100 MB Files API upload streamed through the built gateway (its own process) to a
 * fake Anthropic API that keeps files per key (test/fake-anthropic-api.ts), against the same upload sent to the fake
 * directly and through bench/pipe-proxy.mjs (the simplest streaming Node proxy, `req.pipe(http.request(…))`), in
 * one run. Each proxy's RSS is sampled from /proc every 10 ms during its upload: the figure is its rise over its RSS
 * just before (issue 32's bound for the gateway: at most 20 MB). Also the wall time of each upload, and CPU per MB
 * (utime + stime, /proc).
 */
import { writeFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { request } from 'undici';
import { startFakeAnthropicApi } from '../test/fake-anthropic-api.js';
import { writeConfig } from '../test/helpers.js';
import path from 'node:path';
import { cpuMicros, r3, ROOT, rssOf, startGatewayProcess, startProcess, stopAll } from './procs.js';

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
  const pipe = await startProcess([path.join(ROOT, 'bench/pipe-proxy.mjs'), api.url]);
  /** One measured upload through `url` (process `pid`): RSS before and at its peak, seconds, CPU µs. */
  const measure = async (url: string, pid: number) => {
    await upload(url, MB, 'sk-bench-a'); // warm-up: connections, code paths
    await new Promise((r) => setTimeout(r, 300));
    const before = rssOf(pid);
    const cpu0 = cpuMicros(pid);
    let peak = before;
    const sampler = setInterval(() => {
      peak = Math.max(peak, rssOf(pid));
    }, 10);
    const s = await upload(url, sizeMb * MB, 'sk-bench-a');
    clearInterval(sampler);
    return { before, peak, s, cpu: cpuMicros(pid) - cpu0 };
  };
  try {
    const direct = await upload(api.url, sizeMb * MB, 'sk-bench-a');
    const g = await measure(gw.url, gw.child.pid!);
    const p = await measure(pipe.url, pipe.child.pid!);
    return {
      size_mb: sizeMb,
      direct_s: r3(direct),
      gateway_rss_before_mb: r3(g.before / MB),
      gateway_rss_growth_mb: r3((g.peak - g.before) / MB),
      gateway_s: r3(g.s),
      gateway_cpu_ms_per_mb: r3(g.cpu / 1000 / sizeMb),
      pipe_proxy_rss_before_mb: r3(p.before / MB),
      pipe_proxy_rss_growth_mb: r3((p.peak - p.before) / MB),
      pipe_proxy_s: r3(p.s),
      pipe_proxy_cpu_ms_per_mb: r3(p.cpu / 1000 / sizeMb),
    };
  } finally {
    await stopAll({ gw, pipe });
    await api.close();
  }
}
