/**
 * Docker cannot run on the CI machine, so the Dockerfile and compose file are checked
 * statically: structure, start-up order, non-root production image, real paths, and
 * only variables the config knows.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { repoRoot } from '@app/db';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { loadConfig } from '../src/config.ts';

const compose = parse(readFileSync(path.join(repoRoot, 'docker-compose.yml'), 'utf8'));
const dockerfile = readFileSync(path.join(repoRoot, 'Dockerfile'), 'utf8');
const envExample = readFileSync(path.join(repoRoot, '.env.example'), 'utf8');

describe('docker-compose.yml', () => {
  it('runs Postgres 17 and Redis with health checks', () => {
    expect(compose.services.postgres.image).toMatch(/^postgres:17/);
    expect(compose.services.postgres.healthcheck.test.join(' ')).toMatch(/pg_isready/);
    expect(compose.services.redis.image).toMatch(/^redis:/);
    expect(compose.services.redis.healthcheck.test.join(' ')).toMatch(/redis-cli ping/);
  });

  it('migrates once after Postgres is healthy, then starts the server after all four', () => {
    const { migrate, server } = compose.services;
    expect(migrate.command).toEqual(['node', 'packages/db/src/cli.ts', 'migrate']);
    expect(migrate.depends_on.postgres.condition).toBe('service_healthy');
    expect(migrate.restart).toBe('no');
    expect(server.depends_on).toEqual({
      postgres: { condition: 'service_healthy' },
      redis: { condition: 'service_healthy' },
      mailpit: { condition: 'service_healthy' },
      migrate: { condition: 'service_completed_successfully' },
    });
    expect(migrate.image).toBe(server.image);
    expect(server.build).toBe('.');
  });

  it('gives the server a configuration that passes production validation', () => {
    const env = Object.fromEntries(
      Object.entries(compose.services.server.environment as Record<string, string>).map(([name, value]) => [
        name,
        // "${NAME:-default}" -> default; "${NAME:?message}" must be supplied: use a random secret.
        String(value)
          .replace(/\$\{\w+:-([^}]*)\}/g, '$1')
          .replace(/\$\{\w+:\?[^}]*\}/g, randomBytes(36).toString('base64')),
      ]),
    );
    const result = loadConfig(env);
    expect(result.ok ? [] : result.problems).toEqual([]);
    expect(env.NODE_ENV).toBe('production');
    expect(compose.services.server.environment.JWT_SECRET).toMatch(/^\$\{JWT_SECRET:\?/);
  });

  it('runs background jobs in a worker service of the same image, not in the server', () => {
    const { server, worker } = compose.services;
    expect(worker.image).toBe(server.image);
    expect(worker.command).toEqual(['node', 'apps/server/src/worker.ts']);
    expect(worker.environment).toEqual(server.environment);
    expect(server.environment.JOBS_WORKER).toBe('off');
    expect(worker.depends_on).toEqual(server.depends_on);
    expect(worker.ports).toBeUndefined();
  });

  it('delivers every email to Mailpit unless told otherwise, so JWT_SECRET is the one secret to supply', () => {
    const { mailpit, server } = compose.services;
    expect(mailpit.image).toMatch(/^axllent\/mailpit:/);
    expect(mailpit.healthcheck.test.join(' ')).toMatch(/readyz/);
    // The UI shows every reset link and sign-in code: this machine only.
    expect(mailpit.ports).toEqual(['127.0.0.1:8025:8025', '127.0.0.1:1025:1025']);
    expect(server.environment.MAIL_TRANSPORT).toMatch(/^\$\{MAIL_TRANSPORT:-smtp\}$/);
    expect(server.environment.SMTP_URL).toMatch(/^\$\{SMTP_URL:-smtp:\/\/mailpit:1025\}$/);
    const required = Object.entries(server.environment as Record<string, string>)
      .filter(([, value]) => /\$\{\w+:\?/.test(String(value)))
      .map(([name]) => name);
    expect(required).toEqual(['JWT_SECRET']);
  });

  it('sets only variables that .env.example documents', () => {
    for (const service of ['server', 'migrate']) {
      for (const name of Object.keys(compose.services[service].environment)) {
        expect(envExample, `${service}: ${name}`).toMatch(new RegExp(`^#?\\s*${name}=`, 'm'));
      }
    }
  });
});

describe('Dockerfile', () => {
  const stages = [...dockerfile.matchAll(/^FROM (\S+)(?: AS (\w+))?/gm)];
  const runtime = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '));

  it('is multi-stage on Node 24 and installs production dependencies only', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    expect(dockerfile).toMatch(/ARG NODE_VERSION=24/);
    expect(dockerfile).toMatch(/pnpm install --frozen-lockfile --prod/);
    // argon2's native binary is an optional dependency: optional dependencies must stay.
    expect(dockerfile).not.toMatch(/--no-optional/);
  });

  it('runs the server as a non-root user in production mode', () => {
    expect(runtime).toMatch(/^USER (?!root)\w+/m);
    expect(runtime).toMatch(/NODE_ENV=production/);
    expect(runtime).toMatch(/CMD \["node", "apps\/server\/src\/main\.ts"\]/);
    expect(runtime).toMatch(/HEALTHCHECK/);
  });

  it('builds the web app in a stage of its own and serves its static files from the server (WEB_DIR)', () => {
    const web = dockerfile.slice(dockerfile.indexOf(' AS web'), dockerfile.lastIndexOf('\nFROM '));
    expect(web).toMatch(/pnpm --filter @app\/web exec vite build/);
    expect(runtime).toMatch(/^COPY --from=web \/app\/apps\/web\/dist apps\/web\/dist$/m);
    expect(runtime).toMatch(/WEB_DIR=apps\/web\/dist/);
    // Development tools stay in the build stage: the runtime copies production dependencies only.
    expect(runtime).not.toMatch(/COPY --from=web \/app\/node_modules/);
  });

  it('copies only paths that exist', () => {
    for (const [, sources] of dockerfile.matchAll(/^COPY (?!--from)(.+) \S+$/gm)) {
      for (const source of (sources as string).split(' ')) {
        expect(existsSync(path.join(repoRoot, source)), source).toBe(true);
      }
    }
  });

  it('leaves dependencies, local data and secrets out of the build context', () => {
    const ignored = readFileSync(path.join(repoRoot, '.dockerignore'), 'utf8').split('\n');
    expect(ignored).toEqual(expect.arrayContaining(['**/node_modules', '.data', '.env', '.git']));
  });
});
