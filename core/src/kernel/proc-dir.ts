import { existsSync, readdirSync, readFileSync } from 'node:fs';

/**
 * Processes whose main thread has exited (pthread_exit) while other threads run on, each with the
 * live thread its /proc entries are read through: the kernel shows a process's memory map,
 * descriptors, working directory and namespaces under its main thread's entry, which is empty
 * once that thread is a zombie, and shows the same under /proc/TID of any live thread.
 */
const readThrough = new Map<number, number>();

/**
 * The /proc directory to read process `pid` from: /proc/PID, or /proc/TID of a live thread when
 * its main thread has exited (see exitedLeaderThread).
 */
export function procDir(pid: number): string {
  const tid = readThrough.get(pid);
  if (tid === undefined) return `/proc/${pid}`;
  // The PID may have been taken by another process since, or the thread may have exited.
  if (isLiveThread(pid, tid)) return `/proc/${tid}`;
  readThrough.delete(pid);
  return `/proc/${pid}`;
}

/**
 * The task the kernel calls that take a PID (kcmp, pidfd_open, process_vm_readv) act on for
 * process `pid`: a live thread when its main thread has exited, since those calls look at the
 * task's own files and memory, which an exited thread no longer has.
 */
export function liveTask(pid: number): number {
  const dir = procDir(pid);
  return dir === `/proc/${pid}` ? pid : Number(dir.slice('/proc/'.length));
}

/**
 * When the main thread of `pid` has exited while other threads run on: the live thread its /proc
 * entries are read through from now on (procDir). Undefined for any other process.
 */
export function exitedLeaderThread(pid: number): number | undefined {
  if (!isZombieThread(pid, pid)) return undefined;
  const live = listTids(pid).find((tid) => tid !== pid && isLiveThread(pid, tid));
  if (live === undefined) return undefined;
  readThrough.set(pid, live);
  return live;
}

/** The state letter of thread `tid` of `pid`, or undefined once it is gone. */
function threadState(pid: number, tid: number): string | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
}

export function isLiveThread(pid: number, tid: number): boolean {
  const state = threadState(pid, tid);
  return state !== undefined && state !== 'Z' && state !== 'X';
}

function isZombieThread(pid: number, tid: number): boolean {
  return existsSync(`/proc/${pid}/task/${tid}`) && threadState(pid, tid) === 'Z';
}

function listTids(pid: number): number[] {
  try {
    return readdirSync(`/proc/${pid}/task`).map(Number).sort((a, b) => a - b);
  } catch {
    return [];
  }
}
