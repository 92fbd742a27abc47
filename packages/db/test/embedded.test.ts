import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { startEmbeddedPostgres } from '../src/embedded.ts';
import { repoRoot } from '../src/paths.ts';
import { isProcessAlive } from '../src/process-alive.ts';

const dataDir = path.join(repoRoot, '.data', 'test-postgres', `embedded-${process.pid}`);

async function query(url: string, text: string) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(text)).rows;
  } finally {
    await client.end();
  }
}

describe('embedded Postgres', () => {
  afterAll(() => {
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(`${dataDir}.owner`, { force: true });
  });

  it('initialises on first start, serves queries, and stops', async () => {
    const pg1 = await startEmbeddedPostgres({ dataDir, ephemeral: true });
    expect(pg1.owned).toBe(true);
    expect(await query(pg1.url, 'select 1 as one')).toEqual([{ one: 1 }]);
    const postmasterPid = Number(readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    expect(isProcessAlive(postmasterPid)).toBe(true);
    await pg1.stop();
    expect(isProcessAlive(postmasterPid)).toBe(false);
    expect(existsSync(path.join(dataDir, 'postmaster.pid'))).toBe(false);
    await expect(query(pg1.url, 'select 1')).rejects.toThrow();
  });

  it('keeps data across restarts', async () => {
    const first = await startEmbeddedPostgres({ dataDir });
    await query(first.url, 'create table kept (value text); insert into kept values ($$still here$$)');
    await first.stop();
    const second = await startEmbeddedPostgres({ dataDir });
    expect(await query(second.url, 'select value from kept')).toEqual([{ value: 'still here' }]);
    await second.stop();
  });

  it('attaches to a cluster another live process owns instead of starting a second one', async () => {
    const owner = await startEmbeddedPostgres({ dataDir });
    // Pretend the owner is another live process (pid 1 always exists).
    writeFileSync(`${dataDir}.owner`, '1');
    const attached = await startEmbeddedPostgres({ dataDir });
    expect(attached.owned).toBe(false);
    expect(attached.port).toBe(owner.port);
    await attached.stop(); // detaches only
    expect(await query(owner.url, 'select 1 as one')).toEqual([{ one: 1 }]);
    await owner.stop();
  });

  it('adopts a cluster whose owner died, and stops it', async () => {
    const first = await startEmbeddedPostgres({ dataDir });
    const postmasterPid = Number(readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    writeFileSync(`${dataDir}.owner`, '999999999'); // an owner that no longer exists
    const adopted = await startEmbeddedPostgres({ dataDir });
    expect(adopted.owned).toBe(true);
    expect(adopted.port).toBe(first.port);
    await adopted.stop();
    expect(isProcessAlive(postmasterPid)).toBe(false);
  });
});
