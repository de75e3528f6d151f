import { closeSync, fstatSync } from 'node:fs';
import type { Libc } from './libc.js';
import { KernelError } from './kernel-error.js';
import { AF_INET, AF_UNIX, SOCK_DGRAM, SOCK_STREAM, type Sockets } from './sockets.js';
import { decodeStruct, encodeStruct, inetDiagMsg, inetDiagReqV2, nlmsghdr, rtattr, structSize, unixDiagMsg, unixDiagReq, unixDiagRqlen, unixDiagVfs } from './structs.js';

const AF_NETLINK = 16;
const NETLINK_SOCK_DIAG = 4;
const SOCK_DIAG_BY_FAMILY = 20;
const SOCK_DESTROY = 21;
const NLM_F_REQUEST = 1;
const NLM_F_ACK = 4;
const NLM_F_DUMP = 0x300;
const NLMSG_ERROR = 2;
const NLMSG_DONE = 3;
const UDIAG_SHOW_VFS = 0x02;
const UDIAG_SHOW_PEER = 0x04;
const UDIAG_SHOW_RQLEN = 0x10;
const UNIX_DIAG_VFS = 1;
const UNIX_DIAG_PEER = 2;
const UNIX_DIAG_RQLEN = 4;
const UNIX_DIAG_SHUTDOWN = 6;
const TCP_LISTEN = 10;
const TCP_BOUND_INACTIVE = 13;
const IPPROTO_TCP = 6;

/** What sock_diag says of one unix socket. */
export interface UnixSocketDiag {
  inode: number;
  type: number;
  /** TCP-like state numbers: 1 established (connected), 7 unconnected, 10 listening. */
  state: number;
  /** The inode of the socket it is connected to, 0 when none. */
  peer: number;
  /** Queued bytes; for a listener, the connections not accepted yet. */
  queued: number;
  /** For a listener, its backlog. */
  backlog: number;
  /** The inode of a bound path's socket file. */
  fileInode?: number;
  /** Its shutdown bits: 1 no more receiving (SHUT_RD, or the peer's SHUT_WR), 2 no more sending; 3 once a connected peer is gone. */
  shutdown: number;
}

/** A listening TCP socket: connections not accepted yet, and its backlog. */
export interface InetListenerDiag {
  pending: number;
  backlog: number;
}

/** What sock_diag names one TCP socket by (struct inet_diag_sockid), as it gave it. */
export type InetDiagSockId = Record<string, unknown>;

/** The TCP sockets on one local port: how many a process holds, and those none holds any more. */
export interface TcpPortUse {
  /** Listeners and connections some process has a descriptor on. */
  held: number;
  /** Connections whose program closed them or ended (TIME_WAIT, FIN_WAIT2, LAST_ACK …), by family. */
  orphans: { family: number; id: InetDiagSockId }[];
}

const align4 = (n: number) => (n + 3) & ~3;

/**
 * The kernel's socket tables through sock_diag(7) (NETLINK_SOCK_DIAG), in cr's network
 * namespace: what no option of the socket itself tells, such as which socket a unix socket is
 * connected to, and a listener's backlog.
 */
export class SockDiag {
  /** Whether this kernel's sock_diag lists TCP sockets that are only bound, once a probe found out. */
  private boundOnlyListed: boolean | undefined;

  constructor(
    private readonly libc: Libc,
    private readonly sockets: Sockets,
  ) {}

  /** Every unix socket of cr's network namespace, by inode. */
  unix(): Map<number, UnixSocketDiag> {
    const request = encodeStruct(unixDiagReq, {
      sdiag_family: AF_UNIX,
      sdiag_protocol: 0,
      pad: 0,
      udiag_states: 0xffffffff,
      udiag_ino: 0,
      udiag_show: UDIAG_SHOW_VFS | UDIAG_SHOW_PEER | UDIAG_SHOW_RQLEN,
      udiag_cookie: [0xffffffff, 0xffffffff],
    });
    const found = new Map<number, UnixSocketDiag>();
    for (const { body, attributes } of this.dump(request, structSize(unixDiagMsg))) {
      const msg = decodeStruct<{ udiag_type: number; udiag_state: number; udiag_ino: number }>(body, unixDiagMsg);
      const rqlen = attributes.get(UNIX_DIAG_RQLEN);
      const queue = rqlen ? decodeStruct<{ udiag_rqueue: number; udiag_wqueue: number }>(rqlen, unixDiagRqlen) : { udiag_rqueue: 0, udiag_wqueue: 0 };
      const vfs = attributes.get(UNIX_DIAG_VFS);
      const peer = attributes.get(UNIX_DIAG_PEER);
      const shutdown = attributes.get(UNIX_DIAG_SHUTDOWN);
      found.set(msg.udiag_ino, {
        inode: msg.udiag_ino,
        type: msg.udiag_type,
        state: msg.udiag_state,
        peer: peer ? peer.readUInt32LE() : 0,
        queued: queue.udiag_rqueue,
        backlog: queue.udiag_wqueue,
        shutdown: shutdown ? shutdown.readUInt8() : 0,
        ...(vfs ? { fileInode: decodeStruct<{ udiag_vfs_ino: number }>(vfs, unixDiagVfs).udiag_vfs_ino } : {}),
      });
    }
    return found;
  }

  /** Every listening TCP socket of `family` (AF_INET, AF_INET6) in cr's network namespace, by inode. */
  tcpListeners(family: number): Map<number, InetListenerDiag> {
    const request = this.inetRequest(family, 1 << TCP_LISTEN, {});
    const found = new Map<number, InetListenerDiag>();
    for (const { body } of this.dump(request, structSize(inetDiagMsg))) {
      const msg = decodeStruct<{ idiag_rqueue: number; idiag_wqueue: number; idiag_inode: number }>(body, inetDiagMsg);
      found.set(msg.idiag_inode, { pending: msg.idiag_rqueue, backlog: msg.idiag_wqueue });
    }
    return found;
  }

  /**
   * The inodes of the TCP sockets of `family` that hold a port they were bound to while neither
   * listening nor connected (TCP_BOUND_INACTIVE), or undefined on a kernel whose sock_diag does
   * not list such sockets (older ones; this one does). A TCP socket in state CLOSE still names the
   * port of a connection that ended, but holds it only if it was bound to it.
   */
  tcpBoundOnly(family: number): Set<number> | undefined {
    if (this.boundOnlyListed === undefined) {
      // A kernel that does not know the state answers the request with nothing, as if none were bound.
      const fd = this.sockets.create({ family: AF_INET, type: SOCK_STREAM, protocol: 0 }, 'a sock_diag probe socket');
      try {
        this.sockets.bind(fd, { family: 'inet', address: '0.0.0.0', port: 0 }, 'a sock_diag probe socket');
        this.boundOnlyListed = this.boundOnly(AF_INET).has(fstatSync(fd).ino);
      } finally {
        closeSync(fd);
      }
    }
    return this.boundOnlyListed ? this.boundOnly(family) : undefined;
  }

  private boundOnly(family: number): Set<number> {
    const found = new Set<number>();
    for (const { body } of this.dump(this.inetRequest(family, 1 << TCP_BOUND_INACTIVE, {}), structSize(inetDiagMsg))) {
      found.add(decodeStruct<{ idiag_inode: number }>(body, inetDiagMsg).idiag_inode);
    }
    return found;
  }

  /** The TCP sockets of both families on local port `port`, in cr's network namespace. */
  tcpPort(port: number, families: readonly number[]): TcpPortUse {
    const use: TcpPortUse = { held: 0, orphans: [] };
    for (const family of families) {
      for (const { body } of this.dump(this.inetRequest(family, 0xffffffff, {}), structSize(inetDiagMsg))) {
        const msg = decodeStruct<{ id: InetDiagSockId & { idiag_sport: number }; idiag_inode: number }>(body, inetDiagMsg);
        if (msg.id.idiag_sport !== port) continue;
        if (msg.idiag_inode !== 0) use.held++;
        else use.orphans.push({ family, id: msg.id });
      }
    }
    return use;
  }

  /** Ends a TCP socket no process holds (SOCK_DESTROY; needs CONFIG_INET_DIAG_DESTROY). One already gone is not an error. */
  destroyTcp(family: number, id: InetDiagSockId): void {
    const ENOENT = 2;
    try {
      this.exchange(SOCK_DESTROY, NLM_F_REQUEST | NLM_F_ACK, this.inetRequest(family, 0xffffffff, id), 0);
    } catch (err) {
      if (!(err instanceof KernelError && err.errno === ENOENT)) throw err;
    }
  }

  private inetRequest(family: number, states: number, id: InetDiagSockId): Buffer {
    const none = { idiag_sport: 0, idiag_dport: 0, idiag_src: [0, 0, 0, 0], idiag_dst: [0, 0, 0, 0], idiag_if: 0, idiag_cookie: [0xffffffff, 0xffffffff] };
    return encodeStruct(inetDiagReqV2, { sdiag_family: family, sdiag_protocol: IPPROTO_TCP, idiag_ext: 0, pad: 0, idiag_states: states, id: { ...none, ...id } });
  }

  /** Sends one dump request and gathers every answer: each message (whose fixed part is `fixed` bytes) and its attributes by type. */
  private dump(request: Buffer, fixed: number): { body: Buffer; attributes: Map<number, Buffer> }[] {
    return this.exchange(SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST | NLM_F_DUMP, request, fixed);
  }

  /** Sends one request and gathers the answers up to the end of a dump or the acknowledgement (an error message with errno 0). */
  private exchange(type: number, flags: number, request: Buffer, fixed: number): { body: Buffer; attributes: Map<number, Buffer> }[] {
    const header = structSize(nlmsghdr);
    const message = Buffer.concat([
      encodeStruct(nlmsghdr, { nlmsg_len: header + request.length, nlmsg_type: type, nlmsg_flags: flags, nlmsg_seq: 1, nlmsg_pid: 0 }),
      request,
    ]);
    const fd = this.libc.socket(AF_NETLINK, SOCK_DGRAM, NETLINK_SOCK_DIAG, 'sock_diag');
    const answers: { body: Buffer; attributes: Map<number, Buffer> }[] = [];
    try {
      this.libc.send(fd, message, 0, 'sock_diag');
      const buffer = Buffer.alloc(64 * 1024);
      for (;;) {
        const length = this.libc.recv(fd, buffer, 0, 'sock_diag');
        for (let at = 0; at + header <= length; ) {
          const h = decodeStruct<{ nlmsg_len: number; nlmsg_type: number }>(buffer.subarray(at), nlmsghdr);
          if (h.nlmsg_type === NLMSG_DONE) return answers;
          if (h.nlmsg_type === NLMSG_ERROR) {
            // struct nlmsgerr starts with the negative errno.
            const errno = -buffer.subarray(at + header).readInt32LE();
            if (errno === 0) return answers;
            throw new KernelError(type === SOCK_DESTROY ? 'sock_diag(SOCK_DESTROY)' : 'sock_diag', errno, 'NETLINK_SOCK_DIAG');
          }
          const body = Buffer.from(buffer.subarray(at + header, at + h.nlmsg_len));
          answers.push({ body, attributes: attributesOf(body, fixed) });
          at += align4(h.nlmsg_len);
        }
      }
    } finally {
      closeSync(fd);
    }
  }
}

function attributesOf(body: Buffer, fixed: number): Map<number, Buffer> {
  const attributes = new Map<number, Buffer>();
  const header = structSize(rtattr);
  for (let at = align4(fixed); at + header <= body.length; ) {
    const a = decodeStruct<{ rta_len: number; rta_type: number }>(body.subarray(at), rtattr);
    if (a.rta_len < header) break;
    attributes.set(a.rta_type, body.subarray(at + header, at + a.rta_len));
    at += align4(a.rta_len);
  }
  return attributes;
}
