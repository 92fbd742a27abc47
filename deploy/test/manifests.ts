/**
 * Loads deploy/kubernetes and validates objects against the Kubernetes OpenAPI schemas, as
 * compiled into kubernetes-models (one model class per apiVersion and kind, with `.validate()`).
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Deployment, type IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import {
  HorizontalPodAutoscaler,
  type IHorizontalPodAutoscaler,
} from 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler';
import { type IJob, Job } from 'kubernetes-models/batch/v1/Job';
import { type IPodDisruptionBudget, PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { ConfigMap, type IConfigMap } from 'kubernetes-models/v1/ConfigMap';
import type { IContainer } from 'kubernetes-models/v1/Container';
import { type INamespace, Namespace } from 'kubernetes-models/v1/Namespace';
import type { IPodTemplateSpec } from 'kubernetes-models/v1/PodTemplateSpec';
import { type ISecret, Secret } from 'kubernetes-models/v1/Secret';
import { type IService, Service } from 'kubernetes-models/v1/Service';
import { parseAllDocuments } from 'yaml';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const manifestsDir = path.join(repoRoot, 'deploy', 'kubernetes');

export function readRepoFile(relative: string): string {
  return readFileSync(path.join(repoRoot, relative), 'utf8');
}

/** The kinds these manifests may use; anything else is refused rather than waved through. */
const models = {
  'v1/Namespace': Namespace,
  'v1/ConfigMap': ConfigMap,
  'v1/Secret': Secret,
  'v1/Service': Service,
  'apps/v1/Deployment': Deployment,
  'batch/v1/Job': Job,
  'autoscaling/v2/HorizontalPodAutoscaler': HorizontalPodAutoscaler,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
} satisfies Record<string, new (data: never) => { validate(): void }>;

interface Kinds {
  Namespace: INamespace;
  ConfigMap: IConfigMap;
  Secret: ISecret;
  Service: IService;
  Deployment: IDeployment;
  Job: IJob;
  HorizontalPodAutoscaler: IHorizontalPodAutoscaler;
  PodDisruptionBudget: IPodDisruptionBudget;
}

export interface Manifest {
  file: string;
  object: { apiVersion?: unknown; kind?: unknown; metadata?: { name?: unknown } };
}

/** Every object of every manifest file (kustomization.yaml is kustomize's, not the cluster's). */
export function loadManifests(): Manifest[] {
  const files = readdirSync(manifestsDir)
    .filter((file) => file.endsWith('.yaml') && file !== 'kustomization.yaml')
    .sort();
  return files.flatMap((file) =>
    parseAllDocuments(readFileSync(path.join(manifestsDir, file), 'utf8')).map((document) => {
      if (document.errors.length > 0) throw new Error(`${file}: ${document.errors.join('; ')}`);
      return { file, object: document.toJS() as Manifest['object'] };
    }),
  );
}

/** The schema's complaints about one object (none: valid), e.g. "/spec/replicas must be integer". */
export function schemaErrors(object: unknown): string[] {
  const { apiVersion, kind } = (object ?? {}) as { apiVersion?: unknown; kind?: unknown };
  const Model = models[`${String(apiVersion)}/${String(kind)}` as keyof typeof models];
  if (!Model) return [`no schema for apiVersion ${String(apiVersion)}, kind ${String(kind)}`];
  try {
    new Model(object as never).validate();
    return [];
  } catch (error) {
    const details = (error as { errors?: { instancePath: string; message?: string }[] }).errors;
    if (!Array.isArray(details)) throw error;
    return details.map((detail) => `${detail.instancePath || '/'} ${detail.message ?? 'is invalid'}`);
  }
}

/** The one object of this kind and name, typed (call after the schema tests vouch for the shapes). */
export function find<K extends keyof Kinds>(manifests: Manifest[], kind: K, name: string): Kinds[K] {
  const found = manifests.filter(({ object }) => object.kind === kind && object.metadata?.name === name);
  if (found.length !== 1) throw new Error(`expected one ${kind} named ${name}, found ${found.length}`);
  return found[0]!.object as Kinds[K];
}

export function all<K extends keyof Kinds>(manifests: Manifest[], kind: K): Kinds[K][] {
  return manifests.filter(({ object }) => object.kind === kind).map(({ object }) => object as Kinds[K]);
}

/** The pod template of a Deployment or Job. */
export function podTemplate(workload: IDeployment | IJob): IPodTemplateSpec {
  if (!workload.spec?.template.spec) throw new Error(`${workload.metadata?.name}: no pod template`);
  return workload.spec.template;
}

/** The single container of a workload (each of ours runs one). */
export function onlyContainer(workload: IDeployment | IJob): IContainer {
  const containers = podTemplate(workload).spec?.containers ?? [];
  if (containers.length !== 1) throw new Error(`${workload.metadata?.name}: expected one container`);
  return containers[0]!;
}

/** Whether a label selector's matchLabels select pods with these labels. */
export function selects(matchLabels: Record<string, string> | undefined, labels: Record<string, string> | undefined) {
  const wanted = Object.entries(matchLabels ?? {});
  return wanted.length > 0 && wanted.every(([key, value]) => labels?.[key] === value);
}
