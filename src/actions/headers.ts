/**
 * `set_headers` / `remove_headers`: change the headers of the upstream request. Each header name is a
 * single-valued setting `header:<name>` (lower-cased), shared by both actions: the first rule that sets
 * or removes a header wins. Credentials, `host`, `content-length` and hop-by-hop headers cannot be
 * touched: upstream credentials come from the provider config, never from rule files.
 */
import { HOP_BY_HOP } from '../upstream/headers.js';
import { CREDENTIAL_HEADERS } from '../log.js';
import { defineAction, type CompileContext } from './types.js';

const PROTECTED = new Set([...HOP_BY_HOP, ...CREDENTIAL_HEADERS, 'host', 'content-length']);

function checkName(name: string, cx: CompileContext, at: Array<string | number>): void {
  if (PROTECTED.has(name.toLowerCase())) {
    cx.error(at, `header "${name}" cannot be changed by a rule (credentials, host, content-length and hop-by-hop headers are managed by the gateway)`);
  }
}

const HEADER_NAME = "^[A-Za-z0-9!#$%&'*+.^_`|~-]+$";

export const setHeaders = defineAction<Array<[string, string]>>({
  name: 'set_headers',
  schema: {
    type: 'object',
    minProperties: 1,
    description: 'Headers to set on the upstream request (name: value). Names are case-insensitive.',
    propertyNames: { pattern: HEADER_NAME },
    additionalProperties: { type: 'string', description: 'The header value.' },
  },
  compile(params, cx) {
    return Object.entries(params as Record<string, string>).map(([name, value]) => {
      checkName(name, cx, [name]);
      return [name.toLowerCase(), value] as [string, string];
    });
  },
  settings: (c) => c.map(([name]) => ({ setting: `header:${name}`, always: true })),
  apply(c, _rc, d, rule) {
    return d.claim(
      'set_headers',
      rule,
      c.map(([name, value]) => [
        `header:${name}`,
        () => {
          d.setHeaders[name] = value;
        },
      ]),
      Object.fromEntries(c),
    );
  },
});

export const removeHeaders = defineAction<string[]>({
  name: 'remove_headers',
  schema: {
    type: 'array',
    minItems: 1,
    items: { type: 'string', pattern: HEADER_NAME },
    description: 'Header names to remove from the upstream request. Case-insensitive.',
  },
  compile(params, cx) {
    return (params as string[]).map((name, i) => {
      checkName(name, cx, [i]);
      return name.toLowerCase();
    });
  },
  settings: (c) => c.map((name) => ({ setting: `header:${name}`, always: true })),
  apply(c, _rc, d, rule) {
    return d.claim(
      'remove_headers',
      rule,
      c.map((name) => [
        `header:${name}`,
        () => {
          d.removeHeaders.push(name);
        },
      ]),
      c,
    );
  },
});
