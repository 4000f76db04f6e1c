/**
 * A provider as the config resolves it: what every provider type has (name, base URL, keys, timeouts, pool,
 * retries, breaker) and the per-type settings. A leaf module, so that config.ts can use the provider table
 * (upstream/providers/index.ts) without an import cycle.
 */

/** Upstream timeouts, ms. */
export interface Timeouts {
  connect_ms: number;
  /** Non-streaming calls: until the response headers (which come with the whole answer). */
  headers_ms: number;
  /** Streaming calls: until the response headers, i.e. the stream opens. */
  first_byte_ms: number;
  body_ms: number;
}

/** One upstream provider, resolved. */
export interface ProviderConfig {
  name: string;
  /** The provider's `type`: a key of the provider table (upstream/providers/index.ts). */
  type: string;
  /** Base URL without a trailing slash. */
  base_url: string;
  /** Resolved upstream keys; empty = forward the client's credential. */
  keys: string[];
  timeouts: Timeouts;
  key_strategy: 'round_robin' | 'least_loaded';
  /** Model renames for this provider (requested → sent). */
  models: Record<string, string>;
  /** type openai: drop Claude Code's attribution line from the system prompt (default true). */
  strip_attribution: boolean;
  /** type openai: map Anthropic `thinking` to `reasoning_effort` (default false). */
  reasoning_effort: boolean;
  /** type openai: vendor reasoning shown as thinking blocks (default false). */
  reasoning_as_thinking: boolean;
  /** type anthropic / bedrock: the anthropic-beta values to forward, or null for the type's default. */
  betas: string[] | null;
  /** type anthropic: `/v1/...` calls switchyard has no route for are forwarded to this provider (default false). */
  passthrough: boolean;
  /** type anthropic: the `anthropic-workspace-id` sent on every request (Claude Platform on AWS), or null. */
  workspace_id: string | null;
  /** type bedrock: the AWS region signed and called, and the shared-config profile (null: the default chain). */
  bedrock: { region: string; profile: string | null } | null;
  /** type vertex: the location and project called, and the credentials file (null: Application Default Credentials). */
  vertex: { region: string; project: string; credentials_file: string | null } | null;
  retries: { max: number; base_delay_ms: number; max_delay_ms: number; budget_ms: number };
  /** `statuses`: the answer statuses that count as failures (default: any 5xx). */
  breaker: { failures: number; cooldown_ms: number; statuses?: number[] };
}
