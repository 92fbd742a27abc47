/**
 * The server's entry (`pnpm start`, the Docker image, each cluster worker): sets V8 up for a
 * server, turns on Node's compile cache, then runs server.ts.
 *
 * V8 without allocation-site pretenuring. V8 allocates straight into the old generation the
 * objects of an allocation site (an array literal, `new Array(n)`) whose objects it saw
 * survive scavenges, and under concurrent requests it decides so for request data: a
 * query's rows from node-postgres's promise path (all in flight when the young generation
 * is still small). An object in the old generation keeps whatever it points to alive at every
 * scavenge until the next full collection, dead or not, so each request's rows, dates and
 * answer then outlived its request: a sixth to a fifth of what a signed-in list allocates was copied and
 * promoted (7-9 MB a scavenge, each 6-10 ms instead of under 1), with a full collection
 * every second or two. Without it a request's objects die young, as they should
 * (bench/README.md, the thirtieth sitting; test/process.test.ts checks the setting holds).
 * scripts/warm-compile-cache.ts sets the same: V8 takes no cached code compiled under other flags.
 *
 * The compile cache: the compiled code of every module, and the TypeScript of each `.ts` file
 * with its types stripped, kept across starts (a quarter to a third off a start). It lives in
 * NODE_COMPILE_CACHE when set (the Docker image's, filled when the image is built:
 * scripts/warm-compile-cache.ts), else in the OS temp folder; NODE_DISABLE_COMPILE_CACHE=1
 * turns it off.
 *
 * JavaScript, the one file that is: Node strips the types of a `.ts` entry before any line of
 * it runs, that is before the cache is on, and loading its type stripper for that costs ~0.1 s
 * of every start. With a `.js` entry every `.ts` file comes stripped from the cache and the
 * stripper is never loaded (test/process.test.ts checks it). Nothing but Node's own modules may
 * be imported here: other static imports would load before the cache is on.
 *
 * A Node that does not run TypeScript (before 22.18, or with type stripping turned off) is
 * told so here, in one line, instead of failing on the first `.ts` import.
 */
import { enableCompileCache } from 'node:module';
import { setFlagsFromString } from 'node:v8';

if (!process.features.typescript) {
  process.stderr.write(
    `This server is TypeScript, which this Node.js (${process.versions.node}) does not run: use Node.js 24 (.node-version), or 22.18 or later, without --no-experimental-strip-types.\n`,
  );
  process.exit(1);
}
setFlagsFromString('--no-allocation-site-pretenuring');
enableCompileCache();
const { main } = await import('./server.ts');
await main();
