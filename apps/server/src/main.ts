/**
 * The server's entry (`pnpm start`, the Docker image): turns on Node's compile cache (the
 * compiled code of every module, kept across starts, which takes a quarter to a third off
 * start-up), then runs server.ts. The cache lives in NODE_COMPILE_CACHE when set (the Docker
 * image's, filled when the image is built: scripts/warm-compile-cache.ts), else in the OS
 * temp folder; NODE_DISABLE_COMPILE_CACHE=1 turns it off. Nothing else may be imported here:
 * static imports would load before the cache is on.
 */
import { enableCompileCache } from 'node:module';

enableCompileCache();
const { main } = await import('./server.ts');
await main();
