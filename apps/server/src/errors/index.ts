/** Errors, as services throw them and every transport answers them. */
export { AppError, rateLimited } from './app-error.ts';
export {
  APP_ERROR_CODES,
  APP_ERROR_MEANINGS,
  type AppErrorCode,
  httpStatusOf,
  refusalStatus,
  trpcCodeForStatus,
} from './app-error-codes.ts';
export {
  type ErrorAnswer,
  type ErrorBody,
  errorAnswer,
  httpErrorBody,
  itemError,
  trpcRefusal,
  type ValidationIssue,
} from './error-body.ts';
export { isSettledConflict, recognizeError } from './recognize-error.ts';
export { RETRY_AFTER_CODES, setRetryAfter } from './retry-after.ts';
