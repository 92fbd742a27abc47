/**
 * Runs `work` and settles with it, or rejects with `timeoutError()` once `timeoutMs` has
 * passed. The signal handed to `work` is aborted at that moment, so work that accepts one
 * stops instead of running on unobserved.
 */
export async function withTimeout<T>(
  work: (signal: AbortSignal) => Promise<T>,
  timeoutMs: number,
  timeoutError: () => Error = () => new Error(`no answer within ${timeoutMs} ms`),
): Promise<T> {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const error = timeoutError();
      reject(error);
      controller.abort(error);
    }, timeoutMs);
  });
  try {
    return await Promise.race([work(controller.signal), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
