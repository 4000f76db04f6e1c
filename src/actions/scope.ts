/**
 * Scope values: what a throttle or a budget counts a request under (`scope: user` counts per user, ...). The
 * one definition used by enforcement (a live request), the start-up budget seed and the dashboard (a usage
 * record), `/v1/me/usage` and rule tests, so that one request is filed under the same key by all of them,
 * also when a fact is missing.
 */
import type { RequestContext } from '../rules/context.js';
import type { Decision } from '../rules/decision.js';

/** What a scope can count a request by: its client id, session, model, user, project and billing tags. */
export interface ScopeFacts {
  client: string;
  session: string | null;
  model: string;
  user: string;
  project: string | null;
  tags: Record<string, string>;
}

/** The fields of a usage record the scope facts come from (usage/record.ts). */
export interface RecordScopeFields {
  client_id: string | null;
  session_id: string | null;
  model: string | null;
  user_id: string | null;
  project: string | null;
  tags: Record<string, string>;
}

/** The client id of a request that named none (no credential): what the request context calls it. */
export const ANONYMOUS = 'anonymous';
/** The model value of a record that has none (refused before a model was known). */
export const NO_MODEL = '(none)';

/**
 * The value a throttle or budget `scope` counts under: `*` for global, `client:<id>` for a session-less
 * request's session, `(no project)` and `(untagged)` for what is missing.
 */
export function scopeValueOf(scope: string, f: ScopeFacts): string {
  if (scope === 'global') return '*';
  if (scope === 'key' || scope === 'client') return f.client;
  if (scope === 'session') return f.session ?? `client:${f.client}`;
  if (scope === 'model') return f.model;
  if (scope === 'user') return f.user;
  if (scope === 'project') return f.project ?? '(no project)';
  return f.tags[scope.slice(4)] ?? '(untagged)';
}

/** The facts of a live request: its context and (final) decision. */
export function requestScopeFacts(rc: RequestContext, d: Pick<Decision, 'route' | 'tags'>): ScopeFacts {
  return { client: rc.client.id, session: rc.session.id, model: d.route.model, user: rc.user.id, project: rc.project, tags: d.tags };
}

/**
 * The facts of a usage record, missing fields filled as a live request fills them: no client is
 * `anonymous`, no user is the client (the request context's `user.id` falls back to the client id), no
 * model is `(none)`.
 */
export function recordScopeFacts(r: RecordScopeFields): ScopeFacts {
  const client = r.client_id ?? ANONYMOUS;
  return { client, session: r.session_id, model: r.model ?? NO_MODEL, user: r.user_id ?? client, project: r.project, tags: r.tags };
}

/** The value a scope counts a live request under. */
export function scopeValue(scope: string, rc: RequestContext, d: Pick<Decision, 'route' | 'tags'>): string {
  return scopeValueOf(scope, requestScopeFacts(rc, d));
}

/** The value a scope counts a usage record under (the seed, the dashboard). */
export function recordScopeValue(scope: string, r: RecordScopeFields): string {
  return scopeValueOf(scope, recordScopeFacts(r));
}
