/**
 * JSON Schema (2020-12) of a rule file, assembled from the action registry: each action module owns
 * the schema of its parameters. `npm run schemas` writes it to `schemas/rules.schema.json` for editors
 * (a test checks the committed file is current).
 */
import { ACTIONS } from '../actions/index.js';

const stringOrList = (what: string) => ({
  description: `${what}: one glob or a list of globs (* matches any run of characters).`,
  anyOf: [
    { type: 'string', minLength: 1, description: 'a glob string' },
    { type: 'array', minItems: 1, items: { type: 'string', minLength: 1 }, description: 'a list of globs' },
  ],
});

/** Builds the rule-file schema from the registered actions. */
export function buildRulesSchema(): Record<string, unknown> {
  const actionProps: Record<string, unknown> = {};
  for (const [name, mod] of ACTIONS) actionProps[name] = mod.schema;
  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    $id: 'https://switchyard.dev/schemas/rules.schema.json',
    title: 'Switchyard rule file (rules/*.yaml)',
    description:
      'Rules run top to bottom (files in name order); every matching rule applies its actions; for a single-valued setting (route, model, a tag, a header) the first rule that sets it wins; throttles accumulate; deny ends evaluation; final: true ends it after that rule.',
    type: 'object',
    additionalProperties: false,
    required: ['version', 'rules'],
    properties: {
      version: { const: 1, description: 'Rule file format version; must be 1.' },
      rules: {
        type: 'array',
        description: 'The rules of this file, in evaluation order.',
        items: {
          type: 'object',
          additionalProperties: false,
          required: ['id', 'actions'],
          description: 'One rule: conditions (match) and what to do when they hold (actions).',
          properties: {
            id: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]*$', description: 'Unique id across all rule files; appears in logs, usage records and dry-run.' },
            description: { type: 'string', description: 'What the rule is for, for people.' },
            enabled: { type: 'boolean', description: 'false turns the rule off without deleting it (default true).' },
            final: { type: 'boolean', description: 'true: when this rule matches, no later rule is evaluated (default false).' },
            match: {
              type: 'object',
              additionalProperties: false,
              description: 'Conditions; all must hold. Absent or empty: the rule matches every request.',
              properties: {
                model: stringOrList('Request model'),
                key: stringOrList('Client id (never a secret); a signed-in user is their email'),
                group: stringOrList("Identity-provider group of a signed-in user (any of the user's groups matches)"),
                header: {
                  type: 'object',
                  description: 'Request headers by name (case-insensitive): "*" = present, "/regex/flags" = regex match, anything else = exact value.',
                  additionalProperties: { type: 'string', description: '"*", "/regex/flags" or an exact value.' },
                },
                when: {
                  type: 'string',
                  minLength: 1,
                  description: 'JSONata over the request context (model, stream, body, messages, headers, client, session, estimate, time); must return true or false.',
                },
              },
            },
            actions: {
              type: 'array',
              minItems: 1,
              description: 'Actions applied in order when the rule matches.',
              items: {
                type: 'object',
                minProperties: 1,
                maxProperties: 1,
                additionalProperties: false,
                description: `One action, written as a map with a single key: ${[...ACTIONS.keys()].join(', ')}.`,
                properties: actionProps,
              },
            },
          },
        },
      },
    },
  };
}
