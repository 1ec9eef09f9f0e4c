// A standards-compliant OpenID provider on loopback, standing in for Pro Santé Connect
// in the tests (never in production): the certified `oidc-provider` package, configured
// like PSC (scopes openid + scope_all, acr "eidas1", the SubjectNameID / SubjectRefPro
// claims from the userinfo endpoint, RP-initiated logout), with PKCE required.
//
//   OIDC_PORT=57480 node scripts/oidc/provider.js
//
// Its sign-in page asks for a national id and the means used (CPS card, e-CPS, or a
// weak method), so a browser test can be any professional at any level. The account
// id is "<means>:<national id>", its `sub` too.
import http from 'node:http';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseQuery } from 'node:querystring';

import Provider from 'oidc-provider';

const here = dirname(fileURLToPath(import.meta.url));
const port = Number(process.env.OIDC_PORT || 57480);
const issuer = `http://127.0.0.1:${port}`;
const secret = readFileSync(join(here, 'test-client-secret'), 'utf8').trim();

// The means of authentication, as the amr (RFC 8176) the tests' provider reports.
const MEANS = {
  cps: { amr: ['sc', 'pin', 'mfa'], label: 'Carte CPS' },
  ecps: { amr: ['swk', 'pin', 'mfa'], label: 'e-CPS (application mobile)' },
  faible: { amr: ['pwd'], label: 'Mot de passe seul (niveau faible)' },
};

const callbackPaths = ['/connexion/psc/retour/'];
const logoutPaths = ['/connexion/'];
const loopbackUris = (paths) => paths.flatMap((p) => [`http://localhost${p}`, `http://127.0.0.1${p}`]);

const client = (clientId) => ({
  client_id: clientId,
  client_secret: secret,
  client_name: 'Messagerie MSSanté (tests)',
  redirect_uris: loopbackUris(callbackPaths),
  post_logout_redirect_uris: loopbackUris(logoutPaths),
  grant_types: ['authorization_code'],
  response_types: ['code'],
  token_endpoint_auth_method: 'client_secret_basic',
});

const configuration = {
  clients: [client('mssante-test'), client('mssante-test-code-court')],
  scopes: ['openid', 'scope_all'],
  claims: {
    openid: ['sub'],
    scope_all: [
      'SubjectNameID', 'SubjectRefPro', 'SubjectOrganization', 'SubjectRole',
      'preferred_username', 'given_name', 'family_name',
    ],
    acr: null,
    amr: null,
    auth_time: null,
    sid: null,
  },
  acrValues: ['eidas1'],
  pkce: { required: () => true },
  ttl: {
    // The client "…-code-court" gets codes that live one second: the expired-code test.
    AuthorizationCode: (ctx, code, c) => (c.clientId.endsWith('code-court') ? 1 : 60),
    AccessToken: 300,
    IdToken: 300,
    Interaction: 600,
    Session: 3600,
    Grant: 3600,
  },
  cookies: { keys: ['tests-only-cookie-key-not-a-secret'] },
  features: {
    devInteractions: { enabled: false },
    rpInitiatedLogout: {
      enabled: true,
      // PSC (Keycloak) ends the session on a valid id_token_hint without asking: so here.
      logoutSource: async (ctx, form) => {
        ctx.body = `<!DOCTYPE html><html lang="fr"><head><meta charset="utf-8">
<title>Déconnexion</title></head><body>${form}
<script>
const f = document.getElementById('op.logoutForm');
const yes = document.createElement('input');
yes.type = 'hidden'; yes.name = 'logout'; yes.value = 'yes';
f.appendChild(yes); f.submit();
</script></body></html>`;
      },
    },
  },
  async findAccount(ctx, id) {
    const [means, nationalId] = String(id).split(':');
    if (!MEANS[means] || !/^[0-9]{1,20}$/.test(nationalId || '')) return undefined;
    return {
      accountId: id,
      async claims() {
        return {
          sub: id,
          SubjectNameID: nationalId,
          preferred_username: nationalId,
          given_name: 'Prénom',
          family_name: 'TEST',
          SubjectRefPro: { codeCivilite: 'DR', exercices: [{ codeProfession: '10' }] },
          SubjectOrganization: 'Cabinet de test',
          SubjectRole: ['10^1.2.250.1.213.1.1.5.5'],
        };
      },
    };
  },
  renderError: async (ctx, out) => {
    ctx.type = 'html';
    ctx.body = `<!DOCTYPE html><html lang="fr"><head><meta charset="utf-8"><title>Erreur</title></head>
<body><h1>Erreur du fournisseur</h1><pre>${escape(JSON.stringify(out))}</pre></body></html>`;
  },
};

function escape(text) {
  return String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const provider = new Provider(issuer, configuration);

// The live test server listens on a port chosen at random: as RFC 8252 allows for
// loopback redirections, the port is not compared (on loopback hosts only).
function sameButPort(value, allowed) {
  const a = URL.parse(value);
  if (!a || a.protocol !== 'http:' || !['localhost', '127.0.0.1'].includes(a.hostname)) return false;
  return allowed.some((uri) => {
    const b = URL.parse(uri);
    return b && b.hostname === a.hostname && b.pathname === a.pathname && a.search === '' && a.hash === '';
  });
}
const { prototype } = provider.Client;
const redirectUriAllowed = prototype.redirectUriAllowed;
prototype.redirectUriAllowed = function allowed(value) {
  return redirectUriAllowed.call(this, value) || sameButPort(value, this.redirectUris);
};
const postLogoutAllowed = prototype.postLogoutRedirectUriAllowed;
prototype.postLogoutRedirectUriAllowed = function allowed(value) {
  return postLogoutAllowed.call(this, value) || sameButPort(value, this.postLogoutRedirectUris);
};

// PSC's ID token tells how the professional signed in: amr goes into every ID token
// (oidc-provider otherwise adds it only when the client asks for it by name).
const idTokenPayload = provider.IdToken.prototype.payload;
provider.IdToken.prototype.payload = async function payload() {
  if (Array.isArray(this.available.amr)) this.set('amr', this.available.amr);
  return idTokenPayload.call(this);
};

function page(res, uid, error = '') {
  const options = Object.entries(MEANS).map(([key, { label }], i) => `
    <p><input type="radio" id="means-${key}" name="means" value="${key}"${i === 0 ? ' checked' : ''}>
    <label for="means-${key}">${escape(label)}</label></p>`).join('');
  res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
  res.end(`<!DOCTYPE html><html lang="fr"><head><meta charset="utf-8">
<title>Pro Santé Connect (fournisseur de test)</title></head><body>
<h1>Pro Santé Connect (fournisseur de test)</h1>
${error ? `<p role="alert">${escape(error)}</p>` : ''}
<form method="post" action="/interaction/${escape(uid)}">
  <p><label for="login">Identifiant national</label>
  <input id="login" name="login" autocomplete="off" autofocus></p>
  <fieldset><legend>Moyen d'authentification</legend>${options}</fieldset>
  <p><button type="submit">S'authentifier</button></p>
</form></body></html>`);
}

async function interaction(req, res) {
  const uid = req.url.split('/')[2]?.split('?')[0] || '';
  const details = await provider.interactionDetails(req, res);
  if (req.method === 'GET') return page(res, uid);
  const body = await new Promise((resolve) => {
    let data = '';
    req.on('data', (chunk) => { data += chunk; if (data.length > 10000) req.destroy(); });
    req.on('end', () => resolve(parseQuery(data)));
  });
  const means = MEANS[body.means] ? body.means : 'cps';
  const nationalId = String(body.login || '').trim();
  if (!/^[0-9]{1,20}$/.test(nationalId)) return page(res, uid, 'Identifiant national attendu (chiffres).');
  const accountId = `${means}:${nationalId}`;
  // Consent is implied (as at PSC): the grant covers what the client asked for.
  const grant = new provider.Grant({ accountId, clientId: details.params.client_id });
  grant.addOIDCScope(String(details.params.scope || 'openid'));
  const grantId = await grant.save();
  return provider.interactionFinished(req, res, {
    login: { accountId, acr: 'eidas1', amr: MEANS[means].amr, remember: true },
    consent: { grantId },
  }, { mergeWithLastSubmission: false });
}

const callback = provider.callback();
const server = http.createServer((req, res) => {
  if (req.url.startsWith('/interaction/')) {
    interaction(req, res).catch((err) => {
      res.writeHead(400, { 'content-type': 'text/plain; charset=utf-8' });
      res.end(`interaction: ${err.message}`);
    });
    return;
  }
  callback(req, res);
});
server.listen(port, '127.0.0.1', () => {
  console.log(`oidc-provider ${issuer} ready`);
});
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
