import { createConnection, createServer, type Socket } from 'node:net';

/**
 * A TCP proxy in front of a real server (the machine's Postgres), so a test can take the
 * server "down" for its own connections only: `cut()` drops every connection and refuses
 * new ones; `freeze()` keeps every connection open and passes nothing on (a server that
 * stopped answering); `restore()` lets them through again.
 */
export async function startTcpProxy(target: { host: string; port: number }) {
  const sockets = new Set<Socket>();
  let refusing = false;
  let frozen = false;
  const server = createServer((client) => {
    if (refusing) {
      client.destroy();
      return;
    }
    if (frozen) {
      sockets.add(client);
      client.on('error', () => client.destroy()).on('close', () => sockets.delete(client));
      return;
    }
    const upstream = createConnection(target);
    sockets.add(client).add(upstream);
    const close = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', close).on('close', close);
    upstream.on('error', close).on('close', close);
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    port,
    /** Drops every connection and refuses new ones (connections are accepted, then reset at once). */
    cut() {
      refusing = true;
      for (const socket of sockets) socket.destroy();
      sockets.clear();
    },
    /** Keeps every connection and accepts new ones, but passes no byte on either way, until `close()`. */
    freeze() {
      frozen = true;
      for (const socket of sockets) {
        socket.unpipe();
        socket.pause();
      }
    },
    restore() {
      refusing = false;
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
