import type { Kernel, SharedTable } from '@cr/core';

/** Tables a process can share with its parent that restore gives back, by the clone flag it is made with. */
export type SharedWithParent = 'files' | 'fs';

/** A live process of a tree, parents before children. */
export interface SharingTask {
  pid: number;
  ppid: number;
  comm: string;
}

const NAMES: Record<SharedTable, string> = {
  vm: 'memory (CLONE_VM)',
  files: 'fd table (CLONE_FILES)',
  fs: 'working directory, root and umask (CLONE_FS)',
  sighand: 'signal handlers (CLONE_SIGHAND)',
};

/** What the processes of a tree share with their parents. */
export interface TableSharing {
  /** By PID: the tables it shares with its parent, to restore. */
  shares: Map<number, SharedWithParent[]>;
  /** One line each, naming the process. */
  refusals: string[];
}

/**
 * For every process of a tree, the tables it shares with its parent (a process made by clone()
 * with CLONE_FILES or CLONE_FS), found by sorting the processes by kcmp(2)'s order of each table,
 * so that those that share one are next to each other. Restore makes a process with the flags of
 * what it shares with its parent, so a table is restorable when every process holding it but the
 * topmost is a child of another holder. `tasks` come parents first, the root first, whose
 * parent is not saved. The refusals name what cannot be restored shared: signal handlers
 * (CLONE_SIGHAND, which comes with CLONE_VM), a table shared with another process than the
 * parent, or with the root's parent, which a restore would split.
 */
export function tableSharing(kernel: Kernel, tasks: readonly SharingTask[]): TableSharing {
  const shares = new Map<number, SharedWithParent[]>(tasks.map((t) => [t.pid, []]));
  const refusals: string[] = [];
  const byPid = new Map(tasks.map((t) => [t.pid, t]));
  const who = (t: SharingTask) => `PID ${t.pid} (${t.comm})`;
  const root = tasks[0];
  if (root && root.ppid > 0) {
    const shared = sharedOrNone(kernel, root.ppid, root.pid).filter((kind) => kind !== 'vm');
    if (shared.length > 0) refusals.push(`${who(root)} shares its ${shared.map((k) => NAMES[k]).join(', ')} with its parent PID ${root.ppid}, which is not checkpointed; checkpoint the parent with it`);
  }
  if (tasks.length < 2) return { shares, refusals };
  for (const kind of ['files', 'fs', 'sighand'] as const) {
    const order = tasks.map((t) => t.pid);
    const sorted = [...order].sort((a, b) => kernel.compareTables(a, b, kind));
    for (let i = 0; i < sorted.length; ) {
      let j = i + 1;
      while (j < sorted.length && kernel.compareTables(sorted[i]!, sorted[j]!, kind) === 0) j++;
      const group = sorted.slice(i, j).sort((a, b) => order.indexOf(a) - order.indexOf(b));
      i = j;
      if (group.length < 2) continue;
      const members = new Set(group);
      for (const pid of group.slice(1)) {
        const task = byPid.get(pid)!;
        const other = byPid.get(group[0]!)!;
        if (kind === 'sighand') {
          refusals.push(`${who(task)} shares its ${NAMES.sighand} with ${who(other)}; CLONE_SIGHAND comes with CLONE_VM (one address space for two processes), which cr cannot restore`);
        } else if (!members.has(task.ppid)) {
          refusals.push(`${who(task)} shares its ${NAMES[kind]} with ${who(other)}, not with its parent PID ${task.ppid}; cr restores a table shared only by a parent and the children it made with clone()`);
        } else {
          shares.get(pid)!.push(kind);
        }
      }
    }
  }
  return { shares, refusals };
}

function sharedOrNone(kernel: Kernel, pid1: number, pid2: number): SharedTable[] {
  try {
    return kernel.sharedBetween(pid1, pid2);
  } catch {
    return []; // the parent is gone, or cr may not look at it: nothing shared that cr could keep
  }
}
