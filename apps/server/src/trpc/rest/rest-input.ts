/**
 * Turns a REST request into a procedure's input without touching its schema: the body
 * (POST/PUT/PATCH) or the query string (GET/DELETE), with path parameters on top. Query
 * strings carry only text, so a field the schema declares as a number or boolean is
 * converted from its exact spelling ("42", "true"/"false"); anything else is left for
 * validation to refuse. (trpc-to-openapi instead switched the schemas themselves to
 * `z.coerce`, for tRPC callers too, where `Boolean("false")` is true.)
 */

interface ZodLike {
  _zod?: { def?: ZodDef };
}
interface ZodDef {
  type?: string;
  innerType?: ZodLike;
  in?: ZodLike;
  shape?: Record<string, ZodLike>;
}

function unwrap(schema: ZodLike | undefined): ZodDef | undefined {
  let def = schema?._zod?.def;
  for (let depth = 0; def && depth < 10; depth++) {
    if (def.type === 'optional' || def.type === 'nullable' || def.type === 'default' || def.type === 'prefault') {
      def = def.innerType?._zod?.def;
    } else if (def.type === 'pipe') {
      def = def.in?._zod?.def;
    } else break;
  }
  return def;
}

/** Whether the procedure takes no input at all (no `.input()`, or `z.void()`). */
export function takesNoInput(inputs: unknown[]): boolean {
  return inputs.length === 0 || unwrap(inputs[0] as ZodLike)?.type === 'void';
}

const NUMBER = /^-?(\d+(\.\d*)?|\.\d+)(e[+-]?\d+)?$/i;

function convert(value: unknown, fieldType: string | undefined): unknown {
  if (typeof value !== 'string') return value;
  if (fieldType === 'number' && NUMBER.test(value)) return Number(value);
  if (fieldType === 'boolean' && (value === 'true' || value === 'false')) return value === 'true';
  return value;
}

/** Converts query-string values the schema declares as numbers, booleans or arrays of them. */
export function queryInput(query: Record<string, unknown>, schema: unknown): Record<string, unknown> {
  const shape = unwrap(schema as ZodLike)?.shape ?? {};
  const input: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(query)) {
    const field = unwrap(shape[key]);
    if (field?.type === 'array') {
      const element = unwrap((field as { element?: ZodLike }).element)?.type;
      input[key] = (Array.isArray(value) ? value : [value]).map((item) => convert(item, element));
    } else {
      input[key] = convert(value, field?.type);
    }
  }
  return input;
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
