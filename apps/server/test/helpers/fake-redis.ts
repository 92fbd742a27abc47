import { createServer, type Socket } from 'node:net';

/**
 * Just enough of the Redis protocol for a client to connect, PING and SET, with a reply
 * delay the test controls: a dependency that is up but slow, for real in-flight requests.
 */
export async function startFakeRedis() {
  let pingDelayMs = 0;
  let pings = 0;
  const pingWaiters: (() => void)[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    let buffer = '';
    socket.on('data', (chunk) => {
      buffer += chunk.toString('latin1');
      for (;;) {
        const parsed = parseCommand(buffer);
        if (!parsed) return;
        buffer = buffer.slice(parsed.length);
        reply(socket, parsed.args);
      }
    });
    socket.on('error', () => {});
  });

  function reply(socket: Socket, args: string[]) {
    const command = args[0]?.toUpperCase();
    if (command === 'PING' || command === 'SET') {
      pings += 1;
      for (const wake of pingWaiters.splice(0)) wake();
      const answer = command === 'PING' ? '+PONG\r\n' : '+OK\r\n';
      setTimeout(() => socket.writable && socket.write(answer), pingDelayMs);
    } else if (command === 'INFO') {
      const info = '# Server\r\nredis_version:7.0.0\r\nloading:0\r\n';
      socket.write(`$${Buffer.byteLength(info)}\r\n${info}\r\n`);
    } else if (command === 'QUIT') {
      socket.end('+OK\r\n');
    } else {
      socket.write('+OK\r\n');
    }
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    url: `redis://127.0.0.1:${port}`,
    /** Delay of PING and SET answers (readiness writes a probe key). */
    setPingDelay(ms: number) {
      pingDelayMs = ms;
    },
    /** Resolves when the next PING or SET arrives (a request is then certainly in flight). */
    nextPing(): Promise<void> {
      const seen = pings;
      return new Promise((resolve) => {
        if (pings > seen) resolve();
        else pingWaiters.push(resolve);
      });
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** Parses one RESP array of bulk strings from the start of `input`. */
function parseCommand(input: string): { args: string[]; length: number } | undefined {
  if (!input.startsWith('*')) return undefined;
  let position = input.indexOf('\r\n');
  if (position === -1) return undefined;
  const count = Number(input.slice(1, position));
  position += 2;
  const args: string[] = [];
  for (let i = 0; i < count; i++) {
    const end = input.indexOf('\r\n', position);
    if (end === -1) return undefined;
    const size = Number(input.slice(position + 1, end));
    const start = end + 2;
    if (input.length < start + size + 2) return undefined;
    args.push(input.slice(start, start + size));
    position = start + size + 2;
  }
  return { args, length: position };
}
