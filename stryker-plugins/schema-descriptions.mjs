/**
 * A Stryker ignore-plugin: mutants inside a JSON Schema `description` string (the text editors show beside a
 * field) are not run. Such text is documentation: no request or rule reads it, so a mutant there has no
 * observable behaviour to catch (an equivalent mutant). Except where a load error quotes it: the
 * descriptions of an `anyOf`/`oneOf` node and of its branches ("expected a string, or a map {expr: JSONata}",
 * src/validation.ts) stay mutated.
 * Patterns, bounds, enums and required lists of the same schemas stay mutated and are tested in
 * test/actions.test.ts. See https://stryker-mutator.io/docs/stryker-js/disable-mutants/#using-an-ignore-plugin
 */
import { declareValuePlugin, PluginKind } from '@stryker-mutator/api/plugin';

const REASON = 'JSON Schema description: documentation text, no behaviour';
const UNION = new Set(['anyOf', 'oneOf']);

/** The name of an object property's key, or undefined when it is computed. */
function keyName(node) {
  if (node.computed) return undefined;
  return node.key.type === 'Identifier' ? node.key.name : node.key.type === 'StringLiteral' ? node.key.value : undefined;
}

/** True when the schema object holding this `description` is a union or one of a union's branches. */
function quotedInErrors(path) {
  const schema = path.parentPath;
  if (!schema?.isObjectExpression()) return false;
  if (schema.node.properties.some((p) => p.type === 'ObjectProperty' && UNION.has(keyName(p)))) return true;
  const list = schema.parentPath;
  const owner = list?.parentPath;
  return Boolean(list?.isArrayExpression() && owner?.isObjectProperty() && UNION.has(keyName(owner.node)));
}

export const strykerPlugins = [
  declareValuePlugin(PluginKind.Ignore, 'schema-descriptions', {
    shouldIgnore(path) {
      if (!path.isObjectProperty() || keyName(path.node) !== 'description') return undefined;
      return quotedInErrors(path) ? undefined : REASON;
    },
  }),
];
