import type { Duplex } from 'node:stream';
import type { AppErrorCode } from '../errors/app-error-codes.ts';
import { httpErrorBody, trpcRefusal } from '../errors/index.ts';
import { newRequestId } from '../infra/logger.ts';
import { SECURITY_HEADERS } from './common-headers.ts';
import { onTrpcPath, type TrpcPrefixes } from './error-handling.ts';
import { http } from './node-http.ts';

/** The headers every answer carries that a refusal without a request can carry (no CORS: no Origin was read). */
const HEADER_LINES = [
  ...Object.entries(SECURITY_HEADERS),
  ['cache-control', 'no-store'],
  ['vary', 'Origin'],
  ['content-type', 'application/json; charset=utf-8'],
  ['connection', 'close'],
]
  .map(([name, value]) => `${name}: ${value}\r\n`)
  .join('');

/** How long a refused connection is given to take its answer before it is closed. */
const CLOSE_WITHIN_MS = 1_000;

/** What each refusal of Node's HTTP parser is answered with. */
function refusalOf(code: string | undefined): { status: number; appCode: AppErrorCode; message: string } {
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    return {
      status: 408,
      appCode: 'TIMEOUT',
      message: 'The request did not arrive within the time the server gives it',
    };
  }
  if (code === 'HPE_HEADER_OVERFLOW') {
    return { status: 431, appCode: 'BAD_REQUEST', message: "The request's headers are larger than the server takes" };
  }
  return { status: 400, appCode: 'BAD_REQUEST', message: 'The request is not valid HTTP' };
}

/**
 * What Node's HTTP parser refuses before a request exists (a malformed request line or
 * header, a repeated Content-Length, headers over Node's limit, a request not arrived within
 * REQUEST_TIMEOUT_MS): answered in the app's error shape (tRPC's on a tRPC path, read off the
 * request line), with a request id and the security headers, then the connection closed (its
 * state is unknown). Fastify's own answer (`clientErrorHandler`'s default) had none of these,
 * and tRPC's client could not read it. Nothing is written when a response is already on its
 * way on the connection (its bytes would be cut into).
 */
export function answerClientError(
  error: Error & { code?: string; rawPacket?: unknown },
  socket: Duplex,
  trpcPrefixes: TrpcPrefixes,
): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  // A response whose header section is on its way (pipelined requests): nothing can be added.
  const responding = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  if (!socket.writable || responding?.headersSent) {
    socket.destroy();
    return;
  }
  const { status, appCode, message } = refusalOf(error.code);
  const requestId = newRequestId();
  const errorBody = httpErrorBody(status, message, requestId, { appCode });
  // The bytes Node had read (a Buffer, though Fastify's types call it JSON): the request line first.
  const packet = Buffer.isBuffer(error.rawPacket) ? error.rawPacket : Buffer.alloc(0);
  const target = packet.subarray(0, 512).toString('latin1').split(' ', 2)[1] ?? '';
  const body = JSON.stringify(onTrpcPath(target, trpcPrefixes) ? trpcRefusal(status, errorBody) : errorBody);
  // Closed once written, or within a second whatever the client does: Node's server keeps a
  // half-closed connection open, and a client that never reads or hangs up (the one a request
  // timeout was for) would hold it.
  const closing = setTimeout(() => socket.destroy(), CLOSE_WITHIN_MS).unref();
  socket.end(
    `HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\n${HEADER_LINES}x-request-id: ${requestId}\r\n` +
      `content-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    () => {
      clearTimeout(closing);
      socket.destroy();
    },
  );
}
