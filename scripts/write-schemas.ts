/** Writes schemas/rules.schema.json, schemas/config.schema.json and schemas/rule-tests.schema.json from their sources in src/. */
import { writeFileSync } from 'node:fs';
import { configSchema } from '../src/config-schema.js';
import { buildRuleTestsSchema } from '../src/rules/rule-tests.js';
import { buildRulesSchema } from '../src/rules/schema.js';

export const SCHEMA_FILES = {
  'schemas/rules.schema.json': buildRulesSchema(),
  'schemas/config.schema.json': configSchema,
  'schemas/rule-tests.schema.json': buildRuleTestsSchema(),
};

if (process.argv[1]?.endsWith('write-schemas.ts')) {
  for (const [file, schema] of Object.entries(SCHEMA_FILES)) {
    writeFileSync(file, JSON.stringify(schema, null, 2) + '\n');
    console.log(`wrote ${file}`);
  }
}
