/**
 * The server's entry (`pnpm start`, the Docker image): turns on Node's compile cache (the
 * compiled code of every module, and the TypeScript of each `.ts` file with its types
 * stripped, kept across starts: a quarter to a third off a start), then runs server.ts. The
 * cache lives in NODE_COMPILE_CACHE when set (the Docker image's, filled when the image is
 * built: scripts/warm-compile-cache.ts), else in the OS temp folder;
 * NODE_DISABLE_COMPILE_CACHE=1 turns it off.
 *
 * JavaScript, the one file that is: Node strips the types of a `.ts` entry before any line of
 * it runs, that is before the cache is on, and loading its type stripper for that costs ~0.1 s
 * of every start. With a `.js` entry every `.ts` file comes stripped from the cache and the
 * stripper is never loaded (test/process.test.ts checks it). Nothing else may be imported
 * here: static imports would load before the cache is on.
 */
import { enableCompileCache } from 'node:module';

enableCompileCache();
const { main } = await import('./server.ts');
await main();
