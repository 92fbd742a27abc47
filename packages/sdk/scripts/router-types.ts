/**
 * Writes `src/router.gen.ts`: the server's router as the client sees it, with every input,
 * output and error type spelled out, so the SDK's declarations import nothing but
 * `@trpc/server`'s types (no server, database, Fastify or Kysely types).
 *
 * Declaration bundlers copy declarations; they cannot drop the parts of `typeof appRouter`
 * only the server needs (its context carries the database, Redis and Fastify types). So the
 * TypeScript checker resolves each procedure's input and output on the server's real types,
 * and this prints them as plain structural types.
 *
 *   node scripts/router-types.ts           write src/router.gen.ts
 *   node scripts/router-types.ts --check   fail when src/router.gen.ts is stale
 */

import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const sdkDir = fileURLToPath(new URL('..', import.meta.url));
const serverDir = join(sdkDir, '../../apps/server');
export const generatedFile = join(sdkDir, 'src/router.gen.ts');

/**
 * Named types the SDK exports, from the server's router module, printed before the router
 * (a type printed later refers to one printed earlier by its name).
 */
const NAMED_TYPES = [
  'AppErrorCode',
  'Permission',
  'ValidationIssue',
  'AppErrorData',
  'AppErrorShape',
  'User',
  'Role',
  'Session',
  'AuthResult',
  'SignInResult',
  'ProviderId',
  'Identity',
  'StoredFile',
  'Note',
] as const;

/** `@trpc/server`'s own types, referred to by name rather than spelled out. */
const TRPC_TYPES = new Set(['TRPC_ERROR_CODE_KEY', 'TRPC_ERROR_CODE_NUMBER']);

interface Summary {
  summary?: string;
  rest?: string;
}

export interface RouterSource {
  /** The module that exports `AppRouter` (the type) and `appRouter` (the value). */
  routerFile: string;
  /** The tsconfig.json its package is compiled with. */
  tsconfig: string;
  /** The other types it exports that the SDK names. */
  namedTypes: readonly string[];
}

const SERVER: RouterSource = {
  routerFile: join(serverDir, 'src/trpc/router.ts'),
  tsconfig: join(serverDir, 'tsconfig.json'),
  namedTypes: NAMED_TYPES,
};

export async function renderRouterTypes(source: RouterSource = SERVER): Promise<string> {
  const { routerFile } = source;
  const configPath = source.tsconfig;
  const config = ts.getParsedCommandLineOfConfigFile(
    configPath,
    {},
    {
      ...ts.sys,
      onUnRecoverableConfigFileDiagnostic: (diagnostic) => {
        throw new Error(ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n'));
      },
    },
  );
  if (!config) throw new Error(`cannot read ${configPath}`);
  const program = ts.createProgram([routerFile], config.options);
  const errors = ts.getPreEmitDiagnostics(program).filter((d) => d.category === ts.DiagnosticCategory.Error);
  if (errors.length > 0) {
    const text = ts.formatDiagnostics(errors.slice(0, 10), {
      getCanonicalFileName: (name) => name,
      getCurrentDirectory: () => dirname(configPath),
      getNewLine: () => '\n',
    });
    throw new Error(`the server does not type-check, so its router types cannot be generated:\n${text}`);
  }
  const checker = program.getTypeChecker();
  const sourceFile = program.getSourceFile(routerFile);
  const moduleSymbol = sourceFile && checker.getSymbolAtLocation(sourceFile);
  if (!moduleSymbol) throw new Error(`cannot read ${routerFile}`);
  const exports = new Map(checker.getExportsOfModule(moduleSymbol).map((s) => [s.name, s]));
  const declaredSymbol = (name: string): ts.Symbol => {
    const symbol = exports.get(name);
    if (!symbol) throw new Error(`${relative(sdkDir, routerFile)} does not export the type ${name}`);
    return symbol.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(symbol) : symbol;
  };
  const declared = (name: string): ts.Type => checker.getDeclaredTypeOfSymbol(declaredSymbol(name));

  const named = new Map<ts.Type, string>();
  const printer = new TypePrinter(checker, named);
  const sections: string[] = [];
  for (const name of source.namedTypes) {
    const type = declared(name);
    const doc = docText(checker, declaredSymbol(name));
    sections.push(`${doc ? `/** ${doc} */\n` : ''}export type ${name} = ${printer.print(type, '')};`);
    named.set(type, name);
  }

  const routerType = declared('AppRouter');
  const record = propertyType(checker, propertyType(checker, routerType, '_def'), 'record');
  const summaries = await procedureSummaries(routerFile);
  const body = printRecord(checker, printer, record, '', '', summaries);
  sections.push(
    [
      "/** The API's router, as the client sees it: pass it to `createTRPCClient<AppRouter>` or `createTRPCContext<AppRouter>`. */",
      'export type AppRouter = TRPCBuiltRouter<',
      '  { ctx: object; meta: object; errorShape: AppErrorShape; transformer: false },',
      `  ${body}`,
      '>;',
    ].join('\n'),
  );

  const text = [
    '// Generated by packages/sdk/scripts/router-types.ts from apps/server/src/trpc/router.ts.',
    '// Do not edit: run `pnpm --filter @app/sdk generate` (pnpm build and pnpm dev do it too).',
    '// biome-ignore-all lint/suspicious/noConfusingVoidType: `input: void` is how tRPC types a procedure without input',
    '',
    `import type { ${['TRPCBuiltRouter', 'TRPCMutationProcedure', 'TRPCQueryProcedure', ...printer.trpcTypes].sort().join(', ')} } from '@trpc/server';`,
    '',
    sections.join('\n\n'),
    '',
  ].join('\n');
  return format(text);
}

function property(checker: ts.TypeChecker, type: ts.Type, name: string): ts.Symbol {
  const symbol = checker.getPropertyOfType(type, name);
  if (!symbol) throw new Error(`expected a property ${name} on ${checker.typeToString(type)}`);
  return symbol;
}

function propertyType(checker: ts.TypeChecker, type: ts.Type, name: string): ts.Type {
  return checker.getTypeOfSymbol(property(checker, type, name));
}

/** A router record: procedures and nested records, by name. */
function printRecord(
  checker: ts.TypeChecker,
  printer: TypePrinter,
  record: ts.Type,
  path: string,
  indent: string,
  summaries: Map<string, Summary>,
): string {
  const inner = `${indent}    `;
  const lines = checker.getPropertiesOfType(record).map((symbol) => {
    const type = checker.getTypeOfSymbol(symbol);
    const procedurePath = path ? `${path}.${symbol.name}` : symbol.name;
    const def = checker.getPropertyOfType(type, '_def');
    const isProcedure = def && checker.getPropertyOfType(checker.getTypeOfSymbol(def), 'procedure');
    if (!def || !isProcedure) {
      return `${inner}${key(symbol.name)}: ${printRecord(checker, printer, type, procedurePath, inner, summaries)};`;
    }
    const defType = checker.getTypeOfSymbol(def);
    const kind = propertyType(checker, defType, 'type');
    const kindName = kind.isStringLiteral() ? kind.value : '';
    const builder =
      kindName === 'query' ? 'TRPCQueryProcedure' : kindName === 'mutation' ? 'TRPCMutationProcedure' : undefined;
    if (!builder) throw new Error(`${procedurePath}: ${kindName || 'this kind of'} procedure is not supported yet`);
    const types = propertyType(checker, defType, '$types');
    const print = (part: 'input' | 'output') => {
      try {
        return printer.print(propertyType(checker, types, part), `${inner}  `);
      } catch (error) {
        throw new Error(`${procedurePath} ${part}: ${error instanceof Error ? error.message : error}`);
      }
    };
    const input = print('input');
    const output = print('output');
    const doc = docComment(summaries.get(procedurePath), inner);
    return (
      `${doc}${inner}${key(symbol.name)}: ${builder}<{\n` +
      `${inner}  input: ${input};\n${inner}  output: ${output};\n` +
      `${inner}  meta: object;\n${inner}  errorShape: AppErrorShape;\n${inner}}>;`
    );
  });
  return `{\n${lines.join('\n')}\n${indent}  }`;
}

/** A symbol's JSDoc text on one line. */
function docText(checker: ts.TypeChecker, symbol: ts.Symbol): string {
  return ts.displayPartsToString(symbol.getDocumentationComment(checker)).replace(/\s+/g, ' ').replaceAll('*/', '*\\/');
}

function docComment(summary: Summary | undefined, indent: string): string {
  const text = [summary?.summary, summary?.rest && `REST: \`${summary.rest}\``].filter(Boolean).join('. ');
  return text ? `${indent}/** ${text.replaceAll('*/', '*\\/')} */\n` : '';
}

/** Each procedure's summary and REST route, from its meta (read from the router itself). */
async function procedureSummaries(routerFile: string): Promise<Map<string, Summary>> {
  const { appRouter } = (await import(routerFile)) as {
    appRouter: { _def: { procedures: Record<string, { _def: { meta?: { openapi?: OpenApiMeta } } }> } };
  };
  const result = new Map<string, Summary>();
  for (const [path, procedure] of Object.entries(appRouter._def.procedures)) {
    const openapi = procedure._def.meta?.openapi;
    result.set(path, {
      ...(openapi?.summary && { summary: openapi.summary }),
      ...(openapi?.method && openapi.path && { rest: `${openapi.method} /api${openapi.path}` }),
    });
  }
  return result;
}

interface OpenApiMeta {
  method?: string;
  path?: string;
  summary?: string;
}

const IDENTIFIER = /^[A-Za-z_$][\w$]*$/;
const key = (name: string) => (IDENTIFIER.test(name) ? name : JSON.stringify(name));

/**
 * Prints a type structurally: primitives, literals, unions, arrays, tuples and object
 * types. Anything else (a class such as Date, a function) cannot cross JSON and stops the
 * generator with the path to it.
 */
class TypePrinter {
  private readonly checker: ts.TypeChecker;
  private readonly named: Map<ts.Type, string>;
  /** The `@trpc/server` types printed by name, to import. */
  readonly trpcTypes = new Set<string>();

  constructor(checker: ts.TypeChecker, named: Map<ts.Type, string>) {
    this.checker = checker;
    this.named = named;
  }

  print(type: ts.Type, indent: string, depth = 0): string {
    const name = this.named.get(type);
    if (name) return name;
    const alias = type.aliasSymbol;
    const aliasFile = alias?.declarations?.[0]?.getSourceFile().fileName ?? '';
    if (alias && TRPC_TYPES.has(alias.name) && aliasFile.includes('/@trpc/server/')) {
      this.trpcTypes.add(alias.name);
      return alias.name;
    }
    if (depth > 30) throw new Error(`a type nests too deeply to print: ${this.checker.typeToString(type)}`);
    const f = type.flags;
    if (f & ts.TypeFlags.Any) return 'any';
    if (f & ts.TypeFlags.Unknown) return 'unknown';
    if (f & ts.TypeFlags.Never) return 'never';
    if (f & ts.TypeFlags.Void) return 'void';
    if (f & ts.TypeFlags.Undefined) return 'undefined';
    if (f & ts.TypeFlags.Null) return 'null';
    if (f & ts.TypeFlags.String) return 'string';
    if (f & ts.TypeFlags.Number) return 'number';
    if (f & ts.TypeFlags.Boolean) return 'boolean';
    if (f & ts.TypeFlags.BigInt) return 'bigint';
    if (type.isStringLiteral()) return JSON.stringify(type.value);
    if (type.isNumberLiteral()) return String(type.value);
    if (f & ts.TypeFlags.BooleanLiteral) return this.checker.typeToString(type);
    if (type.isUnion()) return this.printUnion(type, indent, depth);
    if (type.isIntersection()) {
      return type.types.map((member) => this.wrap(member, this.print(member, indent, depth + 1))).join(' & ');
    }
    if (f & ts.TypeFlags.Object) return this.printObject(type as ts.ObjectType, indent, depth);
    throw new Error(`cannot print the type ${this.checker.typeToString(type)}`);
  }

  private printUnion(type: ts.UnionType, indent: string, depth: number): string {
    const members = type.types;
    const hasTrue = members.some(
      (m) => m.flags & ts.TypeFlags.BooleanLiteral && this.checker.typeToString(m) === 'true',
    );
    const hasFalse = members.some(
      (m) => m.flags & ts.TypeFlags.BooleanLiteral && this.checker.typeToString(m) === 'false',
    );
    const parts: string[] = [];
    let booleanPrinted = false;
    for (const member of members) {
      if (member.flags & ts.TypeFlags.BooleanLiteral && hasTrue && hasFalse) {
        if (!booleanPrinted) parts.push('boolean');
        booleanPrinted = true;
        continue;
      }
      parts.push(this.wrap(member, this.print(member, indent, depth + 1)));
    }
    // null and undefined last, as people write them.
    const last = (part: string) => (part === 'null' ? 1 : part === 'undefined' ? 2 : 0);
    return parts.sort((a, b) => last(a) - last(b)).join(' | ');
  }

  /** Parenthesises a function-free compound type where precedence needs it. */
  private wrap(type: ts.Type, text: string): string {
    return type.isUnion() || type.isIntersection() ? `(${text})` : text;
  }

  private printObject(type: ts.ObjectType, indent: string, depth: number): string {
    const checker = this.checker;
    if (checker.isArrayType(type)) {
      const [element] = checker.getTypeArguments(type as ts.TypeReference);
      if (!element) throw new Error('an array without an element type');
      const readonly = type.symbol?.name === 'ReadonlyArray' ? 'readonly ' : '';
      const printed = this.print(element, indent, depth + 1);
      return `${readonly}${element.isUnion() || element.isIntersection() ? `(${printed})` : printed}[]`;
    }
    if (checker.isTupleType(type)) {
      const target = (type as ts.TupleTypeReference).target;
      const elements = checker.getTypeArguments(type as ts.TypeReference).map((element, i) => {
        const flag = target.elementFlags[i] ?? ts.ElementFlags.Required;
        const printed = this.print(element, indent, depth + 1);
        if (flag & ts.ElementFlags.Rest) return `...${this.wrap(element, printed)}[]`;
        return flag & ts.ElementFlags.Optional ? `${this.wrap(element, printed)}?` : printed;
      });
      return `${target.readonly ? 'readonly ' : ''}[${elements.join(', ')}]`;
    }
    if (type.getCallSignatures().length > 0 || type.getConstructSignatures().length > 0) {
      throw new Error(`a function type cannot cross the wire: ${checker.typeToString(type)}`);
    }
    const declaration = type.symbol?.declarations?.[0];
    const isLibraryClass = type.symbol && type.symbol.flags & (ts.SymbolFlags.Class | ts.SymbolFlags.Interface);
    if (isLibraryClass && declaration?.getSourceFile().hasNoDefaultLib) {
      throw new Error(`${checker.typeToString(type)} cannot cross the wire as JSON (output a string instead)`);
    }
    const inner = `${indent}  `;
    const members: string[] = [];
    for (const info of checker.getIndexInfosOfType(type)) {
      const keyType = this.print(info.keyType, inner, depth + 1);
      members.push(
        `${inner}${info.isReadonly ? 'readonly ' : ''}[key: ${keyType}]: ${this.print(info.type, inner, depth + 1)};`,
      );
    }
    for (const symbol of checker.getPropertiesOfType(type)) {
      const optional = symbol.flags & ts.SymbolFlags.Optional ? '?' : '';
      const propertyType = checker.getTypeOfSymbol(symbol);
      const doc = docText(checker, symbol);
      if (doc) members.push(`${inner}/** ${doc} */`);
      members.push(`${inner}${key(symbol.name)}${optional}: ${this.print(propertyType, inner, depth + 1)};`);
    }
    return members.length === 0 ? '{}' : `{\n${members.join('\n')}\n${indent}}`;
  }
}

/** Formats with the repository's Biome settings, so the file reads like the rest. */
function format(text: string): string {
  const biome = join(dirname(createRequire(import.meta.url).resolve('@biomejs/biome/package.json')), 'bin/biome');
  const result = spawnSync(process.execPath, [biome, 'check', '--write', `--stdin-file-path=${generatedFile}`], {
    input: text,
    encoding: 'utf8',
    cwd: sdkDir,
  });
  if (result.status !== 0) throw new Error(`biome could not format the generated types:\n${result.stderr}`);
  return result.stdout;
}

/** Writes src/router.gen.ts when it differs; `check` only reports. Returns whether it was current. */
export async function writeRouterTypes(options: { check?: boolean } = {}): Promise<boolean> {
  const text = await renderRouterTypes();
  let current: string | undefined;
  try {
    current = readFileSync(generatedFile, 'utf8');
  } catch {
    current = undefined;
  }
  const name = relative(process.cwd(), generatedFile);
  if (current === text) {
    console.log(`${name} is up to date`);
    return true;
  }
  if (options.check) {
    console.error(`${name} is stale: the router changed. Run: pnpm --filter @app/sdk generate`);
    return false;
  }
  writeFileSync(generatedFile, text);
  console.log(`wrote ${name}`);
  return false;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const check = process.argv.includes('--check');
  writeRouterTypes({ check }).then(
    (current) => {
      if (check && !current) process.exitCode = 1;
    },
    (error: unknown) => {
      console.error(error instanceof Error ? error.message : error);
      process.exitCode = 1;
    },
  );
}
