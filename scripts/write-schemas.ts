/** Writes schemas/rules.schema.json and schemas/config.schema.json from their sources in src/. */
import { writeFileSync } from 'node:fs';
import { configSchema } from '../src/config-schema.js';
import { buildRulesSchema } from '../src/rules/schema.js';

export const SCHEMA_FILES = {
  'schemas/rules.schema.json': buildRulesSchema(),
  'schemas/config.schema.json': configSchema,
};

if (process.argv[1]?.endsWith('write-schemas.ts')) {
  for (const [file, schema] of Object.entries(SCHEMA_FILES)) {
    writeFileSync(file, JSON.stringify(schema, null, 2) + '\n');
    console.log(`wrote ${file}`);
  }
}
