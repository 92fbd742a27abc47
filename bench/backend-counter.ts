/**
 * Counting TCP proxies for the round-trip table of `pnpm bench`: a server started with its
 * DATABASE_URL / REDIS_URL pointed at them talks to the real Postgres and Redis through
 * them, and they count what its connections send. Only the counting servers (quiet, one
 * request at a time) go through them, never the servers under load.
 *
 * Why not the backends' own counters: Redis `INFO` counts every client of a shared Redis,
 * and Postgres publishes a backend's `pg_stat_database` counts up to 10 s late, beside the
 * job queue's polls in the same database. Here each server has its own proxies, and the
 * job queue's connections (application_name `app-jobs`, pg-boss polling on its timer) are
 * left out.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';

export interface Counts {
  /** Postgres: Query ('Q') and Execute ('E') messages, one per SQL statement. Redis: commands. */
  commands: number;
  /** Times the client sent something after having had an answer: a pipeline is one. */
  roundTrips: number;
  /** Commands by name (Redis: `EVALSHA`, `MGET`...). */
  byName: Map<string, number>;
}

export interface CountingProxy {
  /** The URL to give the server: `url` with this proxy's host and port. */
  url: string;
  /** A copy of the counts so far. */
  counts(): Counts;
  close(): Promise<void>;
}

type Parser = (chunk: Buffer) => { commands: string[] } | 'ignore';

/**
 * Starts a proxy in front of `target` (a postgres:// or redis:// URL) on a free port of
 * 127.0.0.1. `ignoreApplication`: Postgres connections whose application_name starts with it
 * are relayed but not counted.
 */
export async function startCountingProxy(target: string, options: { ignoreApplication?: string } = {}) {
  const url = new URL(target);
  const kind = url.protocol.startsWith('redis') ? 'redis' : 'postgres';
  const upstream = { host: url.hostname, port: Number(url.port || (kind === 'redis' ? 6379 : 5432)) };
  const counts: Counts = { commands: 0, roundTrips: 0, byName: new Map() };
  const sockets = new Set<Socket>();

  const server: Server = createServer((client) => {
    const backend = connect(upstream);
    sockets.add(client);
    sockets.add(backend);
    const parse = kind === 'redis' ? redisParser() : postgresParser(options.ignoreApplication);
    /** Whether the client has sent since the last answer (then more is the same round trip). */
    let sentSinceAnswer = false;
    client.on('data', (chunk: Buffer) => {
      backend.write(chunk);
      const parsed = parse(chunk);
      if (parsed === 'ignore' || parsed.commands.length === 0) return;
      if (!sentSinceAnswer) counts.roundTrips += 1;
      sentSinceAnswer = true;
      for (const name of parsed.commands) {
        counts.commands += 1;
        counts.byName.set(name, (counts.byName.get(name) ?? 0) + 1);
      }
    });
    backend.on('data', (chunk: Buffer) => {
      sentSinceAnswer = false;
      client.write(chunk);
    });
    const end = () => {
      client.destroy();
      backend.destroy();
      sockets.delete(client);
      sockets.delete(backend);
    };
    for (const socket of [client, backend]) {
      socket.on('error', end);
      socket.on('close', end);
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const proxied = new URL(target);
  proxied.hostname = '127.0.0.1';
  proxied.port = String((server.address() as { port: number }).port);
  return {
    url: proxied.toString(),
    counts: () => ({ ...counts, byName: new Map(counts.byName) }),
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  } satisfies CountingProxy;
}

/**
 * The frontend side of the Postgres protocol: a startup message (no type byte; SSL and
 * GSS requests before it), then typed messages (a byte, then a length that counts itself).
 * A statement is a simple Query, or an Execute of the extended protocol (node-postgres
 * sends Parse/Bind/Describe/Execute/Sync for a query with parameters).
 */
function postgresParser(ignoreApplication: string | undefined): Parser {
  let pending: Buffer = Buffer.alloc(0);
  let started = false;
  let ignored = false;
  return (chunk) => {
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    const commands: string[] = [];
    let offset = 0;
    for (;;) {
      if (!started) {
        if (pending.length - offset < 8) break;
        const length = pending.readInt32BE(offset);
        if (pending.length - offset < length) break;
        const code = pending.readInt32BE(offset + 4);
        if (code === 196_608) {
          // Protocol 3.0: key\0value\0 pairs.
          const fields = pending
            .subarray(offset + 8, offset + length - 1)
            .toString('utf8')
            .split('\0');
          const application = fields[fields.indexOf('application_name') + 1] ?? '';
          ignored = ignoreApplication !== undefined && application.startsWith(ignoreApplication);
          started = true;
        }
        offset += length;
        continue;
      }
      if (pending.length - offset < 5) break;
      const length = pending.readInt32BE(offset + 1);
      if (pending.length - offset < length + 1) break;
      const type = String.fromCharCode(pending[offset] as number);
      if (type === 'Q') commands.push('query');
      else if (type === 'E') commands.push('execute');
      offset += length + 1;
    }
    pending = pending.subarray(offset);
    return ignored ? 'ignore' : { commands };
  };
}

/** What a Redis client sends: RESP arrays of bulk strings (the command's name first). */
function redisParser(): Parser {
  let pending: Buffer = Buffer.alloc(0);
  const CRLF = Buffer.from('\r\n');
  return (chunk) => {
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    const commands: string[] = [];
    let offset = 0;
    /** The line at `at` (without its CRLF) and where the next starts, or undefined when incomplete. */
    const line = (at: number) => {
      const end = pending.indexOf(CRLF, at);
      return end === -1 ? undefined : { text: pending.toString('latin1', at, end), next: end + 2 };
    };
    parse: while (offset < pending.length) {
      const header = line(offset);
      if (!header) break;
      if (!header.text.startsWith('*')) {
        // An inline command: words on one line.
        commands.push(header.text.split(' ')[0]?.toUpperCase() ?? '');
        offset = header.next;
        continue;
      }
      const parts = Number(header.text.slice(1));
      let at = header.next;
      let name = '';
      for (let i = 0; i < parts; i++) {
        const size = line(at);
        if (!size) break parse;
        const length = Number(size.text.slice(1));
        if (pending.length < size.next + length + 2) break parse;
        if (i === 0) name = pending.toString('latin1', size.next, size.next + length).toUpperCase();
        at = size.next + length + 2;
      }
      commands.push(name);
      offset = at;
    }
    pending = pending.subarray(offset);
    return { commands };
  };
}

/** `after` minus `before`, per request. */
export function perRequest(before: Counts, after: Counts, requests: number) {
  const names = [...after.byName]
    .map(([name, count]) => [name, (count - (before.byName.get(name) ?? 0)) / requests] as const)
    .filter(([, count]) => count > 0)
    .sort(([a], [b]) => a.localeCompare(b));
  return {
    commands: (after.commands - before.commands) / requests,
    roundTrips: (after.roundTrips - before.roundTrips) / requests,
    names,
  };
}
