/**
 * An S3-compatible store of the test's own: s3rver on a free local port, in a process of its
 * own (so what it holds never counts in the test's memory), keeping its buckets in a fresh
 * temporary directory that `close()` removes. Talk to it with path-style addressing. It checks
 * header signatures but not presigned-URL ones, and cannot abort a multipart upload.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';

export interface S3Server {
  /** `http://127.0.0.1:<port>` */
  endpoint: string;
  bucket: string;
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
  close(): Promise<void>;
}

/** Runs in the child (CommonJS): starts s3rver, prints its port, exits when the parent goes away. */
const CHILD = `
const [modulePath, directory, bucket] = process.argv.slice(1);
const S3rver = require(modulePath);
const server = new S3rver({ port: 0, address: '127.0.0.1', silent: true, directory, configureBuckets: [{ name: bucket }] });
// s3rver removes the directories a deletion leaves empty, racing a PUT into the same one (its
// mkdir or open fails: a 500, or a crash). S3 has no directories: delete the object's files only
// (close() removes the rest).
const store = server.store;
store.deleteObject = async (bucketName, key) => {
  await Promise.all(['object', 'object.md5', 'metadata.json'].map((kind) =>
    require('node:fs').promises.unlink(store.getResourcePath(bucketName, key, kind)).catch((error) => {
      if (error.code !== 'ENOENT') throw error;
    }),
  ));
};
server.run().then(({ port }) => process.stdout.write(JSON.stringify({ port }) + '\\n'), (error) => {
  console.error(error);
  process.exit(1);
});
process.stdin.on('end', () => process.exit(0)).resume();
`;

export async function startS3Server(): Promise<S3Server> {
  const directory = await mkdtemp(path.join(os.tmpdir(), 's3rver-'));
  // 3-63 characters, lower case: a valid bucket name.
  const bucket = `test-${randomBytes(4).toString('hex')}`;
  const modulePath = createRequire(import.meta.url).resolve('s3rver');
  let child: ChildProcess | undefined;
  const stop = async () => {
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = once(child, 'exit');
      child.kill('SIGKILL');
      await exited;
    }
    await rm(directory, { recursive: true, force: true });
  };
  try {
    child = spawn(process.execPath, ['-e', CHILD, modulePath, directory, bucket], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const port = await new Promise<number>((resolve, reject) => {
      let output = '';
      let errors = '';
      child?.stderr?.on('data', (chunk: Buffer) => {
        errors += chunk.toString();
      });
      child?.stdout?.on('data', (chunk: Buffer) => {
        output += chunk.toString();
        const line = output.split('\n')[0];
        if (output.includes('\n') && line) resolve((JSON.parse(line) as { port: number }).port);
      });
      child?.on('error', reject);
      child?.on('exit', (code) => reject(new Error(`s3rver exited (${code}) before listening: ${errors}`)));
    });
    return {
      endpoint: `http://127.0.0.1:${port}`,
      bucket,
      accessKeyId: 'S3RVER',
      secretAccessKey: 'S3RVER',
      region: 'us-east-1',
      close: stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
