import { isZombieRecord, type TasksRecord } from '@cr/plugin-tasks';

/** A saved process and the saved processes whose parent it was. */
export interface ProcessNode {
  pid: number;
  ppid: number;
  /** Its effective uid; none for a zombie (an exited process keeps no credentials cr reads). */
  uid: number | undefined;
  comm: string;
  children: ProcessNode[];
}

/**
 * The processes as a forest: children under the saved process with their ppid, by PID. A process
 * whose parent was not saved is a root, and so is one whose parents lead back to itself (an
 * edited image can say so), so that every process is shown once.
 */
export function processTree(tasks: readonly TasksRecord[]): ProcessNode[] {
  const nodes = new Map(tasks.map((t) => [t.pid, { pid: t.pid, ppid: t.ppid, uid: isZombieRecord(t) ? undefined : t.credentials.uids[1], comm: t.comm, children: [] as ProcessNode[] }]));
  const inCycle = (pid: number) => {
    const seen = new Set<number>();
    for (let at = nodes.get(pid); at; at = nodes.get(at.ppid)) {
      if (seen.has(at.pid)) return seen.has(pid) && at.pid === pid;
      seen.add(at.pid);
    }
    return false;
  };
  const roots: ProcessNode[] = [];
  for (const node of [...nodes.values()].sort((a, b) => a.pid - b.pid)) {
    const parent = inCycle(node.pid) ? undefined : nodes.get(node.ppid);
    (parent ? parent.children : roots).push(node);
  }
  return roots;
}
