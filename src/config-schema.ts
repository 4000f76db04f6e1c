/**
 * JSON Schema (2020-12) of the gateway config file `switchyard.yaml`. This object is the single source:
 * the loader compiles it with ajv, and `npm run schemas` writes it to `schemas/config.schema.json` for
 * editors (a test checks the file is current).
 */

/** Default timeouts of an upstream provider, ms. Anthropic recommends streaming for calls that may run
 * longer than 10 minutes (https://platform.claude.com/docs/en/api/errors, "Long requests"), so a
 * non-streaming call may legitimately wait that long for its headers. A streaming call opens its stream
 * at once (`message_start` first), so its first byte gets 120 s, the bound Anthropic's own Claude apps gateway
 * uses for the first byte (code.claude.com, "Claude apps gateway"). */
import { adapterFor, PROVIDER_TYPES } from './upstream/providers/index.js';

export const DEFAULT_TIMEOUTS = { connect_ms: 10_000, headers_ms: 600_000, first_byte_ms: 120_000, body_ms: 600_000 } as const;

/** Gateway retries: few, because Claude Code retries up to 10 times itself (../shared/CLAUDE_CODE_TRAFFIC.md). */
export const DEFAULT_RETRIES = { max: 2, base_delay_ms: 250, max_delay_ms: 4000, budget_ms: 20_000 } as const;

/** Shared state (Redis) defaults: command timeout, circuit retry and concurrency-slot lease, ms. */
export const DEFAULT_STATE = { command_timeout_ms: 100, retry_ms: 1000, slot_lease_ms: 30_000 } as const;

/** Circuit breaker defaults. */
export const DEFAULT_BREAKER = { failures: 5, cooldown_ms: 30_000 } as const;

/** Anthropic's own request size limit for the Messages and Token Counting APIs: 32 MB
 * (https://platform.claude.com/docs/en/api/errors, "Request size limits"). */
export const DEFAULT_MAX_BODY_BYTES = 32 * 1024 * 1024;

/** Defaults of the other request limits: header bytes (Node's own default is 16 KB; Claude Code's headers,
 * with custom headers and a long beta list, stay well under 32 KB), ms to receive a whole request, and
 * proxied requests in flight. */
export const DEFAULT_LIMITS = {
  max_header_bytes: 32 * 1024,
  request_timeout_ms: 120_000,
  max_concurrent_requests: 2000,
  stall_ms: 330_000,
  rule_expression_ms: 10,
  max_json_depth: 256,
  max_inflight_body_bytes: 256 * 1024 * 1024,
  max_inflight_body_bytes_per_client: 96 * 1024 * 1024,
  // Message Batches: "up to 256 MB in total size" (https://platform.claude.com/docs/en/build-with-claude/batch-processing).
  max_batch_bytes: 256 * 1024 * 1024,
  // Files API: 500 MB per file (https://platform.claude.com/docs/en/build-with-claude/files).
  max_file_bytes: 500 * 1024 * 1024,
} as const;

const timeouts = {
  type: 'object',
  additionalProperties: false,
  description: 'Upstream timeouts in milliseconds.',
  properties: {
    connect_ms: { type: 'integer', minimum: 1, description: `TCP+TLS connect timeout, ms (default ${DEFAULT_TIMEOUTS.connect_ms}).` },
    headers_ms: {
      type: 'integer',
      minimum: 1,
      description: `Non-streaming calls: time allowed until the upstream's response headers arrive, ms (default ${DEFAULT_TIMEOUTS.headers_ms}: non-streaming calls with long thinking send headers only at the end).`,
    },
    first_byte_ms: {
      type: 'integer',
      minimum: 1,
      description: `Streaming calls (stream: true): time allowed until the stream opens (the response headers), ms (default ${DEFAULT_TIMEOUTS.first_byte_ms}).`,
    },
    body_ms: { type: 'integer', minimum: 1, description: `Longest silence allowed between two chunks of the response body, ms (default ${DEFAULT_TIMEOUTS.body_ms}).` },
  },
} as const;

export const configSchema = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  $id: 'https://switchyard.dev/schemas/config.schema.json',
  title: 'Switchyard gateway config (switchyard.yaml)',
  description: 'Where the gateway listens, which upstream providers it may use, and its limits. `${NAME}` and `${NAME:-default}` in any string are replaced from the environment when the file loads.',
  type: 'object',
  additionalProperties: false,
  required: ['providers'],
  properties: {
    listen: {
      type: 'object',
      additionalProperties: false,
      description: 'Listen address. The HOST and PORT environment variables and the --host/--port flags override it.',
      properties: {
        host: { type: 'string', minLength: 1, description: 'Interface to bind (default 127.0.0.1).' },
        port: { type: ['integer', 'string'], description: 'TCP port (default 8790; 0 picks a free port).' },
        tls: {
          type: 'object',
          additionalProperties: false,
          required: ['cert', 'key'],
          description: 'Serve HTTPS directly with these PEM files (paths relative to this file).',
          properties: {
            cert: { type: 'string', minLength: 1, description: 'Certificate chain, PEM file.' },
            key: { type: 'string', minLength: 1, description: 'Private key, PEM file.' },
          },
        },
      },
    },
    rules: { type: 'string', minLength: 1, description: 'Directory of rule files (*.yaml), relative to this file (default ./rules).' },
    default_provider: { type: 'string', minLength: 1, description: 'Provider used when no rule routes the request (default: "anthropic" if defined, else the first provider).' },
    providers: {
      type: 'object',
      minProperties: 1,
      description: 'Upstream providers by name; rules refer to them by that name in route_to.',
      additionalProperties: {
        type: 'object',
        additionalProperties: false,
        required: ['type'],
        description: 'One upstream provider.',
        properties: {
          type: {
            // The provider table's types (upstream/providers/index.ts), each described by its own folder.
            enum: PROVIDER_TYPES as readonly string[],
            description: `Wire protocol: ${PROVIDER_TYPES.map((t) => `"${t}" (${adapterFor({ type: t }).description})`).join(', ')}.`,
          },
          base_url: {
            type: 'string',
            pattern: '^https?://',
            description:
              'Base URL, e.g. https://api.anthropic.com; request paths such as /v1/messages are appended. Required, except for type: bedrock (default https://bedrock-runtime.<region>.amazonaws.com) and vertex (default https://<region>-aiplatform.googleapis.com; https://aiplatform.googleapis.com for region global).',
          },
          region: {
            type: 'string',
            pattern: '^[a-z0-9]+(-[a-z0-9]+)*$',
            description:
              'type: bedrock and vertex, required: the AWS region whose Bedrock Runtime is called and signed for (e.g. us-east-1), or the Vertex AI location (e.g. us-east5, europe-west1, global).',
          },
          project: { type: 'string', minLength: 1, description: 'type: vertex only, required: the Google Cloud project id whose Vertex AI is called.' },
          resource: {
            type: 'string',
            pattern: '^[A-Za-z0-9][A-Za-z0-9-]*$',
            description: 'type: foundry: the Microsoft Foundry resource name; the base URL is https://{resource}.services.ai.azure.com/anthropic (give base_url: instead for another endpoint).',
          },
          workspace_id: {
            type: 'string',
            minLength: 1,
            description:
              "type: anthropic: the `anthropic-workspace-id` header sent on every request, replacing a client's — Claude Platform on AWS requires it on every request (https://code.claude.com/docs/en/claude-platform-on-aws), and the provider's keys belong to this workspace. Absent: a client's own header goes through unchanged.",
          },
          credentials_file: {
            type: 'string',
            minLength: 1,
            description:
              'type: vertex only: a Google credentials JSON file (service account, workload identity federation; relative to this file). Default: Application Default Credentials (GOOGLE_APPLICATION_CREDENTIALS, gcloud, the metadata server).',
          },
          aws_profile: {
            type: 'string',
            minLength: 1,
            description:
              'type: bedrock only: the profile of the shared AWS config/credentials files to sign with (default: the AWS default chain — environment, AWS_PROFILE, web identity, task or instance role).',
          },
          keys: {
            type: 'array',
            items: { type: 'string' },
            description:
              "Upstream API keys, as ${ENV} references; entries that resolve to an empty string are ignored. Absent or empty: the client's own x-api-key / Authorization is forwarded (transparent mode).",
          },
          auth: {
            const: 'none',
            description:
              'This upstream takes no credential (a local model server): with clients: configured and no keys:, requests go to it without one. Without this, that combination is a config error.',
          },
          timeouts,
          models: {
            type: 'object',
            additionalProperties: { type: 'string', minLength: 1 },
            description: 'Model names this provider knows under another name (requested → sent), applied when a request is sent here, e.g. as a fallback.',
          },
          strip_attribution: {
            type: 'boolean',
            description:
              'type: openai only (default true): drop the attribution line Claude Code puts first in the system prompt (`x-anthropic-billing-header: …; cch=…;`), whose per-request value defeats the provider\'s prefix cache. Never stripped for type: anthropic (code.claude.com/docs/en/llm-gateway-protocol, "System prompt attribution block").',
          },
          reasoning_effort: {
            type: 'boolean',
            description:
              'type: openai only (default false): this provider takes Chat Completions `reasoning_effort`; Anthropic `thinking` is mapped to it (budget_tokens under 8000 → low, under 24000 → medium, else high; adaptive thinking uses output_config.effort, max → high). Otherwise `thinking` is dropped.',
          },
          reasoning_as_thinking: {
            type: 'boolean',
            description:
              "type: openai only (default false): the vendor's reasoning (`reasoning_content` / `reasoning`) is shown to the client as `thinking` blocks. They carry no signature, so they are for display; they are never sent back upstream.",
          },
          passthrough: {
            type: 'boolean',
            description:
              'type: anthropic only (default false): a `/v1/...` call switchyard has no route for (not Messages, Message Batches, Files, Skills or Models) is forwarded to this provider (the default provider, with its key pool) as it is, with a usage record of kind `other`, instead of a 404.',
          },
          betas: {
            type: 'array',
            items: { type: 'string', minLength: 1 },
            description:
              "type: anthropic, bedrock and vertex: the anthropic-beta values this upstream accepts; others are left out (and listed by dry-run). Absent: for anthropic and vertex, anthropic-beta goes through unchanged; for bedrock, the betas AWS documents for Claude on Bedrock go in the body's anthropic_beta.",
          },
          key_strategy: {
            enum: ['round_robin', 'least_loaded'],
            description: 'How a new session gets a key from `keys` (default round_robin); sessions then stick to their key unless it is cooling or failed.',
          },
          retries: {
            type: 'object',
            additionalProperties: false,
            description: "Retries before the first byte reaches the client, preferring another key; then the route's fallback providers.",
            properties: {
              max: { type: 'integer', minimum: 0, maximum: 10, description: `Retries after the first attempt (default ${DEFAULT_RETRIES.max}; Claude Code itself retries up to 10 times).` },
              base_delay_ms: {
                type: 'integer',
                minimum: 0,
                description: `Backoff base, ms (default ${DEFAULT_RETRIES.base_delay_ms}); the n-th retry waits a random time up to base × 2^n (full jitter).`,
              },
              max_delay_ms: { type: 'integer', minimum: 0, description: `Longest single backoff, ms (default ${DEFAULT_RETRIES.max_delay_ms}).` },
              budget_ms: { type: 'integer', minimum: 0, description: `No retry starts later than this after forwarding began, ms (default ${DEFAULT_RETRIES.budget_ms}).` },
            },
          },
          breaker: {
            type: 'object',
            additionalProperties: false,
            description:
              'Circuit breaker: after `failures` consecutive upstream faults (connection errors, timeouts, 5xx, 529) requests fail fast or go to the fallback; a probe is let through after `cooldown_ms`. A client that hangs up is never counted.',
            properties: {
              failures: { type: 'integer', minimum: 1, description: `Consecutive failures that open the circuit (default ${DEFAULT_BREAKER.failures}).` },
              cooldown_ms: { type: 'integer', minimum: 1, description: `How long it stays open before a half-open probe, ms (default ${DEFAULT_BREAKER.cooldown_ms}).` },
              statuses: {
                type: 'array',
                minItems: 1,
                items: { type: 'integer', minimum: 500, maximum: 599 },
                description: "Answer statuses that count as failures (default: every 5xx, 529 included). Client hang-ups, 4xx answers and the gateway's own refusals never count.",
              },
            },
          },
        },
      },
    },
    limits: {
      type: 'object',
      additionalProperties: false,
      description: "Request limits; each is answered in Anthropic's error shape.",
      properties: {
        max_body_bytes: {
          type: 'integer',
          minimum: 1,
          description: `Largest request body accepted, bytes (default ${DEFAULT_MAX_BODY_BYTES}, Anthropic's own 32 MB limit); larger bodies get 413 request_too_large.`,
        },
        max_header_bytes: { type: 'integer', minimum: 1024, description: `Largest total size of the request headers, bytes (default ${DEFAULT_LIMITS.max_header_bytes}); larger get 431.` },
        request_timeout_ms: {
          type: 'integer',
          minimum: 1000,
          description: `Time allowed to receive a whole request (headers and body), ms (default ${DEFAULT_LIMITS.request_timeout_ms}); slower clients get 408.`,
        },
        max_concurrent_requests: {
          type: 'integer',
          minimum: 1,
          description: `Proxied requests (streams included) in flight at once (default ${DEFAULT_LIMITS.max_concurrent_requests}); more get 529 overloaded_error.`,
        },
        stall_ms: {
          type: 'integer',
          minimum: 100,
          description: `Longest a proxied request may go without progress (a stage reached, a byte of the answer relayed), ms (default ${DEFAULT_LIMITS.stall_ms}: Claude Code itself gives up on a stream after 300 s of silence); the watchdog then ends it, answers 504 (or cuts the stream), gives back what it held and records it (outcome error, \`switchyard_watchdog_ended_total\`).`,
        },
        max_inflight_body_bytes: {
          type: 'integer',
          minimum: 1024,
          description: `Request-body bytes the gateway holds at once, all clients together (default ${DEFAULT_LIMITS.max_inflight_body_bytes}); a request that would go over gets 529 overloaded_error with retry-after before its body is read. Peak memory for bodies is about 4 times this.`,
        },
        max_inflight_body_bytes_per_client: {
          type: 'integer',
          minimum: 1024,
          description: `The same, per client (client key id, or the fingerprint of the credential in transparent mode) (default ${DEFAULT_LIMITS.max_inflight_body_bytes_per_client}).`,
        },
        max_batch_bytes: {
          type: 'integer',
          minimum: 1024,
          description: `Largest Message Batch create body, bytes (default ${DEFAULT_LIMITS.max_batch_bytes}, Anthropic's 256 MB). A batch is read whole (its items go through the rules), so it also counts against the in-flight caps: one larger than max_inflight_body_bytes_per_client gets 413.`,
        },
        max_file_bytes: {
          type: 'integer',
          minimum: 1024,
          description: `Largest Files API upload, bytes (default ${DEFAULT_LIMITS.max_file_bytes}, Anthropic's 500 MB). An upload streams to the upstream as it arrives; only a window of it is held (and counted against the in-flight caps).`,
        },
        rule_expression_ms: {
          type: 'integer',
          minimum: 1,
          maximum: 10000,
          description: `Time budget of one JSONata evaluation (a when, a tag expression, a transform), ms (default ${DEFAULT_LIMITS.rule_expression_ms}); an expression that runs longer is stopped and the request answered 500 naming the rule.`,
        },
        max_json_depth: {
          type: 'integer',
          minimum: 8,
          maximum: 10000,
          description: `Deepest nesting of arrays and objects accepted in a request body (default ${DEFAULT_LIMITS.max_json_depth}; Claude Code's bodies nest about 10 deep); deeper bodies get 400 invalid_request_error.`,
        },
      },
    },
    clients: {
      type: 'object',
      minProperties: 1,
      description:
        "Client keys (virtual keys), by client id. When set, every proxied request must carry one (x-api-key or Authorization: Bearer), else 401; the client's key is never forwarded upstream. Absent: transparent mode.",
      propertyNames: { pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]*$' },
      additionalProperties: {
        type: 'object',
        additionalProperties: false,
        description: 'One client: its secret (key as an ${ENV} reference, or key_sha256) and billing tags.',
        properties: {
          key: { type: 'string', description: "The client's secret, as an ${ENV} reference (never a literal in this file)." },
          key_sha256: { type: 'string', pattern: '^[0-9a-fA-F]{64}$', description: "SHA-256 of the client's secret, hex (what `switchyard keys new ID` prints)." },
          tags: { type: 'object', additionalProperties: { type: 'string' }, description: 'Tags of this client (team, cost_center...), visible to rules as client.tags.' },
          decision_header: {
            type: 'boolean',
            description:
              "Answer this client's requests with an x-switchyard-decision header (matched rules, route, upstream model, rules version), for debugging a client (default: trace.decision_header).",
          },
        },
        oneOf: [
          { required: ['key'], description: 'a map with key' },
          { required: ['key_sha256'], description: 'a map with key_sha256' },
        ],
      },
    },
    state: {
      description:
        'Where throttle counters, key cooldowns and budget totals live: memory (default, one process) or {redis: URL} so that N replicas share them, with a declared failure mode while Redis is unavailable.',
      anyOf: [
        { const: 'memory', description: 'memory' },
        {
          type: 'object',
          additionalProperties: false,
          required: ['redis'],
          description: 'a map {redis: URL}',
          properties: {
            redis: { type: 'string', pattern: '^rediss?://', description: 'Redis URL, e.g. redis://127.0.0.1:6379 (an ${ENV} reference for credentials).' },
            command_timeout_ms: {
              type: 'integer',
              minimum: 1,
              maximum: 10000,
              description: `Longest a Redis command may take before it counts as failed, ms (default ${DEFAULT_STATE.command_timeout_ms}).`,
            },
            retry_ms: {
              type: 'integer',
              minimum: 10,
              description: `After 3 failures in a row Redis is not asked again for this long (requests use the fallback at no cost), then one probe, ms (default ${DEFAULT_STATE.retry_ms}).`,
            },
            slot_lease_ms: {
              type: 'integer',
              minimum: 1000,
              description: `Lifetime of a concurrency slot in Redis, renewed every third of it while its request runs: the longest a slot outlives a replica that died or a release lost to an outage, ms (default ${DEFAULT_STATE.slot_lease_ms}).`,
            },
            on_failure: {
              description:
                "What each use of the shared state does while Redis is unavailable: local (this replica's own counters; default), allow (not applied) or deny (503). One mode for all, or a map {throttles, cooldowns, budgets}.",
              anyOf: [
                { enum: ['local', 'allow', 'deny'], description: 'local, allow or deny' },
                {
                  type: 'object',
                  additionalProperties: false,
                  description: 'a map {throttles, cooldowns, budgets}',
                  properties: {
                    throttles: { enum: ['local', 'allow', 'deny'], description: 'Throttle buckets and concurrency slots.' },
                    cooldowns: { enum: ['local', 'allow', 'deny'], description: 'Upstream key cooldowns after a 429.' },
                    budgets: { enum: ['local', 'allow', 'deny'], description: 'Budget running totals.' },
                  },
                },
              ],
            },
          },
        },
      ],
    },
    ledger: {
      description: 'Usage ledger: one record per request (tokens, cost, tags; never bodies). Default: SQLite at ./data/usage.db next to this file.',
      anyOf: [
        { const: 'off', description: 'off' },
        {
          type: 'object',
          additionalProperties: false,
          description: 'a map {sqlite: PATH} or {postgres: URL}',
          properties: {
            sqlite: { type: 'string', minLength: 1, description: 'SQLite file, relative to this file (WAL mode).' },
            postgres: { type: 'string', pattern: '^postgres(ql)?://', description: 'PostgreSQL URL (an ${ENV} reference for credentials), for fleets.' },
            flush_interval_ms: { type: 'integer', minimum: 10, description: 'How often queued records are written, ms (default 1000): a crash loses at most this much.' },
            max_queue: { type: 'integer', minimum: 1, description: 'Records kept in memory while the store is down (default 10000); more are dropped and counted.' },
            webhook: { type: 'string', pattern: '^https?://', description: 'Billing export: batches of records are POSTed here as JSON {"records": [...]}, with retries.' },
            write_timeout_ms: {
              type: 'integer',
              minimum: 100,
              description: 'Longest one batch write (and one PostgreSQL statement) may take before it counts as failed and is retried later, ms (default 10000).',
            },
            retention_days: {
              type: 'integer',
              minimum: 35,
              description:
                'Records older than this many days are removed every hour, off the request path; the hourly rollup (the overview, `usage` over whole hours) keeps every hour. PostgreSQL drops whole monthly partitions, SQLite deletes in batches. At least 35: budgets recount the month to date from the records. Default: kept for ever.',
            },
            spool: {
              description:
                'Disk spool for records the store cannot take in time (queue full during an outage, shutdown): replayed when the store answers. Default: ./data/spool next to this file, 256 MB. false turns it off (overflow is then dropped).',
              anyOf: [
                { const: false, description: 'false' },
                {
                  type: 'object',
                  additionalProperties: false,
                  description: 'a map {dir, max_bytes}',
                  properties: {
                    dir: { type: 'string', minLength: 1, description: 'Spool directory, relative to this file; one per replica (local disk).' },
                    max_bytes: { type: 'integer', minimum: 1024, description: 'Most bytes the spool holds; beyond, records are dropped and counted (default 268435456).' },
                  },
                },
              ],
            },
          },
        },
      ],
    },
    prices: { type: 'string', minLength: 1, description: 'Price table (USD per million tokens per model), relative to this file (default: the bundled prices.yaml).' },
    replicas: {
      type: 'integer',
      minimum: 1,
      description:
        'How many replicas of this gateway serve the same clients (default 1). Only informative: with more than one (or in a Kubernetes pod) and state in memory, start-up warns that throttles, cooldowns and budgets are counted per replica.',
    },
    trusted_proxies: {
      type: 'array',
      items: { type: 'string', minLength: 2, description: 'an IP address (10.0.0.5) or a CIDR range (10.0.0.0/8, fd00::/8)' },
      description:
        "Reverse proxies in front of the gateway whose X-Forwarded-For is believed (default none: the header is never read). Limits kept per client address (the sign-in rate limit, the admin-token back-off) then key on the first address that is not a trusted proxy, read from the header's right.",
    },
    allow_open: {
      type: 'boolean',
      description: "true allows listening on a non-loopback address with provider keys and no clients: anyone who can reach the gateway spends the team's keys (default false).",
    },
    budgets: {
      type: 'object',
      additionalProperties: false,
      description: 'Where notifications go: budget thresholds (budget: { notify: [...] } in rules) and secrets scan_secrets found.',
      properties: {
        webhook: {
          type: 'string',
          pattern: '^https?://',
          description:
            'URL that gets one JSON POST per budget threshold reached (type budget.threshold) and per request in which scan_secrets first saw a secret (type secret.found) (may be an ${ENV} reference).',
        },
        timeout_ms: {
          type: 'integer',
          minimum: 100,
          maximum: 60000,
          description: 'Time allowed for the receiver to answer one notification, ms (default 5000); slower counts as failed and is retried.',
        },
        state_file: {
          type: 'string',
          description: 'File keeping notifications not yet delivered and those already sent, across restarts (default ./data/budget-notifications.json next to the config).',
        },
        on_ledger_failure: {
          enum: ['open', 'closed'],
          description:
            'When the usage ledger cannot be read (budget spend at start-up, spend limits): open (default) — budgets count from what the state store holds and API spend limits are skipped; closed — requests under a budget get 503 until it can be read.',
        },
      },
    },
    attribution: {
      type: 'object',
      additionalProperties: false,
      description: 'Who spent what: how usage records name the project.',
      properties: {
        project_header: {
          type: 'string',
          pattern: '^[a-z0-9][a-z0-9-]*$',
          description: 'The request header that names the project (default x-project); developers set it with ANTHROPIC_CUSTOM_HEADERS="x-project: NAME".',
        },
      },
    },
    login: {
      type: 'object',
      additionalProperties: false,
      required: ['public_url', 'oidc'],
      description:
        "Claude Code's own sign-in (the gateway protocol, Claude Code 2.1.195+): `/login` against this gateway runs the OAuth 2.0 device flow (RFC 8628) through the company's OpenID Connect identity provider; each request then carries a short-lived signed token naming the user and their groups. Static client keys keep working beside it.",
      properties: {
        public_url: {
          type: 'string',
          pattern: '^https?://[^/]+$',
          description: 'The URL developers give `/login` (scheme and host, no path): the issuer of the tokens and the base of the sign-in endpoints. http:// only on loopback.',
        },
        oidc: {
          type: 'object',
          additionalProperties: false,
          required: ['issuer', 'client_id'],
          description: "The identity provider: the gateway is its OAuth client (authorization code + PKCE); register {public_url}/oauth/callback as the client's redirect URI.",
          properties: {
            issuer: { type: 'string', pattern: '^https?://', description: "The provider's issuer URL (its /.well-known/openid-configuration is read)." },
            client_id: { type: 'string', minLength: 1, description: 'The OAuth client id registered for the gateway.' },
            client_secret: { type: 'string', description: 'Its secret, as an ${ENV} reference (absent: a public client, PKCE only).' },
            scopes: { type: 'array', items: { type: 'string', minLength: 1 }, description: 'Scopes asked for (default: openid email profile groups).' },
            groups_claim: { type: 'string', minLength: 1, description: "The ID-token claim listing the user's groups (default: groups)." },
          },
        },
        signing_keys: {
          type: 'array',
          minItems: 1,
          items: { type: 'string', minLength: 1 },
          description:
            'Private keys that sign access tokens, each a JWK (JSON, EC P-256 or Ed25519) as an ${ENV} reference; the first signs, all verify (add the new key second, then move it first: rotation without a sign-out). Absent: a key made at start-up (every replica needs the same keys, and a restart signs everyone out).',
        },
        access_token_ttl_s: { type: 'integer', minimum: 60, maximum: 86400, description: 'Lifetime of an access token, s (default 3600); Claude Code refreshes before it ends.' },
        refresh_token_ttl_s: { type: 'integer', minimum: 300, description: 'Lifetime of a refresh token, s (default 2592000, 30 days): how long a developer stays signed in without a browser.' },
        device_code_ttl_s: { type: 'integer', minimum: 60, maximum: 3600, description: 'How long a device code may wait for its browser sign-in, s (default 600).' },
        poll_interval_s: { type: 'integer', minimum: 1, maximum: 60, description: 'Least seconds between two token polls of one device code (default 5); faster polls get slow_down.' },
        device_requests_per_minute: { type: 'integer', minimum: 1, description: 'Device authorizations and code entries per client IP per minute (default 10; RFC 8628 §5.1).' },
        telemetry_forward: {
          type: 'string',
          pattern: '^https?://',
          description:
            "Where Claude Code's own OTLP telemetry (POST /v1/metrics, /v1/logs, /v1/traces) is forwarded, e.g. http://otel-collector:4318. Absent: it is read for the usage join and dropped.",
        },
        collect_telemetry: {
          type: 'boolean',
          description:
            "Turn on Claude Code's telemetry through managed settings (CLAUDE_CODE_ENABLE_TELEMETRY and the OTLP exporter), so sessions' commits, pull requests and lines changed join the ledger (default true).",
        },
      },
    },
    policies: {
      type: 'array',
      description:
        "Per-group policy for signed-in users, in order: the first policy naming one of the user's groups applies, merged over the first policy that names no groups (the catch-all). A policy gives the models the user may use and the managed settings (managed-settings.json) served at GET /managed/settings.",
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name'],
        description: 'One policy.',
        properties: {
          name: { type: 'string', minLength: 1, description: 'Named in errors ("model X is not allowed by policy NAME").' },
          groups: { type: 'array', minItems: 1, items: { type: 'string', minLength: 1 }, description: 'Identity-provider groups it applies to; absent: everyone (the catch-all).' },
          models: { type: 'array', items: { type: 'string', minLength: 1 }, description: "Model names or globs the user may request (absent: the catch-all's, else any)." },
          settings: { type: 'object', description: "Claude Code managed settings (keys of Claude Code's settings reference; `env` is an object of strings)." },
        },
      },
    },
    telemetry: {
      type: 'object',
      additionalProperties: false,
      description:
        'OpenTelemetry traces and metrics over OTLP/HTTP (off by default). The standard OTEL_* environment variables switch it on too (OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_SERVICE_NAME, OTEL_TRACES_EXPORTER, OTEL_BSP_SCHEDULE_DELAY, OTEL_METRIC_EXPORT_INTERVAL, …).',
      properties: {
        endpoint: { type: 'string', pattern: '^https?://', description: 'OTLP/HTTP base URL, e.g. http://otel-collector:4318 (/v1/traces and /v1/metrics are appended).' },
        service_name: { type: 'string', minLength: 1, description: 'service.name of the exported telemetry (default OTEL_SERVICE_NAME, else switchyard).' },
      },
    },
    batches: {
      type: 'object',
      additionalProperties: false,
      description: "Message Batches: how the gateway learns a batch's results when no client reads them.",
      properties: {
        poll_interval_ms: {
          type: 'integer',
          minimum: 1000,
          description:
            'How often one replica (the one that claims the round in the state store) asks the upstream about up to 20 unsettled batches and records the items of those that ended, ms (default 60000). Needs the ledger.',
        },
      },
    },
    trace: {
      type: 'object',
      additionalProperties: false,
      description: 'Decision traces: why each request went where it went.',
      properties: {
        decision_header: {
          type: 'boolean',
          description: 'Answer every request with an x-switchyard-decision header: matched rules, route, upstream model, rules version (default false; per client: clients.ID.decision_header).',
        },
        requests: {
          type: 'integer',
          minimum: 0,
          maximum: 100000,
          description: 'How many recent requests keep their full decision trace in memory for GET /admin/requests/{request-id} (default 1000; 0 keeps none). No bodies and no secrets are kept.',
        },
      },
    },
    admin: {
      type: 'object',
      additionalProperties: false,
      description: 'Admin routes (/admin/*).',
      properties: {
        token: { type: 'string', description: 'Bearer token for /admin/*, as an ${ENV} reference (default: $SWITCHYARD_ADMIN_TOKEN). Without one, admin routes answer on loopback only.' },
      },
    },
    cors: {
      type: 'object',
      additionalProperties: false,
      required: ['origins'],
      description: 'CORS for browser clients; off when absent.',
      properties: {
        origins: { type: 'array', minItems: 1, items: { type: 'string', minLength: 1 }, description: 'Allowed origins, e.g. https://app.example.com; "*" allows any.' },
        max_age_s: { type: 'integer', minimum: 0, description: 'How long browsers may cache a preflight answer, seconds (default 600).' },
      },
    },
    shutdown: {
      type: 'object',
      additionalProperties: false,
      description: 'Graceful shutdown on SIGTERM/SIGINT.',
      properties: {
        grace_ms: { type: 'integer', minimum: 0, description: 'How long open requests and streams may run after a shutdown signal before they are cut, ms (default 30000).' },
      },
    },
    log: {
      type: 'object',
      additionalProperties: false,
      description: 'Logging.',
      properties: {
        level: { enum: ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'], description: 'pino level (default info; LOG_LEVEL overrides).' },
      },
    },
  },
} as const;
