import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  type AuthorizeOutcome,
  authorizationCodes,
  clientCredentials,
  type FakeRequest,
  listen,
  parseAuthorizeRequest,
  randomToken,
  readForm,
  redirect,
  sendJson,
  sendText,
  type TokenEndpointMode,
  tokenEndpointFault,
} from './fake-oidc-provider.ts';

export interface FacebookUser {
  id: string;
  name: string;
  /** Absent when the account has none (a phone sign-up) or the user withheld it. */
  email?: string;
}

export interface FakeFacebookOptions {
  clientId?: string;
  clientSecret?: string;
}

export interface FakeFacebook {
  /** The www.facebook.com part: /v21.0/dialog/oauth (any vN.N). */
  url: string;
  /** The graph.facebook.com part, at `${url}/graph`: /v21.0/oauth/access_token, /v21.0/me. */
  graphUrl: string;
  clientId: string;
  /** Who signs in at the next dialog. */
  user: FacebookUser;
  /** Back to 'approve' after each dialog. */
  nextOutcome: AuthorizeOutcome;
  tokenEndpoint: TokenEndpointMode;
  readonly requests: FakeRequest[];
  close(): Promise<void>;
}

/**
 * A local Facebook Login (its OAuth dialog, with PKCE) and Graph API, with Facebook's error
 * shape: `{ error: { message, type: 'OAuthException', code } }`, which is not OAuth's.
 */
export async function startFakeFacebook(options: FakeFacebookOptions = {}): Promise<FakeFacebook> {
  const clientId = options.clientId ?? 'fake-facebook-app';
  const clientSecret = options.clientSecret ?? 'fake-facebook-secret';
  const codes = authorizationCodes<FacebookUser>();
  const accessTokens = new Map<string, FacebookUser>();

  const server = await listen(async (request, response, url) => {
    facebook.requests.push({ method: request.method ?? '', path: url.pathname });
    const path = url.pathname.replace(/\/v\d+\.\d+\//, '/vN/');
    if (request.method === 'GET' && path === '/vN/dialog/oauth') dialog(url.searchParams, response);
    else if (path === '/graph/vN/oauth/access_token' && (request.method === 'GET' || request.method === 'POST')) {
      // Graph takes its parameters from the query string and the form body alike.
      const form = new URLSearchParams([...url.searchParams, ...(await readForm(request))]);
      token(request, form, response);
    } else if (request.method === 'GET' && path === '/graph/vN/me') me(request, url.searchParams, response);
    else response.writeHead(404).end();
  });

  const graphError = (response: ServerResponse, message: string, code = 100) =>
    sendJson(response, 400, { error: { message, type: 'OAuthException', code, fbtrace_id: randomToken() } });

  function dialog(query: URLSearchParams, response: ServerResponse) {
    const request = parseAuthorizeRequest(query, clientId);
    if (typeof request === 'string') return sendText(response, 400, request);
    const { redirectUri, state, problem } = request;
    if (problem)
      return redirect(response, redirectUri, { error: 'invalid_request', error_description: problem, state });
    const outcome = facebook.nextOutcome;
    facebook.nextOutcome = 'approve';
    if (outcome === 'deny') {
      const denied = { error: 'access_denied', error_reason: 'user_denied', error_description: 'Permissions error' };
      return redirect(response, redirectUri, { ...denied, state });
    }
    redirect(response, redirectUri, { code: codes.issue({ ...request, clientId, user: { ...facebook.user } }), state });
  }

  function token(request: IncomingMessage, form: URLSearchParams, response: ServerResponse) {
    if (tokenEndpointFault(facebook.tokenEndpoint, response)) return;
    const client = clientCredentials(request, form);
    if (client.clientId !== clientId || client.clientSecret !== clientSecret) {
      return graphError(response, 'Error validating client secret.');
    }
    const grant = codes.redeem(form, clientId);
    if (typeof grant === 'string') return graphError(response, `Error validating verification code: ${grant}`);
    const accessToken = `EAA${randomToken()}`;
    accessTokens.set(accessToken, grant.user);
    sendJson(response, 200, { access_token: accessToken, token_type: 'bearer', expires_in: 5_183_944 });
  }

  /** Only the fields asked for (id and name when none are), and email only when there is one. */
  function me(request: IncomingMessage, query: URLSearchParams, response: ServerResponse) {
    const bearer = /^Bearer (.+)$/i.exec(request.headers.authorization ?? '')?.[1];
    const user = accessTokens.get(query.get('access_token') ?? bearer ?? '');
    if (!user) return graphError(response, 'Invalid OAuth access token data.', 190);
    const fields = (query.get('fields') ?? 'id,name').split(',');
    sendJson(response, 200, Object.fromEntries(Object.entries(user).filter(([field]) => fields.includes(field))));
  }

  const facebook: FakeFacebook = {
    url: server.url,
    graphUrl: `${server.url}/graph`,
    clientId,
    user: { id: '10000000000001', name: 'Ada Lovelace', email: 'ada@example.com' },
    nextOutcome: 'approve',
    tokenEndpoint: 'ok',
    requests: [],
    close: server.close,
  };
  return facebook;
}
