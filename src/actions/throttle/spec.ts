/** The shape of a compiled `throttle` as the decision carries it (shared by the action module and its enforcer). */

/** What a throttle is counted per: `key` and `client` both mean the client id. */
export type ThrottleScope = 'key' | 'client' | 'user' | 'project' | 'session' | 'model' | 'global' | `tag:${string}`;

/** A compiled throttle, as it appears in `decision.throttles`. */
export interface Throttle {
  /** Id of the rule that set it (counters are keyed by it). */
  rule: string;
  scope: ThrottleScope;
  requests_per_minute?: number;
  input_tokens_per_minute?: number;
  output_tokens_per_minute?: number;
  concurrent?: number;
  /** Bucket capacity as a multiple of the per-minute limit (default 1). */
  burst: number;
  shadow: boolean;
}
