// Module hooks for test/lazy-load.test.ts: appends the URL of every ES module loaded to the file named by
// SWITCHYARD_LOADS_FILE (the hooks run in their own thread, so a file is how they report).
import { appendFileSync } from 'node:fs';

export async function load(url, context, next) {
  if (process.env.SWITCHYARD_LOADS_FILE) appendFileSync(process.env.SWITCHYARD_LOADS_FILE, `${url}\n`);
  return next(url, context);
}
