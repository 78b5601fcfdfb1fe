// A real OpenID provider for the campus sign-in tests: the certified `oidc-provider` package on loopback.
//
// Everything comes from one JSON file named on the command line (written by tests/servers.py):
//   {"port": 0, "issuer": "http://127.0.0.1:PORT", "clients": [...], "accounts": {"sub": {claims}},
//    "jwks": {"keys": [...]}, "clock_offset_seconds": 0, "id_token_seconds": 3600}
// The provider's own development sign-in pages are used as the campus login screen: any account
// name in "accounts" signs in with any password. `clock_offset_seconds` runs the provider's clock
// wrong (tokens issued in the past), which is how the tests see an expired ID token.
import { readFileSync } from 'node:fs';

const settings = JSON.parse(readFileSync(process.argv[2], 'utf8'));
if (settings.clock_offset_seconds) {
  const realNow = Date.now;
  Date.now = () => realNow() + settings.clock_offset_seconds * 1000;
}
const { default: Provider, errors } = await import('oidc-provider');

const accounts = settings.accounts;
const provider = new Provider(settings.issuer, {
  clients: settings.clients,
  jwks: settings.jwks,
  cookies: { keys: ['printlab-tests-cookie-key'] },
  pkce: { required: () => true },
  scopes: ['openid', 'email', 'profile', 'groups'],
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name'],
    groups: ['groups'],
  },
  // The ID token carries the claims asked for, as Entra ID and Google put name and email in it.
  conformIdTokenClaims: false,
  features: {
    devInteractions: { enabled: true },
    rpInitiatedLogout: { enabled: true },
  },
  ttl: { IdToken: settings.id_token_seconds || 3600, AccessToken: 3600, AuthorizationCode: 60, Interaction: 600, Session: 3600, Grant: 3600 },
  async findAccount(ctx, id) {
    const claims = accounts[id];
    if (!claims) return undefined;
    return { accountId: id, async claims() { return { sub: id, ...claims }; } };
  },
  async loadExistingGrant(ctx) {
    // Staff aren't asked to consent to their own lab's sign-in (as a campus tenant is set up).
    const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) return ctx.oidc.provider.Grant.find(grantId);
    const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
    grant.addOIDCScope('openid email profile groups');
    grant.addOIDCClaims(['email', 'email_verified', 'name', 'groups']);
    await grant.save();
    return grant;
  },
});
provider.proxy = false;
const server = provider.listen(settings.port, '127.0.0.1', () => {
  console.log(`listening ${server.address().port}`);
});
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => server.close(() => process.exit(0)));
void errors;
