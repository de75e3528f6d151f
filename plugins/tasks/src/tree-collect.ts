import { CollectAgainError, UnsupportedError, exitedLeaderThread, type Kernel, type ProcessStat } from '@cr/core';

/** One process of the tree as listed before it is frozen. */
export interface ListedTask {
  pid: number;
  ppid: number;
  comm: string;
  /** Its children when listed: compared with what it has once frozen. */
  children: number[];
  /** PIDs from the root of the tree down to this process ("4242 4250"): its `subtree` attribute. */
  lineage: string;
  zombie: boolean;
}

/**
 * The process `root` and, when `whole`, all its descendants, parents before children (breadth
 * first). A parent's children come in the order restore must create them: those that kept the
 * session the parent had before it called setsid first. Processes that vanish while listed are
 * left out: the freeze that follows finds out whether that mattered.
 */
export function listTree(kernel: Kernel, root: number, whole: boolean): ListedTask[] {
  const listed: ListedTask[] = [];
  const queue: { pid: number; lineage: string }[] = [{ pid: root, lineage: String(root) }];
  for (let next = queue.shift(); next; next = queue.shift()) {
    const stat = statOrUndefined(kernel, next.pid);
    if (!stat) continue;
    // A main thread that exited while other threads run on leaves a live process, read through one of them.
    const zombie = stat.state === 'Z' && exitedLeaderThread(next.pid) === undefined;
    const children = whole && !zombie ? childrenOf(kernel, next.pid) : [];
    listed.push({ pid: next.pid, ppid: stat.ppid, comm: stat.comm, children, lineage: next.lineage, zombie });
    const stats = children.flatMap((pid) => statOrUndefined(kernel, pid) ?? []);
    for (const child of creationOrder(stat, stats)) queue.push({ pid: child.pid, lineage: `${next.lineage} ${child.pid}` });
  }
  return listed;
}

/** Children that stayed in their session-leader parent's old session are made before it calls setsid. */
function creationOrder(parent: ProcessStat, children: ProcessStat[]): ProcessStat[] {
  const keptOld = (c: ProcessStat) => parent.sid === parent.pid && c.sid !== parent.pid && c.sid !== c.pid;
  return [...children.filter(keptOld), ...children.filter((c) => !keptOld(c))];
}

/** The stat of a process, or undefined when it is gone. */
export function statOrUndefined(kernel: Kernel, pid: number): ProcessStat | undefined {
  try {
    return kernel.procfs.stat(pid);
  } catch {
    return undefined;
  }
}

function childrenOf(kernel: Kernel, pid: number): number[] {
  try {
    return kernel.procfs.children(pid).sort((a, b) => a - b);
  } catch {
    return [];
  }
}

/**
 * Checks, once `pid` is frozen (it can fork no more, and its children can only exit), that it is
 * still the process that was listed and has the children that were listed; otherwise the tree
 * changed between the listing and the freeze, and cr lists and freezes it again.
 */
export function checkFrozenTask(kernel: Kernel, task: ListedTask, isRoot: boolean): void {
  const stat = kernel.procfs.stat(task.pid);
  if (!isRoot && stat.ppid !== task.ppid) {
    throw new CollectAgainError(`PID ${task.pid} is no longer the child of PID ${task.ppid} that was listed`);
  }
  const now = childrenOf(kernel, task.pid);
  const appeared = now.filter((pid) => !task.children.includes(pid));
  const vanished = task.children.filter((pid) => !now.includes(pid));
  if (appeared.length > 0) throw new CollectAgainError(`PID ${task.pid} (${task.comm}) made child ${appeared.join(', ')} meanwhile`);
  if (vanished.length > 0) throw new CollectAgainError(`child ${vanished.join(', ')} of PID ${task.pid} (${task.comm}) was reaped meanwhile`);
}

/**
 * After a failed seize of a listed child whose parent is frozen: a child that exited meanwhile is
 * a zombie now (its parent cannot reap it), or gone when its parent lets children be reaped at
 * once (SIGCHLD ignored); any other failure is the seize's own.
 */
export function exitedMeanwhile(kernel: Kernel, task: ListedTask, err: unknown): 'zombie' {
  const stat = statOrUndefined(kernel, task.pid);
  if (stat?.state === 'Z' && stat.ppid === task.ppid) return 'zombie';
  if (!stat || stat.ppid !== task.ppid) throw new CollectAgainError(`PID ${task.pid} (${task.comm}) exited while cr froze the tree`);
  throw err;
}

/**
 * Refuses, before `task` is stopped, a child that shares its address space (vfork, or clone with
 * CLONE_VM): a parent in vfork waits in the kernel until the child execs or exits, and does not
 * stop for cr meanwhile.
 */
export function refuseSharedMemoryChildren(kernel: Kernel, task: ListedTask): void {
  for (const child of task.children) {
    let shared: string[];
    try {
      shared = kernel.sharedBetween(task.pid, child);
    } catch {
      continue; // gone meanwhile: the freeze finds out whether that matters
    }
    if (shared.includes('vm')) {
      const comm = statOrUndefined(kernel, child)?.comm ?? '?';
      throw new UnsupportedError(
        `PID ${task.pid} (${task.comm}) shares its memory with its child PID ${child} (${comm}), as after vfork() or clone(CLONE_VM); cr cannot checkpoint two processes in one address space yet: checkpoint once the child has called exec or exited`,
      );
    }
  }
}
