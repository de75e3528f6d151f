import type { FdInfo } from '@cr/core';
import { describe, expect, it } from 'vitest';
import { heldPipes } from '../src/collect.js';

const O_WRONLY = 1;
const O_NONBLOCK = 0o4000;
const O_CLOEXEC = 0o2000000;

const fd = (n: number, link: string, flags: number, kind: FdInfo['kind'] = { kind: 'pipe', what: `a pipe (${link})` }): FdInfo => ({ fd: n, link, pos: 0n, flags, mntId: 1, kind, locks: [] });

describe('heldPipes', () => {
  it('keeps the pipes whose read and write ends the process both holds, with every fd on them', () => {
    const pipes = heldPipes([
      fd(0, 'pipe:[10]', 0),
      fd(3, 'pipe:[20]', O_NONBLOCK | O_CLOEXEC),
      fd(4, 'pipe:[20]', O_WRONLY | O_NONBLOCK),
      fd(7, 'pipe:[20]', O_NONBLOCK),
    ]);
    expect(pipes).toEqual([
      {
        inode: 20,
        ends: [
          { fd: 3, end: 'read', flags: O_NONBLOCK, closeOnExec: true },
          { fd: 4, end: 'write', flags: O_NONBLOCK, closeOnExec: false },
          { fd: 7, end: 'read', flags: O_NONBLOCK, closeOnExec: false },
        ],
      },
    ]);
  });

  it('leaves out a pipe with only one end here (it leads outside), and what only looks like a pipe by name', () => {
    expect(heldPipes([fd(0, 'pipe:[10]', 0), fd(5, 'pipe:[30]', O_WRONLY), fd(6, 'pipe:[30]', 0, { kind: 'fifo', what: 'the named pipe /tmp/f' })])).toEqual([]);
  });
});
