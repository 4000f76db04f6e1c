/**
 * `transform`: the escape hatch. A JSONata expression evaluated against the current request body (the
 * request context is bound as `$context`) whose result becomes the new body. Transforms accumulate in
 * rule order. A result that is not a JSON object is an error answered 500 naming the rule.
 */
import { compileJsonata, describeResult, evalErrorMessage, evaluateExpression, type Expression } from '../rules/jsonata.js';
import { defineAction } from './types.js';

export const transform = defineAction<Expression | undefined>({
  name: 'transform',
  schema: {
    type: 'object',
    additionalProperties: false,
    required: ['expr'],
    description: 'Rewrite the request body with a JSONata expression.',
    properties: {
      expr: { type: 'string', minLength: 1, description: 'JSONata evaluated against the current body ($context is the request context); must return an object, the new body.' },
    },
  },
  compile: (params, cx) => compileJsonata((params as { expr: string }).expr, cx, ['expr']),
  settings: () => [],
  async apply(expr, rc, d, rule) {
    let result: unknown;
    try {
      result = await evaluateExpression(expr!, d.body, { context: rc });
    } catch (err) {
      d.error = { rule, message: `transform expression failed: ${evalErrorMessage(err)}` };
      return { action: 'transform', applied: false };
    }
    if (result === null || typeof result !== 'object' || Array.isArray(result)) {
      d.error = { rule, message: `transform must return an object (the new request body), got ${describeResult(result)}` };
      return { action: 'transform', applied: false };
    }
    d.replaceBody(JSON.parse(JSON.stringify(result)) as Record<string, unknown>);
    return { action: 'transform', applied: true };
  },
});
