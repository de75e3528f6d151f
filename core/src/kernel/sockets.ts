import { chmodSync, chownSync, closeSync, lstatSync, unlinkSync } from 'node:fs';
import { TargetError } from '../errors.js';
import { KernelError } from './kernel-error.js';
import type { Libc } from './libc.js';
import { SUN_PATH_OFFSET, decodeStruct, encodeStruct, iovec, msghdr, sockaddrFamily, sockaddrIn, sockaddrIn6, sockaddrUn, structSize, tcpInfoHead } from './structs.js';

export const AF_UNIX = 1;
export const AF_INET = 2;
export const AF_INET6 = 10;
export const SOCK_STREAM = 1;
export const SOCK_DGRAM = 2;
export const SOCK_SEQPACKET = 5;
export const SOL_SOCKET = 1;
export const SO_TYPE = 3;
export const SO_ACCEPTCONN = 30;
export const SO_PROTOCOL = 38;
export const SO_DOMAIN = 39;
export const SO_PEEK_OFF = 42;
const MSG_PEEK = 2;
const MSG_TRUNC = 0x20;
const MSG_CTRUNC = 0x08;
const MSG_DONTWAIT = 0x40;
const MSG_NOSIGNAL = 0x4000;
/** ioctl(2): bytes in a socket's receive queue. */
const SIOCINQ = 0x541b;
/** The largest datagram cr takes from a queue (a unix datagram is bounded by the send buffer, at most a few MiB). */
const LARGEST_MESSAGE = 8 * 1024 * 1024;

/** A socket address: a unix path, an abstract unix name (hex, without its leading NUL), nothing (unnamed), or an IP address and port. */
export type SocketAddress =
  | { family: 'unix'; path: string }
  | { family: 'unix'; abstract: string }
  | { family: 'unix' }
  | { family: 'inet' | 'inet6'; address: string; port: number };

/** What a socket is: its family, type and protocol numbers (AF_*, SOCK_*, IPPROTO_*). */
export interface SocketKind {
  family: number;
  type: number;
  protocol: number;
}

/** The messages queued for a socket to read, left queued; `withFds` when one carries descriptors or credentials. */
export interface SocketQueue {
  messages: Buffer[];
  withFds: boolean;
}

/**
 * Sockets as cr sees them from its own side: a process's socket is looked at through a copy of
 * its descriptor (`Kernel.takeFd`), which shares the socket, so every option, address and queue
 * read here is the program's own; and new sockets made in a saved state, to hand to a task.
 */
export class Sockets {
  constructor(private readonly libc: Libc) {}

  kind(fd: number, target: string): SocketKind {
    return { family: this.intOption(fd, SOL_SOCKET, SO_DOMAIN, target), type: this.intOption(fd, SOL_SOCKET, SO_TYPE, target), protocol: this.intOption(fd, SOL_SOCKET, SO_PROTOCOL, target) };
  }

  intOption(fd: number, level: number, name: number, target: string): number {
    const value = Buffer.alloc(4);
    this.libc.getsockopt(fd, level, name, value, target);
    return value.readInt32LE();
  }

  setIntOption(fd: number, level: number, name: number, value: number, target: string): void {
    const bytes = Buffer.alloc(4);
    bytes.writeInt32LE(value);
    this.libc.setsockopt(fd, level, name, bytes, target);
  }

  /** The state of a TCP socket (TCP_INFO): its TCP_* number, 1 established … 10 listening. */
  tcpState(fd: number, target: string): number {
    const IPPROTO_TCP = 6;
    const TCP_INFO = 11;
    const info = Buffer.alloc(structSize(tcpInfoHead));
    this.libc.getsockopt(fd, IPPROTO_TCP, TCP_INFO, info, target);
    return decodeStruct<{ tcpi_state: number }>(info, tcpInfoHead).tcpi_state;
  }

  /** The address the socket is bound to. */
  localAddress(fd: number, target: string): SocketAddress {
    return decodeAddress(this.libc.sockaddr(fd, false, target));
  }

  /** The address of the socket's peer, or undefined when it has none (ENOTCONN). */
  peerAddress(fd: number, target: string): SocketAddress | undefined {
    try {
      return decodeAddress(this.libc.sockaddr(fd, true, target));
    } catch (err) {
      if (err instanceof KernelError && err.code === 'ENOTCONN') return undefined;
      throw err;
    }
  }

  /** A new socket of cr's, close-on-exec. */
  create(kind: SocketKind, target: string): number {
    return this.libc.socket(kind.family, kind.type, kind.protocol, target);
  }

  /** Two connected unix sockets of `type`. */
  pair(type: number, target: string): [number, number] {
    return this.libc.socketpair(AF_UNIX, type, target);
  }

  bind(fd: number, address: SocketAddress, target: string): void {
    this.libc.bind(fd, encodeAddress(address), target);
  }

  /**
   * Binds a unix socket to a path, with the owner and mode its file had (when known). The socket file a killed program
   * left behind is removed first; a path that holds another file, or the file of a socket that is
   * still bound (a running program's), is refused: cr replaces nobody's socket.
   */
  bindPath(fd: number, path: string, file: { mode: number; uid: number; gid: number } | undefined, liveFileInodes: ReadonlySet<number>, target: string): void {
    const S_IFSOCK = 0o140000;
    const existing = lstatOrUndefined(path);
    if (existing) {
      if ((existing.mode & 0o170000) !== S_IFSOCK) throw new TargetError(`cannot restore ${target}: ${path} exists and is not a socket; remove it, so that the socket can be bound there again`);
      if (liveFileInodes.has(existing.ino)) throw new TargetError(`cannot restore ${target}: ${path} is bound by a running socket (another program, or the checkpointed one still running); stop it first`);
      unlinkSync(path);
    }
    this.bind(fd, { family: 'unix', path }, target);
    if (file) {
      chownSync(path, file.uid, file.gid);
      chmodSync(path, file.mode & 0o7777);
    }
  }

  listen(fd: number, backlog: number, target: string): void {
    this.libc.listen(fd, backlog, target);
  }

  connect(fd: number, address: SocketAddress, target: string): void {
    this.libc.connect(fd, encodeAddress(address), target);
  }

  /** Sends one message (a datagram, or bytes of a stream) whole; never raises SIGPIPE. */
  send(fd: number, data: Uint8Array, target: string): void {
    const sent = this.libc.send(fd, data, MSG_DONTWAIT | MSG_NOSIGNAL, target);
    if (sent !== data.byteLength) throw new KernelError('send', 11, target, `sent ${sent} of ${data.byteLength} bytes`);
  }

  /** How many bytes wait in the socket's receive queue (SIOCINQ; for a UDP socket, the next datagram's). */
  queuedBytes(fd: number, target: string): number {
    return this.libc.ioctlInt(fd, SIOCINQ, 'ioctl(SIOCINQ)', target);
  }

  /**
   * The messages queued for the socket, without taking them: a stream's bytes as one message, or
   * each datagram. Datagrams after the first are reached with the socket's peek offset
   * (SO_PEEK_OFF), which is set for the moment and put back. A message that carries descriptors
   * or credentials ends the look (`withFds`): peeking at it would give cr those descriptors.
   */
  peekQueue(fd: number, type: number, target: string): SocketQueue {
    const queued = this.queuedBytes(fd, target);
    if (queued === 0) return { messages: [], withFds: false };
    if (type === SOCK_STREAM) {
      const { data, flags } = this.peekOne(fd, Buffer.alloc(queued), target);
      return { messages: data.length > 0 ? [data] : [], withFds: (flags & MSG_CTRUNC) !== 0 };
    }
    const previous = this.intOption(fd, SOL_SOCKET, SO_PEEK_OFF, target);
    this.setIntOption(fd, SOL_SOCKET, SO_PEEK_OFF, 0, target);
    try {
      const messages: Buffer[] = [];
      const buffer = Buffer.alloc(LARGEST_MESSAGE);
      for (;;) {
        let peeked;
        try {
          peeked = this.peekOne(fd, buffer, target);
        } catch (err) {
          if (err instanceof KernelError && err.code === 'EAGAIN') return { messages, withFds: false };
          throw err;
        }
        if (peeked.flags & MSG_CTRUNC) return { messages, withFds: true };
        if (peeked.flags & MSG_TRUNC) throw new KernelError('recvmsg', 90, target, `a queued message is larger than ${LARGEST_MESSAGE} bytes`);
        messages.push(Buffer.from(peeked.data));
      }
    } finally {
      this.setIntOption(fd, SOL_SOCKET, SO_PEEK_OFF, previous, target);
    }
  }

  private peekOne(fd: number, into: Buffer, target: string): { data: Buffer; flags: number } {
    const iov = encodeStruct(iovec, { iov_base: this.libc.addressOf(into), iov_len: into.length });
    const message = encodeStruct(msghdr, { msg_name: 0, msg_namelen: 0, msg_iov: this.libc.addressOf(iov), msg_iovlen: 1, msg_control: 0, msg_controllen: 0, msg_flags: 0 });
    const length = this.libc.recvmsg(fd, message, MSG_PEEK | MSG_DONTWAIT, target);
    const { msg_flags: flags } = decodeStruct<{ msg_flags: number }>(message, msghdr);
    return { data: into.subarray(0, length), flags };
  }
}

function decodeAddress(bytes: Buffer): SocketAddress {
  const family = decodeStruct<{ sa_family: number }>(bytes, sockaddrFamily).sa_family;
  if (family === AF_UNIX) {
    const name = bytes.subarray(SUN_PATH_OFFSET);
    if (name.length === 0) return { family: 'unix' };
    if (name[0] === 0) return { family: 'unix', abstract: name.subarray(1).toString('hex') };
    const end = name.indexOf(0);
    return { family: 'unix', path: name.subarray(0, end < 0 ? name.length : end).toString('utf8') };
  }
  if (family === AF_INET) {
    const a = decodeStruct<{ sin_port: number; sin_addr: Uint8Array }>(padded(bytes, sockaddrIn), sockaddrIn);
    return { family: 'inet', address: [...a.sin_addr].join('.'), port: a.sin_port };
  }
  if (family === AF_INET6) {
    const a = decodeStruct<{ sin6_port: number; sin6_addr: Uint8Array }>(padded(bytes, sockaddrIn6), sockaddrIn6);
    const groups = [];
    for (let i = 0; i < 16; i += 2) groups.push(((a.sin6_addr[i]! << 8) | a.sin6_addr[i + 1]!).toString(16));
    return { family: 'inet6', address: groups.join(':'), port: a.sin6_port };
  }
  throw new KernelError('getsockname', 97, `address family ${family}`, 'not a unix or IP address');
}

function padded(bytes: Buffer, type: Parameters<typeof structSize>[0]): Buffer {
  const whole = Buffer.alloc(structSize(type));
  bytes.copy(whole);
  return whole;
}

/** The bytes of an address, as long as it is: a unix name's length is part of it. */
function encodeAddress(address: SocketAddress): Buffer {
  if (address.family === 'unix') {
    const name = 'path' in address ? Buffer.from(address.path, 'utf8') : 'abstract' in address ? Buffer.concat([Buffer.alloc(1), Buffer.from(address.abstract, 'hex')]) : Buffer.alloc(0);
    const bytes = encodeStruct(sockaddrUn, { sun_family: AF_UNIX, sun_path: new Uint8Array(108) });
    name.copy(bytes, SUN_PATH_OFFSET);
    return bytes.subarray(0, SUN_PATH_OFFSET + name.length);
  }
  if (address.family === 'inet') {
    return encodeStruct(sockaddrIn, { sin_family: AF_INET, sin_port: address.port, sin_addr: address.address.split('.').map(Number), sin_zero: new Uint8Array(8) });
  }
  return encodeStruct(sockaddrIn6, { sin6_family: AF_INET6, sin6_port: address.port, sin6_flowinfo: 0, sin6_addr: ipv6Bytes(address.address), sin6_scope_id: 0 });
}

/** The 16 bytes of an IPv6 address in the full form decodeAddress writes (eight groups). */
function ipv6Bytes(address: string): Uint8Array {
  const bytes = new Uint8Array(16);
  address.split(':').forEach((group, i) => {
    const value = Number.parseInt(group, 16);
    bytes[i * 2] = value >> 8;
    bytes[i * 2 + 1] = value & 0xff;
  });
  return bytes;
}

function lstatOrUndefined(path: string): { mode: number; ino: number } | undefined {
  try {
    const st = lstatSync(path);
    return { mode: st.mode, ino: st.ino };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** The inode of a socket descriptor, from its /proc/PID/fd link ("socket:[1234]"), the kernel's name for it. */
export function socketInode(info: { link: string }): number {
  const m = /^socket:\[(\d+)\]$/.exec(info.link);
  if (!m) throw new Error(`internal error: ${info.link} is not a socket`);
  return Number(m[1]);
}

/** Closes a descriptor of cr's when `use` is done with it. */
export function withFd<T>(fd: number, use: (fd: number) => T): T {
  try {
    return use(fd);
  } finally {
    closeSync(fd);
  }
}
