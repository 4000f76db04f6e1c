/**
 * `route_to`: choose the upstream provider, optionally rewrite the model, and name the fallback chain.
 * Sets the single-valued settings `route` (provider and fallback) and `model`.
 */
import type { FallbackTarget } from '../rules/decision.js';
import { defineAction } from './types.js';

interface RouteTo {
  provider: string;
  model?: string;
  fallback: FallbackTarget[];
}

export const routeTo = defineAction<RouteTo>({
  name: 'route_to',
  schema: {
    type: 'object',
    additionalProperties: false,
    required: ['provider'],
    description: 'Send the request to a configured provider, optionally under another model name, with providers to fall back to.',
    properties: {
      provider: { type: 'string', minLength: 1, description: 'Name of a provider under `providers:` in the gateway config.' },
      model: { type: 'string', minLength: 1, description: 'Model name sent upstream instead of the one the client asked for.' },
      fallback: {
        type: 'array',
        description:
          "Providers to try next, in order, when this one fails before the first byte. Each gets the model the client asked for (renamed by its `models:` map), not this rule's `model`, unless the entry names its own.",
        items: {
          anyOf: [
            { type: 'string', minLength: 1, description: 'a provider name' },
            {
              type: 'object',
              additionalProperties: false,
              required: ['provider'],
              description: 'a map {provider, model}',
              properties: {
                provider: { type: 'string', minLength: 1, description: 'Name of a provider under `providers:`.' },
                model: { type: 'string', minLength: 1, description: 'Model name sent to this fallback provider.' },
              },
            },
          ],
        },
      },
    },
  },
  compile(params, cx) {
    const p = params as { provider: string; model?: string; fallback?: Array<string | FallbackTarget> };
    const known = [...cx.providers].join(', ');
    if (!cx.providers.has(p.provider)) cx.error(['provider'], `unknown provider "${p.provider}"; the config defines: ${known}`);
    const fallback = (p.fallback ?? []).map((f): FallbackTarget => (typeof f === 'string' ? { provider: f } : f));
    fallback.forEach((f, i) => {
      if (!cx.providers.has(f.provider)) cx.error(['fallback', i], `unknown fallback provider "${f.provider}"; the config defines: ${known}`);
    });
    return { provider: p.provider, model: p.model, fallback };
  },
  settings: (c) => [{ setting: 'route', always: true }, ...(c.model ? [{ setting: 'model', always: true }] : [])],
  apply(c, _rc, d, rule) {
    const writes: Array<[string, () => void]> = [
      [
        'route',
        () => {
          d.route = { ...d.route, provider: c.provider, fallback: c.fallback, rule };
        },
      ],
    ];
    if (c.model !== undefined)
      writes.push([
        'model',
        () => {
          d.route = { ...d.route, model: c.model };
        },
      ]);
    return d.claim('route_to', rule, writes, { provider: c.provider, model: c.model, fallback: c.fallback });
  },
});
