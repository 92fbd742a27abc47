import { createRequire } from 'node:module';
import type { FastifyServerOptions } from 'fastify';

type CompilersFactory = NonNullable<NonNullable<FastifyServerOptions['schemaController']>['compilersFactory']>;
type ValidatorFactory = NonNullable<CompilersFactory['buildValidator']>;
type SerializerFactory = NonNullable<CompilersFactory['buildSerializer']>;

type Factory = (...args: unknown[]) => unknown;

/**
 * A factory that loads Fastify's own (`module` exports a function making it) on its first
 * call, resolved from Fastify's folder: it is Fastify's dependency, not the app's.
 */
function loadedOnFirstUse(module: string): Factory {
  let factory: Factory | undefined;
  return (...args) => {
    if (!factory) {
      const fastifyRequire = createRequire(createRequire(import.meta.url).resolve('fastify'));
      factory = (fastifyRequire(module) as () => Factory)();
    }
    return factory(...args);
  };
}

/**
 * Fastify's JSON Schema compilers (ajv for route schemas, fast-json-stringify for response
 * schemas: ~100 modules, a tenth of start-up), loaded when a route first declares a Fastify
 * schema instead of whenever Fastify starts. None of the app's routes does: procedures
 * check their inputs and outputs with zod, and plain routes read theirs by hand. They are
 * Fastify's defaults, made the same way, so such a route works as it would without this, but
 * for one thing: Fastify lower-cases the property names of a `headers` schema only for its
 * own compiler, so write them lower-case.
 */
export const lazySchemaCompilers: CompilersFactory = {
  buildValidator: loadedOnFirstUse('@fastify/ajv-compiler') as ValidatorFactory,
  buildSerializer: loadedOnFirstUse('@fastify/fast-json-stringify-compiler') as SerializerFactory,
};
