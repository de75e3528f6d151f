import { O_DIRECTORY, O_RDONLY } from 'node:constants';
import { closeSync, existsSync, openSync, statSync } from 'node:fs';
import {
  ERESTART_RESTARTBLOCK,
  Kernel,
  NAMESPACE_FLAGS,
  NamespaceHandle,
  PR_CAPBSET_DROP,
  PR_CAP_AMBIENT,
  PR_CAP_AMBIENT_RAISE,
  PR_SET_CHILD_SUBREAPER,
  PR_SET_DUMPABLE,
  PR_SET_KEEPCAPS,
  PR_SET_NO_NEW_PRIVS,
  PR_SET_PDEATHSIG,
  PR_SET_THP_DISABLE,
  PR_SET_TIMERSLACK,
  REGISTER_NAMES,
  SIGKILL,
  SIGSTOP,
  TargetError,
  UnsupportedError,
  type NamespaceKind,
  type Registers,
  type RemoteTask,
  type SignalAction,
} from '@cr/core';
import { ITIMERS, RLIMIT_NAMES, type Credentials, type LiveTaskRecord } from './record.js';
import { fromHex } from './hex.js';
import { createThreads } from './threads-restore.js';
import { installSeccompFilters, restoreOwnSeccomp, sharedSeccompFilters } from './seccomp.js';

const CAP_SYS_RESOURCE = 24;
const SETFSUID = { name: 'setfsuid', nr: 122 };
const SETFSGID = { name: 'setfsgid', nr: 123 };

/** Waits (up to `ms`) for a PID to be free: PID 1 may take seconds to reap an orphan that was killed. */
export async function awaitFreePid(kernel: Kernel, pid: number, ms = 5000): Promise<void> {
  for (let waited = 0; existsSync(`/proc/${pid}`); waited += 50) {
    if (waited >= ms) {
      let holder;
      try {
        holder = kernel.procfs.stat(pid);
      } catch {
        // Gone between the two looks: free after all.
        return;
      }
      if (holder.state === 'Z') {
        throw new TargetError(`cannot restore PID ${pid}: it is held by an exited process (${holder.comm}) that its parent, PID ${holder.ppid}, has not reaped yet`);
      }
      throw new TargetError(`cannot restore PID ${pid}: it is taken by a running process (${holder.comm}); stop that process first, or restore where the PID is free`);
    }
    await new Promise((ok) => setTimeout(ok, 50));
  }
}

/**
 * The seed of the process, with the saved PID, inside the restored namespaces: a child of cr, or
 * what `make` makes (a child of its restored parent).
 */
export function createTask(
  kernel: Kernel,
  pid: number,
  namespaces: Partial<Record<NamespaceKind, NamespaceHandle>>,
  make: () => RemoteTask = () => kernel.createSeed(pid),
): RemoteTask {
  const seed = make();
  try {
    for (const ns of Object.values(namespaces)) seed.enterNamespace(ns.fd, NAMESPACE_FLAGS[ns.kind]);
    return seed;
  } catch (err) {
    seed.kill();
    throw err;
  }
}

/**
 * The last steps of a restore, once memory and files are back: every piece of process state,
 * its session and group (`settle`), its other threads, then the credentials (after which cr
 * could no longer do privileged things in the task), then the registers. Returns the threads
 * made; the process and they run once released, all together.
 */
export function resumeTask(kernel: Kernel, task: RemoteTask, record: LiveTaskRecord, settle: () => void): RemoteTask[] {
  // A main thread that had exited only sets the process up, and exits when it runs (below).
  const mainLives = !record.mainThreadExited;
  task.together(() => {
    task.setName(record.comm);
    restoreSignalActions(task, record);
    if (mainLives) restoreAltStack(task, record.signals.altStack);
    restoreRlimits(kernel, task, record);
    restoreScheduling(kernel, task, record.scheduling);
    record.itimers.forEach(({ which, intervalUs, valueUs }) => task.setItimer(ITIMERS.indexOf(which), { intervalUs: BigInt(intervalUs), valueUs: BigInt(valueUs) }));
    task.personality(record.personality);
    task.umask(record.umask);
    if (record.root) changeRoot(task, record.root);
    changeDirectory(task, record.cwd);
  });
  settle();
  const { prctl } = record;
  const threads = task.together(() => {
    task.setPrctl('prctl(PR_SET_PDEATHSIG)', PR_SET_PDEATHSIG, prctl.pdeathsig);
    task.setPrctl('prctl(PR_SET_CHILD_SUBREAPER)', PR_SET_CHILD_SUBREAPER, prctl.childSubreaper ? 1 : 0);
    task.setPrctl('prctl(PR_SET_TIMERSLACK)', PR_SET_TIMERSLACK, prctl.timerSlackNs);
    task.setPrctl('prctl(PR_SET_THP_DISABLE)', PR_SET_THP_DISABLE, prctl.thpDisable ? 1 : 0);
    if (record.rseq && mainLives) task.registerRseq(fromHex(record.rseq.address), record.rseq.size, record.rseq.signature);
    for (const { siginfo, shared } of record.signals.pending) if (shared || mainLives) task.queueSignal(Buffer.from(siginfo, 'base64'), shared);
    task.setBlockedSignals(fromHex(record.signals.blocked));
    const sharedFilters = sharedSeccompFilters([record.seccomp, ...(record.threads ?? []).map((t) => t.seccomp)]);
    installSeccompFilters(task, sharedFilters);
    // Made while the process still has cr's credentials: choosing a thread id needs them.
    const made = createThreads(kernel, task, record);
    // Seccomp, credentials and no_new_privs are each thread's own: another thread's go in a round
    // trip of their own, the main thread's with the rest of its calls. Seccomp comes first:
    // installing a filter needs privileges the credentials may take away.
    const own = [
      { each: task, seccomp: record.seccomp, credentials: record.credentials },
      ...made.map((t) => ({ each: t.task, seccomp: t.record.seccomp, credentials: t.record.credentials ?? record.credentials })),
    ];
    for (const { each, seccomp, credentials } of own) {
      each.together(() => {
        restoreOwnSeccomp(each, seccomp, sharedFilters.length);
        restoreCredentials(kernel, each, credentials, prctl.keepCaps);
        if (prctl.noNewPrivs) each.setPrctl('prctl(PR_SET_NO_NEW_PRIVS)', PR_SET_NO_NEW_PRIVS, 1);
      });
    }
    // After the credentials: changing them resets it.
    task.setPrctl('prctl(PR_SET_DUMPABLE)', PR_SET_DUMPABLE, prctl.dumpable);
    return made;
  });
  task.dropScratch();
  if (mainLives) restoreRegisters(task, record);
  else task.exitThreadOnRelease();
  for (const thread of threads) {
    thread.task.dropScratch();
    restoreRegisters(thread.task, thread.record);
  }
  return threads.map((t) => t.task);
}

/** The registers and FPU state, with an interrupted sleep rebuilt; the last thing before the task runs. */
export function restoreRegisters(task: RemoteTask, saved: Pick<LiveTaskRecord, 'registers' | 'xstate' | 'restartSleep'>): void {
  const regs = Object.fromEntries(REGISTER_NAMES.map((name) => [name, fromHex(saved.registers[name])])) as Registers;
  if (saved.restartSleep) rebuildInterruptedSleep(task, saved.restartSleep, regs);
  task.setXstate(Buffer.from(saved.xstate, 'base64'));
  task.setRegs(regs);
}

export function restoreAltStack(task: RemoteTask, altStack: LiveTaskRecord['signals']['altStack']): void {
  // SS_ONSTACK only says the task was running on it; the kernel refuses it as a request.
  task.setAltStack({ sp: fromHex(altStack.sp), flags: altStack.flags & ~1, size: fromHex(altStack.size) });
}

/**
 * Every catchable signal, all at once: the saved disposition, or the default (the seed may have
 * inherited SIG_IGN, or flags with SIG_DFL, from whatever started it).
 */
function restoreSignalActions(task: RemoteTask, record: LiveTaskRecord): void {
  const saved = new Map(record.signals.actions.map((a) => [a.signal, a]));
  const actions = new Map<number, SignalAction>();
  for (let signal = 1; signal <= 64; signal++) {
    if (signal === SIGKILL || signal === SIGSTOP) continue;
    const a = saved.get(signal);
    actions.set(
      signal,
      a
        ? { handler: fromHex(a.handler), flags: fromHex(a.flags), restorer: fromHex(a.restorer), mask: fromHex(a.mask) }
        : { handler: 0n, flags: 0n, restorer: 0n, mask: 0n },
    );
  }
  task.setSignalActions(actions);
}

/** Each limit that differs from the seed's (/proc/PID/limits shows them all at once). */
function restoreRlimits(kernel: Kernel, task: RemoteTask, record: LiveTaskRecord): void {
  const seed = kernel.procfs.limits(task.pid);
  for (const { resource, soft, hard } of record.rlimits) {
    const index = RLIMIT_NAMES.indexOf(resource);
    const now = seed[index];
    if (now?.soft !== fromHex(soft) || now.hard !== fromHex(hard)) task.setRlimit(index, fromHex(soft), fromHex(hard));
  }
}

/**
 * The seed inherits cr's limits; a hard limit above cr's cannot be restored without
 * CAP_SYS_RESOURCE. Checked before anything is created.
 */
export function checkRlimits(kernel: Kernel, record: LiveTaskRecord): void {
  if (kernel.procfs.hasCapability(CAP_SYS_RESOURCE)) return;
  for (const { resource, hard } of record.rlimits) {
    const own = kernel.ownRlimit(RLIMIT_NAMES.indexOf(resource));
    if (fromHex(hard) > own.hard) {
      throw new UnsupportedError(
        `cannot restore RLIMIT_${resource.toUpperCase()} of PID ${record.pid}: its hard limit was ${limit(fromHex(hard))}, cr's is ${limit(own.hard)}, ` +
          'and raising a hard limit needs CAP_SYS_RESOURCE, which cr lacks here; raise the limit in the shell that runs cr restore (ulimit -H)',
      );
    }
  }
}

/** The working directory, and the root directory of a chrooted process, must still be there; checked before anything is created. */
export function checkDirectories(record: LiveTaskRecord): void {
  for (const [what, path] of [['root directory (chroot)', record.root], ['working directory', record.cwd]] as const) {
    if (path !== undefined && (!existsSync(path) || !statSync(path).isDirectory())) {
      throw new TargetError(`cannot restore PID ${record.pid}: its ${what} ${path} no longer exists or is not a directory; recreate it`);
    }
  }
}

const limit = (v: bigint) => (v === 0xffffffffffffffffn ? 'unlimited' : String(v));

/** Nice value, scheduling policy and CPU affinity of one thread, where they differ from the seed's (cr's). */
export function restoreScheduling(kernel: Kernel, task: RemoteTask, scheduling: LiveTaskRecord['scheduling']): void {
  const { nice, policy, rtPriority, affinity } = scheduling;
  const now = kernel.procfs.stat(task.pid);
  if (now.policy !== policy || now.rtPriority !== rtPriority) task.setScheduler(policy, rtPriority);
  if (now.nice !== nice) task.setNice(nice);
  if (kernel.procfs.status(task.pid).cpusAllowed !== affinity) task.setAffinity(cpuMask(affinity));
}

/** "ff,0000000f" (highest word first) → the bytes sched_setaffinity takes (lowest CPU first). */
function cpuMask(words: string): Buffer {
  const list = words.split(',').reverse();
  const mask = Buffer.alloc(list.length * 4);
  list.forEach((word, i) => mask.writeUInt32LE(Number.parseInt(word, 16), i * 4));
  return mask;
}

function changeDirectory(task: RemoteTask, cwd: string): void {
  withDirectory(cwd, (local) => task.enterDirectory(local));
}

/** chroot: the working directory is set after it. */
function changeRoot(task: RemoteTask, root: string): void {
  withDirectory(root, (local) => task.enterRoot(local));
}

function withDirectory(path: string, body: (fd: number) => void): void {
  const local = openSync(path, O_RDONLY | O_DIRECTORY);
  try {
    body(local);
  } finally {
    closeSync(local);
  }
}

/**
 * Groups, gids, then uids, keeping capabilities across the uid change, then the capability sets.
 * Skipped when the task had the credentials the seed has (cr's own).
 */
function restoreCredentials(kernel: Kernel, task: RemoteTask, c: Credentials, keepCaps: boolean): void {
  const now = kernel.procfs.status(task.pid);
  const caps = c.capabilities;
  const same =
    c.uids.every((v, i) => v === now.uids[i]) &&
    c.gids.every((v, i) => v === now.gids[i]) &&
    c.groups.length === now.groups.length &&
    c.groups.every((g, i) => g === now.groups[i]) &&
    fromHex(caps.effective) === now.capEffective &&
    fromHex(caps.permitted) === now.capPermitted &&
    fromHex(caps.inheritable) === now.capInheritable &&
    fromHex(caps.bounding) === now.capBounding &&
    fromHex(caps.ambient) === now.capAmbient;
  if (!same) {
    // Dropping from the bounding set needs CAP_SETPCAP, so it comes while the task is still root.
    const dropped = now.capBounding & ~fromHex(caps.bounding);
    for (let cap = 0; cap < 64; cap++) if ((dropped >> BigInt(cap)) & 1n) task.setPrctl(`prctl(PR_CAPBSET_DROP, ${cap})`, PR_CAPBSET_DROP, cap);
    task.setPrctl('prctl(PR_SET_KEEPCAPS)', PR_SET_KEEPCAPS, 1);
    task.setGroups(c.groups);
    // setres[ug]id make the filesystem id the effective one; a program may have set it apart.
    task.setresgid(c.gids[0], c.gids[1], c.gids[2]);
    task.syscall(SETFSGID, [c.gids[3]]);
    task.setresuid(c.uids[0], c.uids[1], c.uids[2]);
    task.syscall(SETFSUID, [c.uids[3]]);
    task.capset(fromHex(caps.effective), fromHex(caps.permitted), fromHex(caps.inheritable));
    // Ambient capabilities must be permitted and inheritable first.
    const ambient = fromHex(caps.ambient);
    for (let cap = 0; cap < 64; cap++) if ((ambient >> BigInt(cap)) & 1n) task.setPrctl(`prctl(PR_CAP_AMBIENT_RAISE, ${cap})`, PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap);
  }
  task.setPrctl('prctl(PR_SET_KEEPCAPS)', PR_SET_KEEPCAPS, keepCaps ? 1 : 0);
}

/**
 * Rebuilds the kernel's restart block of an interrupted relative sleep: the same clock_nanosleep
 * is started inside the task, asking for the time that was left (which the kernel had written to
 * the program's own `rem` buffer, restored with its memory) and interrupted at once. On release
 * the kernel then restarts the program's call through restart_syscall, as it would have done.
 */
function rebuildInterruptedSleep(task: RemoteTask, sleep: NonNullable<LiveTaskRecord['restartSleep']>, regs: Registers): void {
  const remainder = fromHex(sleep.remainder);
  const result = task.interruptedSleep(sleep.clockId, remainder, remainder);
  if (result === BigInt(-ERESTART_RESTARTBLOCK)) return;
  // The time left ran out before the interrupt landed: the program's sleep simply completed.
  regs.rax = result < 0n ? BigInt.asUintN(64, result) : 0n;
  regs.orig_rax = BigInt.asUintN(64, -1n);
}
