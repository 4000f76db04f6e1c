/**
 * Per-group policy for signed-in users (config `policies:`): the first policy naming one of the user's groups,
 * merged over the catch-all (the first policy naming no groups). It decides which models the user may use —
 * at `/v1/messages` (a model outside it answers `400 invalid_request_error` naming the policy, as the gateway
 * protocol asks) and in `/v1/models` — and the managed settings served at `GET /managed/settings`.
 */
import picomatch from 'picomatch';
import { literalNames } from '../rules/matchers.js';
import type { LoginConfig, PolicyConfig } from '../config.js';
import type { SignedInUser } from './tokens.js';

/** The policy in force for one user. */
export interface EffectivePolicy {
  /** The names it came from, specific first (for errors and logs), e.g. "platform over everyone". */
  name: string;
  /** Managed settings (the catch-all's, deep-merged under the specific one's), or null when no policy applies. */
  settings: Record<string, unknown> | null;
}

const isMap = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** `over` merged onto `under`: maps key by key, anything else (lists included) replaced. */
export function mergeSettings(under: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...under };
  for (const [k, v] of Object.entries(over)) out[k] = isMap(v) && isMap(out[k]) ? mergeSettings(out[k], v) : v;
  return out;
}

/**
 * The `env` managed settings carry when Claude Code's telemetry is collected: the client then sends its OTLP
 * metrics and events to this gateway (`{public_url}/v1/metrics`, …). Variable names from Claude Code's monitoring
 * documentation (https://code.claude.com/docs/en/monitoring-usage).
 */
export function telemetryEnv(login: LoginConfig): Record<string, string> {
  return {
    CLAUDE_CODE_ENABLE_TELEMETRY: '1',
    OTEL_METRICS_EXPORTER: 'otlp',
    OTEL_LOGS_EXPORTER: 'otlp',
    OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
    OTEL_EXPORTER_OTLP_ENDPOINT: login.public_url,
  };
}

/** A policy with its model globs compiled (null: it does not restrict models). */
interface CompiledPolicy {
  p: PolicyConfig;
  models: ((m: string) => boolean) | null;
}

/** Resolves policies for users; compiled once per config. */
export class Policies {
  private readonly compiled: CompiledPolicy[];
  /** The first policy naming no groups. */
  private readonly catchAll: CompiledPolicy | undefined;

  constructor(
    policies: readonly PolicyConfig[],
    private readonly login: LoginConfig,
  ) {
    this.compiled = policies.map((p) => ({ p, models: p.models ? picomatch(p.models) : null }));
    this.catchAll = this.compiled.find((c) => c.p.groups === null);
  }

  /** The policies that apply to `user`, most specific first: the first naming one of their groups, then the catch-all. */
  private applied(user: SignedInUser): CompiledPolicy[] {
    const specific = this.compiled.find((c) => c.p.groups?.some((g) => user.groups.includes(g)));
    return [specific, this.catchAll].filter((c): c is CompiledPolicy => c !== undefined);
  }

  /** The applied policy whose model list decides: the specific one when it has one, else the catch-all's; none: any model. */
  private limiter(user: SignedInUser): CompiledPolicy | undefined {
    return this.applied(user).find((c) => c.models);
  }

  /** The managed settings in force for `user` (with the telemetry `env` when it is collected). */
  for(user: SignedInUser): EffectivePolicy {
    const applied = this.applied(user);
    let settings: Record<string, unknown> | null = null;
    for (const c of [...applied].reverse()) if (c.p.settings) settings = mergeSettings(settings ?? {}, c.p.settings);
    if (this.login.collect_telemetry) {
      const env = isMap(settings?.env) ? settings.env : {};
      settings = { ...(settings ?? {}), env: { ...telemetryEnv(this.login), ...env } };
    }
    return { name: applied.map((c) => c.p.name).join(' over ') || '(none)', settings };
  }

  private readonly byGroups = new Map<string, { name: string; allows: (model: string) => boolean }>();

  /**
   * Which models `user` may use, and the policy that says so (named in errors): the specific policy's list when
   * it has one, else the catch-all's, else any model. Cached per set of groups (the hot path asks per request).
   */
  models(user: SignedInUser): { name: string; allows: (model: string) => boolean } {
    const key = user.groups.join('\0');
    let hit = this.byGroups.get(key);
    if (!hit) {
      const limiter = this.limiter(user);
      hit = limiter ? { name: limiter.p.name, allows: limiter.models! } : { name: '(none)', allows: () => true };
      if (this.byGroups.size < 10_000) this.byGroups.set(key, hit);
    }
    return hit;
  }

  /** The exact model names (no globs) the policy for `user` lists, or null when it does not restrict models. */
  listedModels(user: SignedInUser): string[] | null {
    const limiter = this.limiter(user);
    return limiter ? literalNames(limiter.p.models!) : null;
  }
}
