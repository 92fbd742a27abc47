/**
 * `pnpm worker`: a process that only runs background jobs (no HTTP), for scaling jobs apart
 * from the servers (then JOBS_WORKER=off on the servers). SIGINT/SIGTERM stop it gracefully:
 * a job in progress finishes (up to SHUTDOWN_TIMEOUT_MS) or goes back to the queue; a second
 * signal, or a shutdown that outruns its time, exits at once.
 */
import { rm, utimes, writeFile } from 'node:fs/promises';
import { resolveDatabase } from '@app/db';
import { configOrExit } from './config.ts';
import { createLogger } from './infra/logger.ts';
import { startWorker } from './modules/jobs/jobs.ts';
import { createServices } from './services.ts';
import { onShutdownSignal } from './shutdown-signals.ts';
import { runStartupChecks } from './startup.ts';

const config = configOrExit();
const log = createLogger({
  level: config.logLevel,
  format: config.logFormat,
  base: { role: 'worker', pid: process.pid },
});

/**
 * How often the ready file's time is renewed while the worker's event loop turns: a liveness
 * probe that finds it much older than this restarts a worker stuck (a job that never yields).
 */
const READY_FILE_HEARTBEAT_MS = 5_000;
let heartbeat: NodeJS.Timeout | undefined;

/** (A file left by a process that died, in a folder the next one keeps: it is not ready yet.) */
const notReady = async () => {
  clearInterval(heartbeat);
  if (config.jobs.readyFile) await rm(config.jobs.readyFile, { force: true }).catch(() => undefined);
};
await notReady();
let stopping = false;

const database = await resolveDatabase({
  url: config.database.url,
  embeddedDataDir: config.database.embeddedDataDir,
  log: (message) => log.debug(message),
});
const services = await createServices(config, log, database.url);
onShutdownSignal(log, {
  // The jobs in progress get SHUTDOWN_TIMEOUT_MS; closing the pools and an embedded Postgres a little more.
  forceAfterMs: config.shutdownTimeoutMs + 5_000,
  shutdown: async (signal) => {
    log.info(`${signal}: finishing the jobs in progress (up to ${config.shutdownTimeoutMs} ms)`);
    // No longer ready: an orchestrator starts the next worker while this one finishes.
    stopping = true;
    await notReady();
    await services.close();
    await database.embedded?.stop();
    log.info('stopped');
    return 0;
  },
  onForcedExit: () => database.embedded?.stopNow(),
});
try {
  // As a server does: the database answers with its migrations applied (or applied here, with
  // MIGRATE_ON_START), and Redis answers. Jobs never run on a schema older than their code.
  await runStartupChecks(services, database.url, database);
  await startWorker(services);
  const { readyFile } = config.jobs;
  if (readyFile && !stopping) {
    await writeFile(readyFile, `${process.pid}\n`);
    // (Renewing never recreates a file removed meanwhile: a missing file's time cannot be set.)
    const renew = () => utimes(readyFile, new Date(), new Date()).catch(() => undefined);
    heartbeat = setInterval(renew, READY_FILE_HEARTBEAT_MS).unref();
    if (stopping) await notReady(); // (a signal while it was written)
  }
  log.info(`worker ready: ${database.description}`);
} catch (error) {
  log.fatal({ err: error }, `the worker could not start: ${error instanceof Error ? error.message : String(error)}`);
  await services.close().catch(() => undefined);
  await database.embedded?.stop();
  process.exit(1);
}
