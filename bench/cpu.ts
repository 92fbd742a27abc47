/**
 * CPU time a server process has used so far (Linux /proc), with its children (the cluster
 * workers of WORKERS=2), for `pnpm bench`'s "CPU µs/req".
 *
 * Per thread, `/proc/<pid>/task/<tid>/schedstat`'s first field: nanoseconds on a CPU, as
 * the scheduler accounts them. Summed over the threads, since `/proc/<pid>/schedstat` is the
 * main thread's alone and Node's other threads (garbage collection, the libuv pool that
 * hashes passwords and reads files) do part of the work. Where schedstat is missing:
 * `/proc/<pid>/stat`'s utime + stime, in clock ticks (100 Hz, so 10 ms steps).
 * Postgres and Redis are other processes: not counted.
 */
import { readdirSync, readFileSync } from 'node:fs';

const TICK_NS = 10_000_000; // USER_HZ is 100 on Linux

/** The fields of `/proc/<pid>/stat` after the command name (which may hold spaces and parentheses). */
function statFields(pid: number): string[] {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

function threadsNs(pid: number): number {
  try {
    let total = 0;
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        total += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
      } catch {
        // The thread ended between the listing and the read.
      }
    }
    if (total > 0) return total;
  } catch {}
  // fields[11] and [12] are utime and stime (fields 14 and 15 of proc(5), counted from 1).
  const fields = statFields(pid);
  return (Number(fields[11]) + Number(fields[12])) * TICK_NS;
}

/** The process and its descendants. */
function family(pid: number): number[] {
  const parents = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const ppid = Number(statFields(Number(entry))[1]);
      parents.set(ppid, [...(parents.get(ppid) ?? []), Number(entry)]);
    } catch {
      // Gone meanwhile.
    }
  }
  const all = [pid];
  for (let i = 0; i < all.length; i++) all.push(...(parents.get(all[i] as number) ?? []));
  return all;
}

/** Nanoseconds of CPU used by `pid` and its descendants, or undefined without /proc (macOS). */
export function cpuTimeNs(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    readFileSync(`/proc/${pid}/stat`);
  } catch {
    return undefined;
  }
  let total = 0;
  for (const member of family(pid)) {
    try {
      total += threadsNs(member);
    } catch {
      // Ended meanwhile.
    }
  }
  return total;
}
