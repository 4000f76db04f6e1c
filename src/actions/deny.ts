/**
 * `deny`: refuse the request with a status and a message, in Anthropic's error shape; the message names
 * the rule. Ends evaluation.
 */
import { defineAction } from './types.js';

interface Deny {
  status: number;
  message: string;
}

export const deny = defineAction<Deny>({
  name: 'deny',
  schema: {
    type: 'object',
    additionalProperties: false,
    required: ['message'],
    description: 'Refuse the request. Ends rule evaluation.',
    properties: {
      status: { type: 'integer', minimum: 400, maximum: 599, description: 'HTTP status answered (default 403, permission_error).' },
      message: { type: 'string', minLength: 1, description: 'What the client is told; the rule id is added.' },
    },
  },
  compile: (params) => ({ status: 403, ...(params as Partial<Deny>) }) as Deny,
  settings: () => [],
  apply(c, _rc, d, rule) {
    d.denied = { rule, status: c.status, message: c.message };
    return { action: 'deny', applied: true, detail: { status: c.status } };
  },
});
