/**
 * `GET /admin/providers` (and the dashboard's providers view): each provider's circuit, key pool and cloud
 * credentials' source, by fingerprint — never a secret.
 */
import { adapterFor } from '../../upstream/providers/index.js';
import type { ProxyDeps } from '../pipeline/exchange.js';

/**
 * Each provider's state for /admin/providers and the dashboard: circuit, key pool (fingerprints, cooldowns, in
 * flight, remaining requests) and, for cloud providers, where their credentials come from and when they expire —
 * never a secret.
 */
export async function providersStatus(deps: ProxyDeps) {
  const { config } = deps.runtime.current;
  const { pools, breakers, state } = deps.upstreams;
  const circuits = breakers.states();
  const providers = await Promise.all(
    Object.values(config.providers).map(async (p) => {
      const pool = pools.for(p);
      const cooling = await state.cooldowns(pool.keys.map((k) => pool.cooldownId(k)));
      return {
        name: p.name,
        base_url: p.base_url,
        circuit: circuits[p.name] ?? 'closed',
        // Cloud credentials: where they come from and when they expire, never a secret (the provider's own folder says).
        ...((c) => (c ? { credentials: c } : {}))(adapterFor(p).credentials?.(p) ?? null),
        key_strategy: p.key_strategy,
        keys: pool.keys.map((k) => ({
          key: k.fingerprint,
          state: k.failed ? 'failed' : cooling[k.index] ? 'cooling' : 'ok',
          cooling_until: cooling[k.index] ? new Date(cooling[k.index]!).toISOString() : null,
          in_flight: k.inFlight,
          requests_remaining: k.remaining,
        })),
      };
    }),
  );
  return { state_store: state.kind, providers };
}
