/**
 * Fills Node's compile cache (NODE_COMPILE_CACHE, else the OS temp folder) with the modules
 * the server loads to start, without starting it: the Docker image runs this when it is
 * built, so that a new container starts warm instead of compiling some 900 modules (a quarter
 * to a third of its start-up). test/process.test.ts checks that a start after it compiles
 * almost nothing.
 */
import { enableCompileCache, flushCompileCache } from 'node:module';
import { setFlagsFromString } from 'node:v8';

// As src/main.js runs V8: code compiled under other flags is not taken from the cache.
setFlagsFromString('--no-allocation-site-pretenuring');

const { directory, message } = enableCompileCache();
if (!directory) {
  // The image would start cold for ever: fail its build instead.
  console.error(`warm-compile-cache: the compile cache is off: ${message ?? 'no reason given'}`);
  process.exit(1);
}
// server.ts's whole module graph (its `main` is not run).
await import('../src/server.ts');
// The migrations, which a start runs when MIGRATE_ON_START is on (and `pnpm db:migrate` does).
const { loadMigrations } = await import('@app/db');
await loadMigrations();
// pg-boss, which the job worker loads once the server listens (and `pnpm worker` at once).
await import('pg-boss');
// The sign-in providers (and openid-client), which a start loads when one is configured.
const { loadProviderModules } = await import('../src/infra/oauth/providers.ts');
await loadProviderModules();
flushCompileCache();
console.log(`compile cache filled: ${directory}`);
