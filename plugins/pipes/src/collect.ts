import type { FdInfo } from '@cr/core';
import type { PipeEnd } from './record.js';

const O_ACCMODE = 3;
const O_WRONLY = 1;
const O_CLOEXEC = 0o2000000;
const PIPE = /^pipe:\[(\d+)\]$/;

/** A pipe of one process: its inode, every descriptor the process has on it, and the end it lacks, if any. */
export interface HeldPipe {
  inode: number;
  ends: PipeEnd[];
  /** The end only processes outside the checkpoint hold. */
  outside?: PipeEnd['end'];
}

/** One descriptor on a pipe end, as a record keeps it. */
export function pipeEnd(info: FdInfo): PipeEnd {
  return {
    fd: info.fd,
    end: (info.flags & O_ACCMODE) === O_WRONLY ? 'write' : 'read',
    flags: info.flags & ~O_CLOEXEC & ~O_ACCMODE,
    closeOnExec: (info.flags & O_CLOEXEC) !== 0,
  };
}

/**
 * The pipes among a process's descriptors (`pipe:[INODE]` on pipefs). A pipe whose read and write
 * ends the process both holds (a self-pipe) is wholly inside the checkpoint. A pipe with one end
 * here leads outside (`cmd | cat`): its descriptors are kept as an end to be given again at
 * restore, except stdio and the descriptors sharing stdio's open file (`2>&1`), which the files
 * plugin inherits as the shell's pipe; `sameOpenFile` tells the latter (kcmp).
 */
export function heldPipes(fds: readonly FdInfo[], sameOpenFile: (a: number, b: number) => boolean): HeldPipe[] {
  const byInode = new Map<number, FdInfo[]>();
  for (const info of fds) {
    const m = PIPE.exec(info.link);
    if (!m || !('what' in info.kind) || info.kind.kind !== 'pipe') continue;
    const inode = Number(m[1]);
    byInode.set(inode, [...(byInode.get(inode) ?? []), info]);
  }
  const pipes: HeldPipe[] = [];
  for (const [inode, infos] of byInode) {
    const ends = infos.map(pipeEnd);
    if (ends.some((e) => e.end === 'read') && ends.some((e) => e.end === 'write')) {
      pipes.push({ inode, ends });
      continue;
    }
    const stdio = infos.filter((i) => i.fd <= 2);
    const own = infos.filter((i) => i.fd > 2 && !stdio.some((s) => sameOpenFile(s.fd, i.fd))).map(pipeEnd);
    if (own.length > 0) pipes.push({ inode, ends: own, outside: own[0]!.end === 'read' ? 'write' : 'read' });
  }
  return pipes;
}
