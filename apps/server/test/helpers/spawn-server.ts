import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';

const main = fileURLToPath(new URL('../../src/main.js', import.meta.url));

export interface SpawnedServer {
  process: ChildProcess;
  /** Everything written to stdout and stderr so far. */
  output(): string;
  /** Resolves with the first line matching `pattern` (rejects if the process exits first). */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<string>;
  /** Resolves with the exit code. */
  exited: Promise<number | null>;
}

/** Runs the real `src/main.js` with exactly `env` (plus PATH), like a user would; `nodeArgs` go to Node before it. */
export function spawnServer(env: Record<string, string | undefined>, nodeArgs: string[] = []): SpawnedServer {
  return spawnCommand(process.execPath, [...nodeArgs, main], {
    env: { PATH: process.env.PATH, NODE_ENV: 'test', LOG_FORMAT: 'json', HOST: '127.0.0.1', PORT: '0', ...env },
  });
}

/**
 * Runs any command (`pnpm dev`, say) with exactly `options.env`, collecting its output.
 * `detached` gives it its own process group, to signal a whole tree (turbo and its tasks).
 */
export function spawnCommand(
  command: string,
  args: string[],
  options: { env: Record<string, string | undefined>; cwd?: string; detached?: boolean },
): SpawnedServer {
  const child = spawn(command, args, {
    env: options.env,
    cwd: options.cwd,
    detached: options.detached,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const listeners = new Set<() => void>();
  const collect = (chunk: Buffer) => {
    output += chunk.toString();
    for (const listener of listeners) listener();
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  const exited = once(child, 'exit').then(([code]) => code as number | null);

  return {
    process: child,
    output: () => output,
    exited,
    waitFor(pattern, timeoutMs = 30_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const line = output.split('\n').find((l) => pattern.test(l));
          if (line !== undefined) {
            done();
            resolve(line);
          }
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`timed out waiting for ${pattern}; output:\n${output}`));
        }, timeoutMs);
        const onExit = () => {
          check();
          done();
          reject(new Error(`process exited before ${pattern}; output:\n${output}`));
        };
        const done = () => {
          clearTimeout(timer);
          listeners.delete(check);
          child.off('exit', onExit);
        };
        listeners.add(check);
        child.once('exit', onExit);
        check();
      });
    },
  };
}

/** Waits for Fastify's "Server listening at http://host:port" line and returns the base URL. */
export async function listeningUrl(server: SpawnedServer): Promise<string> {
  const line = await server.waitFor(/Server listening at http:\/\/127\.0\.0\.1:\d+/);
  const match = /http:\/\/127\.0\.0\.1:\d+/.exec(line);
  return match?.[0] as string;
}
