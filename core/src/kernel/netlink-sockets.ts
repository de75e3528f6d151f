import { closeSync, readFileSync } from 'node:fs';
import type { Libc } from './libc.js';
import type { SocketBuffers, Sockets } from './sockets.js';
import { decodeStruct, encodeStruct, sockaddrNl } from './structs.js';

export const AF_NETLINK = 16;
const SOL_NETLINK = 270;
const NETLINK_ADD_MEMBERSHIP = 1;
const NETLINK_LIST_MEMBERSHIPS = 9;

/** The on/off options of a netlink socket (SOL_NETLINK), by the names cr gives them. */
export const NETLINK_FLAG_OPTIONS = {
  pktinfo: 3,
  broadcastError: 4,
  noEnobufs: 5,
  listenAllNsid: 8,
  capAck: 10,
  extAck: 11,
  getStrictChk: 12,
} as const;
export type NetlinkFlagOption = keyof typeof NETLINK_FLAG_OPTIONS;

/** What a netlink socket is bound and connected to, and which of its options are on. */
export interface NetlinkState {
  /** Its port id (nl_pid of getsockname); 0 while it is not bound. */
  portid: number;
  /** The multicast groups it listens to, by number (1 and up). */
  groups: number[];
  /** Where connect(2) pointed it: a port id and a group mask (nl_groups of getpeername); both 0 when it was not. */
  peer: { portid: number; groups: number };
  options: NetlinkFlagOption[];
}

/** What /proc/net/netlink shows of a socket: the bytes waiting in its receive queue, and whether a dump is being answered. */
export interface NetlinkQueue {
  queuedBytes: number;
  dumping: boolean;
}

/**
 * Netlink sockets (netlink(7)), read through a copy of a program's descriptor and made again in
 * cr, on the same port id with the same groups, peer and options, to hand to a task.
 */
export class NetlinkSockets {
  constructor(
    private readonly libc: Libc,
    private readonly sockets: Sockets,
  ) {}

  state(fd: number, target: string): NetlinkState {
    const local = decodeStruct<{ nl_pid: number }>(this.libc.sockaddr(fd, false, target), sockaddrNl);
    const peer = decodeStruct<{ nl_pid: number; nl_groups: number }>(this.libc.sockaddr(fd, true, target), sockaddrNl);
    const options = (Object.keys(NETLINK_FLAG_OPTIONS) as NetlinkFlagOption[]).filter((name) => this.sockets.intOption(fd, SOL_NETLINK, NETLINK_FLAG_OPTIONS[name], target) !== 0);
    return { portid: local.nl_pid, groups: this.memberships(fd, target), peer: { portid: peer.nl_pid, groups: peer.nl_groups }, options };
  }

  /**
   * A new netlink socket of cr's (close-on-exec) of `type` and `protocol`, in `state`: with its
   * buffer sizes, bound to its port id (when it had one) and groups, connected where it was, its options on.
   */
  create(type: number, protocol: number, state: NetlinkState, buffers: SocketBuffers, target: string): number {
    const fd = this.libc.socket(AF_NETLINK, type, protocol, target);
    try {
      this.sockets.setBuffers(fd, buffers, target);
      for (const name of state.options) this.sockets.setIntOption(fd, SOL_NETLINK, NETLINK_FLAG_OPTIONS[name], 1, target);
      // bind takes the first 32 groups as a mask; the others are joined one by one.
      const low = state.groups.filter((g) => g <= 32);
      if (state.portid !== 0 || low.length > 0) this.libc.bind(fd, address(state.portid, low.reduce((mask, g) => mask | (1 << (g - 1)), 0) >>> 0), target);
      for (const group of state.groups.filter((g) => g > 32)) this.sockets.setIntOption(fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, group, target);
      if (state.peer.portid !== 0 || state.peer.groups !== 0) this.libc.connect(fd, address(state.peer.portid, state.peer.groups), target);
      return fd;
    } catch (err) {
      closeSync(fd);
      throw err;
    }
  }

  /** The socket with inode `inode` as /proc/net/netlink shows it (cr's network namespace); undefined if it is not there. */
  queue(inode: number): NetlinkQueue | undefined {
    // sk Eth Pid Groups Rmem Wmem Dump Locks Drops Inode
    for (const line of readFileSync('/proc/net/netlink', 'utf8').split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (Number(fields[9]) === inode) return { queuedBytes: Number(fields[4]), dumping: fields[6] !== '0' };
    }
    return undefined;
  }

  /** Every group the socket listens to (NETLINK_LIST_MEMBERSHIPS: a bitmap of 32-bit words, as long as the kernel says). */
  private memberships(fd: number, target: string): number[] {
    let words = Buffer.alloc(4);
    const length = this.libc.getsockopt(fd, SOL_NETLINK, NETLINK_LIST_MEMBERSHIPS, words, target);
    if (length > words.length) {
      words = Buffer.alloc(length);
      this.libc.getsockopt(fd, SOL_NETLINK, NETLINK_LIST_MEMBERSHIPS, words, target);
    }
    const groups: number[] = [];
    for (let word = 0; word * 4 < Math.min(length, words.length); word++) {
      const bits = words.readUInt32LE(word * 4);
      for (let bit = 0; bit < 32; bit++) if ((bits >>> bit) & 1) groups.push(word * 32 + bit + 1);
    }
    return groups;
  }
}

function address(portid: number, groups: number): Buffer {
  return encodeStruct(sockaddrNl, { nl_family: AF_NETLINK, nl_pad: 0, nl_pid: portid, nl_groups: groups });
}
