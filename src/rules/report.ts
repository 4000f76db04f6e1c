/**
 * The dry-run report: a decision as JSON-ready data (what `dry-run --json` and `serve --dry-run` print)
 * and as a short human-readable table. Credentials are masked.
 */
import { CREDENTIAL_HEADERS } from '../log.js';
import { clientCredential, credentialFingerprint } from './context.js';
import type { Decision } from './decision.js';
import type { PreparedRequest } from '../upstream/prepare.js';

/** What dry-run prints. */
export interface DryRunReport {
  ruleset: string;
  /** `chain`: the route's provider then its fallbacks, each with the model it would be sent. */
  route: Decision['route'] & { url: string; chain: Array<{ provider: string; model: string }> };
  rules: Decision['rules'];
  tags: Decision['tags'];
  throttles: Decision['throttles'];
  budgets: Decision['budgets'];
  /** Headers that would go upstream, credentials masked. */
  headers: Record<string, string>;
  denied: Decision['denied'];
  error: Decision['error'];
  warnings: Decision['warnings'];
  body_changed: boolean;
  /** The upstream request as sent (method, URL, body size, model, fields dropped in translation), or the local answer. */
  request:
    | {
        method: string;
        url: string;
        body_bytes: number;
        /** The model the provider gets: the body's `model`, else the route chain's (Bedrock has it in the path). */
        model: string | null;
        dropped_fields: string[];
        /** Set when the headers shown are signed just before sending (e.g. `aws-sigv4`): the signature headers are not shown. */
        signed_when_sent?: string;
      }
    | { answered_locally: true; status: number; headers: Record<string, string> };
  [extra: string]: unknown;
}

const CREDENTIALS = new Set(CREDENTIAL_HEADERS);

/** Masks credential header values as `[masked fp-…]` (a non-reversible fingerprint, to tell keys apart). */
export function maskHeaders(headers: Record<string, string | string[]>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    const v = Array.isArray(value) ? value.join(', ') : value;
    if (!CREDENTIALS.has(name)) out[name] = v;
    else {
      const secret = name === 'authorization' ? (clientCredential({ authorization: v }) ?? v) : v;
      out[name] = `[masked ${credentialFingerprint(secret)}]`;
    }
  }
  return out;
}

/** Builds the report for a decision and the upstream request it leads to, exactly as it would be sent. */
export function dryRunReport(d: Decision, sent: PreparedRequest): DryRunReport {
  // The model sent is in the body, else (Bedrock, Vertex AI: the model is in the URL) the route chain's.
  const model = bodyModel(sent.body) ?? sent.chain[0]?.model ?? null;
  return {
    ruleset: d.ruleset,
    route: { ...d.route, url: sent.url, chain: sent.chain.map((l) => ({ provider: l.provider.name, model: l.model })) },
    rules: d.rules,
    tags: d.tags,
    throttles: d.throttles,
    budgets: d.budgets,
    request: sent.local
      ? { answered_locally: true, status: sent.local.status, headers: sent.local.headers }
      : { method: sent.method, url: sent.url, body_bytes: sent.body?.length ?? 0, model, dropped_fields: sent.dropped, ...(sent.signedWhenSent ? { signed_when_sent: sent.signedWhenSent } : {}) },
    headers: maskHeaders(sent.headers),
    denied: d.denied,
    error: d.error,
    warnings: d.warnings,
    body_changed: d.bodyChanged || (model !== null && model !== d.route.requested_model),
    ...d.extra,
  };
}

/** The `model` of a JSON body as sent (what the provider will see), or null. */
function bodyModel(body: Buffer | null): string | null {
  if (!body) return null;
  try {
    const m = (JSON.parse(body.toString('utf8')) as { model?: unknown }).model;
    return typeof m === 'string' ? m : null;
  } catch {
    return null;
  }
}

/** The human-readable form: the route, then one line per rule with its actions. */
export function formatReport(r: DryRunReport): string {
  const lines: string[] = [];
  lines.push(`rules ${r.ruleset}`);
  if (r.denied) lines.push(`DENIED by ${r.denied.rule}: ${r.denied.status} ${r.denied.message}`);
  if (r.error) lines.push(`ERROR in ${r.error.rule}: ${r.error.message}`);
  const sent = r.request;
  lines.push(`route     ${r.route.provider} ${'method' in sent ? `${sent.method} ${sent.url}` : `answered by switchyard (${sent.status})`}`);
  // The model the provider gets (a provider's `models:` map, a Bedrock id), beside what was asked and routed.
  const shown = ('method' in sent ? sent.model : null) ?? r.route.model;
  const notes = [
    ...(r.route.requested_model !== shown ? [`requested ${r.route.requested_model}`] : []),
    ...(r.route.model !== shown && r.route.model !== r.route.requested_model ? [`routed as ${r.route.model}`] : []),
  ];
  lines.push(`model     ${shown}${notes.length ? ` (${notes.join('; ')})` : ''}`);
  const files = r.files as { ids: string[]; provider: string | null; key: string | null } | undefined;
  if (files) {
    const where = files.provider
      ? `held by provider ${files.provider}, key ${files.key ?? '(client credential)'}: sent with that key only`
      : 'sent with the key that uploaded them (the running gateway knows which; serve --dry-run shows it)';
    lines.push(`files     ${files.ids.join(', ')} (${where})`);
  }
  lines.push(`fallback  ${r.route.fallback.length ? r.route.fallback.map((f) => (f.model ? `${f.provider} (model ${f.model})` : f.provider)).join(' -> ') : '-'}`);
  if (r.route.chain.length > 1) lines.push(`chain     ${r.route.chain.map((l) => `${l.provider} (${l.model})`).join(' -> ')}`);
  lines.push(
    `tags      ${
      Object.entries(r.tags)
        .map(([k, v]) => `${k}=${v}`)
        .join(' ') || '-'
    }`,
  );
  lines.push(`throttles ${r.throttles.length ? r.throttles.map((t) => t.rule).join(', ') : '-'}`);
  lines.push(
    `budgets   ${
      r.budgets.length
        ? r.budgets
            .map((b) => {
              const modes = [
                b.block === false ? 'no block' : '',
                b.notify ? `notify at ${b.notify.map((t) => `${Math.round(t * 100)}%`).join('/')}` : '',
                b.shape ? `from ${Math.round(b.shape.at * 100)}% sent to ${b.shape.model}` : '',
              ];
              return `${b.rule} ($${b.usd}/${b.per} per ${b.scope}${modes
                .filter(Boolean)
                .map((m) => `; ${m}`)
                .join('')})`;
            })
            .join(', ')
        : '-'
    }`,
  );
  lines.push(
    `body      ${r.body_changed ? 'changed by rules' : 'forwarded byte for byte'}${'method' in sent && sent.dropped_fields.length ? `; dropped for this provider: ${sent.dropped_fields.join(', ')}` : ''}`,
  );
  const cache = r.cache_breakpoints as { existing: number; places: Array<{ place: string; ttl: string; status: string; reason?: string }> } | undefined;
  if (cache) {
    lines.push(`cache     ${cache.existing} breakpoint(s) from the client`);
    for (const p of cache.places) lines.push(`          ${p.place} (${p.ttl}): ${p.status}${p.reason ? ` — ${p.reason}` : ''}`);
  }
  // scan_secrets' findings: where and which rule, never the value (actions/scan_secrets).
  const secrets = r.secret_findings as { on_find: string; findings: Array<{ rule: string; where: string; block: string; length: number; placeholder: string }> } | undefined;
  if (secrets) {
    const verb = secrets.on_find === 'redact' ? 'redacted' : secrets.on_find === 'block' ? 'blocked' : 'reported';
    lines.push(`secrets   ${secrets.findings.length} found (${verb})`);
    for (const f of secrets.findings) lines.push(`          ${f.rule} in ${f.where} (${f.block}, ${f.length} bytes)${secrets.on_find === 'redact' ? ` -> ${f.placeholder}` : ''}`);
  }
  lines.push('');
  const idWidth = Math.max(4, ...r.rules.map((x) => x.id.length));
  lines.push(`${'RULE'.padEnd(idWidth)}  MATCH  DETAIL`);
  for (const rule of r.rules) {
    const detail = rule.matched
      ? rule.actions
          .map(
            (a) =>
              `${a.action}${a.applied ? '' : ' (shadowed' + (a.shadowed_by ? ` by ${a.shadowed_by}` : '') + ')'}${a.applied && a.shadowed?.length ? ` (partly shadowed: ${a.shadowed.map((s) => `${s.setting} by ${s.by}`).join(', ')})` : ''}`,
          )
          .join(', ')
      : (rule.reason ?? '');
    lines.push(`${rule.id.padEnd(idWidth)}  ${rule.matched ? 'yes  ' : 'no   '}  ${detail}`);
  }
  lines.push('');
  lines.push('upstream headers:');
  for (const [k, v] of Object.entries(r.headers)) lines.push(`  ${k}: ${v}`);
  for (const w of r.warnings) lines.push(`warning: rule ${w.rule}: ${w.message}`);
  return lines.join('\n');
}
