import type { FdInfo } from '@cr/core';
import type { PipeEnd } from './record.js';

const O_ACCMODE = 3;
const O_WRONLY = 1;
const O_CLOEXEC = 0o2000000;
const PIPE = /^pipe:\[(\d+)\]$/;

/** A pipe of the checkpoint: its inode, the first process holding it with its descriptors on it, and the other processes holding it. */
export interface HeldPipe {
  inode: number;
  pid: number;
  ends: PipeEnd[];
  holders: { pid: number; ends: PipeEnd[] }[];
}

/**
 * The pipes among the descriptors of process `pid` whose read end and write end the processes
 * of the checkpoint (`tree`, parents first) hold between them: a self-pipe, or a pipe between the
 * processes of a shell pipeline. Those are wholly inside the checkpoint, and are one object each,
 * of the first process holding them. A pipe with an end outside the checkpoint is stdio to
 * inherit or a descriptor to refuse, as the files plugin decides.
 */
export function heldPipes(pid: number, tree: readonly { pid: number; fds(): readonly FdInfo[] }[]): HeldPipe[] {
  const ends = new Map<number, Map<number, PipeEnd[]>>();
  for (const task of tree) {
    for (const [inode, list] of pipeEnds(task.fds())) {
      const byPid = ends.get(inode) ?? new Map<number, PipeEnd[]>();
      byPid.set(task.pid, list);
      ends.set(inode, byPid);
    }
  }
  return [...pipeEnds(tree.find((t) => t.pid === pid)?.fds() ?? []).keys()].flatMap((inode) => {
    const byPid = [...ends.get(inode)!];
    const all = byPid.flatMap(([, list]) => list);
    if (!all.some((e) => e.end === 'read') || !all.some((e) => e.end === 'write')) return [];
    const [[first, firstEnds], ...others] = byPid as [[number, PipeEnd[]], ...[number, PipeEnd[]][]];
    return [{ inode, pid: first, ends: firstEnds, holders: others.map(([holder, list]) => ({ pid: holder, ends: list })) }];
  });
}

/** A process's descriptors on pipes, by pipe inode. */
function pipeEnds(fds: readonly FdInfo[]): Map<number, PipeEnd[]> {
  const byInode = new Map<number, PipeEnd[]>();
  for (const info of fds) {
    const m = PIPE.exec(info.link);
    if (!m || !('what' in info.kind) || info.kind.kind !== 'pipe') continue;
    const inode = Number(m[1]);
    const end: PipeEnd = {
      fd: info.fd,
      end: (info.flags & O_ACCMODE) === O_WRONLY ? 'write' : 'read',
      flags: info.flags & ~O_CLOEXEC & ~O_ACCMODE,
      closeOnExec: (info.flags & O_CLOEXEC) !== 0,
    };
    byInode.set(inode, [...(byInode.get(inode) ?? []), end]);
  }
  return byInode;
}
