import { spawn } from 'node:child_process';
import { once } from 'node:events';
import {
  chmodSync,
  cpSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  realpathSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { type AddressInfo, createServer } from 'node:net';
import { arch, platform, tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmbeddedPostgres } from '../src/embedded.ts';
import { repoRoot } from '../src/paths.ts';
import { isProcessAlive } from '../src/process-alive.ts';
import { canTraverse, resolveRunAsUser } from '../src/run-as.ts';
import { startLockFile } from '../src/start-lock.ts';
import { postmasterPid, removeCluster } from './clusters.ts';

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
  afterAll(() => removeCluster(dataDir));

  it('initialises on first start, serves queries, and stops', async () => {
    const pg1 = await startEmbeddedPostgres({ dataDir, ephemeral: true });
    expect(pg1.owned).toBe(true);
    expect(await query(pg1.url, 'select 1 as one')).toEqual([{ one: 1 }]);
    // Unicode case folding (search with ILIKE), not ASCII's alone; byte-order collation.
    expect(await query(pg1.url, "select 'Élan Über' ilike '%élan über%' as folded, lower('ÀÉÎ') as lowered")).toEqual([
      { folded: true, lowered: 'àéî' },
    ]);
    const pid = postmasterPid(dataDir);
    expect(isProcessAlive(pid)).toBe(true);
    await pg1.stop();
    expect(isProcessAlive(pid)).toBe(false);
    expect(existsSync(path.join(dataDir, 'postmaster.pid'))).toBe(false);
    await expect(query(pg1.url, 'select 1')).rejects.toThrow();
  });

  it('keeps data across restarts, on the same port (a process attached to it reconnects by itself)', async () => {
    const first = await startEmbeddedPostgres({ dataDir });
    await query(first.url, 'create table kept (value text); insert into kept values ($$still here$$)');
    await first.stop();
    const second = await startEmbeddedPostgres({ dataDir });
    expect(await query(second.url, 'select value from kept')).toEqual([{ value: 'still here' }]);
    expect(second.port).toBe(first.port);
    await second.stop();
    // Its last port taken by someone else meanwhile: another one, the data the same.
    const squatter = createServer();
    await new Promise<void>((resolve) => squatter.listen(second.port, '127.0.0.1', resolve));
    try {
      const third = await startEmbeddedPostgres({ dataDir });
      expect(third.port).not.toBe(second.port);
      expect(await query(third.url, 'select value from kept')).toEqual([{ value: 'still here' }]);
      await third.stop();
    } finally {
      squatter.close();
    }
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

  it('hands the cluster over to a live process attached to it when its owner stops (pnpm dev beside pnpm worker)', async () => {
    const owner = await startEmbeddedPostgres({ dataDir });
    const pid = postmasterPid(dataDir);
    // Another live process attached to it (pid 1 always exists), and one that died since.
    mkdirSync(`${dataDir}.attached`, { recursive: true });
    writeFileSync(path.join(`${dataDir}.attached`, '1'), '');
    writeFileSync(path.join(`${dataDir}.attached`, '999999999'), '');
    await owner.stop();
    // Before: stopped, and the attached process's every query refused until its restart.
    expect(isProcessAlive(pid)).toBe(true);
    expect(await query(owner.url, 'select 1 as one')).toEqual([{ one: 1 }]);
    expect(readFileSync(`${dataDir}.owner`, 'utf8')).toBe('1');
    expect(readdirSync(`${dataDir}.attached`)).toEqual([]);
    // The heir is this process now (as if pid 1 had attached here): attached, it stops the cluster as it leaves.
    const attached = await startEmbeddedPostgres({ dataDir });
    expect(attached.owned).toBe(false);
    writeFileSync(`${dataDir}.owner`, String(process.pid));
    await attached.stop();
    expect(isProcessAlive(pid)).toBe(false);
    expect(existsSync(`${dataDir}.owner`)).toBe(false);
  });

  it('forgets the processes attached to a cluster before it stopped: a new start has none to hand over to', async () => {
    // Left by a process that died attached (pid 1 always exists: a reused pid).
    mkdirSync(`${dataDir}.attached`, { recursive: true });
    writeFileSync(path.join(`${dataDir}.attached`, '1'), '');
    const started = await startEmbeddedPostgres({ dataDir });
    const pid = postmasterPid(dataDir);
    await started.stop();
    expect(isProcessAlive(pid)).toBe(false); // before: handed over to pid 1, left running
  });

  it('adopts a cluster whose owner died, and stops it', async () => {
    const first = await startEmbeddedPostgres({ dataDir });
    const pid = postmasterPid(dataDir);
    writeFileSync(`${dataDir}.owner`, '999999999'); // an owner that no longer exists
    const adopted = await startEmbeddedPostgres({ dataDir });
    expect(adopted.owned).toBe(true);
    expect(adopted.port).toBe(first.port);
    await adopted.stop();
    expect(isProcessAlive(pid)).toBe(false);
  });

  it('starts a cluster whose postmaster.pid names a live process that is not its postmaster, leaving that process alone', async () => {
    const first = await startEmbeddedPostgres({ dataDir });
    await first.stop();
    // The cluster died (a crash, a reboot) and its pid now belongs to another process of
    // the user Postgres runs as (which Postgres itself takes for a postmaster still running).
    const user = resolveRunAsUser();
    const victim = spawn('sleep', ['60'], user ? { uid: user.uid, gid: user.gid } : {});
    await once(victim, 'spawn');
    const silentPort = await new Promise<number>((resolve) => {
      const server = createServer().listen(0, '127.0.0.1', () => {
        const { port } = server.address() as AddressInfo;
        server.close(() => resolve(port));
      });
    });
    const stale = [victim.pid, dataDir, '1700000000', silentPort, '', '127.0.0.1', '  5432001         0', 'ready   '];
    writeFileSync(path.join(dataDir, 'postmaster.pid'), `${stale.join('\n')}\n`);
    try {
      const started = await startEmbeddedPostgres({ dataDir });
      const answer = await query(started.url, 'select 1 as one').catch((error: Error) => error.message);
      await started.stop();
      expect([victim.exitCode, victim.signalCode]).toEqual([null, null]);
      expect(answer).toEqual([{ one: 1 }]);
      expect(started.owned).toBe(true);
    } finally {
      victim.kill();
    }
  });

  it('starts a fresh directory once when two starts race: the second waits, then attaches', async () => {
    const fresh = `${dataDir}-raced`;
    const messages: string[] = [];
    try {
      const [first, second] = await Promise.all([
        startEmbeddedPostgres({ dataDir: fresh, ephemeral: true }),
        startEmbeddedPostgres({ dataDir: fresh, ephemeral: true, log: (message) => messages.push(message) }),
      ]);
      expect(second.port).toBe(first.port);
      expect(messages).toContain(`Waiting for process ${process.pid} to start the embedded Postgres`);
      expect(messages.some((message) => message.startsWith('Adopted the embedded Postgres already running'))).toBe(
        true,
      );
      expect(await query(second.url, 'select 1 as one')).toEqual([{ one: 1 }]);
      expect(existsSync(startLockFile(fresh))).toBe(false);
      await first.stop();
    } finally {
      removeCluster(fresh);
    }
  });

  it('refuses a folder that holds files but no cluster (EMBEDDED_POSTGRES_DIR=.data), touching nothing', async () => {
    const folder = `${dataDir}-files`;
    mkdirSync(path.join(folder, 'uploads'), { recursive: true });
    writeFileSync(path.join(folder, 'uploads', 'photo.jpg'), 'bytes');
    writeFileSync(path.join(folder, 'outbox.json'), '[]');
    try {
      await expect(startEmbeddedPostgres({ dataDir: folder, ephemeral: true })).rejects.toThrow(
        `${folder} is not a Postgres data directory and is not empty: point EMBEDDED_POSTGRES_DIR at an empty or new folder.`,
      );
      expect(readdirSync(folder).sort()).toEqual(['outbox.json', 'uploads']);
      expect(readFileSync(path.join(folder, 'uploads', 'photo.jpg'), 'utf8')).toBe('bytes');
    } finally {
      removeCluster(folder);
    }
  });

  it('initialises an empty folder, and again one whose first start was cut short (its marker beside it)', async () => {
    const empty = `${dataDir}-empty`;
    const interrupted = `${dataDir}-interrupted`;
    mkdirSync(empty, { recursive: true });
    mkdirSync(path.join(interrupted, 'base'), { recursive: true }); // what initdb had made when it was stopped
    writeFileSync(path.join(interrupted, 'postgresql.conf'), '');
    writeFileSync(`${interrupted}.initialising`, '');
    try {
      for (const dir of [empty, interrupted]) {
        const started = await startEmbeddedPostgres({ dataDir: dir, ephemeral: true });
        expect(await query(started.url, 'select 1 as one')).toEqual([{ one: 1 }]);
        expect(existsSync(`${dir}.initialising`)).toBe(false);
        await started.stop();
      }
    } finally {
      removeCluster(empty);
      removeCluster(interrupted);
    }
  });

  it('takes over a start lock its holder left behind when it died', async () => {
    const fresh = `${dataDir}-left`;
    mkdirSync(path.dirname(fresh), { recursive: true });
    writeFileSync(startLockFile(fresh), '999999999'); // a holder that no longer exists
    try {
      const started = await startEmbeddedPostgres({ dataDir: fresh, ephemeral: true });
      expect(started.owned).toBe(true);
      expect(existsSync(startLockFile(fresh))).toBe(false);
      await started.stop();
    } finally {
      removeCluster(fresh);
    }
  });
});

describe('reachability for the postgres user', () => {
  it('goes by the mode bits of every directory on the way', () => {
    const someoneElse = { uid: (process.getuid?.() ?? 0) + 4242, gid: (process.getgid?.() ?? 0) + 4242 };
    const dir = mkdtempSync(path.join(tmpdir(), 'embedded-reach-'));
    try {
      chmodSync(dir, 0o700);
      expect(canTraverse(dir, someoneElse)).toBe(false);
      expect(canTraverse(path.join(dir, 'missing'), someoneElse)).toBe(false);
      chmodSync(dir, 0o711);
      expect(canTraverse(dir, someoneElse)).toBe(canTraverse(tmpdir(), someoneElse));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

const isRoot = process.getuid?.() === 0;

describe.skipIf(!isRoot)(
  'as root, in a private (mode 700) directory [root only: Postgres then runs as "postgres"]',
  () => {
    let parent: string;
    const cleanup: string[] = [];
    beforeAll(() => {
      parent = mkdtempSync(path.join(tmpdir(), 'embedded-private-'));
    });
    afterAll(() => {
      for (const dir of readdirSync(parent)) removeCluster(path.join(parent, dir));
      for (const dir of cleanup) rmSync(dir, { recursive: true, force: true });
      rmSync(parent, { recursive: true, force: true });
    });

    it('keeps the cluster where the postgres user can reach it, linked from the data directory; restarts, attaches, adopts', async () => {
      expect(statSync(parent).mode & 0o777).toBe(0o700);
      const user = resolveRunAsUser();
      const dir = path.join(parent, 'cluster');
      const first = await startEmbeddedPostgres({ dataDir: dir, ephemeral: true });
      const clusterDir = realpathSync(dir);
      expect(lstatSync(dir).isSymbolicLink()).toBe(true);
      expect(clusterDir.startsWith(parent)).toBe(false);
      expect(statSync(clusterDir).uid).toBe(user?.uid);
      const firstPid = postmasterPid(dir);
      expect(statSync(`/proc/${firstPid}`).uid).toBe(user?.uid);
      await query(first.url, 'create table kept (value text); insert into kept values ($$still here$$)');
      await first.stop();
      expect(isProcessAlive(firstPid)).toBe(false);
      expect(existsSync(path.join(dir, 'postmaster.pid'))).toBe(false);

      const second = await startEmbeddedPostgres({ dataDir: dir, ephemeral: true });
      expect(realpathSync(dir)).toBe(clusterDir);
      expect(await query(second.url, 'select value from kept')).toEqual([{ value: 'still here' }]);

      writeFileSync(`${dir}.owner`, '1'); // another live process owns it
      const attached = await startEmbeddedPostgres({ dataDir: dir });
      expect(attached.owned).toBe(false);
      expect(attached.port).toBe(second.port);
      await attached.stop();
      expect(await query(second.url, 'select 1 as one')).toEqual([{ one: 1 }]);

      writeFileSync(`${dir}.owner`, '999999999'); // its owner died
      const secondPid = postmasterPid(dir);
      const adopted = await startEmbeddedPostgres({ dataDir: dir });
      expect(adopted.owned).toBe(true);
      expect(adopted.port).toBe(second.port);
      await adopted.stop();
      expect(isProcessAlive(secondPid)).toBe(false);
    });

    it('starts afresh once the data directory is removed (rm -rf .data)', async () => {
      const dir = path.join(parent, 'reset');
      const first = await startEmbeddedPostgres({ dataDir: dir, ephemeral: true });
      const old = realpathSync(dir);
      await query(first.url, 'create table gone (value text)');
      await first.stop();
      rmSync(dir, { recursive: true, force: true }); // removes the link
      cleanup.push(old, `${old}.json`);

      const second = await startEmbeddedPostgres({ dataDir: dir, ephemeral: true });
      expect(realpathSync(dir)).not.toBe(old);
      await expect(query(second.url, 'select * from gone')).rejects.toThrow(/does not exist/);
      await second.stop();
    });

    it('moves a cluster made while its directory was reachable once it no longer is', async () => {
      const dir = path.join(parent, 'was-open', 'cluster');
      chmodSync(parent, 0o755);
      try {
        const first = await startEmbeddedPostgres({ dataDir: dir, ephemeral: true });
        expect(lstatSync(dir).isDirectory()).toBe(true); // reachable: used in place, as always
        await query(first.url, 'create table kept (value text); insert into kept values ($$moved along$$)');
        await first.stop();
      } finally {
        chmodSync(parent, 0o700);
      }
      const second = await startEmbeddedPostgres({ dataDir: dir, ephemeral: true });
      expect(lstatSync(dir).isSymbolicLink()).toBe(true);
      expect(await query(second.url, 'select value from kept')).toEqual([{ value: 'moved along' }]);
      await second.stop();
      removeCluster(dir);
    });

    it('runs a staged copy of the binaries when the postgres user cannot reach them, made once', async () => {
      const installed = (await import(`@embedded-postgres/${platform()}-${arch()}`)) as { postgres: string };
      const packageDir = path.dirname(path.dirname(path.dirname(installed.postgres)));
      const copy = path.join(parent, 'package');
      cpSync(path.join(packageDir, 'package.json'), path.join(copy, 'package.json'));
      cpSync(path.join(packageDir, 'native'), path.join(copy, 'native'), { recursive: true, verbatimSymlinks: true });
      const stagingDir = mkdtempSync(path.join(tmpdir(), 'embedded-staging-'));
      chmodSync(stagingDir, 0o755);
      cleanup.push(stagingDir);
      const { version } = JSON.parse(readFileSync(path.join(packageDir, 'package.json'), 'utf8'));
      const staged = path.join(stagingDir, `${platform()}-${arch()}-${version}`);

      const options = { ephemeral: true, binariesDir: path.join(copy, 'native'), stagingDir };
      const first = await startEmbeddedPostgres({ dataDir: path.join(parent, 'staged-1'), ...options });
      expect(readlinkSync(`/proc/${postmasterPid(path.join(parent, 'staged-1'))}/exe`)).toBe(
        path.join(staged, 'bin', 'postgres'),
      );
      expect(realpathSync(path.join(parent, 'staged-1')).startsWith(path.join(stagingDir, 'clusters'))).toBe(true);
      expect(await query(first.url, 'select 1 as one')).toEqual([{ one: 1 }]);
      await first.stop();

      const copied = statSync(path.join(staged, 'bin', 'postgres')).mtimeMs;
      const second = await startEmbeddedPostgres({ dataDir: path.join(parent, 'staged-2'), ...options });
      expect(statSync(path.join(staged, 'bin', 'postgres')).mtimeMs).toBe(copied);
      expect(readdirSync(stagingDir).sort()).toEqual(['clusters', path.basename(staged)].sort());
      await second.stop();
    });

    it('refuses a folder of files it cannot reach, rather than replacing it with a link to a new cluster', async () => {
      const dir = path.join(parent, 'files');
      mkdirSync(dir);
      writeFileSync(path.join(dir, 'notes.txt'), 'mine');
      await expect(startEmbeddedPostgres({ dataDir: dir, ephemeral: true })).rejects.toThrow(
        `${dir} is not a Postgres data directory and is not empty`,
      );
      expect(lstatSync(dir).isDirectory()).toBe(true);
      expect(readFileSync(path.join(dir, 'notes.txt'), 'utf8')).toBe('mine');

      const interrupted = path.join(parent, 'cut-short'); // a first start of ours, cut short
      mkdirSync(path.join(interrupted, 'base'), { recursive: true });
      writeFileSync(`${interrupted}.initialising`, '');
      const started = await startEmbeddedPostgres({ dataDir: interrupted, ephemeral: true });
      expect(lstatSync(interrupted).isSymbolicLink()).toBe(true);
      await started.stop();
    });

    it('says in one line what to do when there is no place the postgres user can reach', async () => {
      const stagingDir = mkdtempSync(path.join(tmpdir(), 'embedded-unsafe-'));
      chmodSync(stagingDir, 0o777); // anyone could plant binaries there: never used
      cleanup.push(stagingDir);
      await expect(startEmbeddedPostgres({ dataDir: path.join(parent, 'nowhere'), stagingDir })).rejects.toThrow(
        /^Embedded Postgres runs as the "postgres" user [^\n]*cannot reach [^\n]*or set DATABASE_URL\.$/,
      );
    });
  },
);
