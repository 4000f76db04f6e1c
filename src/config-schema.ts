/**
 * JSON Schema (2020-12) of the gateway config file `switchyard.yaml`. This object is the single source:
 * the loader compiles it with ajv, and `npm run schemas` writes it to `schemas/config.schema.json` for
 * editors (a test checks the file is current).
 */

/** Default timeouts of an upstream provider, ms. Anthropic recommends streaming for calls that may run
 * longer than 10 minutes (https://platform.claude.com/docs/en/api/errors, "Long requests"), so a
 * non-streaming call may legitimately wait that long for its headers. */
export const DEFAULT_TIMEOUTS = { connect_ms: 10_000, headers_ms: 600_000, body_ms: 600_000 } as const;

/** Anthropic's own request size limit for the Messages and Token Counting APIs: 32 MB
 * (https://platform.claude.com/docs/en/api/errors, "Request size limits"). */
export const DEFAULT_MAX_BODY_BYTES = 32 * 1024 * 1024;

const timeouts = {
  type: 'object',
  additionalProperties: false,
  description: 'Upstream timeouts in milliseconds.',
  properties: {
    connect_ms: { type: 'integer', minimum: 1, description: `TCP+TLS connect timeout, ms (default ${DEFAULT_TIMEOUTS.connect_ms}).` },
    headers_ms: { type: 'integer', minimum: 1, description: `Time allowed until the upstream's response headers arrive, ms (default ${DEFAULT_TIMEOUTS.headers_ms}: non-streaming calls with long thinking send headers only at the end).` },
    body_ms: { type: 'integer', minimum: 1, description: `Longest silence allowed between two chunks of the response body, ms (default ${DEFAULT_TIMEOUTS.body_ms}).` },
  },
};

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
        required: ['type', 'base_url'],
        description: 'One upstream provider.',
        properties: {
          type: { enum: ['anthropic'], description: 'Wire protocol: "anthropic" (the Anthropic Messages API or a compatible endpoint).' },
          base_url: { type: 'string', pattern: '^https?://', description: 'Base URL, e.g. https://api.anthropic.com; request paths such as /v1/messages are appended.' },
          keys: {
            type: 'array',
            items: { type: 'string' },
            description: 'Upstream API keys, as ${ENV} references; entries that resolve to an empty string are ignored. Absent or empty: the client\'s own x-api-key / Authorization is forwarded (transparent mode).',
          },
          timeouts,
        },
      },
    },
    limits: {
      type: 'object',
      additionalProperties: false,
      description: 'Request limits.',
      properties: {
        max_body_bytes: { type: 'integer', minimum: 1, description: `Largest request body accepted, bytes (default ${DEFAULT_MAX_BODY_BYTES}, Anthropic's own 32 MB limit); larger bodies get 413 request_too_large.` },
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
