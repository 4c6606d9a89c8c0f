// A test-only OpenID provider (npm `oidc-provider`) for mcp-sse-proxy's sign-in tests.
//
// Run: node provider.js [--port N] [--exit-with-stdin]   (or OIDC_PORT; 0 picks a free port). Binds 127.0.0.1 only and prints
// `READY <port>` on stdout once it accepts connections; the issuer is http://127.0.0.1:<port>.
//
// Test-only behaviour, on purpose:
// - every interaction is approved at once (login as `test-user`, consent to everything asked for), so a
//   scripted browser that follows redirects and submits auto-submit forms finishes the flow;
// - any http://127.0.0.1 or http://localhost resource indicator is a resource server with the scopes in
//   OIDC_RESOURCE_SCOPES (default "mcp mcp:admin"), receiving JWT (default) or opaque access tokens;
// - /_test/* control endpoints change settings at run time and report counters (see `control`).
//
// Environment (all optional): OIDC_ACCESS_TOKEN_TTL (s, default 3600), OIDC_ACCESS_TOKEN_FORMAT (jwt|opaque),
// OIDC_RESOURCE_SCOPES, OIDC_SCOPE_POLICY (any|registered), OIDC_REGISTRATION (on|off), OIDC_CLIENTS (JSON array of static clients),
// OIDC_RS_CLIENT_SECRET (secret of the static `mcp-resource-server` client used for introspection),
// OIDC_DEVICE_CODE_TTL (s, default 600), OIDC_DEVICE_INTERVAL (s, default 1),
// OIDC_CIMD_DOCUMENTS (JSON object: https client_id URL -> its Client ID Metadata Document; turns on
// oidc-provider's clientIdMetadataDocument feature, and its fetch of those URLs is answered from this map,
// since a test cannot host an https document with a trusted certificate; other URLs are fetched as usual).

import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';

import Provider, { errors } from 'oidc-provider';

const ACCOUNT_ID = 'test-user';
const LOOPBACK = '127.0.0.1';
const RS_CLIENT_ID = 'mcp-resource-server';

function envNumber(name, fallback) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name} must be a positive number, got ${raw}`);
  return value;
}

function portFromArgs() {
  const index = process.argv.indexOf('--port');
  if (index !== -1) return Number(process.argv[index + 1]);
  return Number(process.env.OIDC_PORT || 0);
}

// Settings the control endpoint may change while the provider runs.
const settings = {
  accessTokenTtl: envNumber('OIDC_ACCESS_TOKEN_TTL', 3600),
  accessTokenFormat: process.env.OIDC_ACCESS_TOKEN_FORMAT || 'jwt',
  resourceScopes: process.env.OIDC_RESOURCE_SCOPES || 'mcp mcp:admin',
  deviceInterval: envNumber('OIDC_DEVICE_INTERVAL', 1),
  approve: true, // false: every interaction ends with access_denied
  rejectResourceParameter: false, // true: a request naming a `resource` fails with invalid_target
  defaultResource: undefined, // the resource for requests that name none
  slowDownPolls: 0, // answer this many pending device-code polls with slow_down
  // 'any': a registered client may ask for any supported scope later (step-up beyond what it registered);
  // 'registered': oidc-provider's own rule, only the scopes named at registration (else invalid_scope).
  scopePolicy: process.env.OIDC_SCOPE_POLICY || 'any',
};

const cimdDocuments = JSON.parse(process.env.OIDC_CIMD_DOCUMENTS || '{}');

// oidc-provider's outgoing fetch, with the test's Client ID Metadata Documents served from memory.
async function testFetch(url, options) {
  const key = String(url);
  if (Object.hasOwn(cimdDocuments, key)) {
    counters.cimdFetches += 1;
    return new Response(JSON.stringify(cimdDocuments[key]), {
      status: 200,
      headers: { 'content-type': 'application/json', 'cache-control': 'max-age=60' },
    });
  }
  return fetch(url, options);
}

const counters = {
  cimdFetches: 0,
  registrations: 0,
  interactions: 0,
  authorizations: 0,
  tokens: {}, // grant_type -> successful token responses
  devicePolls: 0,
};

// In-memory storage with expiry and grant indexes: our own so /_test/revoke-grants can find every grant.
class MemoryAdapter {
  static store = new Map(); // `${model}:${id}` -> { payload, expiresAt }

  constructor(model) {
    this.model = model;
  }

  key(id) {
    return `${this.model}:${id}`;
  }

  static live(key) {
    const entry = MemoryAdapter.store.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt !== undefined && entry.expiresAt <= Date.now()) {
      MemoryAdapter.store.delete(key);
      return undefined;
    }
    return entry.payload;
  }

  async upsert(id, payload, expiresIn) {
    const expiresAt = expiresIn ? Date.now() + expiresIn * 1000 : undefined;
    MemoryAdapter.store.set(this.key(id), { payload, expiresAt });
  }

  async find(id) {
    return MemoryAdapter.live(this.key(id));
  }

  async findByUid(uid) {
    return this.findWhere((payload) => payload.uid === uid);
  }

  async findByUserCode(userCode) {
    return this.findWhere((payload) => payload.userCode === userCode);
  }

  findWhere(predicate) {
    const prefix = `${this.model}:`;
    for (const key of MemoryAdapter.store.keys()) {
      if (!key.startsWith(prefix)) continue;
      const payload = MemoryAdapter.live(key);
      if (payload && predicate(payload)) return payload;
    }
    return undefined;
  }

  async consume(id) {
    const payload = MemoryAdapter.live(this.key(id));
    if (payload) payload.consumed = Math.floor(Date.now() / 1000);
  }

  async destroy(id) {
    MemoryAdapter.store.delete(this.key(id));
  }

  async revokeByGrantId(grantId) {
    MemoryAdapter.revokeGrant(grantId);
  }

  static revokeGrant(grantId) {
    for (const [key, entry] of MemoryAdapter.store) {
      if (entry.payload.grantId === grantId) MemoryAdapter.store.delete(key);
    }
  }

  static revokeAllGrants() {
    let revoked = 0;
    for (const [key, entry] of MemoryAdapter.store) {
      if (key.startsWith('Grant:')) {
        MemoryAdapter.store.delete(key);
        MemoryAdapter.revokeGrant(entry.payload.jti);
        revoked += 1;
      }
    }
    return revoked;
  }
}

function privateJwk(type, options) {
  return generateKeyPairSync(type, options).privateKey.export({ format: 'jwk' });
}

function isLoopbackResource(indicator) {
  const url = URL.parse(indicator);
  return url !== null && url.protocol === 'http:' && ['127.0.0.1', 'localhost'].includes(url.hostname);
}

function staticClients() {
  const clients = [{
    client_id: RS_CLIENT_ID,
    client_secret: process.env.OIDC_RS_CLIENT_SECRET || randomBytes(24).toString('base64url'),
    grant_types: [],
    response_types: [],
    redirect_uris: [],
  }];
  if (process.env.OIDC_CLIENTS) clients.push(...JSON.parse(process.env.OIDC_CLIENTS));
  return clients;
}

const autoSubmit = '<script>document.addEventListener("DOMContentLoaded", () => document.forms[0].submit());</script>';

function configuration() {
  return {
    adapter: MemoryAdapter,
    clients: staticClients(),
    // One EC key, made at each start (an RSA key would cost 0.1-0.3 s); ID tokens use it too.
    jwks: { keys: [privateJwk('ec', { namedCurve: 'P-256' })] },
    clientDefaults: {
      grant_types: ['authorization_code'],
      id_token_signed_response_alg: 'ES256',
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    },
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    findAccount: async (ctx, sub) => ({ accountId: sub, claims: async () => ({ sub }) }),
    interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
    pkce: { required: () => true },
    // Resource scopes are AS scopes too: registration requests name them (and real providers list them).
    scopes: ['openid', 'offline_access', ...settings.resourceScopes.split(' ')],
    extraClientMetadata: {
      properties: ['urn:mcp-sse-proxy:test'],
      // Runs at every registration; with the 'any' policy the client keeps no scope allow-list.
      validator: (ctx, key, value, metadata) => {
        if (ctx && settings.scopePolicy === 'any') delete metadata.scope;
      },
    },
    // Every client allowed the refresh grant gets a refresh token (no offline_access needed); rotate on use.
    issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
    rotateRefreshToken: true,
    ttl: {
      AccessToken: () => settings.accessTokenTtl,
      DeviceCode: envNumber('OIDC_DEVICE_CODE_TTL', 600),
    },
    fetch: testFetch,
    features: {
      devInteractions: { enabled: false },
      clientIdMetadataDocument: { enabled: Object.keys(cimdDocuments).length > 0, ack: 'draft-02' },
      registration: { enabled: process.env.OIDC_REGISTRATION !== 'off' },
      revocation: { enabled: true },
      introspection: { enabled: true },
      deviceFlow: {
        enabled: true,
        // The confirmation page submits itself, so a browser (or the tests' form-following client) goes on.
        userCodeConfirmSource: async (ctx, form) => {
          ctx.type = 'html';
          ctx.body = `<!DOCTYPE html><html><head><title>Confirm device</title>${autoSubmit}</head>`
            + `<body>${form}<button type="submit" form="op.deviceConfirmForm">Continue</button></body></html>`;
        },
      },
      resourceIndicators: {
        enabled: true,
        defaultResource: async (ctx, client, oneOf) => {
          ctx.state.resourceDefaulted = true; // so the 'reject' setting tells a client's resource from ours
          return oneOf ?? settings.defaultResource;
        },
        useGrantedResource: async () => true,
        getResourceServerInfo: async (ctx, indicator) => {
          // A resumed authorization carries the resource of its first request, checked there already.
          const resumed = ['resume', 'device_resume'].includes(ctx.oidc.route);
          const sentResource = ctx.oidc.params?.resource !== undefined && !ctx.state.resourceDefaulted && !resumed;
          if (settings.rejectResourceParameter && sentResource) {
            throw new errors.InvalidTarget('this test provider is configured to reject the resource parameter');
          }
          if (!isLoopbackResource(indicator)) throw new errors.InvalidTarget();
          return {
            scope: settings.resourceScopes,
            accessTokenTTL: settings.accessTokenTtl,
            accessTokenFormat: settings.accessTokenFormat,
            ...(settings.accessTokenFormat === 'jwt' ? { jwt: { sign: { alg: 'ES256' } } } : {}),
          };
        },
      },
    },
  };
}

async function approveInteraction(provider, req, res) {
  const details = await provider.interactionDetails(req, res);
  counters.interactions += 1;
  if (!settings.approve) {
    const result = { error: 'access_denied', error_description: 'the test provider denies every request' };
    return provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false });
  }
  if (details.prompt.name === 'login') {
    const result = { login: { accountId: ACCOUNT_ID } };
    return provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false });
  }
  const grant = details.grantId
    ? await provider.Grant.find(details.grantId)
    : new provider.Grant({ accountId: details.session.accountId, clientId: details.params.client_id });
  const missing = details.prompt.details;
  if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
  if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
  for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes ?? {})) {
    grant.addResourceScope(indicator, scopes.join(' '));
  }
  const grantId = await grant.save();
  const result = { consent: details.grantId ? {} : { grantId } };
  return provider.interactionFinished(req, res, result, { mergeWithLastSubmission: true });
}

async function readJson(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > 65536) throw new Error('control request too large');
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  return text ? JSON.parse(text) : {};
}

const SETTABLE = {
  access_token_ttl: 'accessTokenTtl',
  access_token_format: 'accessTokenFormat',
  device_interval: 'deviceInterval',
  approve: 'approve',
  reject_resource_parameter: 'rejectResourceParameter',
  default_resource: 'defaultResource',
  slow_down_polls: 'slowDownPolls',
  scope_policy: 'scopePolicy',
};

// POST /_test/settings {name: value, ...}; POST /_test/revoke-grants; GET /_test/stats.
async function control(req, res) {
  const path = new URL(req.url, 'http://x').pathname;
  let body = { error: 'not_found' };
  let status = 404;
  if (req.method === 'POST' && path === '/_test/settings') {
    const changes = await readJson(req);
    for (const [name, value] of Object.entries(changes)) {
      if (!(name in SETTABLE)) throw new Error(`unknown setting ${name}`);
      settings[SETTABLE[name]] = value;
    }
    [status, body] = [200, settings];
  } else if (req.method === 'POST' && path === '/_test/revoke-grants') {
    [status, body] = [200, { revoked: MemoryAdapter.revokeAllGrants() }];
  } else if (req.method === 'GET' && path === '/_test/stats') {
    [status, body] = [200, counters];
  }
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

function count(provider) {
  provider.on('registration_create.success', () => { counters.registrations += 1; });
  provider.on('authorization.success', () => { counters.authorizations += 1; });
  provider.on('grant.success', (ctx) => {
    const type = ctx.oidc.params.grant_type;
    counters.tokens[type] = (counters.tokens[type] ?? 0) + 1;
  });
}

// RFC 8628 details oidc-provider leaves to the deployment: the polling `interval`, and `slow_down`.
function deviceFlowExtras(provider) {
  provider.use(async (ctx, next) => {
    await next();
    if (ctx.path === '/device/auth' && ctx.status === 200 && ctx.body?.device_code) {
      ctx.body = { ...ctx.body, interval: settings.deviceInterval };
    }
    const isDevicePoll = ctx.path === '/token' && ctx.oidc?.params?.grant_type?.endsWith(':device_code');
    if (isDevicePoll) counters.devicePolls += 1;
    if (isDevicePoll && ctx.body?.error === 'authorization_pending' && settings.slowDownPolls > 0) {
      settings.slowDownPolls -= 1;
      ctx.body = { error: 'slow_down', error_description: 'the test provider asks to poll more slowly' };
    }
  });
}

function main() {
  const server = createServer();
  server.listen(portFromArgs(), LOOPBACK, () => {
    const { port } = server.address();
    const provider = new Provider(`http://${LOOPBACK}:${port}`, configuration());
    count(provider);
    deviceFlowExtras(provider);
    const handle = provider.callback();
    server.on('request', (req, res) => {
      const path = req.url.split('?')[0];
      let work;
      if (path.startsWith('/interaction/')) work = approveInteraction(provider, req, res);
      else if (path.startsWith('/_test/')) work = control(req, res);
      else return handle(req, res);
      return work.catch((error) => {
        process.stderr.write(`test provider: ${req.method} ${path}: ${error.stack}\n`);
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(String(error.message));
      });
    });
    process.stdout.write(`READY ${port}\n`);
  });
  const stop = () => {
    server.close(() => process.exit(0));
    server.closeAllConnections();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  if (process.argv.includes('--exit-with-stdin')) {
    // The tests' fixture holds our stdin: when it goes away, so do we (no orphan after a crashed test run).
    process.stdin.on('end', stop);
    process.stdin.resume();
  }
}

main();
