import { createServer, type IncomingMessage } from 'node:http';

export interface ReceivedEmail {
  authorization: string | undefined;
  body: Record<string, unknown>;
}

/**
 * A local stand-in for Resend's HTTP API (POST /emails), so the real `resend` client is
 * exercised over real HTTP. `mode` makes it answer, fail, or hang.
 */
export async function startFakeResend() {
  const received: ReceivedEmail[] = [];
  let mode: 'ok' | 'fail' | 'slow' = 'ok';
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
    if (request.method !== 'POST' || request.url !== '/emails') {
      response.writeHead(404).end();
      return;
    }
    received.push({ authorization: request.headers.authorization, body });
    const reply = (status: number, payload: object) =>
      response.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(payload));
    if (mode === 'fail') reply(500, { statusCode: 500, name: 'internal_server_error', message: 'The fake is down' });
    else if (mode === 'slow') setTimeout(() => reply(200, { id: 'late' }), 3_000);
    else reply(200, { id: `fake-${received.length}` });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    received,
    setMode(next: 'ok' | 'fail' | 'slow') {
      mode = next;
    },
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
