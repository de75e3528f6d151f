import type { FdInfo } from '@cr/core';
import { describe, expect, it } from 'vitest';
import { heldPipes } from '../src/collect.js';

const O_WRONLY = 1;
const O_NONBLOCK = 0o4000;
const O_CLOEXEC = 0o2000000;

const fd = (n: number, link: string, flags: number, kind: FdInfo['kind'] = { kind: 'pipe', what: `a pipe (${link})` }): FdInfo => ({ fd: n, link, pos: 0n, flags, mntId: 1, kind, locks: [] });
/** Descriptors that share one open file description, as kcmp would say: pairs of fds. */
const sharing = (...pairs: [number, number][]) => (a: number, b: number) => pairs.some(([x, y]) => (x === a && y === b) || (x === b && y === a));

/** Whether a process outside the checkpoint holds the pipe: yes for these inodes. */
const outside =
  (...inodes: number[]) =>
  (inode: number) =>
    inodes.includes(inode);

/** A checkpoint of processes with these descriptors, parents first. */
const tree = (...tasks: [number, FdInfo[]][]) => tasks.map(([pid, fds]) => ({ pid, fds: () => fds }));

describe('heldPipes', () => {
  it('keeps the pipes whose read and write ends the process both holds, with every fd on them', () => {
    const pipes = heldPipes(
      1,
      tree([1, [fd(0, 'pipe:[10]', 0), fd(3, 'pipe:[20]', O_NONBLOCK | O_CLOEXEC), fd(4, 'pipe:[20]', O_WRONLY | O_NONBLOCK), fd(7, 'pipe:[20]', O_NONBLOCK)]]),
      sharing([3, 7]),
      outside(),
    );
    expect(pipes).toEqual([
      {
        inode: 20,
        pid: 1,
        holders: [],
        ends: [
          { fd: 3, end: 'read', flags: O_NONBLOCK, closeOnExec: true },
          { fd: 4, end: 'write', flags: O_NONBLOCK, closeOnExec: false },
          { fd: 7, end: 'read', flags: O_NONBLOCK, closeOnExec: false },
        ],
      },
    ]);
  });

  it('keeps a pipe with one end here as that end, the other being outside', () => {
    expect(heldPipes(1, tree([1, [fd(5, 'pipe:[30]', O_WRONLY | O_NONBLOCK), fd(6, 'pipe:[30]', O_WRONLY)]]), sharing(), outside(30))).toEqual([
      {
        inode: 30,
        pid: 1,
        ends: [
          { fd: 5, end: 'write', flags: O_NONBLOCK, closeOnExec: false },
          { fd: 6, end: 'write', flags: 0, closeOnExec: false },
        ],
        holders: [],
        outside: 'read',
      },
    ]);
  });

  it('leaves stdio leading outside, and its dups, to the files plugin, but not another open of the same pipe', () => {
    const fds = [fd(0, 'pipe:[10]', 0), fd(1, 'pipe:[11]', O_WRONLY), fd(4, 'pipe:[11]', O_WRONLY), fd(5, 'pipe:[11]', O_WRONLY)];
    expect(heldPipes(1, tree([1, fds]), sharing([1, 4]), outside(11))).toEqual([{ inode: 11, pid: 1, ends: [{ fd: 5, end: 'write', flags: 0, closeOnExec: false }], holders: [], outside: 'read' }]);
  });

  it('leaves out what only looks like a pipe by name', () => {
    expect(heldPipes(1, tree([1, [fd(6, 'pipe:[30]', 0, { kind: 'fifo', what: 'the named pipe /tmp/f' })]]), sharing(), outside())).toEqual([]);
  });

  it('keeps a pipe between two processes of the checkpoint as one pipe of the first holder, with the other as a holder', () => {
    const pipeline = tree([1, [fd(5, 'pipe:[30]', O_WRONLY)]], [2, [fd(1, 'pipe:[30]', O_WRONLY)]], [3, [fd(0, 'pipe:[30]', 0)]]);
    const held = { inode: 30, pid: 1, ends: [{ fd: 5, end: 'write', flags: 0, closeOnExec: false }] };
    const holders = [
      { pid: 2, ends: [{ fd: 1, end: 'write', flags: 0, closeOnExec: false }] },
      { pid: 3, ends: [{ fd: 0, end: 'read', flags: 0, closeOnExec: false }] },
    ];
    for (const pid of [1, 2, 3]) expect(heldPipes(pid, pipeline, sharing(), outside())).toEqual([{ ...held, holders }]);
  });

  it('keeps a pipe whose other end no process holds any more as that end, the other closed', () => {
    expect(heldPipes(1, tree([1, [fd(3, 'pipe:[40]', 0)]]), sharing(), outside())).toEqual([
      { inode: 40, pid: 1, ends: [{ fd: 3, end: 'read', flags: 0, closeOnExec: false }], holders: [], closed: 'write' },
    ]);
  });
});
