/**
 * The server process (`main`, which main.js runs): load config, start the database (embedded by default), run the start-up
 * checks, then serve: in this process, or in WORKERS cluster workers that the primary
 * restarts when one dies. SIGINT/SIGTERM shut down gracefully.
 */
import cluster, { type Worker } from 'node:cluster';
import { Server } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { type DatabaseTarget, resolveDatabase } from '@app/db';
import { buildApp } from './app.ts';
import { type Config, configOrExit } from './config.ts';
import { createLogger, type Logger } from './infra/logger.ts';
import { startWorkerWhenPossible } from './modules/jobs/jobs.ts';
import { createServices } from './services.ts';
import { onShutdownSignal } from './shutdown-signals.ts';
import { runStartupChecks, StartupError } from './startup.ts';

/** A worker that dies this many times within the window is not restarted again. */
const RESTART_LIMIT = 5;
const RESTART_WINDOW_MS = 60_000;
/** The wait before a worker is started again: doubling with each death in the window (a dependency may be back by then). */
const restartDelayMs = (deathsInWindow: number) => Math.min(250 * 2 ** (deathsInWindow - 1), 5_000);

/** How long shutdown keeps serving with `Connection: close` before it stops listening. */
const DRAIN_MS = 500;

/** What a shutdown may take beyond SHUTDOWN_TIMEOUT_MS (closing pools, stopping an embedded Postgres) before the process exits anyway. */
const SHUTDOWN_MARGIN_MS = 5_000;

/** Serves HTTP in this process; `database` is undefined in a cluster worker (the primary owns it). */
async function serve(config: Config, log: Logger, databaseUrl: string, database?: DatabaseTarget): Promise<void> {
  const services = await createServices(config, log, databaseUrl);
  try {
    await runStartupChecks(services, databaseUrl, database);
  } catch (error) {
    await services.close();
    throw error;
  }
  const app = await buildApp(services, { trpcTransport: config.trpcTransport });

  // Installed before listening: a signal that arrives as soon as the port is open still
  // gets a graceful shutdown.
  onShutdownSignal(log, {
    forceAfterMs: config.shutdownTimeoutMs + SHUTDOWN_MARGIN_MS,
    shutdown: async (signal) => {
      // One deadline for the requests and the jobs in progress together.
      const deadline = Date.now() + config.shutdownTimeoutMs;
      log.info(`${signal}: finishing in-flight requests (up to ${config.shutdownTimeoutMs} ms)`);
      // Closing at once would reset keep-alive connections on which a client has just sent a
      // request the server has not read yet. First answer everything with `Connection: close`
      // for a moment (clients move to new connections), then stop listening and close.
      app.startDraining();
      // Jobs in progress finish (up to the deadline, services.close); no new one is taken.
      void services.jobs.stopTaking();
      await sleep(Math.min(DRAIN_MS, config.shutdownTimeoutMs / 2));
      // Then stop accepting, without http's closing of idle connections: one accepted a moment
      // ago may carry a request not read yet. It is read, answered and closed meanwhile.
      Server.prototype.close.call(app.server);
      await sleep(Math.min(DRAIN_MS, config.shutdownTimeoutMs / 2));
      let timedOut = false;
      const timer = setTimeout(
        () => {
          timedOut = true;
          log.warn('shutdown timeout reached: closing remaining connections');
          app.server.closeAllConnections();
        },
        Math.max(0, deadline - Date.now()),
      );
      await app.close();
      clearTimeout(timer);
      await services.close(deadline - Date.now());
      await database?.embedded?.stop();
      log.info('stopped');
      return timedOut ? 1 : 0;
    },
    onForcedExit: () => database?.embedded?.stopNow(),
  });
  const address = await app.listen({ host: config.host, port: config.port });
  // Background jobs in this process (JOBS_WORKER=embedded), else in `pnpm worker` processes only.
  if (config.jobs.embeddedWorker) {
    startWorkerWhenPossible(services);
  }
  if (services.mailer.transport.name === 'outbox') {
    log.info(
      `no email transport (MAIL_TRANSPORT): emails are written to ${config.email.outboxDir} and listed at ${address}/dev/outbox`,
    );
  }
}

async function runPrimary(config: Config, log: Logger, database: DatabaseTarget): Promise<void> {
  const env = { DATABASE_URL: database.url };
  const deaths: number[] = [];
  let stopping = false;
  let gaveUp = false;

  const fork = (): Worker => cluster.fork(env);
  cluster.on('exit', (worker, code, signal) => {
    if (stopping) return;
    if (code === 0 && !signal) return; // it shut down on purpose
    const now = Date.now();
    deaths.push(now);
    while (deaths.length > 0 && (deaths[0] ?? 0) < now - RESTART_WINDOW_MS) deaths.shift();
    if (deaths.length > RESTART_LIMIT) {
      log.fatal(`workers died ${deaths.length} times in ${RESTART_WINDOW_MS / 1000} s: giving up`);
      // A failure, whatever the other workers' own exits: a supervisor restarts on it.
      gaveUp = true;
      process.kill(process.pid, 'SIGTERM');
      return;
    }
    const delayMs = restartDelayMs(deaths.length);
    log.error(`worker ${worker.process.pid} died (${signal ?? `exit ${code}`}): starting a new one in ${delayMs} ms`);
    setTimeout(() => {
      if (!stopping) fork();
    }, delayMs);
  });

  onShutdownSignal(log, {
    // Each worker holds itself to SHUTDOWN_TIMEOUT_MS (and its margin); then the embedded Postgres stops.
    forceAfterMs: config.shutdownTimeoutMs + 2 * SHUTDOWN_MARGIN_MS,
    shutdown: async (signal) => {
      stopping = true;
      log.info(`${signal}: stopping ${Object.keys(cluster.workers ?? {}).length} workers`);
      const workers = Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined);
      const codes = await Promise.all(
        workers.map(
          (worker) =>
            new Promise<number>((resolve) => {
              worker.once('exit', (code) => resolve(code ?? 1));
              worker.process.kill('SIGTERM');
            }),
        ),
      );
      await database.embedded?.stop();
      log.info('stopped');
      return !gaveUp && codes.every((code) => code === 0) ? 0 : 1;
    },
    onForcedExit: () => database.embedded?.stopNow(),
  });

  for (let i = 0; i < config.workers; i++) fork();
  log.info(`primary ${process.pid} started ${config.workers} workers`);
}

export async function main(): Promise<void> {
  const config = configOrExit();
  const role = cluster.isWorker ? { worker: cluster.worker?.id, pid: process.pid } : undefined;
  const log = createLogger({ level: config.logLevel, format: config.logFormat, base: role });

  try {
    if (cluster.isWorker) {
      await serve(config, log, config.database.url as string);
      return;
    }
    const database = await resolveDatabase({
      url: config.database.url,
      embeddedDataDir: config.database.embeddedDataDir,
      log: (message) => log.debug(message),
    });
    log.info(`database: ${database.description}`);
    if (config.workers === 1) {
      await serve(config, log, database.url, database).catch(async (error: unknown) => {
        await database.embedded?.stop();
        throw error;
      });
      return;
    }
    // The primary prepares the database once; workers only connect.
    try {
      const services = await createServices(config, log, database.url);
      try {
        await runStartupChecks(services, database.url, database);
      } finally {
        await services.close();
      }
    } catch (error) {
      await database.embedded?.stop(); // never leave the embedded cluster running behind a failed start
      throw error;
    }
    await runPrimary(config, log, database);
  } catch (error) {
    if (error instanceof StartupError) log.fatal(error.message);
    else log.fatal({ err: error }, `start-up failed: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  }
}
