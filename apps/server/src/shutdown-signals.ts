/**
 * SIGINT and SIGTERM for every process (the server, a cluster's primary, `pnpm worker`): the
 * first starts `shutdown` and exits with its code; the same signal repeated within a second
 * is the same Ctrl-C (a terminal and turbo both forward it); another, later, exits at once.
 * A shutdown still running `forceAfterMs` after it began is cut short: exit code 1.
 */
import type { Logger } from './infra/logger.ts';

/** A repeat within this window is the same Ctrl-C arriving twice (terminal and turbo both forward it). */
const DUPLICATE_SIGNAL_MS = 1_000;

export function onShutdownSignal(
  log: Logger,
  options: {
    shutdown: (signal: string) => Promise<number>;
    /** The longest a shutdown may take before the process exits anyway. */
    forceAfterMs: number;
    /** What must not outlive the process when it exits before its shutdown finished (an embedded Postgres). */
    onForcedExit?: () => void;
  },
): void {
  let startedAt: number | undefined;
  const forcedExit = (why: string) => {
    log.warn(why);
    options.onForcedExit?.();
    process.exit(1);
  };
  const handler = (signal: NodeJS.Signals) => {
    if (startedAt !== undefined) {
      if (Date.now() - startedAt < DUPLICATE_SIGNAL_MS) return;
      forcedExit(`${signal} again: exiting now`);
    }
    startedAt = Date.now();
    setTimeout(
      () => forcedExit(`the shutdown did not finish within ${options.forceAfterMs} ms: exiting now`),
      options.forceAfterMs,
    ).unref();
    options.shutdown(signal).then(
      (code) => process.exit(code),
      (error: unknown) => {
        log.error({ err: error }, 'shutdown failed');
        options.onForcedExit?.(); // what it did not get to stop
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
}
