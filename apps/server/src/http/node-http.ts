/**
 * Node's `node:http`, for the app's code that needs its values (types come with `import
 * type`, which is erased). Not through `import`: to build a built-in module's ESM view, Node
 * reads every one of its exports, and reading `http.WebSocket` (and its kin) loads Node's
 * bundled fetch (undici), ~40 ms of every start-up for nothing the app uses.
 * test/process.test.ts checks that a start loads no undici.
 */
export const http = process.getBuiltinModule('node:http');
