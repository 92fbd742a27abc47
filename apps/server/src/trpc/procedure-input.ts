/**
 * What the transports read of a procedure's input without running it: whether it takes any,
 * and the shape of its zod schema (REST converts query strings by it).
 */

interface ZodLike {
  _zod?: { def?: ZodDef };
}
export interface ZodDef {
  type?: string;
  innerType?: ZodLike;
  in?: ZodLike;
  shape?: Record<string, ZodLike>;
  element?: ZodLike;
}

/** A zod schema's definition, through the wrappers that do not change what it accepts as input. */
export function schemaDef(schema: unknown): ZodDef | undefined {
  let def = (schema as ZodLike | undefined)?._zod?.def;
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
  return inputs.length === 0 || schemaDef(inputs[0])?.type === 'void';
}

/** A JSON object: not null, not an array. */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A promise, or anything `await` would wait for (an object or function with a `then` method). */
export function isPromiseLike(value: unknown): value is PromiseLike<unknown> {
  return typeof (value as { then?: unknown } | null | undefined)?.then === 'function';
}
