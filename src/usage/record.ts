/**
 * The usage record: one per proxied request, what the ledger stores and reports aggregate. Never bodies,
 * prompts or credentials: the client is an id, the upstream key a fingerprint.
 */
import type { RequestFacts } from './facts.js';
import type { Usage } from './tap.js';

/**
 * How the request ended: answered (`ok`), client hung up (`aborted`), the upstream failed (`failed`), the
 * gateway refused it (`refused`: limits, throttles, budgets, denials, bad input), or the gateway itself
 * failed (`error`: a runaway rule, a bug).
 */
export type Outcome = 'ok' | 'aborted' | 'failed' | 'refused' | 'error';

/** What a usage record is of (see {@link UsageRecord.kind}). */
export type RecordKind = 'message' | 'batch' | 'resource' | 'other';

/** One request, accounted for. Token counts in tokens, time in ms, cost in USD (null: unknown price). */
export interface UsageRecord extends Usage {
  time: string;
  request_id: string;
  client_id: string | null;
  key_fingerprint: string | null;
  session_id: string | null;
  /** Who: the configured client id, else the account (or device) id Claude Code sends in `metadata.user_id`. */
  user_id: string | null;
  /** The project header's value (`attribution.project_header`, default `x-project`), set by developers through ANTHROPIC_CUSTOM_HEADERS. */
  project: string | null;
  /** Claude Code's agent or subagent id (`x-claude-code-agent-id`). */
  agent_id: string | null;
  requested_model: string | null;
  provider: string | null;
  model: string | null;
  /** Version (content hash) of the rule set that decided; null when no rule set ran (e.g. a bad client key). */
  rules_version: string | null;
  /** Ids of the rules that matched, in evaluation order. */
  rules: string[];
  /** What the rules may read of the request, for `switchyard replay`; null when the request was not decided. */
  facts: RequestFacts | null;
  tags: Record<string, string>;
  status: number;
  outcome: Outcome;
  error_type: string | null;
  /** The rule action that refused the request, `deny:<rule>`, `throttle:<rule>` or `budget:<rule>`; null (or absent, in records from before it) otherwise. */
  refused_by?: string | null;
  /** Secrets `scan_secrets` found in the request, counted by gitleaks rule id (never a value); null (or absent, in records from before it) when none. */
  secret_findings?: Record<string, number> | null;
  /**
   * What the record is of: `message` (a Messages or token-count request; null or absent in records from before it),
   * `batch` (one item of a Message Batch, priced at the batch rate once its result is known), `resource` (a call about a
   * batch, file, skill or model: no tokens) or `other` (a `/v1/...` call passed through, `passthrough: true`).
   */
  kind?: RecordKind | null;
  retries: number;
  latency_ms: number;
  ttft_ms: number | null;
  cost_usd: number | null;
}

/** Columns stored as JSON (text in SQLite, jsonb in PostgreSQL). */
export const JSON_COLUMNS: ReadonlySet<keyof UsageRecord> = new Set(['rules', 'tags', 'facts', 'secret_findings']);

/** Column order shared by the stores and the CSV export. */
export const RECORD_COLUMNS: ReadonlyArray<keyof UsageRecord> = [
  'time',
  'request_id',
  'client_id',
  'key_fingerprint',
  'session_id',
  'user_id',
  'project',
  'agent_id',
  'requested_model',
  'provider',
  'model',
  'rules_version',
  'rules',
  'facts',
  'tags',
  'status',
  'outcome',
  'error_type',
  'refused_by',
  'secret_findings',
  'kind',
  'retries',
  'latency_ms',
  'ttft_ms',
  'input_tokens',
  'output_tokens',
  'cache_creation_input_tokens',
  'cache_creation_5m_input_tokens',
  'cache_creation_1h_input_tokens',
  'cache_read_input_tokens',
  'cost_usd',
];
