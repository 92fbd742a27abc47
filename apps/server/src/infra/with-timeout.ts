/**
 * Runs `work` and settles with it, or rejects with `timeoutError()` once `timeoutMs` has
 * passed, or with `signal`'s reason once it aborts (the caller gave up first). The signal
 * handed to `work` is aborted at that moment, so work that accepts one stops instead of
 * running on unobserved.
 */
export async function withTimeout<T>(
  work: (signal: AbortSignal) => Promise<T>,
  timeoutMs: number,
  timeoutError: () => Error = () => new Error(`no answer within ${timeoutMs} ms`),
  signal?: AbortSignal,
): Promise<T> {
  signal?.throwIfAborted();
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  let callerGaveUp: (() => void) | undefined;
  const givenUp = new Promise<never>((_, reject) => {
    const giveUp = (error: unknown) => {
      reject(error);
      controller.abort(error);
    };
    timer = setTimeout(() => giveUp(timeoutError()), timeoutMs);
    callerGaveUp = () => giveUp(signal?.reason);
    signal?.addEventListener('abort', callerGaveUp, { once: true });
  });
  try {
    return await Promise.race([work(controller.signal), givenUp]);
  } finally {
    clearTimeout(timer);
    if (callerGaveUp) signal?.removeEventListener('abort', callerGaveUp);
  }
}
