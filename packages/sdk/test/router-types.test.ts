import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { generatedFile, renderRouterTypes } from '../scripts/router-types.ts';

const fixtures = fileURLToPath(new URL('./fixtures/unsupported-router/', import.meta.url));
const fixture = (file: string) => ({
  routerFile: join(fixtures, file),
  tsconfig: fileURLToPath(new URL('../tsconfig.json', import.meta.url)),
  namedTypes: [],
});

describe('the generated router types', () => {
  it('are what the current router produces (run `pnpm --filter @app/sdk generate` after changing it)', async () => {
    expect(readFileSync(generatedFile, 'utf8')).toBe(await renderRouterTypes());
  }, 60_000);

  it('name no server module: they import only tRPC types', () => {
    const imports = [...readFileSync(generatedFile, 'utf8').matchAll(/from '([^']+)'|import\(/g)].map((m) => m[1]);
    expect(imports).toEqual(['@trpc/server']);
  });

  it('refuse an output that JSON cannot carry, naming the procedure', async () => {
    await expect(renderRouterTypes(fixture('date-output.ts'))).rejects.toThrow(
      /clock\.now output: Date cannot cross the wire as JSON/,
    );
  }, 60_000);

  it('refuse a kind of procedure the SDK does not carry', async () => {
    await expect(renderRouterTypes(fixture('subscription.ts'))).rejects.toThrow(
      /ticks: subscription procedure is not supported/,
    );
  }, 60_000);
});
