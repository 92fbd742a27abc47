/**
 * `pnpm dev`: the app on http://localhost:5173 (and http://127.0.0.1:5173), proxying the
 * API (`/trpc`, `/api`, `/dev`) to the server, so the browser sees one origin: no CORS, and
 * the emails' links (APP_URL) land here. `API_PROXY_TARGET` points it at another server,
 * `WEB_PORT` moves it.
 */
import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

const target = process.env.API_PROXY_TARGET ?? `http://127.0.0.1:${process.env.PORT ?? 3000}`;
const proxy = Object.fromEntries(
  ['/trpc', '/api', '/dev', '/openapi.json', '/docs'].map((path) => [path, { target, xfwd: true }]),
);

export default defineConfig({
  plugins: [react()],
  server: { host: '127.0.0.1', port: Number(process.env.WEB_PORT ?? 5173), strictPort: true, proxy },
  preview: { host: '127.0.0.1', port: 4173, strictPort: true, proxy },
  build: { outDir: 'dist', sourcemap: true },
});
