import { TargetError } from '../errors.js';
import { KernelError } from './kernel-error.js';
import { isLiveThread } from './proc-dir.js';
import { threadIds } from './procfs.js';
import type { Ptrace } from './ptrace.js';
import { RemoteTask, type ProcessLayout } from './remote-task.js';
import { cloneArgs, encodeStruct, structSize } from './structs.js';
import { SYS } from './syscalls.js';

const CLONE_VM = 0x00000100;
const CLONE_FS = 0x00000200;
const CLONE_FILES = 0x00000400;
const CLONE_SIGHAND = 0x00000800;
const CLONE_THREAD = 0x00010000;
const CLONE_SYSVSEM = 0x00040000;
/** What pthread_create asks of clone: a thread sharing everything a thread shares. */
const THREAD_FLAGS = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM;
const EEXIST = 17;

/**
 * Seizes every thread of a process, each with its own return frame on its own stack
 * (RemoteTask.seize), and returns them main thread first. A thread still running can create
 * threads while the others are being seized, so /proc/PID/task is listed again until a listing
 * shows no thread that is not seized yet: then every thread is stopped and none can create
 * another. A thread that exits meanwhile is left out, and so is a main thread that had exited
 * (the first thread returned is then another). If one cannot be seized, every thread
 * seized so far is let go and the error is thrown.
 */
export function seizeThreads(ptrace: Ptrace, pid: number): RemoteTask[] {
  const seized = new Map<number, RemoteTask>();
  const layout: ProcessLayout = {};
  // A main thread that has exited (pthread_exit) stays a zombie while the others run: it never stops.
  const leaderExited = !isLiveThread(pid, pid) && threadIds(pid).some((tid) => tid !== pid && isLiveThread(pid, tid));
  try {
    for (;;) {
      const fresh = threadIds(pid).filter((tid) => !seized.has(tid) && !(leaderExited && tid === pid));
      if (fresh.length === 0) break;
      for (const tid of fresh) {
        try {
          seized.set(tid, RemoteTask.seize(ptrace, tid, layout));
        } catch (err) {
          // A thread other than the main one may exit at any time; the main thread may not.
          if (tid === pid || isLiveThread(pid, tid)) throw err;
        }
      }
    }
  } catch (err) {
    for (const task of seized.values()) releaseQuietly(task);
    throw err;
  }
  return [...seized.values()];
}

/**
 * A new thread with exactly `tid` in the process of `leader` (a task cr made for a restore, not
 * yet running): a remote clone3 with the flags pthread_create uses and set_tid. PTRACE_O_TRACECLONE,
 * which the leader has, attaches the thread before its first instruction; it is returned stopped,
 * every signal blocked, its registers still the leader's until the caller sets its own.
 */
export function createThread(ptrace: Ptrace, leader: RemoteTask, tid: number): RemoteTask {
  const wanted = Buffer.alloc(4);
  wanted.writeInt32LE(tid);
  const size = structSize(cloneArgs);
  const args = encodeStruct(cloneArgs, { flags: THREAD_FLAGS, set_tid: leader.put(wanted), set_tid_size: 1 });
  const result = leader.callWithEvent(SYS.clone3, [leader.put(args), BigInt(size)]);
  if (result.value < 0n) {
    const errno = Number(-result.value);
    if (errno === EEXIST) throw new TargetError(`cannot restore thread ${tid} of PID ${leader.pid}: a task with that id exists; stop it (or wait for it to exit) and try again`);
    throw new KernelError('clone3(CLONE_THREAD, set_tid)', errno, `thread ${tid} of pid ${leader.pid}`);
  }
  ptrace.waitNewChild(tid);
  ptrace.shareSyscallSite(leader.pid, tid);
  return new RemoteTask(tid, ptrace, ptrace.getRegs(tid), undefined, undefined, leader);
}

function releaseQuietly(task: RemoteTask): void {
  try {
    task.release();
  } catch {
    // Gone already: the kernel let it go.
  }
}
