/**
 * `pnpm dev`: the app on http://localhost:5173 (and http://127.0.0.1:5173), proxying the
 * API (`/trpc`, `/api`, `/dev`, `/openapi.json`, `/docs`) to the server, so the browser sees
 * one origin: no CORS, and the emails' links (APP_URL) land here. The server is at the PORT
 * `pnpm dev` gives it (the environment's, else the repository's env file's), or at
 * `API_PROXY_TARGET`; `WEB_PORT` moves this one.
 */
import { repoEnv } from '@app/db/paths';
import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

const env = repoEnv();
const target = env.API_PROXY_TARGET || `http://127.0.0.1:${env.PORT || 3000}`;
const proxy = Object.fromEntries(
  ['/trpc', '/api', '/dev', '/openapi.json', '/docs'].map((path) => [path, { target, xfwd: true }]),
);

export default defineConfig({
  plugins: [react()],
  server: { host: '127.0.0.1', port: Number(env.WEB_PORT || 5173), strictPort: true, proxy },
  preview: { host: '127.0.0.1', port: 4173, strictPort: true, proxy },
  build: { outDir: 'dist', sourcemap: true },
});
