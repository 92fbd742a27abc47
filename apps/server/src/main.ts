/**
 * The server's entry (`pnpm start`, the Docker image): turns on Node's compile cache (the
 * compiled code of every module, kept in the OS temp folder across starts, which takes a
 * quarter off start-up; NODE_DISABLE_COMPILE_CACHE=1 turns it off), then runs server.ts.
 * Nothing else may be imported here: static imports would load before the cache is on.
 */
import { enableCompileCache } from 'node:module';

enableCompileCache();
await import('./server.ts');
