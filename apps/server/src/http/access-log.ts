import { type FastifyReply, type FastifyRequest, LogController } from 'fastify';

/** One line per request, when it completes: method, path, status, duration (no "incoming" line). */
export class AccessLogController extends LogController {
  constructor() {
    super({ requestIdLogLabel: 'requestId' });
  }

  override incomingRequest(): void {}

  override requestCompleted(error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    const durationMs = Math.round(reply.elapsedTime * 10) / 10;
    const status = reply.statusCode;
    const line = { method: request.method, path: request.pathForLog, status, durationMs };
    const message = `${request.method} ${request.pathForLog} ${status} ${durationMs}ms`;
    if (error || status >= 500) reply.log.error({ ...line, err: error ?? undefined }, message);
    else reply.log.info(line, message);
  }
}
