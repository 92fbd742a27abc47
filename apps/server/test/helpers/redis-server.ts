import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';

/** A free local TCP port. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  return typeof address === 'object' && address ? address.port : 0;
}

/**
 * A Redis of the test's own (never the machine's shared one), so a test may flush,
 * restart, fill or freeze it. Without persistence, like the compose file's Redis.
 */
export async function startRedisServer(extraArgs: string[] = []) {
  const port = await freePort();
  const url = `redis://127.0.0.1:${port}`;
  let child: ChildProcess | undefined;

  async function start() {
    child = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', ...extraArgs],
      { stdio: 'ignore' },
    );
    const admin = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    admin.on('error', () => {});
    for (let i = 0; i < 100; i++) {
      try {
        await admin.connect();
        await admin.ping();
        break;
      } catch {
        admin.disconnect();
        await sleep(50);
      }
    }
    admin.disconnect();
  }

  async function stop() {
    if (!child || child.exitCode !== null) return;
    const exited = once(child, 'exit');
    child.kill('SIGCONT');
    child.kill('SIGKILL');
    await exited;
  }

  /** A client for the test itself (FLUSHALL, CONFIG, filling memory). */
  const command = () => new Redis(url, { maxRetriesPerRequest: 0 }).on('error', () => {});

  await start();
  return {
    url,
    command,
    async flushAll() {
      const client = command();
      await client.flushall();
      client.disconnect();
    },
    /** A real restart: the process dies and a new, empty one takes the port. */
    async restart() {
      await stop();
      await start();
    },
    stop,
    start,
    /** SIGSTOP: the connection stays open, nothing answers (a hung server). */
    freeze: () => child?.kill('SIGSTOP'),
    thaw: () => child?.kill('SIGCONT'),
  };
}

export type RedisServer = Awaited<ReturnType<typeof startRedisServer>>;
