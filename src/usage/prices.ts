/**
 * Prices and cost: USD per million tokens per model from `prices.yaml`, with Anthropic's cache multipliers
 * (5m writes 1.25× input, 1h writes 2×, reads 0.1×) and the Message Batches rate (0.5×: "50% discount on both input
 * and output tokens", the multipliers stacking; https://platform.claude.com/docs/en/about-claude/pricing).
 */
import { readFileSync } from 'node:fs';
import { LRUCache } from 'lru-cache';
import picomatch from 'picomatch';
import { parse } from 'yaml';
import type { Usage } from './tap.js';

/** One model's prices, USD per million tokens, and its cache multipliers. */
export interface ModelPrice {
  input: number;
  output: number;
  cache_write_5m: number;
  cache_write_1h: number;
  cache_read: number;
  /** The Message Batches rate, a multiplier of every token price (0.5). */
  batch: number;
}

/** A loaded price table. */
export interface PriceTable {
  /**
   * The price of `model` at `provider`: an entry `<provider>/<model glob>` first (a cloud's own price, e.g.
   * `bedrock-eu/claude-sonnet-4-5*` for a regional endpoint's premium), else the model's; null when the table
   * knows neither.
   */
  priceOf(model: string, provider?: string | null): ModelPrice | null;
}

const DEFAULT_MULTIPLIERS = { cache_write_5m: 1.25, cache_write_1h: 2, cache_read: 0.1, batch: 0.5 };

interface RawPrices {
  multipliers?: Partial<typeof DEFAULT_MULTIPLIERS>;
  models?: Record<string, Partial<ModelPrice> & { input: number; output: number }>;
}

/** Builds a table from its parsed form. */
export function priceTable(raw: RawPrices): PriceTable {
  const mult = { ...DEFAULT_MULTIPLIERS, ...raw.multipliers };
  const entries = Object.entries(raw.models ?? {}).map(([pattern, p]) => ({ test: picomatch(pattern), price: { ...mult, ...p } as ModelPrice }));
  // Keyed by model names clients choose: bounded in bytes (about 1 MB), the least recently used forgotten first.
  const cache = new LRUCache<string, { price: ModelPrice | null }>({ maxSize: 1 << 20, sizeCalculation: (_v, k) => k.length + 64 });
  return {
    priceOf(model, provider) {
      const key = provider ? `${provider}/${model}` : model;
      let hit = cache.get(key);
      if (hit === undefined) {
        // A `*` never crosses the `/`: plain model globs do not match the provider-qualified name.
        hit = { price: (provider ? entries.find((e) => e.test(key))?.price : undefined) ?? entries.find((e) => e.test(model))?.price ?? null };
        cache.set(key, hit);
      }
      return hit.price;
    },
  };
}

/**
 * Loads `prices.yaml`.
 * @throws Error naming the file when it cannot be read or parsed.
 */
export function loadPrices(file: string): PriceTable {
  try {
    return priceTable(parse(readFileSync(file, 'utf8')) as RawPrices);
  } catch (err) {
    throw new Error(`cannot load prices from ${file}: ${(err as Error).message}`);
  }
}

/**
 * Cost of `usage` in USD: each token kind at its price; null when the price is unknown. `batch`: a Message Batch
 * item, every token at the price's `batch` multiplier.
 */
export function costUsd(usage: Usage, price: ModelPrice | null, batch = false): number | null {
  if (!price) return null;
  const perToken = price.input / 1e6;
  const cost =
    usage.input_tokens * perToken +
    usage.cache_creation_5m_input_tokens * perToken * price.cache_write_5m +
    usage.cache_creation_1h_input_tokens * perToken * price.cache_write_1h +
    usage.cache_read_input_tokens * perToken * price.cache_read +
    usage.output_tokens * (price.output / 1e6);
  return Math.round(cost * (batch ? price.batch : 1) * 1e9) / 1e9;
}
