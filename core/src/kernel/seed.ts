import { TargetError } from '../errors.js';
import { KernelError } from './kernel-error.js';
import type { Libc } from './libc.js';
import { PTRACE_O_EXITKILL, PTRACE_O_TRACECLONE, PTRACE_O_TRACESYSGOOD, SEED_OPTIONS, type Ptrace } from './ptrace.js';
import { RemoteTask } from './remote-task.js';
import { cloneArgs, encodeStruct, structSize } from './structs.js';
import { CLONE_FILES, CLONE_FS, CLONE_PARENT, PR_SET_CHILD_SUBREAPER, SIGCHLD, SYS } from './syscalls.js';

const EEXIST = 17;

/**
 * Makes the process a restore starts from: a task with exactly the saved PID, stopped under
 * ptrace, with no open files and no rseq registration, whose address space is whatever the
 * launcher had (the mm plugin replaces it wholesale). It is a child of cr, so cr can wait for it.
 *
 * How: cr starts `sleep` with posix_spawn (Libc.spawnQuiet: no shell, no libuv), so the
 * launcher is cr's child without libuv knowing it (libuv would reap its ptrace stops). Inside it,
 * a remote clone3(CLONE_PARENT, set_tid = PID) makes the seed a second child of cr;
 * PTRACE_O_TRACECLONE attaches it from its first instruction. The launcher is then killed and
 * reaped, whatever happened. cr is a child subreaper from here on: a restored process tree whose
 * root dies leaves its orphans to cr, which reaps them (tree-restore.ts).
 */
export function createSeed(libc: Libc, ptrace: Ptrace, pid: number): RemoteTask {
  libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 'prctl(PR_SET_CHILD_SUBREAPER)');
  const launcherPid = libc.spawnQuiet('sleep', ['sleep', '86400']);
  let workArea: bigint | undefined;
  try {
    const launcher = new RemoteTask(launcherPid, ptrace, ptrace.stop(launcherPid, PTRACE_O_TRACESYSGOOD | PTRACE_O_TRACECLONE | PTRACE_O_EXITKILL));
    cloneWithPid(ptrace, launcher, pid, CLONE_PARENT, 0);
    workArea = launcher.workAreaForChild();
  } finally {
    ptrace.kill(launcherPid);
  }
  return adoptSeed(ptrace, pid, true, workArea);
}

/**
 * A child of a seed (or of its parent, with CLONE_PARENT) with exactly `pid`: a fork made inside
 * the stopped seed, with SIGCHLD as its exit signal as after fork(), so that the restored parent
 * waits for it as for any child. PTRACE_O_TRACEFORK attaches it from its first instruction, with
 * the seed's options (PTRACE_O_EXITKILL among them).
 */
export function createChildSeed(ptrace: Ptrace, parent: RemoteTask, pid: number, fromParentOf: boolean, share: readonly ('files' | 'fs')[]): RemoteTask {
  ptrace.setOptions(parent.pid, SEED_OPTIONS);
  const shareFlags = (share.includes('files') ? CLONE_FILES : 0) | (share.includes('fs') ? CLONE_FS : 0);
  // clone3 takes no exit signal with CLONE_PARENT: the child gets the caller's, which is SIGCHLD.
  cloneWithPid(ptrace, parent, pid, (fromParentOf ? CLONE_PARENT : 0) | shareFlags, fromParentOf ? 0 : SIGCHLD);
  // A table shared with the parent is the parent's: the files already closed there, or being restored.
  return adoptSeed(ptrace, pid, !share.includes('files'), parent.workAreaForChild());
}

/** clone3(set_tid = pid) inside the stopped task `in`, and the wait for the new task's first stop. */
function cloneWithPid(ptrace: Ptrace, task: RemoteTask, pid: number, flags: number, exitSignal: number): void {
  const tid = Buffer.alloc(4);
  tid.writeInt32LE(pid);
  const size = structSize(cloneArgs);
  const args = encodeStruct(cloneArgs, { flags, exit_signal: exitSignal, set_tid: task.put(tid), set_tid_size: 1 });
  const result = task.callWithEvent(SYS.clone3, [task.put(args), BigInt(size)]);
  if (result.value < 0n) {
    const errno = Number(-result.value);
    if (errno === EEXIST) throw new TargetError(`cannot restore PID ${pid}: a process with that PID exists; stop it (or wait for it to exit) and try again`);
    throw new KernelError('clone3(set_tid)', errno, `pid ${pid}`);
  }
  ptrace.waitNewChild(pid);
}

/**
 * The new task as a seed: no rseq registration, no open files (unless `closeFiles` is false: a
 * table it shares). Its copy of the work area of the task it was forked in (`workArea`, mapped
 * there by the clone's own arguments) becomes its own.
 */
function adoptSeed(ptrace: Ptrace, pid: number, closeFiles: boolean, workArea: bigint | undefined): RemoteTask {
  const seed = new RemoteTask(pid, ptrace, ptrace.getRegs(pid), undefined, workArea);
  try {
    const rseq = ptrace.rseqConfiguration(pid);
    // One round trip for both (a seed is made for every process of a tree, a child twice).
    seed.together(() => {
      if (rseq) seed.unregisterRseq(rseq.address, rseq.size, rseq.signature);
      if (closeFiles) seed.closeRange(0, 0x7fffffff);
    });
    return seed;
  } catch (err) {
    seed.kill();
    throw err;
  }
}
