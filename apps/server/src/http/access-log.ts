import { type FastifyReply, type FastifyRequest, LogController } from 'fastify';
import { requestPath } from './request-lifecycle.ts';

/** One line per request, when it completes: method, path, status, duration (no "incoming" line). */
export class AccessLogController extends LogController {
  constructor() {
    super({ requestIdLogLabel: 'requestId' });
  }

  override incomingRequest(): void {}

  override requestCompleted(error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    const status = reply.statusCode;
    // Nothing to build when the line would not be written (LOG_LEVEL above info).
    const log = reply.log as typeof reply.log & { isLevelEnabled?(level: string): boolean };
    if (!error && status < 500 && log.isLevelEnabled?.('info') === false) return;
    const durationMs = Math.round(reply.elapsedTime * 10) / 10;
    const path = requestPath(request);
    const line = { method: request.method, path, status, durationMs };
    const message = `${request.method} ${path} ${status} ${durationMs}ms`;
    if (error || status >= 500) reply.log.error({ ...line, err: error ?? undefined }, message);
    else reply.log.info(line, message);
  }
}
