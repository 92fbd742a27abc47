import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { dropDatabase, setupTestDatabases } from '../src/testing.ts';

const DEAD_PID = 999_999_999; // above any pid_max: never alive

async function databasesNamed(adminUrl: string, prefix: string): Promise<string[]> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    const { rows } = await client.query<{ datname: string }>(
      'select datname from pg_database where starts_with(datname, $1) order by datname',
      [prefix],
    );
    return rows.map((row) => row.datname);
  } finally {
    await client.end();
  }
}

describe('test databases', () => {
  it('drops what dead test runs left: this host’s whose pid is gone, any host’s from over a day ago', async () => {
    const adminUrl = process.env.TEST_DATABASE_ADMIN_URL as string;
    const template = process.env.TEST_DATABASE_TEMPLATE as string; // tmpl_db_<this host's pid space>_<pid>_<start>
    const here = template.split('_')[2];
    const now = Math.floor(Date.now() / 1000);
    const started = (secondsAgo: number) => (now - secondsAgo).toString(36);
    const names = {
      deadHere: `t_dbstale_${here}_${DEAD_PID}_${started(60)}_0000aaaa`,
      liveHere: `t_dbstale_${here}_${process.pid}_${started(60)}_0000bbbb`,
      // A pid that is dead here may be alive on the host that made it (CI runners, containers).
      elsewhere: `t_dbstale_0badc0de_${DEAD_PID}_${started(60)}_0000cccc`,
      // No run lasts a day: that host's run died (a container that never runs again).
      abandonedElsewhere: `t_dbstale_0badc0de_${DEAD_PID}_${started(2 * 86_400)}_0000dddd`,
      // Named before hosts were told apart: whose it is, no one can say.
      unplaced: `t_dbstale_${DEAD_PID}_0000eeee`,
    };
    const client = new pg.Client({ connectionString: adminUrl });
    await client.connect();
    try {
      for (const name of Object.values(names)) await client.query(`create database "${name}"`);
    } finally {
      await client.end();
    }
    const environment = { ...process.env };
    try {
      // On the cluster these tests use (else an embedded run would start one of its own).
      process.env.DATABASE_URL = adminUrl;
      const teardown = await setupTestDatabases('dbstale');
      await teardown();
      expect(await databasesNamed(adminUrl, 't_dbstale_')).toEqual(
        [names.liveHere, names.elsewhere, names.unplaced].sort(),
      );
    } finally {
      process.env = environment;
      for (const name of Object.values(names)) await dropDatabase(adminUrl, name);
    }
  });
});
