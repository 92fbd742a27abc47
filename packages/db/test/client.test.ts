import { connect, createServer, type Server, type Socket } from 'node:net';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb } from '../src/client.ts';
import { createEmptyTestDatabase, type TestDatabase } from '../src/testing.ts';

/**
 * A TCP proxy to the test database whose connections can be made to go silent, as a
 * server's do when it fails over or a route drops: nothing answers, nothing is closed.
 */
async function silenceableProxy(target: URL) {
  const connections: { client: Socket; server: Socket }[] = [];
  const proxy: Server = createServer((client) => {
    const server = connect(Number(target.port || 5432), target.hostname);
    client.pipe(server).pipe(client);
    client.on('error', () => server.destroy());
    server.on('error', () => client.destroy());
    connections.push({ client, server });
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  const url = new URL(target);
  url.port = String((proxy.address() as { port: number }).port);
  return {
    url: url.toString(),
    get opened() {
      return connections.length;
    },
    silenceAll() {
      for (const { client, server } of connections) {
        client.unpipe(server);
        server.unpipe(client);
      }
    },
    close() {
      for (const { client, server } of connections) {
        client.destroy();
        server.destroy();
      }
      proxy.close();
    },
  };
}

describe('createDb', () => {
  let database: TestDatabase;
  beforeAll(async () => {
    database = await createEmptyTestDatabase();
  });
  afterAll(() => database.drop());

  for (const preparedStatements of [true, false]) {
    it(`drops a connection whose query timed out client-side, so the next query gets a fresh one (prepared statements ${preparedStatements ? 'on' : 'off'})`, async () => {
      const proxy = await silenceableProxy(new URL(database.url));
      const db = createDb({ url: proxy.url, poolMax: 1, statementTimeoutMs: 300, preparedStatements });
      try {
        expect((await sql<{ one: number }>`select ${1}::int as one`.execute(db)).rows).toEqual([{ one: 1 }]);
        proxy.silenceAll(); // the server went away without a word
        await expect(sql`select 2`.execute(db)).rejects.toThrow('Query read timeout');
        expect((await sql<{ three: number }>`select ${3}::int as three`.execute(db)).rows).toEqual([{ three: 3 }]);
        expect(proxy.opened).toBe(2);
      } finally {
        await db.destroy();
        proxy.close();
      }
    });
  }
});
