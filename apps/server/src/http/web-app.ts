/**
 * The web app (apps/web's build) from the API's own origin, when `WEB_DIR` names it: the
 * browser then talks to the API on the same origin (no CORS), and the emails' links (APP_URL
 * = PUBLIC_URL) open its pages. Hashed assets are cached for a year; every other path that
 * is not the API's answers the app's index.html (its router draws the page).
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance, FastifyReply } from 'fastify';
import fp from 'fastify-plugin';
import { requestPath } from './request-lifecycle.ts';

/**
 * The app's pages: scripts and styles from this origin only (the build inlines none), so an
 * injected script cannot run, nor read the tokens the app keeps. Stricter than /docs's
 * (`HTML_CSP`, which allows inline scripts for its reference).
 */
export const WEB_APP_CSP = [
  "default-src 'self'",
  "base-uri 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "object-src 'none'",
  "frame-ancestors 'none'",
  "form-action 'self'",
].join(';');

/** Paths the server itself answers: never the web app's (an unknown one stays a JSON 404). */
const SERVER_PATHS = /^\/(api|trpc|docs|dev|openapi\.json|\.well-known)(\/|$|\?)/;
/**
 * A file's path (its last part has an extension, `.html` aside): one the build does not hold
 * is a 404, not the app's page (a page cached before a deploy asking for its old hashed
 * script would get HTML, and monitoring a 200).
 */
const FILE_PATH = /\.(?!html$)[a-z0-9]+$/i;

export const webApp = fp(
  async (app: FastifyInstance, { dir }: { dir: string }) => {
    const index = path.join(dir, 'index.html');
    if (!existsSync(index)) throw new Error(`WEB_DIR=${dir} has no index.html: build the web app first (pnpm build)`);
    const html = await readFile(index);
    await app.register(fastifyStatic, {
      root: dir,
      prefix: '/',
      wildcard: false,
      index: false,
      // /index.html is the app's page, under its CSP (`page`), not a file under /docs's.
      globIgnore: ['index.html'],
      setHeaders(res, file) {
        const immutable = file.startsWith(path.join(dir, 'assets') + path.sep);
        res.header('cache-control', immutable ? 'public, max-age=31536000, immutable' : 'no-cache');
      },
    });
    const page = (_request: unknown, reply: FastifyReply) =>
      reply
        .type('text/html; charset=utf-8')
        .header('cache-control', 'no-cache')
        .header('content-security-policy', WEB_APP_CSP)
        .send(html);
    app.get('/', page);
    app.get('/*', (request, reply) =>
      SERVER_PATHS.test(request.url) || FILE_PATH.test(requestPath(request))
        ? reply.callNotFound()
        : page(request, reply),
    );
  },
  { name: 'web-app' },
);
