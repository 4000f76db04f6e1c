/**
 * `tag_billing`: attach billing tags (team, cost center, project...) to the request's usage record.
 * Each tag is its own single-valued setting `tag:<name>`; a value is a string or `{expr: JSONata}`
 * evaluated against the request context (a result that is nothing leaves the tag unset).
 */
import { compileJsonata, describeResult, evalErrorMessage, type Expression } from '../rules/jsonata.js';
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
  async apply(c, rc, d, rule) {
    const writes: Array<[string, () => void]> = [];
    const set: Record<string, string> = {};
    for (const [name, v] of c) {
      let value: string | undefined;
      if ('value' in v) value = v.value;
      else {
        try {
          const r: unknown = await v.expr.evaluate(rc);
          if (typeof r === 'string' || typeof r === 'number' || typeof r === 'boolean') value = String(r);
          else if (r !== undefined) d.warnings.push({ rule, message: `tag_billing.${name}: expression returned ${describeResult(r)}, not a string; tag left unset` });
        } catch (err) {
          d.warnings.push({ rule, message: `tag_billing.${name}: expression failed: ${evalErrorMessage(err)}` });
        }
      }
      if (value !== undefined) {
        const v2 = value;
        writes.push([`tag:${name}`, () => { d.tags[name] = v2; set[name] = v2; }]);
      }
    }
    return d.claim('tag_billing', rule, writes, set);
  },
});
