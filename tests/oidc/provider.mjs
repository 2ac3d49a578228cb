// A real OpenID Provider (npm `oidc-provider`) for anchorage's login tests, started by
// tests/it/harness/oidc.rs. Not for production: plain HTTP, in-memory storage, and
// "log-in" means naming the account in `login_hint`.
//
//   node provider.mjs --config <file.json>
//
// Config (JSON):
//   port        0 picks a free port; the actual one is in the READY line
//   issuerPath  e.g. "/application/o/anchorage/" (trailing slash kept, like Authentik):
//               issuer = http://127.0.0.1:<port><issuerPath>, discovery at
//               <issuer>.well-known/openid-configuration
//   clients     [{ client_id, redirect_uris }]: public clients (no secret), code flow,
//               PKCE (S256) required
//   accounts    [{ sub, email, email_verified, groups }]: the ID token carries email,
//               email_verified (false unless the account says true, as recent Authentik
//               releases send by default) and groups for `openid email profile`
//   keysFile    private JWKS; generated (one RS256 key with a fresh kid) if missing, so a
//               restart keeps the keys unless the file was deleted or replaced
//   exitOnStdinClose  (optional) exit when stdin closes, so the provider never outlives
//               the test process that started it
//
// The authorization request completes without a browser: with `login_hint=<sub>` of a
// known account the provider logs that account in and grants every requested scope, then
// redirects to the client with `code` and `state`; otherwise it redirects with
// `error=access_denied`.
//
// Prints `READY <issuer>` on stdout once listening; everything else goes to stderr.

import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import process from 'node:process';

import Provider from 'oidc-provider';

// stdout carries the READY line only: oidc-provider's notices (console.info) go to stderr.
const ready = (line) => process.stdout.write(`${line}\n`);
console.log = console.error;
console.info = console.error;

function log(...args) {
  console.error(`[oidc-provider ${new Date().toISOString()}]`, ...args);
}

function readConfig() {
  const i = process.argv.indexOf('--config');
  if (i < 0 || !process.argv[i + 1]) {
    console.error('usage: node provider.mjs --config <file.json>');
    process.exit(2);
  }
  const cfg = JSON.parse(fs.readFileSync(process.argv[i + 1], 'utf8'));
  const issuerPath = cfg.issuerPath ?? '/';
  if (!issuerPath.startsWith('/') || !issuerPath.endsWith('/')) {
    throw new Error(`issuerPath must start and end with "/": ${issuerPath}`);
  }
  if (!cfg.keysFile) throw new Error('keysFile is required');
  return {
    port: cfg.port ?? 0,
    issuerPath,
    clients: cfg.clients ?? [],
    accounts: cfg.accounts ?? [],
    keysFile: cfg.keysFile,
    exitOnStdinClose: Boolean(cfg.exitOnStdinClose),
  };
}

// The signing keys, generated on first use and kept in `file`.
function loadOrCreateKeys(file) {
  if (fs.existsSync(file)) {
    const jwks = JSON.parse(fs.readFileSync(file, 'utf8'));
    log(`signing keys from ${file}: ${jwks.keys.map((k) => k.kid).join(', ')}`);
    return jwks;
  }
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = privateKey.export({ format: 'jwk' });
  const jwks = {
    keys: [{ ...jwk, kid: `test-${crypto.randomUUID()}`, alg: 'RS256', use: 'sig' }],
  };
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, `${JSON.stringify(jwks, null, 2)}\n`, { mode: 0o600 });
  fs.renameSync(tmp, file);
  log(`generated signing key ${jwks.keys[0].kid} into ${file}`);
  return jwks;
}

const cfg = readConfig();
const jwks = loadOrCreateKeys(cfg.keysFile);
const accounts = new Map(cfg.accounts.map((a) => [a.sub, a]));
// The issuer path without its trailing slash: where the provider is mounted.
const mountPath = cfg.issuerPath.slice(0, -1);
const interactionPrefix = `${mountPath}/interaction/`;

// Listen first: the issuer needs the actual port.
const server = http.createServer();
await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(cfg.port, '127.0.0.1', resolve);
});
const { port } = server.address();
const issuer = `http://127.0.0.1:${port}${cfg.issuerPath}`;

const provider = new Provider(issuer, {
  clients: cfg.clients.map((c) => ({
    client_id: c.client_id,
    redirect_uris: c.redirect_uris,
    token_endpoint_auth_method: 'none',
    grant_types: ['authorization_code'],
    response_types: ['code'],
    id_token_signed_response_alg: 'RS256',
  })),
  async findAccount(ctx, id) {
    const account = accounts.get(id);
    if (!account) return undefined;
    return {
      accountId: id,
      async claims() {
        return {
          sub: account.sub,
          email: account.email,
          email_verified: account.email_verified === true,
          groups: account.groups ?? [],
          name: account.email.split('@')[0],
          given_name: account.email.split('@')[0],
          preferred_username: account.email,
          nickname: account.email.split('@')[0],
        };
      },
    };
  },
  // As the seed's Authentik walkthrough configures it: `email` and `profile` as
  // Authentik's default mappings give them, and `groups` from a scope mapping of its
  // own (scope name `groups`), so a client that does not ask for it gets no groups.
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'given_name', 'preferred_username', 'nickname'],
    groups: ['groups'],
  },
  // Put the scope's claims in the ID token even though an access token is issued too
  // (what Authentik and most providers do).
  conformIdTokenClaims: false,
  pkce: { required: () => true },
  // Seconds; set explicitly so oidc-provider doesn't print notices about its defaults.
  ttl: {
    AccessToken: 3600,
    AuthorizationCode: 120,
    Grant: 3600,
    IdToken: 3600,
    Interaction: 600,
    Session: 3600,
  },
  features: {
    devInteractions: { enabled: false },
    rpInitiatedLogout: { enabled: false },
  },
  interactions: {
    url: (ctx, interaction) => `${interactionPrefix}${interaction.uid}`,
  },
  jwks,
  cookies: { keys: ['anchorage-test-oidc-provider-cookie-key'] },
  // Errors shown to the user agent (not redirected to the client) as JSON, so a test's
  // panic message says what went wrong.
  async renderError(ctx, out, error) {
    log('rendered error:', JSON.stringify(out), error?.message ?? error);
    ctx.type = 'json';
    ctx.body = out;
  },
});

for (const event of [
  'server_error',
  'authorization.error',
  'grant.error',
  'discovery.error',
  'jwks.error',
  'userinfo.error',
]) {
  provider.on(event, (ctx, err) => log(event, err?.message ?? err, err?.error_description ?? ''));
}

// The interaction: log in the `login_hint` account and consent to everything requested.
async function interaction(req, res) {
  const details = await provider.interactionDetails(req, res);
  const { prompt, params, session } = details;
  log(`interaction ${details.uid}: prompt ${prompt.name}, login_hint ${params.login_hint ?? '-'}`);
  const accountId = session?.accountId ?? params.login_hint;
  const account = accountId === undefined ? undefined : accounts.get(String(accountId));
  if (!account || (prompt.name === 'login' && params.login_hint !== account.sub)) {
    await provider.interactionFinished(req, res, {
      error: 'access_denied',
      error_description: 'login_hint names no known account',
    }, { mergeWithLastSubmission: false });
    return;
  }
  const grant = details.grantId
    ? await provider.Grant.find(details.grantId)
    : new provider.Grant({ accountId: account.sub, clientId: params.client_id });
  grant.addOIDCScope(String(params.scope ?? 'openid'));
  const { missingOIDCClaims, missingResourceScopes } = prompt.details ?? {};
  if (missingOIDCClaims) grant.addOIDCClaims(missingOIDCClaims);
  for (const [indicator, scopes] of Object.entries(missingResourceScopes ?? {})) {
    grant.addResourceScope(indicator, scopes.join(' '));
  }
  const grantId = await grant.save();
  await provider.interactionFinished(req, res, {
    login: { accountId: account.sub },
    consent: { grantId },
  }, { mergeWithLastSubmission: true });
}

const callback = provider.callback();
server.on('request', (req, res) => {
  const { pathname } = new URL(req.url, issuer);
  const done = (err) => {
    log(`${req.method} ${req.url} -> ${res.statusCode}`);
    if (err) {
      log('error handling', req.method, req.url, err?.stack ?? err);
      if (!res.headersSent) {
        res.statusCode = 500;
        res.setHeader('Content-Type', 'application/json');
        res.end(JSON.stringify({ error: 'server_error', error_description: String(err?.message ?? err) }));
      }
    }
  };
  if (pathname.startsWith(interactionPrefix) && req.method === 'GET') {
    interaction(req, res).then(() => done(), done);
  } else if (pathname.startsWith(`${mountPath}/`)) {
    // Mount the provider under the issuer path: it routes on the rest and builds its
    // URLs from `originalUrl`.
    req.originalUrl = req.url;
    req.url = req.url.slice(mountPath.length);
    res.on('finish', () => log(`${req.method} ${req.originalUrl} -> ${res.statusCode}`));
    callback(req, res);
  } else {
    res.statusCode = 404;
    res.setHeader('Content-Type', 'application/json');
    res.end(JSON.stringify({ error: 'not_found' }));
    done();
  }
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => process.exit(0));
}
if (cfg.exitOnStdinClose) {
  process.stdin.on('end', () => {
    log('stdin closed: exiting');
    process.exit(0);
  });
  process.stdin.resume();
}

log(`listening on 127.0.0.1:${port}, issuer ${issuer}, kid ${jwks.keys.map((k) => k.kid).join(', ')}`);
ready(`READY ${issuer}`);
