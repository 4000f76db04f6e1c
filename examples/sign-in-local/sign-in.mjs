// Claude Code's /login against a gateway, without a browser (examples/sign-in-local/README.md): the device flow as
// Claude Code runs it (device authorization, then polling the token endpoint), and the browser's half — the gateway's
// verification page, its Continue button, the identity provider's redirects — done with fetch and a cookie jar.
// Works with an identity provider that approves without a form (dev-idp.mjs). Prints the token response.
//   node examples/sign-in-local/sign-in.mjs [gateway URL, default http://127.0.0.1:8790]
import { pathToFileURL } from 'node:url';

/** GET/POST with cookies kept per host and redirects followed by hand (fetch drops cookies across them). */
function browserless() {
  const jar = new Map();
  const cookieHeader = (url) => [...(jar.get(new URL(url).host) ?? new Map())].map(([k, v]) => `${k}=${v}`).join('; ');
  const keep = (url, res) => {
    const host = new URL(url).host;
    if (!jar.has(host)) jar.set(host, new Map());
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';');
      const eq = pair.indexOf('=');
      jar.get(host).set(pair.slice(0, eq).trim(), pair.slice(eq + 1).trim());
    }
  };
  return async function go(url, init = {}) {
    for (let hops = 0; hops < 20; hops++) {
      const res = await fetch(url, { ...init, redirect: 'manual', headers: { ...(init.headers ?? {}), cookie: cookieHeader(url) } });
      keep(url, res);
      const to = res.headers.get('location');
      if (res.status < 300 || res.status >= 400 || !to) return { url, status: res.status, text: await res.text() };
      await res.arrayBuffer();
      url = new URL(to, url).href;
      init = {};
    }
    throw new Error(`too many redirects from ${url}`);
  };
}

/** Signs in at `gateway` as the identity provider says; resolves to the token response (access and refresh token). */
export async function signInWithoutBrowser(gateway) {
  const form = (fields) => ({ method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(fields).toString() });
  const device = await (await fetch(`${gateway}/oauth/device_authorization`, form({ client_id: 'claude-code' }))).json();
  if (!device.device_code) throw new Error(`device authorization failed: ${JSON.stringify(device)}`);
  const go = browserless();
  const page = await go(device.verification_uri_complete);
  const csrf = /name="csrf" value="([^"]+)"/.exec(page.text)?.[1];
  if (!csrf) throw new Error(`the verification page has no form (${page.status})`);
  const done = await go(`${gateway}/device`, form({ csrf, user_code: device.user_code }));
  if (!/You are signed in/.test(done.text)) throw new Error(`the sign-in did not complete (${done.status} at ${done.url}): ${(done.text.split('<body>')[1] ?? done.text).replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ').slice(0, 300)}`);
  const token = await (await fetch(`${gateway}/oauth/token`, form({ grant_type: 'urn:ietf:params:oauth:grant-type:device_code', device_code: device.device_code, client_id: 'claude-code' }))).json();
  if (!token.access_token) throw new Error(`the token endpoint answered ${JSON.stringify(token)}`);
  return token;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  console.log(JSON.stringify(await signInWithoutBrowser(process.argv[2] ?? 'http://127.0.0.1:8790'), null, 2));
}
