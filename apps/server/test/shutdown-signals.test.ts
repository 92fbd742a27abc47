import { afterEach, describe, expect, it, vi } from 'vitest';
import { createLogger } from '../src/infra/logger.ts';
import { onShutdownSignal } from '../src/shutdown-signals.ts';

describe('a shutdown signal', () => {
  const before = { SIGINT: process.listeners('SIGINT'), SIGTERM: process.listeners('SIGTERM') };
  afterEach(() => {
    vi.restoreAllMocks();
    for (const signal of ['SIGINT', 'SIGTERM'] as const) {
      for (const listener of process.listeners(signal)) {
        if (!before[signal].includes(listener)) process.off(signal, listener);
      }
    }
  });

  it('stops what must not outlive the process when the shutdown fails (an embedded Postgres), and exits 1', async () => {
    const exited = new Promise<unknown>((resolve) => {
      vi.spyOn(process, 'exit').mockImplementation(((code?: number) => resolve(code)) as typeof process.exit);
    });
    const stopped = vi.fn();
    onShutdownSignal(createLogger({ level: 'silent', format: 'json' }), {
      shutdown: () => Promise.reject(new Error('the queue would not stop')),
      forceAfterMs: 2_000_000_000, // never, within the test process
      onForcedExit: stopped,
    });
    process.emit('SIGTERM', 'SIGTERM');
    expect(await exited).toBe(1);
    // Before: the process exited and left the embedded Postgres running.
    expect(stopped).toHaveBeenCalledOnce();
  });

  it('exits with the code of a shutdown that finished, stopping nothing more', async () => {
    const exited = new Promise<unknown>((resolve) => {
      vi.spyOn(process, 'exit').mockImplementation(((code?: number) => resolve(code)) as typeof process.exit);
    });
    const stopped = vi.fn();
    onShutdownSignal(createLogger({ level: 'silent', format: 'json' }), {
      shutdown: async () => 0,
      forceAfterMs: 2_000_000_000, // never, within the test process
      onForcedExit: stopped,
    });
    process.emit('SIGINT', 'SIGINT');
    expect(await exited).toBe(0);
    expect(stopped).not.toHaveBeenCalled();
  });
});
