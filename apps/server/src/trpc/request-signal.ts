import type { FastifyReply } from 'fastify';

/**
 * The signal a procedure call gets (`opts.signal`): aborted when the client goes away before
 * the answer, as tRPC's own adapter aborts its request signal. Made on first use (few
 * procedures read it): the returned function creates it and starts listening then.
 */
export function requestSignal(reply: FastifyReply): () => AbortSignal {
  let abort: AbortController | undefined;
  return () => {
    if (abort) return abort.signal;
    abort = new AbortController();
    const controller = abort;
    const gone = () => !reply.raw.writableFinished;
    if (reply.raw.destroyed && gone()) controller.abort();
    else
      reply.raw.once('close', () => {
        if (gone()) controller.abort();
      });
    return controller.signal;
  };
}
