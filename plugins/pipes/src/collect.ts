import type { FdInfo } from '@cr/core';
import type { PipeEnd } from './record.js';

const O_ACCMODE = 3;
const O_WRONLY = 1;
const O_CLOEXEC = 0o2000000;
const PIPE = /^pipe:\[(\d+)\]$/;

/** A pipe of one process: its inode and every descriptor the process has on it. */
export interface HeldPipe {
  inode: number;
  ends: PipeEnd[];
}

/**
 * The pipes among a process's descriptors whose read end and write end it both holds (a self-pipe,
 * a pipe to itself made before a fork that never came): those are wholly inside the checkpoint. A
 * pipe with only one end here leads outside it, and is stdio to inherit or a descriptor to refuse,
 * as the files plugin decides.
 */
export function heldPipes(fds: readonly FdInfo[]): HeldPipe[] {
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
  return [...byInode]
    .filter(([, ends]) => ends.some((e) => e.end === 'read') && ends.some((e) => e.end === 'write'))
    .map(([inode, ends]) => ({ inode, ends }));
}
