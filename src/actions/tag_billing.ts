/**
 * `tag_billing`: attach billing tags (team, cost center, project...) to the request's usage record.
 * Each tag is its own single-valued setting `tag:<name>`; a value is a string or `{expr: JSONata}`
 * evaluated against the request context (a result that is nothing leaves the tag unset).
 */
import { compileJsonata, describeResult, evalErrorMessage, evaluateExpression, isRunaway, type Expression } from '../rules/jsonata.js';
import { defineAction } from './types.js';

type TagValue = { value: string } | { expr: Expression };

export const tagBilling = defineAction<Array<[string, TagValue]>>({
  name: 'tag_billing',
  schema: {
    type: 'object',
    minProperties: 1,
    description: 'Billing tags by name. A value is a fixed string, or {expr: JSONata} evaluated per request.',
    propertyNames: { pattern: '^[a-z][a-z0-9_]*$' },
    additionalProperties: {
      description: 'A fixed tag value, or {expr: "<JSONata over the request context>"}.',
      anyOf: [
        { type: 'string', description: 'a string' },
        {
          type: 'object',
          additionalProperties: false,
          required: ['expr'],
          description: 'a map {expr: JSONata}',
          properties: { expr: { type: 'string', minLength: 1, description: 'JSONata over the request context; its result (string or number) is the tag value.' } },
        },
      ],
    },
  },
  compile(params, cx) {
    const out: Array<[string, TagValue]> = [];
    for (const [name, v] of Object.entries(params as Record<string, string | { expr: string }>)) {
      if (typeof v === 'string') out.push([name, { value: v }]);
      else {
        const expr = compileJsonata(v.expr, cx, [name, 'expr']);
        if (expr) out.push([name, { expr }]);
      }
    }
    return out;
  },
  settings: (c) => c.map(([name, v]) => ({ setting: `tag:${name}`, always: 'value' in v })),
  apply(c, rc, d, rule) {
    // Fixed values and fast-path expressions resolve synchronously; only jsonata fallbacks are awaited.
    const values = c.map(([, v]) => {
      if ('value' in v) return v.value;
      try {
        return evaluateExpression(v.expr, rc);
      } catch (err) {
        return Promise.reject(err as Error);
      }
    });
    const finish = (settled: Array<{ ok: true; value: unknown } | { ok: false; err: unknown }>) => {
      const writes: Array<[string, () => void]> = [];
      const set: Record<string, string> = {};
      settled.forEach((s, i) => {
        const name = c[i]![0];
        if (!s.ok) {
          if (isRunaway(s.err)) d.error = { rule, message: `tag_billing.${name}: expression stopped: ${evalErrorMessage(s.err)}` };
          else d.warnings.push({ rule, message: `tag_billing.${name}: expression failed: ${evalErrorMessage(s.err)}` });
          return;
        }
        const r = s.value;
        if (typeof r === 'string' || typeof r === 'number' || typeof r === 'boolean') {
          const value = String(r);
          writes.push([
            `tag:${name}`,
            () => {
              d.tags[name] = value;
              set[name] = value;
            },
          ]);
        } else if (r !== undefined) {
          d.warnings.push({ rule, message: `tag_billing.${name}: expression returned ${describeResult(r)}, not a string; tag left unset` });
        }
      });
      return d.claim('tag_billing', rule, writes, set);
    };
    if (!values.some((v) => v instanceof Promise)) return finish(values.map((value) => ({ ok: true as const, value })));
    return Promise.all(
      values.map((v) =>
        Promise.resolve(v).then(
          (value) => ({ ok: true as const, value }),
          (err: unknown) => ({ ok: false as const, err }),
        ),
      ),
    ).then(finish);
  },
});
