/**
 * What a failed call means to a person: the server's message (already in the browser's
 * language), and per field the `issues` of a VALIDATION_FAILED. Forms program against
 * `appCode`, never the message.
 */
import { type AppErrorCode, getAppErrorCode, TRPCClientError } from '@app/sdk';

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

export function problemOf(error: unknown): Problem {
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
    appCode === undefined
      ? 'The server could not be reached. Check your connection and try again.'
      : error instanceof Error
        ? error.message
        : String(error);
  return { appCode, message, fields };
}
