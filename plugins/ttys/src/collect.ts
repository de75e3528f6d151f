import { O_CLOEXEC, type FdInfo, type Kernel, type PtyEnd } from '@cr/core';
import type { TaskTree } from '@cr/plugin-tasks';
import type { PtyDescription } from './record.js';

/** One descriptor of a process of the checkpoint on a Unix98 pty. */
export interface PtyDescriptor {
  pid: number;
  info: FdInfo;
  end: PtyEnd;
}

/** The ptys the processes of one checkpoint hold: every descriptor on one, and which pairs' masters are among them. */
export interface TreePtys {
  descriptors: PtyDescriptor[];
  masters: Set<number>;
}

const scanned = new WeakMap<TaskTree, TreePtys>();

/**
 * The pty descriptors of every process of the tree, read once per checkpoint (each process's
 * collect asks): terminals by their device number, a slave counted only on the devpts instance
 * at /dev/pts, where restore makes pairs.
 */
export function treePtys(kernel: Kernel, tree: TaskTree): TreePtys {
  const known = scanned.get(tree);
  if (known) return known;
  const devpts = kernel.ttys.devptsDevice();
  const descriptors: PtyDescriptor[] = [];
  for (const task of tree.tasks) {
    if (task.zombie) continue;
    for (const info of task.fds()) {
      if (!('what' in info.kind) || info.kind.kind !== 'terminal') continue;
      const end = kernel.ttys.ptyEnd(task.pid, info.fd);
      if (end && (end.end === 'master' || end.devpts === devpts)) descriptors.push({ pid: task.pid, info, end });
    }
  }
  const found = { descriptors, masters: new Set(descriptors.filter((d) => d.end.end === 'master').map((d) => d.end.index)) };
  scanned.set(tree, found);
  return found;
}

/** The open file descriptions among `descriptors` (one pair's), told apart by kcmp across processes, first holder first. */
export function ptyDescriptions(kernel: Kernel, descriptors: readonly PtyDescriptor[]): (PtyDescription & { first: PtyDescriptor })[] {
  const found: (PtyDescription & { first: PtyDescriptor })[] = [];
  for (const d of descriptors) {
    const number = { fd: d.info.fd, closeOnExec: (d.info.flags & O_CLOEXEC) !== 0 };
    const same = found.find((f) => f.end === d.end.end && kernel.sameOpenFile(f.first.pid, f.first.info.fd, d.pid, d.info.fd));
    if (!same) {
      found.push({ end: d.end.end, flags: d.info.flags & ~O_CLOEXEC, holders: [{ pid: d.pid, fds: [number] }], first: d });
      continue;
    }
    const holder = same.holders.find((h) => h.pid === d.pid);
    if (holder) holder.fds.push(number);
    else same.holders.push({ pid: d.pid, fds: [number] });
  }
  return found;
}
