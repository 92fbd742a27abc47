/**
 * What a failed call means to a person: the server's message (already in the browser's
 * language), and per field the `issues` of a VALIDATION_FAILED. Forms program against
 * `appCode`, never the message. A failure without an app code is said for what it is: no
 * answer (the network), an answer that is not the API's (a proxy's status), or a failure in
 * the page itself. A provider sign-in's `error` parameter is said by `signInFailure`, in the
 * app's own words.
 */
import { type AppErrorCode, getAppErrorCode, TRPCClientError, UploadError } from '@app/sdk';

export interface Problem {
  appCode: AppErrorCode | undefined;
  message: string;
  /** Field name → message, from `issues` (the first issue of each field). */
  fields: Record<string, string>;
}

/** One item of a batch the server refused, with its own app code (the call itself succeeded). */
export class ItemError extends Error {
  override name = 'ItemError';
  readonly appCode: AppErrorCode;
  constructor(error: { appCode: AppErrorCode; message: string }) {
    super(error.message);
    this.appCode = error.appCode;
  }
}

/** An error answer that is not the API's (a proxy's 413 page, a gateway's 502): its status is all it says. */
export class HttpStatusError extends Error {
  override name = 'HttpStatusError';
  readonly status: number;
  constructor(status: number) {
    super(`The server answered ${status}`);
    this.status = status;
  }
}

/**
 * One problem per error: a form drawn again (a key typed) with the same error gets the same
 * object, and FormError moves the focus to a new problem only, not at every key.
 */
const problems = new WeakMap<object, Problem>();

export function problemOf(error: unknown): Problem {
  if (typeof error !== 'object' || error === null) return describe(error);
  let problem = problems.get(error);
  if (!problem) {
    problem = describe(error);
    problems.set(error, problem);
  }
  return problem;
}

function describe(error: unknown): Problem {
  const appCode = error instanceof ItemError ? error.appCode : getAppErrorCode(error);
  const fields: Record<string, string> = {};
  if (error instanceof TRPCClientError) {
    const issues = (error.data as { issues?: { path: (string | number)[]; message: string }[] } | undefined)?.issues;
    for (const issue of issues ?? []) {
      const field = String(issue.path[0] ?? '');
      fields[field] ??= issue.message;
    }
    const field = (error.data as { details?: { field?: string } } | undefined)?.details?.field;
    if (field) fields[field] ??= error.message;
  }
  const message =
    appCode === undefined ? withoutAppCode(error) : error instanceof Error ? error.message : String(error);
  return { appCode, message, fields };
}

/** What a failure the API did not describe means: no answer, someone else's answer, or the page's own failure. */
function withoutAppCode(error: unknown): string {
  if (gotNoAnswer(error)) return 'The server could not be reached. Check your connection and try again.';
  const status = httpStatusOf(error);
  if (status === undefined) return 'Something went wrong on this page. Try again, or reload the page.';
  return status >= 500
    ? `The server could not answer the request (${status}). Try again in a moment.`
    : `The server refused the request (${status}).`;
}

/**
 * A request that got no answer: fetch (and the SDK's upload) fail with a TypeError when the
 * network does (offline, no route, the connection refused); a refresh can also get none in time.
 */
function gotNoAnswer(error: unknown): boolean {
  const cause = error instanceof TRPCClientError ? error.cause : error;
  return cause instanceof TypeError || (cause instanceof Error && cause.name === 'TimeoutError');
}

/** The HTTP status of an answer that carried no app code, when there was one. */
function httpStatusOf(error: unknown): number | undefined {
  if (error instanceof UploadError) return error.status;
  if (!(error instanceof TRPCClientError)) return undefined;
  if (error.cause instanceof HttpStatusError) return error.cause.status;
  // JSON, but not a tRPC answer: the client kept the response.
  const response = error.meta?.response as Response | undefined;
  return response && !response.ok ? response.status : undefined;
}

const SIGN_IN_DID_NOT_COMPLETE = 'The sign-in did not complete. Try again, or sign in another way.';
const CHANGED_MEANWHILE = 'Something changed during the sign-in. Try again.';

/**
 * What each `error` a provider sign-in comes back with (`/oauth/return?error=<appCode>`, see
 * the README's "Sign-in with Google, GitHub, …") means to a person.
 */
const SIGN_IN_FAILURES: Partial<Record<AppErrorCode, string>> = {
  OAUTH_DENIED: 'The sign-in was cancelled at the provider. Try again when you are ready.',
  OAUTH_PROVIDER_ERROR: 'The sign-in provider failed or did not answer. Try again in a moment, or sign in another way.',
  OAUTH_EMAIL_MISSING:
    'The provider did not share your email address, which an account needs. Allow it to, or sign in with your email.',
  EMAIL_TAKEN:
    'An account already uses this email address, and the provider does not confirm that it is yours. ' +
    'Sign in to that account with its password or an email code.',
  ACCOUNT_DISABLED: 'This account is disabled.',
  ACCOUNT_ARCHIVED: 'This account is archived: an administrator can restore it.',
  DEPENDENCY_DOWN: 'The service is briefly unavailable. Try again shortly.',
  OAUTH_STATE_INVALID: 'This sign-in expired or was already finished. Start it again.',
  NOT_FOUND: CHANGED_MEANWHILE,
  CONFLICT: CHANGED_MEANWHILE,
  INTERNAL_ERROR: SIGN_IN_DID_NOT_COMPLETE,
};

/** One problem per code: the same object each time, as problemOf gives. */
const SIGN_IN_PROBLEMS = new Map<string, Problem>(
  Object.entries(SIGN_IN_FAILURES).map(([code, message = SIGN_IN_DID_NOT_COMPLETE]) => [
    code,
    { appCode: code as AppErrorCode, message, fields: {} },
  ]),
);
const SIGN_IN_FAILED: Problem = { appCode: undefined, message: SIGN_IN_DID_NOT_COMPLETE, fields: {} };

/**
 * The problem a provider sign-in came back with. The parameter is anyone's to write (a link
 * can carry any text), so only a known code is said, in the app's words; anything else gets
 * a general sentence, never the parameter itself.
 */
export const signInFailure = (code: string): Problem => SIGN_IN_PROBLEMS.get(code) ?? SIGN_IN_FAILED;
