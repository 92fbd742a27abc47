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

export interface GitHubUser {
  id: number;
  login: string;
  name: string | null;
  /** The public profile email; null (the default) when the user keeps it private. */
  email?: string | null;
  emails: { email: string; primary: boolean; verified: boolean }[];
}

export interface FakeGitHubOptions {
  clientId?: string;
  clientSecret?: string;
}

export interface FakeGitHub {
  /** The github.com part: /login/oauth/authorize, /login/oauth/access_token. */
  url: string;
  /** The api.github.com part, at `${url}/api/v3` like GitHub Enterprise Server. */
  apiUrl: string;
  clientId: string;
  /** Who signs in at the next authorize. */
  user: GitHubUser;
  /** Back to 'approve' after each authorize. */
  nextOutcome: AuthorizeOutcome;
  tokenEndpoint: TokenEndpointMode;
  /** The status /user/emails answers with (200, or an outage of that endpoint alone). */
  emailsStatus: number;
  readonly requests: FakeRequest[];
  close(): Promise<void>;
}

/**
 * A local GitHub OAuth app host (PKCE included) and REST API, with GitHub's quirks: token
 * errors are HTTP 200 with an `error` field, the token answer is form-encoded unless JSON is
 * asked for, and the API refuses requests without a User-Agent.
 */
export async function startFakeGitHub(options: FakeGitHubOptions = {}): Promise<FakeGitHub> {
  const clientId = options.clientId ?? 'fake-github-client';
  const clientSecret = options.clientSecret ?? 'fake-github-secret';
  const codes = authorizationCodes<GitHubUser>();
  const accessTokens = new Map<string, GitHubUser>();

  const server = await listen(async (request, response, url) => {
    github.requests.push({ method: request.method ?? '', path: url.pathname });
    const route = `${request.method} ${url.pathname}`;
    if (route === 'GET /login/oauth/authorize') authorize(url.searchParams, response);
    else if (route === 'POST /login/oauth/access_token') await token(request, response);
    else if (request.method === 'GET' && url.pathname.startsWith('/api/v3/')) api(request, response, url.pathname);
    else response.writeHead(404).end();
  });

  function authorize(query: URLSearchParams, response: ServerResponse) {
    const request = parseAuthorizeRequest(query, clientId);
    if (typeof request === 'string') return sendText(response, 400, request);
    const { redirectUri, state, problem } = request;
    if (problem)
      return redirect(response, redirectUri, { error: 'invalid_request', error_description: problem, state });
    const outcome = github.nextOutcome;
    github.nextOutcome = 'approve';
    if (outcome === 'deny') {
      const error_description = 'The user has denied your application access.';
      return redirect(response, redirectUri, { error: 'access_denied', error_description, state });
    }
    redirect(response, redirectUri, {
      code: codes.issue({ ...request, clientId, user: structuredClone(github.user) }),
      state,
    });
  }

  async function token(request: IncomingMessage, response: ServerResponse) {
    const form = await readForm(request);
    if (tokenEndpointFault(github.tokenEndpoint, response)) return;
    const reply = (body: Record<string, string>) => {
      if (request.headers.accept?.includes('application/json')) return sendJson(response, 200, body);
      response.writeHead(200, { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' });
      response.end(new URLSearchParams(body).toString());
    };
    const client = clientCredentials(request, form);
    if (client.clientId !== clientId || client.clientSecret !== clientSecret) {
      return reply({
        error: 'incorrect_client_credentials',
        error_description: 'The client_id and/or client_secret passed are incorrect.',
      });
    }
    const grant = codes.redeem(form, clientId);
    if (typeof grant === 'string') return reply({ error: 'bad_verification_code', error_description: grant });
    const accessToken = `gho_${randomToken()}`;
    accessTokens.set(accessToken, grant.user);
    reply({
      access_token: accessToken,
      token_type: 'bearer',
      scope: grant.scope.split(/[ ,]+/).filter(Boolean).join(','),
    });
  }

  function api(request: IncomingMessage, response: ServerResponse, path: string) {
    if (!request.headers['user-agent']) {
      return sendText(
        response,
        403,
        'Request forbidden by administrative rules. Please make sure your request has a User-Agent header.',
      );
    }
    const user = accessTokens.get(/^(?:Bearer|token) (.+)$/i.exec(request.headers.authorization ?? '')?.[1] ?? '');
    if (!user) return sendJson(response, 401, { message: 'Bad credentials', status: '401' });
    if (path === '/api/v3/user') {
      const { id, login, name, email = null } = user;
      sendJson(response, 200, {
        id,
        login,
        name,
        email,
        avatar_url: `https://avatars.githubusercontent.com/u/${id}?v=4`,
      });
    } else if (path === '/api/v3/user/emails') {
      if (github.emailsStatus !== 200) return sendJson(response, github.emailsStatus, { message: 'Server Error' });
      const visibility = (primary: boolean) => (primary ? (user.email ? 'public' : 'private') : null);
      sendJson(
        response,
        200,
        user.emails.map((email) => ({ ...email, visibility: visibility(email.primary) })),
      );
    } else sendJson(response, 404, { message: 'Not Found', status: '404' });
  }

  const github: FakeGitHub = {
    url: server.url,
    apiUrl: `${server.url}/api/v3`,
    clientId,
    user: {
      id: 1001,
      login: 'octo-ada',
      name: 'Ada Lovelace',
      email: null,
      emails: [
        { email: 'ada@example.com', primary: true, verified: true },
        { email: 'ada@old.example.com', primary: false, verified: false },
      ],
    },
    nextOutcome: 'approve',
    tokenEndpoint: 'ok',
    emailsStatus: 200,
    requests: [],
    close: server.close,
  };
  return github;
}
