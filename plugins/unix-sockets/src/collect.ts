import { SOCK_DGRAM, socketInode, type DescriptorNumber, type FdInfo, type UnixSocketDiag } from '@cr/core';

const O_CLOEXEC = 0o2000000;
const O_ACCMODE = 3;
const STATE_LISTEN = 10;
const STATE_ESTABLISHED = 1;

/** A process of the checkpoint and its descriptors on one socket (a socket is one open file description). */
export interface SocketHolder {
  pid: number;
  fds: DescriptorNumber[];
  statusFlags: number;
}

/** One unix socket of the checkpoint: what sock_diag says of it, and the processes holding it, in tree order. */
export interface HeldSocket {
  inode: number;
  /** Undefined for a unix socket sock_diag does not show (of another network namespace). */
  diag: UnixSocketDiag | undefined;
  /** A stream or seqpacket socket whose peer was closed: still connected, to no socket sock_diag lists (a closed one has inode 0), and shut both ways. */
  peerGone: boolean;
  holders: SocketHolder[];
}

/** A unix socket, or two connected to each other (a socketpair), as one object: `PID:FD` of its first holder's lowest descriptor. */
export interface SocketGroup {
  id: string;
  sockets: HeldSocket[];
}

/**
 * Whether a socket has a peer: not its state, which a datagram socket shares with one that
 * connects to it (both ESTABLISHED), and a stream socket keeps when its peer is gone.
 */
export const connected = (diag: UnixSocketDiag | undefined): diag is UnixSocketDiag => diag !== undefined && diag.state !== STATE_LISTEN && diag.peer !== 0;

/**
 * Every unix socket the processes of the checkpoint (`tree`, parents first) hold, by inode: a
 * socket is a unix one when sock_diag lists it (`diags`, cr's network namespace).
 */
export function socketsOfTree(tree: readonly { pid: number; fds(): readonly FdInfo[] }[], diags: ReadonlyMap<number, UnixSocketDiag>): Map<number, HeldSocket> {
  const held = new Map<number, HeldSocket>();
  for (const task of tree) {
    for (const info of task.fds()) {
      if (info.kind.kind !== 'socket') continue;
      const inode = socketInode(info);
      const diag = diags.get(inode);
      if (!diag) continue;
      const peerGone = diag.type !== SOCK_DGRAM && diag.state === STATE_ESTABLISHED && (diag.peer === 0 || !diags.has(diag.peer)) && diag.shutdown === 3;
      const socket = held.get(inode) ?? { inode, diag, peerGone, holders: [] };
      held.set(inode, socket);
      const number = { fd: info.fd, closeOnExec: (info.flags & O_CLOEXEC) !== 0 };
      const holder = socket.holders.find((h) => h.pid === task.pid);
      if (holder) holder.fds.push(number);
      else socket.holders.push({ pid: task.pid, fds: [number], statusFlags: info.flags & ~O_CLOEXEC & ~O_ACCMODE });
    }
  }
  return held;
}

/**
 * The objects the unix sockets of process `pid` make: two sockets connected to each other that
 * processes of the checkpoint hold (a socketpair, kept by parent and child after fork, or both
 * ends of a connection to a listener of the tree) are one, any other socket one on its own. Every
 * process holding one reports it under the same id, that of the first holder of the first socket
 * (parents first, then by descriptor), so that it is one object.
 */
export function groupsOf(pid: number, held: ReadonlyMap<number, HeldSocket>, order: readonly number[]): SocketGroup[] {
  const rank = (s: HeldSocket) => order.indexOf(s.holders[0]!.pid) * 0x8000_0000 + s.holders[0]!.fds[0]!.fd;
  const taken = new Set<number>();
  const groups: SocketGroup[] = [];
  for (const socket of held.values()) {
    if (taken.has(socket.inode) || !socket.holders.some((h) => h.pid === pid)) continue;
    const other = connected(socket.diag) ? held.get(socket.diag.peer) : undefined;
    const pair = other && other !== socket && other.diag?.peer === socket.inode ? other : undefined;
    const sockets = pair ? [socket, pair].sort((a, b) => rank(a) - rank(b)) : [socket];
    sockets.forEach((s) => taken.add(s.inode));
    const first = sockets[0]!.holders[0]!;
    groups.push({ id: `${first.pid}:${first.fds[0]!.fd}`, sockets });
  }
  return groups;
}
