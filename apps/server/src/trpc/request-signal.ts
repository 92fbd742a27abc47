import type { FastifyReply } from 'fastify';

/**
 * The signal a procedure call gets (`opts.signal`): aborted when the client goes away before
 * the answer, as tRPC's own adapter aborts its request signal.
 */
export function requestSignal(reply: FastifyReply): AbortSignal {
  const abort = new AbortController();
  reply.raw.once('close', () => {
    if (!reply.raw.writableFinished) abort.abort();
  });
  return abort.signal;
}
