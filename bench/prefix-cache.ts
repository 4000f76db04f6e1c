/**
 * A model of Anthropic's prompt cache for benchmarks and tests (bench:cache, test/scan-secrets.test.ts): the prompt is
 * a sequence of blocks in prompt order (each tool, each system block, each message content block); a breakpoint
 * caches the prefix ending at its block for its TTL (refreshed on a hit); a lookup at a breakpoint also finds entries
 * up to 20 blocks earlier (Anthropic's lookback); prefixes below the model's minimum cacheable length are not cached.
 * Tokens are estimated as characters / 4. Source: https://platform.claude.com/docs/en/build-with-claude/prompt-caching
 */
import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { minCacheableTokens } from '../src/actions/inject_cache.js';

const LOOKBACK_BLOCKS = 20;
const TTL_MS = { '5m': 5 * 60_000, '1h': 60 * 60_000 } as const;

/** The usage fields of an Anthropic answer that the cache decides. */
export interface Usage {
  input_tokens: number;
  cache_creation_input_tokens: number;
  cache_creation: { ephemeral_5m_input_tokens: number; ephemeral_1h_input_tokens: number };
  cache_read_input_tokens: number;
}

/**
 * Anthropic's prefix cache, modelled on simulated time (`now`, ms): `usage(body)` answers what the API would bill a
 * request — tokens read from the cache, written to it and not cached — and remembers what it wrote.
 */
export class PrefixCache {
  private entries = new Map<string, { expires: number; ttl: '5m' | '1h' }>();
  now = 0;

  usage(body: Record<string, any>): Usage {
    const blocks: Array<{ tokens: number; ttl?: '5m' | '1h'; hash: string }> = [];
    let h = createHash('sha1').update(String(body.model)).digest('hex');
    let tokens = 0;
    const add = (content: unknown, cc: unknown) => {
      const { cache_control: _omit, ...rest } = (typeof content === 'object' && content ? content : { text: content }) as Record<string, unknown>;
      const s = JSON.stringify(rest);
      h = createHash('sha1').update(h).update(s).digest('hex');
      tokens += Math.ceil(s.length / 4);
      blocks.push({ tokens, ttl: cc ? ((cc as { ttl?: string }).ttl === '1h' ? '1h' : '5m') : undefined, hash: h });
    };
    for (const t of body.tools ?? []) add(t, t.cache_control);
    if (typeof body.system === 'string') add(body.system, null);
    else for (const b of body.system ?? []) add(b, b.cache_control);
    for (const m of body.messages ?? []) {
      if (typeof m.content === 'string') add(m.content, null);
      else for (const b of m.content) add(b, b.cache_control);
    }
    if (body.cache_control && blocks.length) blocks.at(-1)!.ttl = body.cache_control.ttl === '1h' ? '1h' : '5m';
    const min = minCacheableTokens(String(body.model));
    const marks = blocks.map((b, i) => ({ ...b, i })).filter((b) => b.ttl && b.tokens >= min);
    const total = blocks.at(-1)?.tokens ?? 0;
    if (!marks.length) return { input_tokens: total, cache_creation_input_tokens: 0, cache_creation: { ephemeral_5m_input_tokens: 0, ephemeral_1h_input_tokens: 0 }, cache_read_input_tokens: 0 };
    let read = 0;
    for (const m of marks) {
      for (let i = m.i; i >= Math.max(0, m.i - LOOKBACK_BLOCKS + 1); i--) {
        const e = this.entries.get(blocks[i]!.hash);
        if (e && e.expires > this.now) {
          if (blocks[i]!.tokens > read) read = blocks[i]!.tokens;
          e.expires = this.now + TTL_MS[e.ttl];
          break;
        }
      }
    }
    const write = { '5m': 0, '1h': 0 };
    let covered = read;
    for (const m of marks) {
      if (m.tokens > covered) {
        write[m.ttl!] += m.tokens - covered;
        covered = m.tokens;
      }
      this.entries.set(m.hash, { expires: this.now + TTL_MS[m.ttl!], ttl: m.ttl! });
    }
    return {
      input_tokens: total - covered,
      cache_creation_input_tokens: write['5m'] + write['1h'],
      cache_creation: { ephemeral_5m_input_tokens: write['5m'], ephemeral_1h_input_tokens: write['1h'] },
      cache_read_input_tokens: read,
    };
  }
}

/**
 * An Anthropic upstream on 127.0.0.1 that bills every Messages request by `cache` (one text answer, 100 output tokens).
 * @returns its base URL and a close function.
 */
export async function startCacheUpstream(cache: PrefixCache): Promise<{ url: string; close(): void }> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const usage = cache.usage(JSON.parse(Buffer.concat(chunks).toString()) as Record<string, unknown>);
      const message = { id: 'msg_sim', type: 'message', role: 'assistant', model: 'claude-sonnet-4-6', content: [{ type: 'text', text: 'ok' }], stop_reason: 'end_turn', stop_sequence: null };
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ ...message, usage: { ...usage, output_tokens: 100 } }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => server.close() };
}
