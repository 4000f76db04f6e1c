/**
 * Key pools: one provider, several upstream keys, their combined rate budget. A session sticks to its key
 * (prompt caches live per Anthropic workspace, so moving a session throws its cache away) and moves only
 * when that key is cooling down (after a 429) or failed (401/403). New sessions get a key by `round_robin`
 * or `least_loaded` (fewest in flight, then the most `anthropic-ratelimit-requests-remaining`). Cooldowns
 * live in the state store so that replicas share them; keys appear in logs only as fingerprints.
 */
import { createHash } from 'node:crypto';
import { LRUCache } from 'lru-cache';

/** `…abcd#1a2b3c`: the last 4 characters and 6 hex digits of the key's SHA-256; never the key. */
export function keyFingerprint(key: string): string {
  return `…${key.slice(-4)}#${createHash('sha256').update(key).digest('hex').slice(0, 6)}`;
}

/** One upstream key and what the gateway knows about it. */
export interface PooledKey {
  index: number;
  key: string;
  fingerprint: string;
  /** Answered 401/403: out of the pool until the config changes. */
  failed: boolean;
  inFlight: number;
  /** Last `anthropic-ratelimit-requests-remaining`, when the upstream sent one. */
  remaining: number | null;
}

/** The outcome of choosing a key. */
export type KeyChoice =
  | { kind: 'key'; key: PooledKey }
  | { kind: 'cooling'; until: number } // every usable key is cooling; the earliest ends then
  | { kind: 'none' }; // every key failed, or was tried already for this request

export type KeyStrategy = 'round_robin' | 'least_loaded';

/** Sticky sessions remembered per pool (least recently used are forgotten first). */
const STICKY_SESSIONS = 50_000;

export class KeyPool {
  readonly keys: PooledKey[];
  private readonly sticky = new LRUCache<string, number>({ max: STICKY_SESSIONS });
  private next = 0;

  constructor(
    readonly provider: string,
    keys: string[],
    readonly strategy: KeyStrategy,
  ) {
    this.keys = keys.map((key, index) => ({ index, key, fingerprint: keyFingerprint(key), failed: false, inFlight: 0, remaining: null }));
  }

  /** The state-store id of a key's cooldown. */
  cooldownId(k: PooledKey): string {
    return `cooldown:${this.provider}:${k.fingerprint}`;
  }

  /**
   * Chooses a key for `session` (sticky), skipping failed keys, keys in `tried` and keys cooling until
   * after `now` (`coolingUntil[i]`, epoch ms, 0 = not cooling).
   */
  choose(session: string, coolingUntil: number[], now: number, tried: ReadonlySet<number>): KeyChoice {
    const usable = this.keys.filter((k) => !k.failed && !tried.has(k.index));
    if (usable.length === 0) return { kind: 'none' };
    const ready = usable.filter((k) => (coolingUntil[k.index] ?? 0) <= now);
    if (ready.length === 0) return { kind: 'cooling', until: Math.min(...usable.map((k) => coolingUntil[k.index]!)) };
    const stuck = this.sticky.get(session);
    const keep = stuck === undefined ? undefined : ready.find((k) => k.index === stuck);
    const chosen = keep ?? this.pick(ready);
    this.sticky.set(session, chosen.index);
    return { kind: 'key', key: chosen };
  }

  private pick(ready: PooledKey[]): PooledKey {
    if (this.strategy === 'least_loaded') {
      return [...ready].sort((a, b) => a.inFlight - b.inFlight || (b.remaining ?? -1) - (a.remaining ?? -1) || a.index - b.index)[0]!;
    }
    // round robin over the whole ring, skipping keys that are not ready
    for (let i = 0; i < this.keys.length; i++) {
      const k = this.keys[(this.next + i) % this.keys.length]!;
      if (ready.includes(k)) {
        this.next = (k.index + 1) % this.keys.length;
        return k;
      }
    }
    return ready[0]!;
  }
}

/**
 * How long a key should cool down after a 429, ms: `retry-after` (seconds), else the earliest
 * `anthropic-ratelimit-*-reset` (RFC 3339 time), else 60 s. Headers: https://platform.claude.com/docs/en/api/rate-limits.
 */
export function cooldownMs(headers: Record<string, string | string[] | undefined>, now: number): number {
  const ra = Number(headers['retry-after']);
  if (Number.isFinite(ra) && ra >= 0) return Math.max(1000, ra * 1000);
  const resets = Object.entries(headers)
    .filter(([n]) => n.startsWith('anthropic-ratelimit-') && n.endsWith('-reset'))
    .map(([, v]) => Date.parse(String(v)) - now)
    .filter((ms) => Number.isFinite(ms) && ms > 0);
  return resets.length ? Math.min(...resets) : 60_000;
}
