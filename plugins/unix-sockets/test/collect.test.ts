import type { FdInfo, UnixSocketDiag } from '@cr/core';
import { describe, expect, it } from 'vitest';
import { groupsOf, socketsOfTree } from '../src/collect.js';

const socket = (fd: number, inode: number, flags = 0): FdInfo => ({ fd, link: `socket:[${inode}]`, pos: 0n, flags, mntId: 0, kind: { kind: 'socket', what: `socket:[${inode}]` }, locks: [] });
const diag = (inode: number, over: Partial<UnixSocketDiag>): UnixSocketDiag => ({ inode, type: 1, state: 1, peer: 0, queued: 0, backlog: 0, shutdown: 0, ...over });
const task = (pid: number, fds: FdInfo[]) => ({ pid, fds: () => fds });

describe('unix-sockets collect', () => {
  it('a socketpair parent and child share is one object under the same id from either process, with every holder of each socket', () => {
    const diags = new Map([
      [100, diag(100, { peer: 101 })],
      [101, diag(101, { peer: 100 })],
      [102, diag(102, { type: 2, peer: 103 })],
      [103, diag(103, { type: 2, state: 7 })],
    ]);
    // The parent kept fd 3 and closed fd 4; the child has both (inherited), and a datagram socket connected one way.
    const tree = [task(10, [socket(3, 100, 0o4000)]), task(11, [socket(3, 100), socket(4, 101), socket(5, 102), socket(6, 103)])];
    const held = socketsOfTree(tree, diags);
    const ofParent = groupsOf(10, held, [10, 11]);
    const ofChild = groupsOf(11, held, [10, 11]);
    expect(ofParent.map((g) => g.id)).toEqual(['10:3']);
    expect(ofChild.map((g) => g.id)).toEqual(['10:3', '11:5', '11:6']);
    const pair = ofChild[0]!;
    expect(pair.sockets.map((s) => s.inode)).toEqual([100, 101]);
    expect(pair.sockets[0]!.holders).toEqual([
      { pid: 10, fds: [{ fd: 3, closeOnExec: false }], statusFlags: 0o4000 },
      { pid: 11, fds: [{ fd: 3, closeOnExec: false }], statusFlags: 0 },
    ]);
  });

  it('a stream socket whose peer was closed (no listed peer, shut both ways) is told from one connected outside', () => {
    const diags = new Map([
      [200, diag(200, { peer: 0, shutdown: 3 })],
      [201, diag(201, { peer: 999 })],
    ]);
    const held = socketsOfTree([task(10, [socket(3, 200), socket(4, 201)])], diags);
    expect(held.get(200)!.peerGone).toBe(true);
    expect(held.get(201)!.peerGone).toBe(false);
  });
});
