/**
 * The one place that reads the gateway config (`switchyard.yaml`): parse, resolve `${ENV}` references,
 * validate against {@link configSchema}, apply defaults and the HOST/PORT/flag overrides.
 */
import { checkSettings } from './login/settings-keys.js';
import { TrustedProxies } from './client-address.js';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FailureModes } from './state/resilient.js';
import { DEFAULT_SPOOL_MAX_BYTES } from './usage/spool.js';
import type { FromSchema } from 'json-schema-to-ts';
import { configSchema, DEFAULT_BREAKER, DEFAULT_STATE, DEFAULT_LIMITS, DEFAULT_MAX_BODY_BYTES, DEFAULT_RETRIES, DEFAULT_TIMEOUTS } from './config-schema.js';
import { adapterFor, PROVIDER_TYPES } from './upstream/providers/index.js';
import { ProviderEntryError, type TypeSettings } from './upstream/providers/types.js';
import { compileSchema, LoadError, schemaIssues, SourceFile, type DocPath, type LoadIssue } from './validation.js';

export type { ProviderConfig, Timeouts } from './upstream/providers/provider-config.js';
import type { ProviderConfig } from './upstream/providers/provider-config.js';

/** Shared state in Redis: its URL, bounds (ms) and what each use does while Redis is unavailable. */
export interface RedisStateConfig {
  redis: string;
  command_timeout_ms: number;
  retry_ms: number;
  slot_lease_ms: number;
  on_failure: FailureModes;
}

/** A configured client (virtual key): its id, the SHA-256 of its secret (32 bytes) and its tags. */
export interface ClientConfig {
  id: string;
  sha256: Buffer;
  tags: Record<string, string>;
  /** Answer this client with the x-switchyard-decision header; null: as `trace.decision_header`. */
  decision_header: boolean | null;
}

/**
 * Provider options that apply to some provider types only (each adapter lists its own): option → the types
 * that take it. Set on another type, they are a config error.
 */
function typeOptions(): Map<string, string[]> {
  const byOption = new Map<string, string[]>();
  for (const type of PROVIDER_TYPES) for (const o of adapterFor({ type }).options) byOption.set(o, [...(byOption.get(o) ?? []), type]);
  return byOption;
}

/** Claude Code's sign-in through the company's identity provider (login/). Durations in seconds. */
export interface LoginConfig {
  /** Scheme and host developers give `/login`, without a trailing slash: the tokens' issuer and audience. */
  public_url: string;
  oidc: { issuer: string; client_id: string; client_secret: string | null; scopes: string[]; groups_claim: string };
  /** Private JWKs (JSON text); the first signs. Empty: one is made at start-up. */
  signing_keys: string[];
  access_token_ttl_s: number;
  refresh_token_ttl_s: number;
  device_code_ttl_s: number;
  poll_interval_s: number;
  device_requests_per_minute: number;
  /** OTLP/HTTP base URL Claude Code's telemetry is forwarded to, or null. */
  telemetry_forward: string | null;
  collect_telemetry: boolean;
}

/** One per-group policy: the models a signed-in user may use and the managed settings they get. */
export interface PolicyConfig {
  name: string;
  /** null: the catch-all. */
  groups: string[] | null;
  /** Model names or globs; null: not restricted here. */
  models: string[] | null;
  settings: Record<string, unknown> | null;
}

/** The whole gateway config, resolved and defaulted. */
export interface GatewayConfig {
  /** Absolute path of the file it came from. */
  file: string;
  /** `tls` holds absolute paths of the PEM files when HTTPS is served directly. */
  listen: { host: string; port: number; tls: { cert: string; key: string } | null };
  /** Absolute path of the rules directory. */
  rules_dir: string;
  default_provider: string;
  providers: Record<string, ProviderConfig>;
  /** Request limits: bytes, ms, counts; `rule_expression_ms` per JSONata evaluation; `max_json_depth` levels of nesting. */
  limits: {
    max_body_bytes: number;
    max_header_bytes: number;
    request_timeout_ms: number;
    max_concurrent_requests: number;
    /** Longest a request may go without progress before the watchdog ends it, ms. */
    stall_ms: number;
    rule_expression_ms: number;
    max_json_depth: number;
    max_inflight_body_bytes: number;
    max_inflight_body_bytes_per_client: number;
    /** Largest Message Batch create body, and largest Files API upload, bytes. */
    max_batch_bytes: number;
    max_file_bytes: number;
  };
  /** Client keys; null = transparent mode (no client authentication). */
  clients: ClientConfig[] | null;
  allow_open: boolean;
  /** Reverse proxies whose X-Forwarded-For is believed (client-address.ts). */
  trusted_proxies: TrustedProxies;
  /** How many replicas serve the same clients (informative: start-up warns when state is in memory and this is over 1). */
  replicas: number;
  /** Admin bearer token; null = admin routes on loopback only. */
  admin: { token: string | null };
  /** Budget notifications: the webhook (null: thresholds are only logged), its timeout (ms) and the state file (absolute). */
  budgets: { webhook: string | null; timeout_ms: number; state_file: string; on_ledger_failure: 'open' | 'closed' };
  /** Attribution: the (lower-case) header naming the project. */
  attribution: { project_header: string };
  /** Decision traces: the x-switchyard-decision header for every client, and how many recent traces /admin/requests keeps. */
  trace: { decision_header: boolean; requests: number };
  /** Message Batches: the results poll's interval, ms. */
  batches: { poll_interval_ms: number };
  /** OpenTelemetry export (telemetry.ts); null fields: the OTEL_* environment decides. */
  telemetry: TelemetryConfig;
  /** Claude Code's sign-in (login/), or null when off. */
  login: LoginConfig | null;
  /** Per-group policies for signed-in users, in order (login/policy.ts). */
  policies: PolicyConfig[];
  cors: { origins: string[]; max_age_s: number } | null;
  /** The usage ledger store, or null when off. */
  /** `writeTimeoutMs`: bound of one batch write, ms; `spool`: disk spool directory and bound (bytes), or null when off. */
  ledger: {
    sqlite?: string;
    postgres?: string;
    flush_interval_ms: number;
    max_queue: number;
    webhook: string | null;
    write_timeout_ms: number;
    spool: { dir: string; max_bytes: number } | null;
    /** Records older than this many days are removed (the hourly rollup is kept); null: kept for ever. */
    retention_days: number | null;
  } | null;
  /** Absolute path of the price table. */
  prices: string;
  /** Throttle counters, cooldowns and budget totals: in this process, or in Redis (timeouts in ms). */
  state: RedisStateConfig | 'memory';
  shutdown: { grace_ms: number };
  log: { level?: string };
  /** Non-fatal findings (unset `${ENV}` references when `missingEnv` is 'warning'). */
  warnings: LoadIssue[];
}

/** Overrides from the command line (they beat the environment, which beats the file). */
export interface ConfigOverrides {
  host?: string;
  port?: number;
  rulesDir?: string;
  /** How an unset `${ENV}` without a default counts: an error (serving) or a warning (validate-rules). */
  missingEnv?: 'error' | 'warning';
}

/** The price table shipped with switchyard (the package root holds it; src/ and dist/ are one level down). */
export const BUNDLED_PRICES = fileURLToPath(new URL('../prices.yaml', import.meta.url));

/** True for addresses only this machine can reach: 127.0.0.0/8, ::1, localhost. */
export function isLoopback(host: string): boolean {
  return /^127\./.test(host) || host === 'localhost' || host === '::1' || host === '[::1]';
}

let validateConfig: ReturnType<typeof compileSchema> | undefined;

const ENV_REF = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

/**
 * Replaces `${NAME}` and `${NAME:-default}` in every string of `value` (shell semantics: the default
 * applies when NAME is unset or empty). Unset names without a default become issues.
 */
function resolveEnv(value: unknown, env: NodeJS.ProcessEnv, source: SourceFile, at: DocPath, issues: LoadIssue[], missing: 'error' | 'warning'): unknown {
  if (typeof value === 'string') {
    return value.replace(ENV_REF, (_m, name: string, def: string | undefined) => {
      const v = env[name];
      if (v !== undefined && v !== '') return v;
      if (def !== undefined) return def;
      issues.push(source.issueAt(at, `environment variable ${name} is not set; set it or give a default with \${${name}:-value}`, missing));
      return missing === 'warning' ? `unset-${name}` : '';
    });
  }
  if (Array.isArray(value)) return value.map((v, i) => resolveEnv(v, env, source, [...at, i], issues, missing));
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = resolveEnv(v, env, source, [...at, k], issues, missing);
    return out;
  }
  return value;
}

/** The config file as its JSON Schema describes it: the type is derived from the schema, never re-typed by hand. */
type RawConfig = FromSchema<typeof configSchema>;

/**
 * Loads and validates a config file.
 * @param file path of `switchyard.yaml`.
 * @param env environment for `${ENV}` references and the HOST / PORT overrides.
 * @throws LoadError with every problem as `file:line:col: message`.
 */
export function loadConfig(file: string, overrides: ConfigOverrides = {}, env: NodeJS.ProcessEnv = process.env): GatewayConfig {
  const abs = path.resolve(file);
  let text: string;
  try {
    text = readFileSync(abs, 'utf8');
  } catch (err) {
    throw new LoadError([{ file, line: 1, col: 1, severity: 'error', message: `cannot read config file: ${(err as Error).message}` }]);
  }
  const { source, issues } = SourceFile.parse(file, text);
  if (issues.some((i) => i.severity === 'error')) throw new LoadError(issues);
  const resolved = resolveEnv(source.toJS(), env, source, [], issues, overrides.missingEnv ?? 'error');
  if (issues.some((i) => i.severity === 'error')) throw new LoadError(issues);
  validateConfig ??= compileSchema(configSchema);
  if (!validateConfig(resolved)) throw new LoadError(schemaIssues(source, resolved, validateConfig.errors));
  const raw = resolved as RawConfig;

  const portText = overrides.port ?? env.PORT ?? raw.listen?.port ?? 8790;
  const port = Number(portText);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new LoadError([source.issueAt(['listen', 'port'], `listen.port must be an integer from 0 to 65535, got ${JSON.stringify(portText)}`)]);
  }
  const providers: Record<string, ProviderConfig> = {};
  for (const [name, p] of Object.entries(raw.providers)) {
    const oneType = typeOptions();
    const wrongType = [...oneType.keys()].find((o) => (p as Record<string, unknown>)[o] !== undefined && !oneType.get(o)!.includes(p.type));
    if (wrongType) {
      throw new LoadError([
        source.issueAt(
          ['providers', name, wrongType],
          `provider "${name}": ${wrongType} applies to type: ${oneType
            .get(wrongType)!
            .join(', ')
            .replace(/, ([^,]+)$/, ' or $1')} providers only; remove it here`,
        ),
      ]);
    }
    // What is particular to the type (a required region, a default base URL, its own block) its folder settles.
    let settled: TypeSettings;
    try {
      settled = adapterFor(p).settle(name, p, path.dirname(abs));
    } catch (err) {
      if (err instanceof ProviderEntryError) throw new LoadError([source.issueAt(['providers', name, ...err.at], err.message)]);
      throw err;
    }
    providers[name] = {
      name,
      type: p.type,
      base_url: settled.base_url.replace(/\/+$/, ''),
      keys: (p.keys ?? []).filter((k) => k !== ''),
      timeouts: { ...DEFAULT_TIMEOUTS, ...p.timeouts },
      key_strategy: p.key_strategy ?? 'round_robin',
      models: p.models ?? {},
      strip_attribution: settled.strip_attribution,
      betas: p.betas ?? null,
      passthrough: p.passthrough ?? false,
      workspace_id: p.workspace_id ?? null,
      bedrock: settled.bedrock,
      vertex: settled.vertex,
      reasoning_effort: p.reasoning_effort ?? false,
      reasoning_as_thinking: p.reasoning_as_thinking ?? false,
      retries: { ...DEFAULT_RETRIES, ...p.retries },
      breaker: { ...DEFAULT_BREAKER, ...p.breaker },
    };
  }
  const default_provider = raw.default_provider ?? ('anthropic' in providers ? 'anthropic' : Object.keys(providers)[0]!);
  if (!(default_provider in providers)) {
    throw new LoadError([source.issueAt(['default_provider'], `default_provider "${default_provider}" is not defined under providers (defined: ${Object.keys(providers).join(', ')})`)]);
  }
  let clients: ClientConfig[] | null = null;
  if (raw.clients) {
    clients = [];
    for (const [id, c] of Object.entries(raw.clients)) {
      if (c.key !== undefined && c.key === '') {
        throw new LoadError([source.issueAt(['clients', id, 'key'], `client "${id}": its key resolved to an empty string; set the environment variable it names`)]);
      }
      const sha256 = c.key !== undefined ? createHash('sha256').update(c.key).digest() : Buffer.from(c.key_sha256!, 'hex');
      clients.push({ id, sha256, tags: c.tags ?? {}, decision_header: c.decision_header ?? null });
    }
  }

  const host = overrides.host ?? env.HOST ?? raw.listen?.host ?? '127.0.0.1';
  const keyed = Object.values(providers)
    .filter((p) => p.keys.length > 0)
    .map((p) => p.name);
  if (keyed.length && !clients && !raw.login && !isLoopback(host) && raw.allow_open !== true) {
    throw new LoadError([
      source.issueAt(
        ['listen', 'host'],
        `refusing to listen on ${host}: provider ${keyed.map((k) => `"${k}"`).join(', ')} ${keyed.length === 1 ? 'has' : 'have'} upstream keys and no clients: are configured, so anyone who can reach this address would spend those keys; configure clients:, listen on a loopback address, or set allow_open: true`,
      ),
    ]);
  }
  const login: LoginConfig | null = raw.login
    ? {
        public_url: raw.login.public_url.replace(/\/+$/, ''),
        oidc: {
          issuer: raw.login.oidc.issuer,
          client_id: raw.login.oidc.client_id,
          client_secret: raw.login.oidc.client_secret || null,
          scopes: raw.login.oidc.scopes ?? ['openid', 'email', 'profile', 'groups'],
          groups_claim: raw.login.oidc.groups_claim ?? 'groups',
        },
        signing_keys: raw.login.signing_keys ?? [],
        access_token_ttl_s: raw.login.access_token_ttl_s ?? 3600,
        refresh_token_ttl_s: raw.login.refresh_token_ttl_s ?? 2_592_000,
        device_code_ttl_s: raw.login.device_code_ttl_s ?? 600,
        poll_interval_s: raw.login.poll_interval_s ?? 5,
        device_requests_per_minute: raw.login.device_requests_per_minute ?? 10,
        telemetry_forward: raw.login.telemetry_forward ?? null,
        collect_telemetry: raw.login.collect_telemetry ?? true,
      }
    : null;
  if (login && !login.public_url.startsWith('https://') && !/^http:\/\/(127\.|localhost|\[::1\])/.test(login.public_url)) {
    throw new LoadError([source.issueAt(['login', 'public_url'], `login.public_url ${login.public_url}: Claude Code signs in over https:// only (http:// on loopback for development)`)]);
  }
  const policies: PolicyConfig[] = (raw.policies ?? []).map((p, i) => {
    const settings = (p.settings as Record<string, unknown> | undefined) ?? null;
    if (settings) {
      const { errors, unknown } = checkSettings(settings);
      if (errors.length) throw new LoadError(errors.map((e) => source.issueAt(['policies', i, 'settings'], `policy "${p.name}": ${e}`)));
      for (const k of unknown)
        issues.push(
          source.issueAt(
            ['policies', i, 'settings', k],
            `policy "${p.name}": "${k}" is not a setting in Claude Code's settings reference (https://code.claude.com/docs/en/settings); it is served as written`,
            'warning',
          ),
        );
    }
    return { name: p.name, groups: p.groups ?? null, models: p.models ?? null, settings };
  });
  if (policies.length && !login) issues.push(source.issueAt(['policies'], 'policies: apply to signed-in users only, and login: is not configured', 'warning'));
  if (clients || login) {
    // With client keys the client's own credential is never forwarded: a provider with no keys of its own
    // would get every request with no credential at all.
    // A cloud provider signs with the gateway's own cloud credentials: it needs no keys.
    const bare = Object.values(providers).filter((p) => p.keys.length === 0 && !adapterFor(p).cloudCredentials && raw.providers[p.name]!.auth !== 'none');
    if (bare.length) {
      throw new LoadError(
        bare.map((p) =>
          source.issueAt(
            ['providers', p.name],
            `provider "${p.name}" has no keys:, and with ${clients ? 'clients:' : 'login:'} configured the client's own credential is never forwarded, so its requests would go upstream with no credential; add keys: [ "\${YOUR_UPSTREAM_KEY}" ] to it, or auth: none if this upstream takes no credential`,
          ),
        ),
      );
    }
  }
  const dir = path.dirname(abs);
  return {
    file: abs,
    listen: {
      host,
      port,
      tls: raw.listen?.tls ? { cert: path.resolve(dir, raw.listen.tls.cert), key: path.resolve(dir, raw.listen.tls.key) } : null,
    },
    rules_dir: overrides.rulesDir ? path.resolve(overrides.rulesDir) : path.resolve(path.dirname(abs), raw.rules ?? './rules'),
    default_provider,
    providers,
    limits: { max_body_bytes: DEFAULT_MAX_BODY_BYTES, ...DEFAULT_LIMITS, ...raw.limits },
    clients,
    allow_open: raw.allow_open === true,
    trusted_proxies: trustedProxies(raw.trusted_proxies ?? [], source),
    replicas: raw.replicas ?? 1,
    admin: { token: raw.admin?.token || env.SWITCHYARD_ADMIN_TOKEN || null },
    trace: { decision_header: raw.trace?.decision_header ?? false, requests: raw.trace?.requests ?? 1000 },
    batches: { poll_interval_ms: raw.batches?.poll_interval_ms ?? 60_000 },
    telemetry: { endpoint: raw.telemetry?.endpoint ?? null, service_name: raw.telemetry?.service_name ?? null },
    login,
    policies,
    attribution: { project_header: raw.attribution?.project_header ?? 'x-project' },
    budgets: {
      webhook: raw.budgets?.webhook ?? null,
      timeout_ms: raw.budgets?.timeout_ms ?? 5000,
      state_file: path.resolve(dir, raw.budgets?.state_file ?? './data/budget-notifications.json'),
      on_ledger_failure: raw.budgets?.on_ledger_failure ?? 'open',
    },
    cors: raw.cors ? { origins: raw.cors.origins, max_age_s: raw.cors.max_age_s ?? 600 } : null,
    state:
      !raw.state || raw.state === 'memory'
        ? 'memory'
        : {
            ...DEFAULT_STATE,
            ...raw.state,
            on_failure:
              typeof raw.state.on_failure === 'string'
                ? { throttles: raw.state.on_failure, cooldowns: raw.state.on_failure, budgets: raw.state.on_failure }
                : { throttles: 'local', cooldowns: 'local', budgets: 'local', ...raw.state.on_failure },
          },
    ledger:
      raw.ledger === 'off'
        ? null
        : {
            ...(raw.ledger?.postgres ? { postgres: raw.ledger.postgres } : { sqlite: path.resolve(dir, raw.ledger?.sqlite ?? './data/usage.db') }),
            flush_interval_ms: raw.ledger?.flush_interval_ms ?? 1000,
            max_queue: raw.ledger?.max_queue ?? 10_000,
            webhook: raw.ledger?.webhook ?? null,
            write_timeout_ms: raw.ledger?.write_timeout_ms ?? 10_000,
            retention_days: raw.ledger?.retention_days ?? null,
            spool: raw.ledger?.spool === false ? null : { dir: path.resolve(dir, raw.ledger?.spool?.dir ?? './data/spool'), max_bytes: raw.ledger?.spool?.max_bytes ?? DEFAULT_SPOOL_MAX_BYTES },
          },
    prices: raw.prices ? path.resolve(dir, raw.prices) : BUNDLED_PRICES,
    shutdown: { grace_ms: raw.shutdown?.grace_ms ?? 30_000 },
    log: { level: raw.log?.level },
    warnings: issues,
  };
}

/** `trusted_proxies` as a matcher. @throws LoadError at the entry that is neither an IP address nor a CIDR range */
function trustedProxies(entries: readonly string[], source: SourceFile): TrustedProxies {
  entries.forEach((e, i) => {
    try {
      new TrustedProxies([e]);
    } catch (err) {
      throw new LoadError([source.issueAt(['trusted_proxies', i], (err as Error).message)]);
    }
  });
  return new TrustedProxies(entries);
}

/** `telemetry:` in the config: an OTLP/HTTP base URL (`/v1/traces` and `/v1/metrics` are appended) and the service name. */
export interface TelemetryConfig {
  endpoint: string | null;
  service_name: string | null;
}
