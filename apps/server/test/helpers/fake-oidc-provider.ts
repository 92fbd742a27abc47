import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, SignJWT } from 'jose';

/** What the next /authorize does: sign the user in, or come back as if they pressed "Cancel". */
export type AuthorizeOutcome = 'approve' | 'deny';
/** How a fake's token endpoint behaves: normally, with a 500, or never answering (until close()). */
export type TokenEndpointMode = 'ok' | 'error500' | 'hang';
export interface FakeRequest {
  method: string;
  path: string;
}

export interface OidcUser {
  sub: string;
  email?: string;
  /** Apple sends the strings 'true' / 'false'. */
  email_verified?: boolean | 'true' | 'false';
  name?: string;
  given_name?: string;
  family_name?: string;
}

export interface FakeOidcProviderOptions {
  alg?: 'RS256' | 'ES256';
  clientId?: string;
  /** The secret, or a check of it (Apple's client secret is a JWT the client signs). */
  clientSecret?: string | ((secret: string) => boolean);
}

export interface FakeOidcProvider {
  issuer: string;
  clientId: string;
  /** Who signs in at the next /authorize. */
  user: OidcUser;
  /** Back to 'approve' after each /authorize. */
  nextOutcome: AuthorizeOutcome;
  tokenEndpoint: TokenEndpointMode;
  /** Whether the userinfo endpoint answers (false: a 500, as a provider having trouble). */
  userinfoWorks: boolean;
  /** Runs before the token endpoint answers (something that happens while the server waits on it). */
  beforeToken: (() => Promise<void>) | undefined;
  /** Every request received, in order. */
  readonly requests: FakeRequest[];
  /** An ID token as a native app would hand it over (Sign in with Apple/Google on a device). */
  signIdToken(
    claims: Record<string, unknown>,
    options?: {
      issuer?: string;
      audience?: string | string[];
      expiresInSeconds?: number;
      signWithForeignKey?: boolean;
      /** The protected header's `typ` (`JWT` by default). */
      type?: string;
    },
  ): Promise<string>;
  close(): Promise<void>;
}

/**
 * A local OpenID Connect provider (authorization code + PKCE, ID tokens, userinfo), so the
 * server's sign-in is tested over real HTTP against what Google or Apple do, failures included.
 * `response_mode=form_post` answers like Apple: an auto-submitting form, with the `user` field
 * the first time a `sub` signs in.
 */
export async function startFakeOidcProvider(options: FakeOidcProviderOptions = {}): Promise<FakeOidcProvider> {
  const alg = options.alg ?? 'RS256';
  const clientId = options.clientId ?? 'fake-oidc-client';
  const secret = options.clientSecret ?? 'fake-oidc-secret';
  const secretMatches = (candidate: string) => {
    try {
      return typeof secret === 'function' ? secret(candidate) : candidate === secret;
    } catch {
      return false; // a predicate that cannot read the secret (not a JWT) refuses it
    }
  };
  const { privateKey, publicKey } = await generateKeyPair(alg);
  const publicJwk = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(publicJwk);
  const codes = authorizationCodes<OidcUser>();
  const accessTokens = new Map<string, OidcUser>();
  const signedInBefore = new Set<string>();

  const server = await listen(async (request, response, url) => {
    provider.requests.push({ method: request.method ?? '', path: url.pathname });
    const route = `${request.method} ${url.pathname}`;
    if (route === 'GET /.well-known/openid-configuration') sendJson(response, 200, discoveryDocument());
    else if (route === 'GET /jwks') sendJson(response, 200, { keys: [{ ...publicJwk, kid, alg, use: 'sig' }] });
    else if (route === 'GET /authorize') authorize(url.searchParams, response);
    else if (route === 'POST /token') await token(request, response);
    else if (route === 'GET /userinfo' && !provider.userinfoWorks) response.writeHead(500).end();
    else if (route === 'GET /userinfo') {
      const user = accessTokens.get(/^Bearer (.+)$/i.exec(request.headers.authorization ?? '')?.[1] ?? '');
      if (user) sendJson(response, 200, user);
      else response.writeHead(401, { 'www-authenticate': 'Bearer error="invalid_token"' }).end();
    } else response.writeHead(404).end();
  });
  const issuer = server.url;

  const discoveryDocument = () => ({
    issuer,
    authorization_endpoint: `${issuer}/authorize`,
    token_endpoint: `${issuer}/token`,
    userinfo_endpoint: `${issuer}/userinfo`,
    jwks_uri: `${issuer}/jwks`,
    response_types_supported: ['code'],
    response_modes_supported: ['query', 'form_post'],
    grant_types_supported: ['authorization_code'],
    subject_types_supported: ['public'],
    id_token_signing_alg_values_supported: [alg],
    code_challenge_methods_supported: ['S256'],
    token_endpoint_auth_methods_supported: ['client_secret_post', 'client_secret_basic'],
    scopes_supported: ['openid', 'email', 'profile', 'name'],
  });

  function authorize(query: URLSearchParams, response: ServerResponse) {
    const request = parseAuthorizeRequest(query, clientId);
    if (typeof request === 'string') return sendText(response, 400, request);
    const formPost = query.get('response_mode') === 'form_post';
    // Apple's form_post carries no `iss`; a query response does (RFC 9207).
    const answer = (params: Record<string, string | undefined>) =>
      formPost
        ? sendFormPost(response, request.redirectUri, { ...params, state: request.state })
        : redirect(response, request.redirectUri, { ...params, state: request.state, iss: issuer });
    const problem =
      request.problem ?? (query.get('response_type') === 'code' ? undefined : 'response_type must be code');
    if (problem) return answer({ error: 'invalid_request', error_description: problem });
    const outcome = provider.nextOutcome;
    provider.nextOutcome = 'approve';
    if (outcome === 'deny') return answer({ error: 'access_denied', error_description: 'The user declined' });
    const user = { ...provider.user };
    const firstSignIn = !signedInBefore.has(user.sub);
    signedInBefore.add(user.sub);
    const code = codes.issue({ ...request, clientId, user });
    const appleUser = { name: { firstName: user.given_name, lastName: user.family_name }, email: user.email };
    answer({ code, user: formPost && firstSignIn ? JSON.stringify(appleUser) : undefined });
  }

  async function token(request: IncomingMessage, response: ServerResponse) {
    const form = await readForm(request);
    await provider.beforeToken?.();
    if (tokenEndpointFault(provider.tokenEndpoint, response)) return;
    const fail = (status: number, error: string, error_description: string) =>
      sendJson(response, status, { error, error_description });
    const client = clientCredentials(request, form);
    if (client.clientId !== clientId || !client.clientSecret || !secretMatches(client.clientSecret)) {
      return fail(401, 'invalid_client', 'Client authentication failed');
    }
    if (form.get('grant_type') !== 'authorization_code') {
      return fail(400, 'unsupported_grant_type', 'Only authorization_code is supported');
    }
    const grant = codes.redeem(form, clientId);
    if (typeof grant === 'string') return fail(400, grant === MISSING ? 'invalid_request' : 'invalid_grant', grant);
    const accessToken = randomToken();
    accessTokens.set(accessToken, grant.user);
    const idToken = await provider.signIdToken({ ...grant.user, nonce: grant.nonce });
    sendJson(response, 200, {
      access_token: accessToken,
      token_type: 'Bearer',
      expires_in: 3600,
      id_token: idToken,
      scope: grant.scope,
    });
  }

  const provider: FakeOidcProvider = {
    issuer,
    clientId,
    user: {
      sub: 'fake-oidc-user-1',
      email: 'ada@example.com',
      email_verified: true,
      name: 'Ada Lovelace',
      given_name: 'Ada',
      family_name: 'Lovelace',
    },
    nextOutcome: 'approve',
    tokenEndpoint: 'ok',
    userinfoWorks: true,
    beforeToken: undefined,
    requests: [],
    async signIdToken(claims, signOptions = {}) {
      // A foreign key under the provider's own kid: only the signature check can refuse it.
      const key = signOptions.signWithForeignKey ? (await generateKeyPair(alg)).privateKey : privateKey;
      const now = Math.floor(Date.now() / 1000);
      const expiresIn = signOptions.expiresInSeconds ?? 600;
      // Each token its own `jti`, as Google's and Apple's have: two issued in one second differ.
      return new SignJWT({ jti: randomUUID(), ...claims })
        .setProtectedHeader({ alg, kid, typ: signOptions.type ?? 'JWT' })
        .setIssuer(signOptions.issuer ?? issuer)
        .setAudience(signOptions.audience ?? clientId)
        .setIssuedAt(now + Math.min(0, expiresIn - 600))
        .setExpirationTime(now + expiresIn)
        .sign(key);
    },
    close: server.close,
  };
  return provider;
}

/** Reads the auto-submitting form a form_post answer is (the test posts it, as the browser would). */
export function formPostFields(html: string): { action: string; fields: Record<string, string> } {
  const action = /<form method="post" action="([^"]*)">/.exec(html)?.[1];
  if (action === undefined) throw new Error(`Not a form_post page: ${html}`);
  const fields: Record<string, string> = {};
  for (const [, name, value] of html.matchAll(/<input type="hidden" name="([^"]*)" value="([^"]*)">/g)) {
    fields[unescapeHtml(name ?? '')] = unescapeHtml(value ?? '');
  }
  return { action: unescapeHtml(action), fields };
}

// What the fakes share (fake-github.ts, fake-facebook.ts).

export const randomToken = () => randomBytes(24).toString('base64url');

/** Serves `handle` on a free local port; a handler that throws answers 500. */
export async function listen(handle: (request: IncomingMessage, response: ServerResponse, url: URL) => unknown) {
  const server = createServer((request, response) => {
    const url = new URL(request.url ?? '/', 'http://127.0.0.1');
    Promise.resolve()
      .then(() => handle(request, response, url))
      .catch((error: unknown) => {
        if (!response.headersSent) response.writeHead(500).end(String(error));
      });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    /** Also drops the connections a hanging token endpoint holds. */
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

export async function readForm(request: IncomingMessage): Promise<URLSearchParams> {
  let body = '';
  for await (const chunk of request) body += chunk;
  return new URLSearchParams(body);
}

export function sendJson(response: ServerResponse, status: number, body: unknown) {
  response.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  response.end(JSON.stringify(body));
}

export function sendText(response: ServerResponse, status: number, text: string) {
  response.writeHead(status, { 'content-type': 'text/plain' }).end(text);
}

/** 302 to `to` with `params` (the undefined ones left out) added to its query. */
export function redirect(response: ServerResponse, to: string, params: Record<string, string | undefined>) {
  const location = new URL(to);
  for (const [name, value] of Object.entries(params)) if (value !== undefined) location.searchParams.set(name, value);
  response.writeHead(302, { location: location.href }).end();
}

function sendFormPost(response: ServerResponse, action: string, params: Record<string, string | undefined>) {
  const inputs = Object.entries(params)
    .filter(([, value]) => value !== undefined)
    .map(([name, value]) => `<input type="hidden" name="${escapeHtml(name)}" value="${escapeHtml(value ?? '')}">`);
  response.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
  response.end(
    `<!doctype html><html><body onload="document.forms[0].submit()">` +
      `<form method="post" action="${escapeHtml(action)}">${inputs.join('')}</form></body></html>`,
  );
}

const escapeHtml = (text: string) =>
  text.replaceAll('&', '&amp;').replaceAll('"', '&quot;').replaceAll('<', '&lt;').replaceAll('>', '&gt;');
const unescapeHtml = (text: string) =>
  text.replaceAll('&quot;', '"').replaceAll('&lt;', '<').replaceAll('&gt;', '>').replaceAll('&amp;', '&');

/** Answers for a faulty token endpoint: true when it did (a 500) or never will ('hang'). */
export function tokenEndpointFault(mode: TokenEndpointMode, response: ServerResponse): boolean {
  if (mode === 'error500') sendText(response, 500, 'Internal Server Error');
  return mode !== 'ok';
}

/** client_secret_basic (both parts form-urlencoded, RFC 6749 §2.3.1) or client_secret_post. */
export function clientCredentials(request: IncomingMessage, form: URLSearchParams) {
  const basic = /^Basic (.+)$/i.exec(request.headers.authorization ?? '')?.[1];
  if (!basic)
    return { clientId: form.get('client_id') ?? undefined, clientSecret: form.get('client_secret') ?? undefined };
  const [id = '', ...rest] = Buffer.from(basic, 'base64').toString().split(':');
  const decode = (part: string) => decodeURIComponent(part.replaceAll('+', ' '));
  return { clientId: decode(id), clientSecret: decode(rest.join(':')) };
}

export interface AuthorizeRequest {
  redirectUri: string;
  state: string | undefined;
  codeChallenge: string;
  nonce: string | undefined;
  scope: string;
  /** Why the request is refused (sent back to redirectUri as invalid_request). */
  problem?: string;
}

/**
 * An authorization request's parameters, or the text of a 400 when the browser cannot be sent
 * back (unknown client, no redirect_uri): a provider never redirects for a client it doesn't know.
 */
export function parseAuthorizeRequest(query: URLSearchParams, clientId: string): AuthorizeRequest | string {
  if (query.get('client_id') !== clientId) return `Unknown client_id: ${query.get('client_id')}`;
  const redirectUri = query.get('redirect_uri');
  if (!redirectUri) return 'redirect_uri is required';
  const request = {
    redirectUri,
    state: query.get('state') ?? undefined,
    codeChallenge: query.get('code_challenge') ?? '',
    nonce: query.get('nonce') ?? undefined,
    scope: query.get('scope') ?? '',
  };
  if (!request.state) return { ...request, problem: 'state is required' };
  if (!request.codeChallenge || query.get('code_challenge_method') !== 'S256') {
    return { ...request, problem: 'PKCE is required: code_challenge with code_challenge_method=S256' };
  }
  return request;
}

interface Grant<User> extends Omit<AuthorizeRequest, 'problem'> {
  clientId: string;
  user: User;
}

/** The description `redeem` gives when the request lacks code or redirect_uri (invalid_request). */
export const MISSING = 'code and redirect_uri are required';

/** Authorization codes: single use, valid 60 s, bound to their client, redirect URI and PKCE challenge. */
export function authorizationCodes<User>() {
  const grants = new Map<string, Grant<User> & { expiresAt: number }>();
  return {
    issue(grant: Grant<User>): string {
      const code = randomToken();
      grants.set(code, { ...grant, expiresAt: Date.now() + 60_000 });
      return code;
    },
    /** The grant behind the form's `code` (used up either way), or why not. */
    redeem(form: URLSearchParams, clientId: string): Grant<User> | string {
      const code = form.get('code');
      const verifier = form.get('code_verifier');
      if (!code || !form.get('redirect_uri')) return MISSING;
      const grant = grants.get(code);
      grants.delete(code);
      if (!grant || grant.expiresAt < Date.now()) return 'The code is unknown, expired or already used';
      if (grant.clientId !== clientId) return 'The code was issued to another client';
      if (grant.redirectUri !== form.get('redirect_uri')) return 'redirect_uri differs from the authorization request';
      if (!verifier || createHash('sha256').update(verifier).digest('base64url') !== grant.codeChallenge) {
        return 'PKCE verification failed';
      }
      return grant;
    },
  };
}
