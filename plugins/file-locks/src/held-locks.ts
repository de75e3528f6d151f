import type { FdInfo, FileLock } from '@cr/core';

/** A lock and the descriptor it is taken again through. */
export interface HeldLock {
  fd: number;
  lock: FileLock;
}

/**
 * Each lock of a process once, on the lowest descriptor that shows it. fdinfo lists a record lock
 * of the process on every descriptor of its file, and a flock, OFD lock or lease on every
 * descriptor of its open file description; two descriptions of one file may each hold an equal
 * shared lock, which are two locks (`sameDescription` tells them apart).
 */
export function heldLocks(fds: readonly FdInfo[], sameDescription: (fd1: number, fd2: number) => boolean): HeldLock[] {
  const held: HeldLock[] = [];
  for (const { fd, locks } of fds) {
    for (const lock of locks) {
      const taken = held.some(
        (h) => sameLock(h.lock, lock) && (lock.kind === 'posix' || sameDescription(h.fd, fd)),
      );
      if (!taken) held.push({ fd, lock });
    }
  }
  return held;
}

function sameLock(a: FileLock, b: FileLock): boolean {
  return a.kind === b.kind && a.type === b.type && a.start === b.start && a.end === b.end && a.device === b.device && a.inode === b.inode;
}
