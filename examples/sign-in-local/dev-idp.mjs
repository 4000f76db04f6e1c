// A development identity provider for trying Claude Code's sign-in on one machine (examples/sign-in-local/README.md).
// It is `oidc-provider` (a certified OpenID Provider, a devDependency of Switchyard's clone) with one client, the
// gateway, and no login form: every sign-in is approved at once as DEV_USER (default dev@example.com) in the groups of
// DEV_GROUPS (comma-separated, default platform). Never run it anywhere but on your own machine.
//   node examples/sign-in-local/dev-idp.mjs        # listens on http://127.0.0.1:9400 (DEV_IDP_PORT)
import { pathToFileURL } from 'node:url';
import Provider from 'oidc-provider';

/**
 * Starts the provider on 127.0.0.1:`port` for a gateway whose `login.public_url` is `gatewayUrl`.
 * @returns its issuer URL and a close function.
 */
export async function startDevIdp({
  port = 9400,
  gatewayUrl = 'http://127.0.0.1:8790',
  user = process.env.DEV_USER ?? 'dev@example.com',
  groups = (process.env.DEV_GROUPS ?? 'platform').split(',').filter(Boolean),
  // The ID-token claim that lists the groups: `groups`, or e.g. `roles` as Entra ID sends app roles (login.oidc.groups_claim).
  groupsClaim = process.env.DEV_GROUPS_CLAIM ?? 'groups',
} = {}) {
  const issuer = `http://127.0.0.1:${port}`;
  const provider = new Provider(issuer, {
    clients: [{ client_id: 'switchyard', client_secret: 'dev-idp-secret', redirect_uris: [`${gatewayUrl}/oauth/callback`], token_endpoint_auth_method: 'client_secret_post' }],
    scopes: ['openid', 'email', 'profile', 'groups'],
    claims: { openid: ['sub'], email: ['email'], profile: ['name'], groups: [groupsClaim] },
    conformIdTokenClaims: false,
    pkce: { required: () => true },
    features: { devInteractions: { enabled: false } },
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    findAccount: (_ctx, id) => ({ accountId: id, claims: () => ({ sub: id, email: id, name: id.split('@')[0], [groupsClaim]: groups }) }),
  });
  // The whole interaction, without a page: sign in as `user`, grant what the gateway asked for, go back.
  provider.use(async (ctx, next) => {
    const m = /^\/interaction\/([^/]+)$/.exec(ctx.path);
    if (!m) return next();
    const details = await provider.interactionDetails(ctx.req, ctx.res);
    const result = {};
    if (details.prompt.name === 'login') result.login = { accountId: user };
    const accountId = details.session?.accountId ?? user;
    const grant = details.grantId ? await provider.Grant.find(details.grantId) : new provider.Grant({ accountId, clientId: details.params.client_id });
    grant.addOIDCScope(String(details.params.scope));
    result.consent = { grantId: await grant.save() };
    ctx.status = 303;
    ctx.redirect(await provider.interactionResult(ctx.req, ctx.res, result, { mergeWithLastSubmission: true }));
  });
  const server = provider.listen(port, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  return { issuer, close: () => new Promise((resolve) => server.close(resolve)) };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const port = Number(process.env.DEV_IDP_PORT ?? 9400);
  const { issuer } = await startDevIdp({ port, gatewayUrl: process.env.GATEWAY_URL ?? 'http://127.0.0.1:8790' });
  console.log(`development identity provider at ${issuer} (every sign-in is ${process.env.DEV_USER ?? 'dev@example.com'})`);
}
