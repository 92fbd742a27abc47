/**
 * deploy/kubernetes, checked without a cluster: every object against the Kubernetes schema
 * of its apiVersion and kind, then against the app (health routes, port, configuration,
 * shutdown timing, image and commands shared with docker-compose.yml) and against each other
 * (selectors, references, the Postgres connection budget). The server's code is read as
 * text, never imported: this package stands apart from it.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import type { IContainer } from 'kubernetes-models/v1/Container';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import {
  all,
  find,
  loadManifests,
  manifestsDir,
  onlyContainer,
  podTemplate,
  readRepoFile,
  schemaErrors,
  selects,
} from './manifests.ts';

const manifests = loadManifests();
const kustomization = parse(readRepoFile('deploy/kubernetes/kustomization.yaml'));
const compose = parse(readRepoFile('docker-compose.yml'), { merge: true });
const envExample = readRepoFile('.env.example');

const config = find(manifests, 'ConfigMap', 'app-config').data ?? {};
const secret = find(manifests, 'Secret', 'app-secrets');
const server = find(manifests, 'Deployment', 'app-server');
const worker = find(manifests, 'Deployment', 'app-worker');
const migrate = find(manifests, 'Job', 'app-migrate');
const service = find(manifests, 'Service', 'app-server');
const hpa = find(manifests, 'HorizontalPodAutoscaler', 'app-server');
const pdb = find(manifests, 'PodDisruptionBudget', 'app-server');
const workloads = [server, worker, migrate];

/** A copy to break, so the unhappy paths never touch the real objects. */
const copy = <T>(value: T): T => structuredClone(value);

/** A container's environment as the app sees it: the ConfigMaps it loads, then its own `env`. */
function environment(container: IContainer): Map<string, { value?: string; secretKey?: string; optional?: boolean }> {
  const env = new Map<string, { value?: string; secretKey?: string; optional?: boolean }>();
  for (const source of container.envFrom ?? []) {
    expect(source.secretRef, 'secrets are named one by one (env), never loaded whole').toBeUndefined();
    const name = source.configMapRef?.name;
    expect(name, 'envFrom names a ConfigMap').toBeDefined();
    for (const [key, value] of Object.entries(find(manifests, 'ConfigMap', name!).data ?? {})) env.set(key, { value });
  }
  for (const variable of container.env ?? []) {
    const ref = variable.valueFrom?.secretKeyRef;
    if (ref) {
      expect(ref.name).toBe(secret.metadata?.name);
      env.set(variable.name, { secretKey: ref.key, optional: ref.optional ?? false });
    } else {
      expect(variable.valueFrom, `${variable.name}: a value or a Secret key`).toBeUndefined();
      env.set(variable.name, { value: variable.value ?? '' });
    }
  }
  return env;
}

/** A number the ConfigMap sets. */
const configNumber = (name: string): number => {
  const value = Number(config[name]);
  expect(Number.isFinite(value), `${name} in the ConfigMap`).toBe(true);
  return value;
};

describe('the Kubernetes schemas (kubernetes-models)', () => {
  it('kustomization.yaml lists every manifest file, and the namespace it sets exists', () => {
    const files = readdirSync(manifestsDir)
      .filter((file) => file.endsWith('.yaml') && file !== 'kustomization.yaml')
      .sort();
    expect([...kustomization.resources].sort()).toEqual(files);
    expect(all(manifests, 'Namespace').map((namespace) => namespace.metadata?.name)).toEqual([kustomization.namespace]);
    // kustomize sets the namespace: one written in a manifest would fight it.
    for (const { file, object } of manifests) {
      expect((object.metadata as { namespace?: string }).namespace, file).toBeUndefined();
    }
  });

  it.each(
    manifests.map(({ file, object }) => [file, `${String(object.kind)} ${String(object.metadata?.name)}`, object]),
  )('%s: %s is valid', (_file, _name, object) => {
    expect(schemaErrors(object)).toEqual([]);
  });

  it('refuses a Deployment whose replicas is not a number, and a probe without its port', () => {
    const broken = copy(server);
    (broken.spec as { replicas: unknown }).replicas = 'three';
    delete (onlyContainer(broken).readinessProbe!.httpGet! as { port?: unknown }).port;
    expect(schemaErrors(broken)).toEqual([
      '/spec/replicas must be integer',
      '/spec/template/spec/containers/0/readinessProbe/httpGet must have required property port',
    ]);
  });

  it('refuses a container without an image name, a Service port out of range and an unknown kind', () => {
    const job = copy(migrate);
    delete (onlyContainer(job) as { name?: string }).name;
    expect(schemaErrors(job)).toEqual(['/spec/template/spec/containers/0 must have required property name']);

    const badService = copy(service);
    (badService.spec!.ports![0] as { port: unknown }).port = 'eighty';
    expect(schemaErrors(badService)).toEqual(['/spec/ports/0/port must be integer']);

    expect(schemaErrors({ apiVersion: 'apps/v1', kind: 'Deploymnet', metadata: { name: 'x' } })).toEqual([
      'no schema for apiVersion apps/v1, kind Deploymnet',
    ]);
  });
});

describe('the manifests against the app', () => {
  /** GET routes of the health procedures, as docs/api.md (the contract) and the router state them. */
  const healthRoutes = (() => {
    const router = readRepoFile('apps/server/src/modules/health/health.router.ts');
    const api = readRepoFile('docs/api.md');
    const routes: Record<string, string> = {};
    for (const [, procedure, method, path] of router.matchAll(
      /^ {2}(\w+): \w+\s*\.meta\(\{\s*openapi: \{\s*method: '(\w+)',\s*path: '([^']+)'/gm,
    )) {
      const rest = `/api${path}`;
      expect(method).toBe('GET');
      expect(api, `docs/api.md documents health.${procedure}`).toMatch(
        new RegExp(`\\| health\\.${procedure} +\\| GET ${rest.replaceAll('/', '\\/')} +\\|`),
      );
      routes[procedure as string] = rest;
    }
    return routes;
  })();

  it('probes the real health route, health.live, never the shared dependencies (an outage would empty the Service)', () => {
    expect(healthRoutes).toEqual({ live: '/api/health', ready: '/api/health/ready' });
    const container = onlyContainer(server);
    expect(container.livenessProbe?.httpGet?.path).toBe(healthRoutes.live);
    expect(container.startupProbe?.httpGet?.path).toBe(healthRoutes.live);
    expect(container.readinessProbe?.httpGet?.path).toBe(healthRoutes.live);
    for (const workload of [worker, migrate]) {
      const other = onlyContainer(workload);
      expect([other.livenessProbe?.httpGet, other.ports], 'no HTTP in it').toEqual([undefined, undefined]);
    }
    expect(onlyContainer(migrate).livenessProbe).toBeUndefined();
    expect(onlyContainer(migrate).readinessProbe).toBeUndefined();
  });

  it('rolls workers over only once the new one takes jobs: its ready file (JOBS_READY_FILE)', () => {
    const readyFile = environment(onlyContainer(worker)).get('JOBS_READY_FILE')?.value;
    // The one writable folder (readOnlyRootFilesystem), which the worker's pod mounts.
    expect(readyFile).toMatch(/^\/tmp\/[\w-]+$/);
    expect(onlyContainer(worker).volumeMounts?.map((mount) => mount.mountPath)).toContain('/tmp');
    expect(onlyContainer(worker).readinessProbe?.exec?.command).toEqual(['test', '-f', readyFile]);
    expect(onlyContainer(worker).startupProbe?.exec?.command).toEqual(['test', '-f', readyFile]);
    expect(worker.spec?.strategy?.rollingUpdate?.maxUnavailable).toBe(0);
    expect(environment(onlyContainer(server)).get('JOBS_READY_FILE')).toBeUndefined();
  });

  it('restarts a worker whose ready file the worker stopped renewing (stuck), asked only once it started', () => {
    const container = onlyContainer(worker);
    const readyFile = environment(container).get('JOBS_READY_FILE')?.value as string;
    const heartbeatMs = Number(
      /^const READY_FILE_HEARTBEAT_MS = ([\d_]+);/m
        .exec(readRepoFile('apps/server/src/worker.ts'))?.[1]
        ?.replaceAll('_', ''),
    );
    const command = container.livenessProbe?.exec?.command ?? [];
    expect(command.slice(0, 2)).toEqual(['sh', '-c']);
    const script = command[2] ?? '';
    expect(script).toContain(readyFile);
    const maxAgeSeconds = Number(/-lt (\d+)$/.exec(script)?.[1]);
    // Renewed several times within the age the probe allows: a slow turn is not a stuck worker.
    expect(maxAgeSeconds * 1000).toBeGreaterThanOrEqual(6 * heartbeatMs);
    // The probe's own command, run here on a file as old as it allows and on a fresh one.
    const folder = mkdtempSync(path.join(tmpdir(), 'liveness-'));
    const file = path.join(folder, 'ready');
    const run = (age: number) => {
      writeFileSync(file, '1\n');
      const when = new Date(Date.now() - age * 1000);
      utimesSync(file, when, when);
      return spawnSync('sh', ['-c', script.replaceAll(readyFile, file)]).status;
    };
    try {
      expect(run(0)).toBe(0);
      expect(run(maxAgeSeconds + 5)).not.toBe(0);
      rmSync(file);
      expect(spawnSync('sh', ['-c', script.replaceAll(readyFile, file)]).status).not.toBe(0);
    } finally {
      rmSync(folder, { recursive: true, force: true });
    }
  });

  it('listens where the probes and the Service look: the configured PORT, by name', () => {
    const container = onlyContainer(server);
    expect(container.ports).toEqual([{ name: 'http', containerPort: configNumber('PORT') }]);
    expect(config.HOST).toBe('0.0.0.0');
    for (const probe of [container.livenessProbe, container.readinessProbe, container.startupProbe]) {
      expect(probe?.httpGet?.port).toBe('http');
    }
    expect(service.spec?.ports?.map((port) => port.targetPort)).toEqual(['http']);
  });

  it('sets only variables that .env.example documents, and every Secret key it reads exists', () => {
    const secretKeys = Object.keys(secret.stringData ?? {});
    for (const workload of workloads) {
      for (const [name, source] of environment(onlyContainer(workload))) {
        expect(envExample, `${workload.metadata?.name}: ${name}`).toMatch(new RegExp(`^#?\\s*${name}=`, 'm'));
        if (source.secretKey && !source.optional) expect(secretKeys, name).toContain(source.secretKey);
      }
    }
    for (const name of Object.keys(config)) {
      expect(envExample, `ConfigMap: ${name}`).toMatch(new RegExp(`^#?\\s*${name}=`, 'm'));
    }
  });

  it('ships placeholders, never secrets: every Secret value says REPLACE-ME', () => {
    expect(secret.data).toBeUndefined();
    for (const [key, value] of Object.entries(secret.stringData ?? {})) expect(value, key).toMatch(/REPLACE-ME/);
    expect(Object.keys(secret.stringData ?? {}).sort()).toEqual([
      'DATABASE_URL',
      'JWT_SECRET',
      'MIGRATIONS_DATABASE_URL',
      'REDIS_URL',
      'SMTP_URL',
    ]);
  });

  it('runs the servers without jobs (JOBS_WORKER=off) and the workers as `pnpm worker` does', () => {
    const serverEnv = environment(onlyContainer(server));
    const workerEnv = environment(onlyContainer(worker));
    expect(serverEnv.get('JOBS_WORKER')).toEqual({ value: 'off' });
    // worker.ts runs jobs whatever JOBS_WORKER says; "embedded" or unset, never "off".
    expect(workerEnv.get('JOBS_WORKER')?.value ?? 'embedded').toBe('embedded');
    expect(onlyContainer(worker).command).toEqual(compose.services.worker.command);
    expect(onlyContainer(worker).command).toEqual(['node', 'apps/server/src/worker.ts']);
    expect(onlyContainer(server).command).toEqual(
      JSON.parse(/^CMD (\[.*\])$/m.exec(readRepoFile('Dockerfile').split('\nFROM ').at(-1) ?? '')![1]!),
    );
    // Same configuration otherwise: the worker validates it as the server does.
    const shared = (env: typeof serverEnv) =>
      [...env].filter(([name]) => !['JOBS_WORKER', 'JOBS_POOL_MAX', 'JOBS_READY_FILE'].includes(name)).sort();
    expect(shared(workerEnv)).toEqual(shared(serverEnv));
    expect(serverEnv.get('NODE_ENV')).toEqual({ value: 'production' });
  });

  it('migrates in a Job, with the image of the Deployments and docker-compose, straight to Postgres', () => {
    const image = onlyContainer(server).image;
    for (const workload of workloads) expect(onlyContainer(workload).image, workload.metadata?.name).toBe(image);
    expect(image).toBe(compose.services.server.image);
    expect(kustomization.images.map((entry: { name: string }) => entry.name)).toEqual([image?.split(':')[0]]);

    const container = onlyContainer(migrate);
    expect(container.command).toEqual(compose.services.migrate.command);
    expect(container.command).toEqual(['node', 'packages/db/src/cli.ts', 'migrate']);
    const env = environment(container);
    // Not DATABASE_URL's key: that one may lead to a transaction pooler.
    expect(env.get('DATABASE_URL')).toEqual({ secretKey: 'MIGRATIONS_DATABASE_URL', optional: false });
    expect(environment(onlyContainer(server)).get('DATABASE_URL')?.secretKey).toBe('DATABASE_URL');
    expect(env.get('NODE_ENV')).toEqual({ value: 'production' });
    expect(podTemplate(migrate).spec?.restartPolicy).toBe('Never');
    expect(migrate.spec?.backoffLimit).toBeGreaterThan(0);
    expect(config.MIGRATE_ON_START).toBe('false');
  });

  it('gives a stopping server time to drain: preStop pause + drain + SHUTDOWN_TIMEOUT_MS < the grace period', () => {
    const main = readRepoFile('apps/server/src/server.ts');
    const drainMs = Number(/^const DRAIN_MS = ([\d_]+);/m.exec(main)?.[1]?.replaceAll('_', ''));
    expect(drainMs, 'DRAIN_MS in apps/server/src/server.ts').toBeGreaterThan(0);
    const shutdownMs = configNumber('SHUTDOWN_TIMEOUT_MS');
    const preStop = onlyContainer(server).lifecycle?.preStop?.exec?.command;
    expect(preStop?.[0]).toBe('sleep');
    const preStopMs = Number(preStop?.[1]) * 1000;
    // Closing the pool and Redis after the requests: a few seconds more.
    const margin = 5_000;
    const graceMs = (podTemplate(server).spec?.terminationGracePeriodSeconds ?? 30) * 1000;
    expect(preStopMs + 2 * Math.min(drainMs, shutdownMs / 2) + shutdownMs + margin).toBeLessThanOrEqual(graceMs);
    // A worker lets its job finish for SHUTDOWN_TIMEOUT_MS.
    expect(shutdownMs + margin).toBeLessThanOrEqual(
      (podTemplate(worker).spec?.terminationGracePeriodSeconds ?? 30) * 1000,
    );
    expect(server.spec?.strategy?.rollingUpdate?.maxUnavailable).toBe(0);
  });

  it('runs every pod as non-root on a read-only root file system, with requests and limits', () => {
    for (const workload of workloads) {
      const name = workload.metadata?.name;
      const pod = podTemplate(workload).spec!;
      expect(pod.automountServiceAccountToken, name).toBe(false);
      expect(pod.securityContext?.runAsNonRoot, name).toBe(true);
      // The image's user is `node` (uid 1000): a name cannot prove non-root to the kubelet.
      expect(pod.securityContext?.runAsUser, name).toBe(1000);
      expect(pod.securityContext?.seccompProfile?.type, name).toBe('RuntimeDefault');
      const container = onlyContainer(workload);
      expect(container.securityContext, name).toEqual({
        allowPrivilegeEscalation: false,
        readOnlyRootFilesystem: true,
        capabilities: { drop: ['ALL'] },
      });
      for (const kind of ['requests', 'limits'] as const) {
        expect(Object.keys(container.resources?.[kind] ?? {}).sort(), `${name} ${kind}`).toEqual(['cpu', 'memory']);
      }
    }
    expect(readRepoFile('Dockerfile').split('\nFROM ').at(-1)).toMatch(/^USER node$/m);
  });
});

describe('the manifests against each other', () => {
  const labelsOf = (deployment: IDeployment) => podTemplate(deployment).metadata?.labels;

  it('each Deployment selects its own pods, and only its own', () => {
    for (const deployment of [server, worker]) {
      expect(selects(deployment.spec?.selector.matchLabels, labelsOf(deployment))).toBe(true);
    }
    expect(selects(server.spec?.selector.matchLabels, labelsOf(worker))).toBe(false);
    expect(selects(worker.spec?.selector.matchLabels, labelsOf(server))).toBe(false);
  });

  it('the Service and the PodDisruptionBudget select the servers, never the workers', () => {
    for (const selector of [service.spec?.selector, pdb.spec?.selector?.matchLabels]) {
      expect(selects(selector, labelsOf(server))).toBe(true);
      expect(selects(selector, labelsOf(worker))).toBe(false);
      expect(selects(selector, podTemplate(migrate).metadata?.labels)).toBe(false);
    }
  });

  it('the autoscaler drives the server Deployment, which leaves its replica count to it', () => {
    expect(hpa.spec?.scaleTargetRef).toEqual({ apiVersion: 'apps/v1', kind: 'Deployment', name: 'app-server' });
    expect(server.spec?.replicas).toBeUndefined();
    expect(hpa.spec?.metrics?.map((metric) => metric.resource?.name)).toEqual(['cpu']);
    // Utilization is a share of the request: the CPU request must be set (checked above).
    // The budget leaves a server standing through a voluntary disruption.
    expect(hpa.spec?.minReplicas).toBeGreaterThan(Number(pdb.spec?.minAvailable));
  });

  /**
   * Pods of a Deployment holding Postgres connections at once during a rollout: its replicas,
   * `maxSurge` new ones, and (with more than one replica) the old pods still terminating,
   * which Kubernetes counts against nothing: as many as became available together, `maxSurge`,
   * when `minReadySeconds` is at least the grace period (each batch gone before the next
   * ends). A problem instead when the strategy leaves the count open.
   */
  function podsInRollout(deployment: IDeployment, replicas: number): number | string {
    const strategy = deployment.spec?.strategy;
    if (strategy?.type !== 'RollingUpdate') return 'not a RollingUpdate';
    const surge = strategy.rollingUpdate?.maxSurge;
    if (typeof surge !== 'number') return 'maxSurge is not a number of pods';
    if (strategy.rollingUpdate?.maxUnavailable !== 0) return 'maxUnavailable is not 0';
    if (replicas === 1) return replicas + surge; // the one old pod stops once its replacement is ready
    const grace = podTemplate(deployment).spec?.terminationGracePeriodSeconds ?? 30;
    if ((deployment.spec?.minReadySeconds ?? 0) < grace) return 'minReadySeconds is under the grace period';
    return replicas + 2 * surge;
  }

  it('keeps the Postgres connections within budget during a rollout at maxReplicas', () => {
    // Postgres's default max_connections (100) less its superuser_reserved_connections (3);
    // PgBouncer's default max_client_conn is 100 too.
    const budget = 97;
    const perPod = (deployment: IDeployment) => {
      const env = environment(onlyContainer(deployment));
      const number = (name: string) => Number(env.get(name)?.value);
      return number('WORKERS') * (number('DATABASE_POOL_MAX') + number('JOBS_POOL_MAX'));
    };
    const servers = podsInRollout(server, hpa.spec!.maxReplicas);
    const workers = podsInRollout(worker, worker.spec?.replicas ?? 1);
    expect([typeof servers, typeof workers]).toEqual(['number', 'number']);
    const total = Number(servers) * perPod(server) + Number(workers) * perPod(worker) + 1;
    expect(total).toBeGreaterThan(0);
    expect(total).toBeLessThanOrEqual(budget);
    // What the count rests on, broken one way at a time.
    const broken: ((deployment: IDeployment) => void)[] = [
      (d) => {
        delete d.spec?.minReadySeconds;
      },
      (d) => {
        const rolling = d.spec?.strategy?.rollingUpdate;
        if (rolling) rolling.maxSurge = '25%';
      },
      (d) => {
        const rolling = d.spec?.strategy?.rollingUpdate;
        if (rolling) rolling.maxUnavailable = 1;
      },
      (d) => {
        if (d.spec) d.spec.strategy = { type: 'Recreate' };
      },
    ];
    for (const breakIt of broken) {
      const changed = copy(server);
      breakIt(changed);
      expect(typeof podsInRollout(changed, hpa.spec!.maxReplicas)).toBe('string');
    }
  });
});
