/**
 * The nesting depth check run on a request body before anything walks it recursively (the cache-injection
 * length walk, transforms, re-serialization): a body nested thousands deep would otherwise end in a stack
 * overflow, answered as a 500. Scans bytes, jumping over strings with `indexOf`: ~11 µs for a 76 KB
 * Claude Code body (JSON.parse of it: ~130 µs).
 */

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/**
 * True when `json` (valid or not) nests arrays and objects deeper than `limit`. Brackets inside strings
 * do not count. An unterminated string ends the scan (JSON.parse reports it).
 */
export function jsonDepthExceeds(json: Uint8Array, limit: number): boolean {
  let depth = 0;
  const n = json.length;
  for (let i = 0; i < n; i++) {
    const c = json[i];
    if (c === QUOTE) {
      let j = i + 1;
      for (;;) {
        j = json.indexOf(QUOTE, j);
        if (j < 0) return false;
        let backslashes = 0;
        for (let k = j - 1; json[k] === BACKSLASH; k--) backslashes++;
        if ((backslashes & 1) === 0) break;
        j++;
      }
      i = j;
    } else if (c === 0x7b || c === 0x5b) {
      if (++depth > limit) return true;
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
  return false;
}
