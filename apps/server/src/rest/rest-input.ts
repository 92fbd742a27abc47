/**
 * Turns a REST request into a procedure's input without touching its schema: the JSON body
 * or the query string, with path parameters on top. Query strings carry only text, so a
 * field the schema declares as a number or boolean is converted from its exact spelling
 * ("42", "true"/"false"); anything else is left for validation to refuse. (trpc-to-openapi
 * instead switched the schemas themselves to `z.coerce`, for tRPC callers too, where
 * `Boolean("false")` is true.)
 */
import type { AnyTRPCProcedure } from '@trpc/server';
import type { FastifyRequest } from 'fastify';
import { isRecord, schemaDef, takesNoInput } from '../trpc/procedure-input.ts';

/**
 * Methods whose input is the JSON body (plus path parameters). DELETE is one: what it
 * needs beyond the path (a password confirming an account deletion) must not travel in
 * a URL, which proxies log. GET alone reads the query string.
 */
export const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

const NUMBER = /^-?(\d+(\.\d*)?|\.\d+)(e[+-]?\d+)?$/i;

function convert(value: unknown, fieldType: string | undefined): unknown {
  if (typeof value !== 'string') return value;
  if (fieldType === 'number' && NUMBER.test(value)) return Number(value);
  if (fieldType === 'boolean' && (value === 'true' || value === 'false')) return value === 'true';
  return value;
}

/** Converts query-string values the schema declares as numbers, booleans or arrays of them. */
export function queryInput(query: Record<string, unknown>, schema: unknown): Record<string, unknown> {
  const shape = schemaDef(schema)?.shape ?? {};
  const input: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(query)) {
    const field = schemaDef(shape[key]);
    if (field?.type === 'array') {
      const element = schemaDef(field.element)?.type;
      input[key] = (Array.isArray(value) ? value : [value]).map((item) => convert(item, element));
    } else {
      input[key] = convert(value, field?.type);
    }
  }
  return input;
}

/** The procedure's input from a REST request. */
export function restInput(request: FastifyRequest, procedure: AnyTRPCProcedure): unknown {
  const inputs = procedure._def.inputs as unknown[];
  if (takesNoInput(inputs)) return undefined;
  const params = request.params as Record<string, string>;
  if (BODY_METHODS.has(request.method)) {
    // A body-less POST (curl -X POST) reads as {}; a JSON null is refused, as over tRPC.
    const body = request.body === undefined ? {} : request.body;
    return isRecord(body) ? { ...body, ...params } : body;
  }
  return { ...queryInput(request.query as Record<string, unknown>, inputs[0]), ...params };
}
