/**
 * Docker cannot run on the CI machine, so the Dockerfile and compose file are checked
 * statically: structure, start-up order, non-root production image, real paths, and
 * only variables the config knows. The compose proxy's HAProxy configuration is read as text;
 * the Kubernetes manifests' configuration goes through the config schema here (their
 * schemas and cross-references are the @app/deploy package's tests).
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { repoRoot } from '@app/db';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { loadConfig } from '../src/config.ts';

// Merge keys (`<<: *app-environment`) resolved, as compose does.
const compose = parse(readFileSync(path.join(repoRoot, 'docker-compose.yml'), 'utf8'), { merge: true });
const dockerfile = readFileSync(path.join(repoRoot, 'Dockerfile'), 'utf8');
const envExample = readFileSync(path.join(repoRoot, '.env.example'), 'utf8');
const haproxyConfig = readFileSync(path.join(repoRoot, 'deploy/compose/haproxy.cfg'), 'utf8');
const healthRouter = readFileSync(path.join(repoRoot, 'apps/server/src/modules/health/health.router.ts'), 'utf8');

/**
 * A variable in compose's interpolation, innermost first: `${NAME}`, `${NAME:-default}` (also
 * when NAME is empty), `${NAME:?message}` (required).
 */
const INTERPOLATION = /\$\{(\w+)(?::([-?])([^${}]*))?\}/;

/**
 * A service's environment as compose resolves it with this .env (none by default), over the
 * image's own ENV. A required variable missing from the .env gets a random secret.
 */
function composeEnvironment(service: string, dotenv: Record<string, string> = {}): Record<string, string> {
  const interpolate = (text: string): string => {
    let resolved = text;
    for (let match = INTERPOLATION.exec(resolved); match; match = INTERPOLATION.exec(resolved)) {
      const [whole, name, kind, fallback = ''] = match;
      const value = dotenv[name as string] ?? '';
      const replacement = value !== '' ? value : kind === '?' ? randomBytes(36).toString('base64') : fallback;
      resolved = resolved.slice(0, match.index) + replacement + resolved.slice(match.index + whole.length);
    }
    return resolved;
  };
  const composed = Object.entries(compose.services[service].environment as Record<string, string>).map(
    ([name, value]) => [name, interpolate(String(value))] as const,
  );
  return { ...imageEnvironment(), ...Object.fromEntries(composed.filter(([, value]) => value !== '')) };
}

/** The runtime image's ENV (its last stage), which compose's environment adds to. */
function imageEnvironment(): Record<string, string> {
  const runtime = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '));
  const pairs = [...runtime.matchAll(/^ENV (.+)$/gm)].flatMap((line) => (line[1] as string).split(/\s+/));
  return Object.fromEntries(pairs.map((pair) => pair.split('=', 2) as [string, string]));
}

/** The REST path of a health procedure (`live`, `ready`), as its router declares it. */
function healthRoute(procedure: string): string {
  const declaration = new RegExp(
    String.raw`^ {2}${procedure}: \w+\s*\.meta\(\{\s*openapi: \{\s*method: 'GET',\s*path: '([^']+)'`,
    'm',
  );
  const path = declaration.exec(healthRouter)?.[1];
  if (!path) throw new Error(`health.router.ts declares no GET route for health.${procedure}`);
  return `/api${path}`;
}

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
    const env = composeEnvironment('server');
    const result = loadConfig(env);
    expect(result.ok ? [] : result.problems).toEqual([]);
    expect(env.NODE_ENV).toBe('production');
    expect(compose.services.server.environment.JWT_SECRET).toMatch(/^\$\{JWT_SECRET:\?/);
  });

  it('runs background jobs in a worker service of the same image, not in the server', () => {
    const { server, worker } = compose.services;
    expect(worker.image).toBe(server.image);
    expect(worker.command).toEqual(['node', 'apps/server/src/worker.ts']);
    // The same settings, but for the server's: no worker in it, one connection to queue jobs.
    expect(worker.environment).toEqual(compose['x-app-environment']);
    expect(server.environment).toEqual({ ...worker.environment, JOBS_WORKER: 'off', JOBS_POOL_MAX: '1' });
    expect(worker.depends_on).toEqual(server.depends_on);
    expect(worker.ports).toBeUndefined();
    // The image's health check asks the server's port, which a worker never opens.
    expect(worker.healthcheck).toEqual({ disable: true });
  });

  it("fits the most server replicas the proxy balances over, and a worker, within Postgres's connections", () => {
    // With a developer's .env asking for more processes: a container still runs one.
    const connectionsOf = (service: string) => {
      const env = composeEnvironment(service, { WORKERS: '4' });
      expect(env.WORKERS, service).toBe('1');
      const result = loadConfig(env);
      if (!result.ok) throw new Error(result.problems.join('; '));
      return result.config.database.poolMax + result.config.jobs.poolMax;
    };
    const replicas = Number(/^\s*server-template server- (\d+) /m.exec(haproxyConfig)?.[1]);
    const command: string[] = compose.services.postgres.command;
    const maxConnections = Number(command[command.indexOf('-c') + 1]?.replace('max_connections=', ''));
    expect(replicas).toBe(10);
    // Postgres keeps 3 for superusers; a migration or a psql session needs one more.
    expect(replicas * connectionsOf('server') + connectionsOf('worker') + 1).toBeLessThanOrEqual(maxConnections - 3);
    const header = readFileSync(path.join(repoRoot, 'docker-compose.yml'), 'utf8');
    expect(header).toContain(`(up to ${replicas};`);
    expect(header).toContain(
      `hold ${replicas * connectionsOf('server') + connectionsOf('worker')} of the ${maxConnections} Postgres is given`,
    );
  });

  it('gives a stopping server and worker longer than their shutdown takes before Docker kills them', () => {
    const shutdownMs = Number(composeEnvironment('server').SHUTDOWN_TIMEOUT_MS ?? 10_000);
    const drainMs = Number(
      /^const DRAIN_MS = ([\d_]+);/m
        .exec(readFileSync(path.join(repoRoot, 'apps/server/src/server.ts'), 'utf8'))?.[1]
        ?.replaceAll('_', ''),
    );
    for (const service of ['server', 'worker']) {
      const grace = /^(\d+)s$/.exec(String(compose.services[service].stop_grace_period ?? ''));
      expect(grace, `${service}'s stop_grace_period`).not.toBeNull();
      // The drain (before and after the stop of new connections), the requests or job, closing connections.
      expect(2 * drainMs + shutdownMs + 5_000, service).toBeLessThanOrEqual(Number(grace?.[1]) * 1000);
    }
  });

  it('keeps uploaded files in one volume that every replica and the worker mount, at the folder the image gives its user', () => {
    const { server, worker } = compose.services;
    const config = loadConfig(composeEnvironment('server'));
    if (!config.ok) throw new Error(config.problems.join('\n'));
    expect(config.config.files.driver).toBe('local');
    // FILES_DIR's default, in the image: the repository's root is its WORKDIR.
    const runtime = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '));
    const imageRoot = /^WORKDIR (\S+)$/m.exec(runtime)?.[1] as string;
    const filesDir = path.posix.join(imageRoot, path.relative(repoRoot, config.config.files.dir));
    expect(filesDir).toBe('/app/.data/files');
    const mount = `files:${filesDir}`;
    expect(server.volumes).toContain(mount);
    expect(worker.volumes).toContain(mount);
    expect(compose.volumes).toHaveProperty('files');
    const user = /^USER (\w+)$/m.exec(runtime)?.[1];
    expect(runtime).toMatch(new RegExp(`mkdir -p [^\\n]*${filesDir}`));
    expect(runtime).toMatch(new RegExp(`chown ${user}:${user} [^\\n]*${filesDir}`));
  });

  it('delivers every email to Mailpit unless told otherwise, so JWT_SECRET is the one secret to supply', () => {
    const { mailpit, server } = compose.services;
    expect(mailpit.image).toMatch(/^axllent\/mailpit:/);
    expect(mailpit.healthcheck.test.join(' ')).toMatch(/readyz/);
    // The UI shows every reset link and sign-in code: this machine only.
    expect(mailpit.ports).toEqual(['127.0.0.1:8025:8025', '127.0.0.1:1025:1025']);
    expect(server.environment.MAIL_TRANSPORT).toMatch(/^\$\{MAIL_TRANSPORT:-smtp\}$/);
    expect(server.environment.SMTP_URL).toMatch(/^\$\{COMPOSE_SMTP_URL:-smtp:\/\/mailpit:1025\}$/);
    const required = Object.entries(server.environment as Record<string, string>)
      .filter(([, value]) => /\$\{\w+:\?/.test(String(value)))
      .map(([name]) => name);
    expect(required).toEqual(['JWT_SECRET']);
  });

  it("shares .env with `pnpm dev` without taking its addresses: mail, links, origins and proxies stay compose's", () => {
    // A developer's .env: Mailpit on this machine, the web app's dev server, no proxy, port 4000.
    const dotenv = {
      JWT_SECRET: randomBytes(36).toString('base64'),
      PORT: '4000',
      HOST: '127.0.0.1',
      SMTP_URL: 'smtp://localhost:1025',
      APP_URL: 'http://localhost:5173',
      PUBLIC_URL: 'http://localhost:4000',
      CORS_ORIGINS: 'http://localhost:5173',
      TRUST_PROXY: 'false',
    };
    const result = loadConfig(composeEnvironment('server', dotenv));
    if (!result.ok) throw new Error(result.problems.join('\n'));
    const { config } = result;
    expect(config.email.delivery).toMatchObject({ transport: 'smtp', server: { host: 'mailpit', port: 1025 } });
    // The proxy publishes PORT (the test below): profile pictures, email links and the page's origin are there.
    expect(config.publicUrl).toBe('http://localhost:4000');
    expect(config.appUrl).toBe('http://localhost:4000');
    expect(config.corsOrigins).toEqual(['http://localhost:4000']);
    expect(config.trustProxy).toBe(1);
    expect(config.host).toBe('0.0.0.0');
    expect(config.port).toBe(3000);

    // On a domain, through the COMPOSE_* variables.
    const deployed = loadConfig(
      composeEnvironment('server', {
        ...dotenv,
        COMPOSE_SMTP_URL: 'smtp://user:secret@smtp.example.com:587',
        COMPOSE_PUBLIC_URL: 'https://api.example.com',
        COMPOSE_APP_URL: 'https://app.example.com',
        COMPOSE_CORS_ORIGINS: 'https://app.example.com',
        COMPOSE_TRUST_PROXY: '2',
      }),
    );
    if (!deployed.ok) throw new Error(deployed.problems.join('\n'));
    expect(deployed.config).toMatchObject({
      publicUrl: 'https://api.example.com',
      appUrl: 'https://app.example.com',
      corsOrigins: ['https://app.example.com'],
      trustProxy: 2,
      email: { delivery: { server: { host: 'smtp.example.com' } } },
    });
  });

  it('runs server replicas behind the proxy: no fixed host port on the server, one on the proxy', () => {
    const { proxy, server } = compose.services;
    // `docker compose up --scale server=3` cannot give three containers one host port.
    expect(server.ports).toBeUndefined();
    expect(server.container_name).toBeUndefined();
    expect(server.expose).toEqual([server.environment.PORT]);
    expect(proxy.image).toMatch(/^haproxy:3\.\d+-alpine$/);
    expect(proxy.ports).toEqual([`\${PORT:-3000}:${/^\s*bind :(\d+)$/m.exec(haproxyConfig)?.[1]}`]);
    expect(proxy.volumes).toEqual(['./deploy/compose/haproxy.cfg:/usr/local/etc/haproxy/haproxy.cfg:ro']);
    expect(proxy.depends_on).toEqual({ server: { condition: 'service_healthy' } });
    const published = Object.entries(compose.services as Record<string, { ports?: string[] }>)
      .filter(([, service]) => service.ports)
      .map(([name]) => name);
    expect(published.sort()).toEqual(['mailpit', 'proxy']);
  });

  it("has the proxy find the replicas through Docker's DNS and health-check them on the readiness route", () => {
    const { server } = compose.services;
    expect(haproxyConfig).toMatch(/^resolvers docker\n\s+nameserver \w+ 127\.0\.0\.11:53$/m);
    const templates = [...haproxyConfig.matchAll(/^\s*server-template \S+ (\d+) (\w+):(\d+) check$/gm)];
    expect(templates.length).toBeGreaterThan(0);
    for (const [, slots, host, port] of templates) {
      expect(Number(slots)).toBeGreaterThanOrEqual(3);
      expect(Object.keys(compose.services)).toContain(host);
      expect(host).toBe('server');
      expect(port).toBe(server.environment.PORT);
    }
    expect(haproxyConfig).toMatch(/^\s*default-server .*\bresolvers docker\b.*\binit-addr none\b/m);
    // The ready replicas get the traffic; the merely live ones only when none is ready.
    const [ready, live] = [healthRoute('ready'), healthRoute('live')];
    expect([ready, live]).toEqual(['/api/health/ready', '/api/health']);
    const checks = [...haproxyConfig.matchAll(/^\s*http-check send meth GET uri (\S+)/gm)].map((match) => match[1]);
    expect(checks).toEqual([ready, live]);
    expect(haproxyConfig).toMatch(/^\s*default_backend ready_servers$/m);
    expect(haproxyConfig).toMatch(/^\s*use_backend live_servers if \{ nbsrv\(ready_servers\) eq 0 \}$/m);
  });

  it('has the proxy retry what could not reach a replica, re-send only safe methods, and append X-Forwarded-For', () => {
    expect(haproxyConfig).toMatch(/^\s*retries [1-9]$/m);
    expect(haproxyConfig).toMatch(/^\s*option redispatch\b/m);
    expect(haproxyConfig).toMatch(/^\s*retry-on conn-failure empty-response response-timeout$/m);
    expect(haproxyConfig).toMatch(/^\s*http-request disable-l7-retry unless METH_GET \|\| METH_OPTIONS$/m);
    expect(haproxyConfig).toMatch(/^\s*option forwardfor$/m);
    // One proxy appends the client's address: the servers believe that last entry only.
    const result = loadConfig(composeEnvironment('server'));
    expect(result.ok && result.config.trustProxy).toBe(1);
  });

  it('sets only variables that .env.example documents', () => {
    for (const service of ['server', 'migrate']) {
      for (const name of Object.keys(compose.services[service].environment)) {
        expect(envExample, `${service}: ${name}`).toMatch(new RegExp(`^#?\\s*${name}=`, 'm'));
      }
    }
  });
});

describe('deploy/kubernetes configuration', () => {
  interface PodContainer {
    envFrom?: { configMapRef?: { name: string } }[];
    env?: { name: string; value?: string; valueFrom?: { secretKeyRef?: { key: string; optional?: boolean } } }[];
  }
  interface Manifest {
    data?: Record<string, string>;
    stringData?: Record<string, string>;
    spec?: { template: { spec: { containers: PodContainer[] } } };
  }
  const manifest = (file: string): Manifest =>
    parse(readFileSync(path.join(repoRoot, 'deploy/kubernetes', file), 'utf8'));
  const configMap = manifest('configmap.yaml').data ?? {};
  const placeholders = manifest('secret.yaml').stringData ?? {};

  /** What a Deployment's container gets: its ConfigMaps, then its own env, Secret keys read from `secrets`. */
  function podEnvironment(file: string, secrets: Record<string, string>): Record<string, string> {
    const container = manifest(file).spec?.template.spec.containers[0];
    expect(container, file).toBeDefined();
    const env: Record<string, string> = {};
    for (const source of container?.envFrom ?? []) {
      expect(source.configMapRef?.name).toBe('app-config');
      Object.assign(env, configMap);
    }
    for (const { name, value, valueFrom } of container?.env ?? []) {
      const key = valueFrom?.secretKeyRef?.key;
      if (key === undefined) env[name] = value ?? '';
      else if (secrets[key] !== undefined) env[name] = secrets[key];
      else expect(valueFrom?.secretKeyRef?.optional, `${file}: ${name}`).toBe(true);
    }
    return env;
  }

  const replaced = {
    ...Object.fromEntries(
      Object.entries(placeholders).map(([key, value]) => [key, value.replaceAll('REPLACE-ME', 'x')]),
    ),
    JWT_SECRET: randomBytes(36).toString('base64'),
  };

  it('passes production validation for the servers and the workers once the placeholders are replaced', () => {
    for (const file of ['server-deployment.yaml', 'worker-deployment.yaml']) {
      // The ConfigMap's own placeholders (the bucket, the domain) replaced too.
      const env = Object.fromEntries(
        Object.entries(podEnvironment(file, replaced)).map(([name, value]) => [
          name,
          value.replaceAll(/replace-with-[\w-]*/g, 'the-real-one'),
        ]),
      );
      const result = loadConfig(env);
      expect(result.ok ? [] : result.problems, file).toEqual([]);
      if (!result.ok) continue;
      expect(result.config.trustProxy, file).toBe(1);
      expect(result.config.migrateOnStart, file).toBe(false);
      expect(result.config.workers, file).toBe(1);
      expect(result.config.jobs.embeddedWorker, file).toBe(file === 'worker-deployment.yaml');
    }
  });

  it('refuses to start with any placeholder left, so a forgotten one never goes live', () => {
    const result = loadConfig(podEnvironment('server-deployment.yaml', placeholders));
    const problems = result.ok ? [] : result.problems;
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^JWT_SECRET: looks guessable/),
        // Before: the example.com origin and sender started, and emailed links to example.com.
        ...[
          'DATABASE_URL',
          'REDIS_URL',
          'JWT_SECRET',
          'SMTP_URL',
          'S3_BUCKET',
          'PUBLIC_URL',
          'APP_URL',
          'CORS_ORIGINS',
          'EMAIL_FROM',
        ].map((name) => expect.stringMatching(new RegExp(`^${name}: still holds a placeholder`))),
      ]),
    );
    for (const problem of problems) expect(problem).toMatch(/^JWT_SECRET: looks guessable|: still holds a placeholder/);
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
    expect(runtime).toMatch(/CMD \["node", "apps\/server\/src\/main\.js"\]/);
    expect(runtime).toMatch(/HEALTHCHECK/);
  });

  it('checks its health on the port the server listens on (PORT), not on 3000 alone', async () => {
    const command = JSON.parse(/HEALTHCHECK[^\n]*\n\s*CMD (\[.*\])/.exec(runtime)?.[1] ?? '[]') as string[];
    expect(command.slice(0, 2)).toEqual(['node', '-e']);
    const server = http.createServer((request, response) => {
      response.statusCode = request.url === '/api/health' ? 200 : 404;
      response.end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const check = (env: Record<string, string>) =>
      new Promise<number | null>((resolve) =>
        execFile(process.execPath, ['-e', command[2] as string], { env: { PATH: process.env.PATH, ...env } }, (error) =>
          resolve(error ? (error.code as number) : 0),
        ),
      );
    try {
      expect(await check({ PORT: String(port) })).toBe(0);
      server.close();
      expect(await check({ PORT: String(port) })).toBe(1);
    } finally {
      server.close();
    }
  });

  it('builds the web app in a stage of its own and serves its static files from the server (WEB_DIR)', () => {
    const web = dockerfile.slice(dockerfile.indexOf(' AS web'), dockerfile.lastIndexOf('\nFROM '));
    expect(web).toMatch(/pnpm --filter @app\/web exec vite build/);
    expect(runtime).toMatch(/^COPY --from=web \/app\/apps\/web\/dist apps\/web\/dist$/m);
    expect(runtime).toMatch(/WEB_DIR=apps\/web\/dist/);
    // Development tools stay in the build stage: the runtime copies production dependencies only.
    expect(runtime).not.toMatch(/COPY --from=web \/app\/node_modules/);
  });

  it("fills Node's compile cache as the runtime user, once every source is in place", () => {
    const cacheDir = /NODE_COMPILE_CACHE=(\S+)/.exec(runtime)?.[1];
    const user = /^USER (\w+)$/m.exec(runtime)?.[1];
    expect(cacheDir).toBeDefined();
    expect(runtime).toContain(`chown ${user}:${user} ${cacheDir}`);
    const warm = runtime.indexOf('\nRUN node apps/server/scripts/warm-compile-cache.ts\n');
    expect(warm).toBeGreaterThan(runtime.indexOf(`\nUSER ${user}\n`));
    expect(warm).toBeGreaterThan(runtime.lastIndexOf('\nCOPY '));
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
