/** Model ids and their entries in Anthropic's `GET /v1/models` shape: shared by the route catalogue and the providers that list models. */

/** One entry of the list, in Anthropic's shape. */
export interface ModelInfo {
  type: 'model';
  id: string;
  display_name: string;
  /** RFC 3339; the gateway knows no release date, so this is when the rule set listing the model was loaded. */
  created_at: string;
}

/**
 * `claude-sonnet-4-6` → `Claude Sonnet 4.6`, `claude-haiku-4-5-20251001` → `Claude Haiku 4.5`; other ids are
 * their own display name.
 */
export function displayName(id: string): string {
  if (!/^claude-/.test(id)) return id;
  const words: string[] = [];
  for (const part of id.replace(/-\d{8}$/, '').split('-')) {
    const prev = words.at(-1);
    if (/^\d+$/.test(part) && prev !== undefined && /^\d+(\.\d+)*$/.test(prev)) words[words.length - 1] = `${prev}.${part}`;
    else words.push(/^\d/.test(part) ? part : part.charAt(0).toUpperCase() + part.slice(1));
  }
  return words.join(' ');
}

/** The model id of `GET /v1/models/{id}` (decoded), or null for the list. */
export function modelIdOf(pathAndQuery: string): string | null {
  const one = /^\/v1\/models\/(.+)$/.exec(new URL(pathAndQuery, 'http://gateway').pathname);
  return one ? decodeURIComponent(one[1]!) : null;
}
