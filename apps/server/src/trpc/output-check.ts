/**
 * A procedure's answer checked against its zod output schema in place: the same checks zod
 * runs (its types, its format patterns, its length and number checks), without the copy zod's
 * parse makes of every object and array on the way, nor the result object it makes for every
 * field checked. The answer passes as it is when zod's parse would return an equal one (the
 * same JSON, key for key and in the same order); anything else, a refusal or a key to strip,
 * goes to zod's parse, which answers as it always does. On a list of 20 notes (81 UUID and
 * date-time checks) this is most of what the app allocates beyond a hand-written route
 * (bench/README.md, the eighteenth sitting).
 *
 * A schema is checked in place only when every part of it is a kind whose answer cannot differ
 * from its input: objects (stripping unknown keys, the default), arrays, strings, numbers,
 * booleans, null, literals, enums, `unknown`/`any`, `.optional()`, `.nullable()` and pipes of
 * these, with checks that only judge (formats, lengths, bounds, integers; an overwrite such as
 * `.trim()` passes only when it leaves the value as it was). Anything else (a transform, a
 * default, a union, a record, a date, a refinement) leaves the whole schema to zod.
 *
 * Relies on zod 4's internals: `_zod.def` (`type`, `shape`, `element`, `innerType`, `in`,
 * `out`, `checks`, `catchall`), `_zod.traits`, `_zod.optin`/`optout`, `_zod.values`, each
 * check's `_zod.check(payload)` and `_zod.def` (`check`, `format`, `pattern`, `when`).
 * test/output-check.test.ts compares it with zod's parse on every kind it takes, and checks
 * that the app's real answers pass in place (zod's parse never called).
 */

type Check = (value: unknown) => boolean;

interface ZodCheckLike {
  _zod: {
    check(payload: { value: unknown; issues: unknown[] }): unknown;
    def: { check?: string; format?: string; pattern?: RegExp; when?: (payload: unknown) => boolean };
  };
}
interface ZodNode {
  _zod: {
    def: {
      type: string;
      checks?: ZodCheckLike[];
      shape?: Record<string, ZodNode>;
      catchall?: unknown;
      element?: ZodNode;
      innerType?: ZodNode;
      in?: ZodNode;
      out?: ZodNode;
      coerce?: boolean;
    };
    traits: Set<string>;
    optin?: string;
    optout?: string;
    values?: Set<unknown>;
  };
}

/** Checks that only judge the value (or, for `overwrite`, are judged by leaving it unchanged). */
const JUDGING_CHECKS = new Set([
  'string_format',
  'min_length',
  'max_length',
  'length_equals',
  'greater_than',
  'less_than',
  'number_format',
  'multiple_of',
  'overwrite',
]);
/** String formats whose check is their pattern's test and nothing else (zod's $ZodCheckStringFormat). */
const PATTERN_FORMATS = new Set(['uuid', 'guid', 'email', 'datetime', 'date', 'time', 'regex']);

/** The payload a check reports to; one, since checks run one at a time and report only failures. */
const scratch: { value: unknown; issues: unknown[] } = { value: undefined, issues: [] };

function runCheck(check: ZodCheckLike, value: unknown): boolean {
  scratch.value = value;
  try {
    const when = check._zod.def.when;
    if (when && !when(scratch)) return true;
    const answer = check._zod.check(scratch);
    return scratch.issues.length === 0 && scratch.value === value && !(answer instanceof Promise);
  } finally {
    scratch.issues.length = 0;
    scratch.value = undefined;
  }
}

/** One of the node's checks as a function, or undefined when it may do more than judge. */
function compileCheck(check: ZodCheckLike): Check | undefined {
  const def = check._zod.def;
  if (!def.check || !JUDGING_CHECKS.has(def.check)) return undefined;
  if (def.check === 'string_format' && def.format && PATTERN_FORMATS.has(def.format) && def.pattern && !def.when) {
    const pattern = writeOutCountedRepeats(def.pattern);
    return (value) => {
      pattern.lastIndex = 0;
      return pattern.test(value as string);
    };
  }
  return (value) => runCheck(check, value);
}

/** What zod runs after a node's own parse: the node itself when it is a check (a string format), then its checks. */
function compileChecks(node: ZodNode): Check[] | undefined {
  const checks = node._zod.traits.has('$ZodCheck') ? [node as unknown as ZodCheckLike] : [];
  checks.push(...(node._zod.def.checks ?? []));
  const compiled: Check[] = [];
  for (const check of checks) {
    const fn = compileCheck(check);
    if (!fn) return undefined;
    compiled.push(fn);
  }
  return compiled;
}

function withChecks(isType: Check, checks: Check[]): Check {
  if (checks.length === 0) return isType;
  if (checks.length === 1) {
    const [only] = checks as [Check];
    return (value) => isType(value) && only(value);
  }
  return (value) => {
    if (!isType(value)) return false;
    for (const check of checks) if (!check(value)) return false;
    return true;
  };
}

const isPlainObject = (value: unknown): value is Record<string, unknown> => {
  if (typeof value !== 'object' || value === null) return false;
  const prototype = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null;
};

interface Field {
  key: string;
  check: Check;
  /** May be absent (`.optional()`): zod then leaves the key out of its answer too. */
  optional: boolean;
}

function compileObject(node: ZodNode): Check | undefined {
  const def = node._zod.def;
  if (def.catchall !== undefined || !def.shape) return undefined;
  const fields: Field[] = [];
  for (const key of Object.keys(def.shape)) {
    if (key === '__proto__') return undefined;
    const schema = def.shape[key] as ZodNode;
    const check = compileNode(schema);
    if (!check) return undefined;
    const optional = schema._zod.optin === 'optional' && schema._zod.optout === 'optional';
    fields.push({ key, check, optional });
  }
  const count = fields.length;
  // The keys must be the shape's, in its order (the order of zod's copy), each present one
  // passing its check; an optional one may be missing.
  return (value) => {
    if (!isPlainObject(value)) return false;
    let next = 0;
    for (const key in value) {
      while (next < count && (fields[next] as Field).key !== key) {
        if (!(fields[next] as Field).optional) return false;
        next++;
      }
      if (next === count) return false; // a key the shape does not have, or out of order
      if (!(fields[next] as Field).check(value[key])) return false;
      next++;
    }
    for (; next < count; next++) if (!(fields[next] as Field).optional) return false;
    return true;
  };
}

/** What zod's own parse of the node accepts unchanged, before the node's checks. */
function compileType(node: ZodNode): Check | undefined {
  const def = node._zod.def;
  if (def.coerce) return undefined;
  switch (def.type) {
    case 'object':
      return compileObject(node);
    case 'array': {
      const element = def.element && compileNode(def.element);
      if (!element) return undefined;
      return (value) => {
        if (!Array.isArray(value)) return false;
        for (let index = 0; index < value.length; index++) if (!element(value[index])) return false;
        return true;
      };
    }
    case 'string':
      return (value) => typeof value === 'string';
    case 'number':
      return (value) => typeof value === 'number' && Number.isFinite(value);
    case 'boolean':
      return (value) => typeof value === 'boolean';
    case 'null':
      return (value) => value === null;
    case 'unknown':
    case 'any':
      return () => true;
    case 'literal':
    case 'enum': {
      const values = node._zod.values;
      return values && ((value) => values.has(value));
    }
    case 'nullable': {
      const inner = def.innerType && compileNode(def.innerType);
      return inner && ((value) => value === null || inner(value));
    }
    case 'optional': {
      if (node._zod.traits.has('$ZodExactOptional')) return undefined; // it refuses a present `undefined`
      const inner = def.innerType && compileNode(def.innerType);
      return inner && ((value) => value === undefined || inner(value));
    }
    case 'pipe': {
      const left = def.in && compileNode(def.in);
      const right = def.out && compileNode(def.out);
      return left && right && ((value) => left(value) && right(value));
    }
    default:
      return undefined;
  }
}

function compileNode(node: ZodNode): Check | undefined {
  const isType = compileType(node);
  if (!isType) return undefined;
  const checks = compileChecks(node);
  return checks && withChecks(isType, checks);
}

/**
 * The output parser for a schema: the answer itself when it passes in place, else zod's
 * `parse` (the same result or the same error as without this). `parse` as is when the schema
 * has a part that is not checked in place.
 */
export function outputParser(schema: unknown, parse: (value: unknown) => unknown): (value: unknown) => unknown {
  const check = inPlaceCheck(schema);
  if (!check) return parse;
  return (value) => {
    let passed = false;
    try {
      passed = check(value);
    } catch {
      // a check that throws is left to zod's parse, to answer as it would
    }
    return passed ? value : parse(value);
  };
}

/** The in-place check of a zod schema, or undefined when a part of it is not checked in place. */
export function inPlaceCheck(schema: unknown): Check | undefined {
  const node = schema as Partial<ZodNode> | null | undefined;
  if (!node?._zod?.def || !(node._zod.traits instanceof Set)) return undefined;
  return compileNode(node as ZodNode);
}

/** Tokens kept whole: a class, an escape, or one plain character. */
const SIMPLE_ESCAPE = /^\\[dDwWsS.\\/^$|?*+()[\]{}-]$/;
const PLAIN_CHARACTER = /^[\x20-\x7e]$/;
const NOT_AN_ATOM = new Set(['(', ')', '|', '^', '$', '*', '+', '?', '{', '}', ']']);

/**
 * The same pattern with each counted repeat of one character, class or escape written out
 * (`[0-9a-f]{4}` as `[0-9a-f][0-9a-f][0-9a-f][0-9a-f]`): it matches the same strings, and V8
 * runs zod's UUID pattern ~2x faster so (irregexp compiles a counted repeat as a loop with a
 * counter). The pattern itself when its source holds anything this does not read with
 * certainty (escapes other than `\d`, `\w`, `\s` and escaped punctuation, the `v` flag).
 */
export function writeOutCountedRepeats(pattern: RegExp): RegExp {
  const source = pattern.source;
  if (pattern.flags.includes('v')) return pattern;
  let out = '';
  let atom: string | undefined; // the last token, when it is one a count may repeat
  let changed = false;
  for (let index = 0; index < source.length; ) {
    const char = source[index] as string;
    if (char === '\\') {
      const escaped = source.slice(index, index + 2);
      if (!SIMPLE_ESCAPE.test(escaped)) return pattern;
      out += escaped;
      atom = escaped;
      index += 2;
    } else if (char === '[') {
      let end = index + 1;
      if (source[end] === '^') end++;
      if (source[end] === ']')
        end++; // `[]` or `[^]`: a class of its own in JavaScript
      else {
        for (; end < source.length && source[end] !== ']'; end++) {
          if (source[end] === '\\') {
            if (!SIMPLE_ESCAPE.test(source.slice(end, end + 2))) return pattern;
            end++;
          } else if (source[end] === '[') return pattern;
        }
        if (end >= source.length) return pattern;
        end++;
      }
      atom = source.slice(index, end);
      out += atom;
      index = end;
    } else if (char === '{' && atom !== undefined) {
      const count = /^\{(\d{1,2})\}/.exec(source.slice(index));
      const after = count ? source[index + count[0].length] : undefined;
      if (count && after !== '?' && Number(count[1]) >= 1 && Number(count[1]) <= 16) {
        out += atom.repeat(Number(count[1]) - 1);
        index += count[0].length;
        changed = true;
      } else {
        out += char;
        index++;
      }
      atom = undefined;
    } else {
      out += char;
      atom = PLAIN_CHARACTER.test(char) && !NOT_AN_ATOM.has(char) ? char : undefined;
      index++;
    }
  }
  return changed ? new RegExp(out, pattern.flags) : pattern;
}
