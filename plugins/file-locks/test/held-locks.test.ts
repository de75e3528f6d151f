import type { FdInfo, FileLock } from '@cr/core';
import { describe, expect, it } from 'vitest';
import { heldLocks } from '../src/held-locks.js';

const lock = (kind: FileLock['kind'], inode: bigint, start = 0n, end: bigint | undefined = undefined): FileLock => ({
  kind,
  type: 'read',
  start,
  end,
  device: 'fe:00',
  inode,
  transient: false,
});
const fd = (n: number, locks: FileLock[]): FdInfo => ({ fd: n, link: `/f${n}`, pos: 0n, flags: 0, mntId: 1, kind: { kind: 'pipe', what: 'a pipe' }, locks });

describe('heldLocks', () => {
  it('keeps a record lock of the process once, on the lowest descriptor of its file', () => {
    const posix = lock('posix', 7n, 10n, 29n);
    expect(heldLocks([fd(3, [posix]), fd(5, [posix])], () => false)).toEqual([{ fd: 3, lock: posix }]);
  });

  it('keeps a flock once per open file description: a dup shows the same lock, another open of the file holds its own', () => {
    const shared = lock('flock', 7n);
    const descriptions = new Map([[3, 'a'], [4, 'a'], [6, 'b']]);
    const same = (a: number, b: number) => descriptions.get(a) === descriptions.get(b);
    expect(heldLocks([fd(3, [shared]), fd(4, [shared]), fd(6, [shared])], same)).toEqual([
      { fd: 3, lock: shared },
      { fd: 6, lock: shared },
    ]);
  });

  it('keeps different ranges of one file apart', () => {
    const a = lock('posix', 7n, 0n, 9n);
    const b = lock('posix', 7n, 100n);
    expect(heldLocks([fd(3, [a, b])], () => true)).toEqual([
      { fd: 3, lock: a },
      { fd: 3, lock: b },
    ]);
  });
});
