import type { FdInfo } from '@cr/core';
import type { PipeEnd } from './record.js';

const O_ACCMODE = 3;
const O_WRONLY = 1;
const O_CLOEXEC = 0o2000000;
const PIPE = /^pipe:\[(\d+)\]$/;

/**
 * A pipe of the checkpoint: its inode, the first process holding it with its descriptors on it,
 * the other processes holding it, and the end only processes outside the checkpoint hold, if any.
 */
export interface HeldPipe {
  inode: number;
  pid: number;
  ends: PipeEnd[];
  holders: { pid: number; ends: PipeEnd[] }[];
  outside?: PipeEnd['end'];
  /** The end nobody holds any more. */
  closed?: PipeEnd['end'];
}

/** One descriptor on a pipe end, as a record keeps it. */
function pipeEnd(info: FdInfo): PipeEnd {
  return {
    fd: info.fd,
    end: (info.flags & O_ACCMODE) === O_WRONLY ? 'write' : 'read',
    flags: info.flags & ~O_CLOEXEC & ~O_ACCMODE,
    closeOnExec: (info.flags & O_CLOEXEC) !== 0,
  };
}

/**
 * The pipes among the descriptors of process `pid`. A pipe whose read and write ends the
 * processes of the checkpoint (`tree`, parents first) hold between them (a self-pipe, a shell
 * pipeline) is wholly inside it: one object, of the first process holding it. A pipe with an end
 * here and the other only outside (`cmd | cat`) is kept as this process's end, to be given again
 * at restore, except stdio and the descriptors sharing stdio's open file (`2>&1`), which the files
 * plugin inherits as the shell's pipe; `sameOpenFile` tells the latter (kcmp). A pipe with an end
 * here whose other end no process holds at all (`heldElsewhere` says none outside the checkpoint
 * does: the writer of a command substitution that had just exited) is inside, with that end closed.
 */
export function heldPipes(
  pid: number,
  tree: readonly { pid: number; fds(): readonly FdInfo[] }[],
  sameOpenFile: (a: number, b: number) => boolean,
  heldElsewhere: (inode: number) => boolean,
): HeldPipe[] {
  const ends = new Map<number, Map<number, PipeEnd[]>>();
  for (const task of tree) {
    for (const [inode, infos] of pipeDescriptors(task.fds())) {
      const byPid = ends.get(inode) ?? new Map<number, PipeEnd[]>();
      byPid.set(task.pid, infos.map(pipeEnd));
      ends.set(inode, byPid);
    }
  }
  const own = pipeDescriptors(tree.find((t) => t.pid === pid)?.fds() ?? []);
  return [...own].flatMap(([inode, infos]): HeldPipe[] => {
    const byPid = [...ends.get(inode)!];
    const all = byPid.flatMap(([, list]) => list);
    if (all.some((e) => e.end === 'read') && all.some((e) => e.end === 'write')) {
      const [[first, firstEnds], ...others] = byPid as [[number, PipeEnd[]], ...[number, PipeEnd[]][]];
      return [{ inode, pid: first, ends: firstEnds, holders: others.map(([holder, list]) => ({ pid: holder, ends: list })) }];
    }
    const stdio = infos.filter((i) => i.fd <= 2);
    const given = infos.filter((i) => i.fd > 2 && !stdio.some((s) => sameOpenFile(s.fd, i.fd))).map(pipeEnd);
    if (given.length === 0) return [];
    const other = given[0]!.end === 'read' ? 'write' : 'read';
    return [{ inode, pid, ends: given, holders: [], ...(heldElsewhere(inode) ? { outside: other } : { closed: other }) }];
  });
}

/** A process's descriptors on pipes, by pipe inode. */
function pipeDescriptors(fds: readonly FdInfo[]): Map<number, FdInfo[]> {
  const byInode = new Map<number, FdInfo[]>();
  for (const info of fds) {
    const m = PIPE.exec(info.link);
    if (!m || !('what' in info.kind) || info.kind.kind !== 'pipe') continue;
    const inode = Number(m[1]);
    byInode.set(inode, [...(byInode.get(inode) ?? []), info]);
  }
  return byInode;
}
