import { createServer, type IncomingMessage } from 'node:http';

export interface ReceivedEmail {
  authorization: string | undefined;
  /** The `Idempotency-Key` header: tries of one email share it. */
  idempotencyKey: string | undefined;
  /** Who sent it, when its client's base URL names it (`<url>/<sender>`, e.g. one of several workers). */
  sender: string | undefined;
  body: Record<string, unknown>;
}

/**
 * A local stand-in for Resend's HTTP API (POST /emails), so the real `resend` client is
 * exercised over real HTTP. `mode` makes it answer, fail, or hang. Like Resend, a request
 * whose `Idempotency-Key` already succeeded gets the first answer and is not delivered again:
 * `delivered` holds each email delivered, once.
 */
export async function startFakeResend() {
  const received: ReceivedEmail[] = [];
  const delivered: ReceivedEmail[] = [];
  /** Each key that succeeded: its answer's id, and the payload it was sent with. */
  const answered = new Map<string, { id: string; payload: string }>();
  let mode: 'ok' | 'fail' | 'slow' | 'accept-then-hang' = 'ok';
  /** In 'ok' mode, how long each answer takes (a provider under load). */
  let delayMs = 0;
  /** Requests received and not answered yet: the sends in progress. */
  const open = new Set<ReceivedEmail>();
  const read = (request: IncomingMessage) =>
    new Promise<string>((resolve) => {
      let data = '';
      request.on('data', (chunk) => {
        data += chunk;
      });
      request.on('end', () => resolve(data));
    });
  const server = createServer(async (request, response) => {
    const body = JSON.parse((await read(request)) || '{}');
    const route = /^(?:\/([\w-]+))?\/emails$/.exec(request.url ?? '');
    if (request.method !== 'POST' || !route) {
      response.writeHead(404).end();
      return;
    }
    const sender = route[1];
    const key = request.headers['idempotency-key'];
    const entry = {
      authorization: request.headers.authorization,
      idempotencyKey: typeof key === 'string' ? key : undefined,
      sender,
      body,
    };
    received.push(entry);
    open.add(entry);
    response.once('close', () => {
      open.delete(entry);
    });
    const reply = (status: number, payload: object) =>
      response.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(payload));
    const earlier = entry.idempotencyKey && answered.get(entry.idempotencyKey);
    // As Resend: the same key with another payload is refused, not sent (and never will be).
    if (earlier && earlier.payload !== JSON.stringify(body))
      reply(409, {
        statusCode: 409,
        name: 'invalid_idempotent_request',
        message: 'Same idempotency key used with a different request payload.',
      });
    else if (earlier) reply(200, { id: earlier.id });
    else if (mode === 'fail')
      reply(500, { statusCode: 500, name: 'internal_server_error', message: 'The fake is down' });
    else if (mode === 'slow') setTimeout(() => reply(200, { id: 'late' }), 3_000);
    else if (mode === 'accept-then-hang') {
      // Delivered, but the answer never leaves (the sender dies or gives up first).
      const id = `fake-${received.length}`;
      if (entry.idempotencyKey) answered.set(entry.idempotencyKey, { id, payload: JSON.stringify(body) });
      delivered.push(entry);
    } else {
      const id = `fake-${received.length}`;
      if (delayMs > 0) await new Promise((resolve) => setTimeout(resolve, delayMs));
      const meanwhile = entry.idempotencyKey && answered.get(entry.idempotencyKey);
      if (meanwhile) {
        reply(200, { id: meanwhile.id });
        return;
      }
      if (entry.idempotencyKey) answered.set(entry.idempotencyKey, { id, payload: JSON.stringify(body) });
      delivered.push(entry);
      reply(200, { id });
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    received,
    delivered,
    setMode(next: 'ok' | 'fail' | 'slow' | 'accept-then-hang') {
      mode = next;
    },
    setDelay(ms: number) {
      delayMs = ms;
    },
    /** Sends in progress: received, not answered yet. */
    sending: (): ReceivedEmail[] => [...open],
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
