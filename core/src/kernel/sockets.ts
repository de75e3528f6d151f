import { closeSync, fchmodSync, lchownSync, lstatSync, unlinkSync } from 'node:fs';
import { TargetError } from '../errors.js';
import { KernelError } from './kernel-error.js';
import type { Libc } from './libc.js';
import { cmsgAlign, cmsghdr, decodeStruct, encodeStruct, iovec, msghdr, scmRights, sockaddrFamily, sockaddrIn, sockaddrIn6, sockaddrUn, structSize, sunPathOffset, tcpInfoHead, ucred } from './structs.js';

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
const MSG_CMSG_CLOEXEC = 0x40000000;
const SCM_RIGHTS = 1;
const SCM_CREDENTIALS = 2;
const SCM_PIDFD = 4;
/** Room for the control messages of one queued message: SCM_MAX_FD (253) descriptors, credentials, a pidfd. */
const CONTROL_SIZE = 4096;
const SO_SNDBUF = 7;
const SO_RCVBUF = 8;
const SO_SNDBUFFORCE = 32;
const SO_RCVBUFFORCE = 33;
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

/** Who sent a message, as SCM_CREDENTIALS tells a unix socket with SO_PASSCRED. */
export interface Credentials {
  pid: number;
  uid: number;
  gid: number;
}

/**
 * One message queued for a socket to read: its bytes, the descriptors in flight with it
 * (SCM_RIGHTS), as descriptors of cr's own (close-on-exec; whoever peeked closes them), and its
 * sender's credentials when the socket is shown them (SO_PASSCRED).
 */
export interface SocketMessage {
  data: Buffer;
  fds: number[];
  credentials?: Credentials;
}

/** The messages queued for a socket to read, left queued (see Sockets.peekQueue). */
export interface SocketQueue {
  messages: SocketMessage[];
}

/** A socket's buffer sizes (SO_SNDBUF, SO_RCVBUF), as getsockopt shows them (twice what was asked). */
export interface SocketBuffers {
  send: number;
  receive: number;
}

/** shutdown(2)'s `how` for a socket's shutdown bits (1 receiving, 2 sending): SHUT_RD, SHUT_WR, SHUT_RDWR. */
export const shutdownHow = (bits: number): number => (bits & 3) - 1;

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

  /** Who is at the other end of a connected unix socket, as the kernel saw it connect (SO_PEERCRED). */
  peerCredentials(fd: number, target: string): Credentials {
    const SO_PEERCRED = 17;
    const value = Buffer.alloc(structSize(ucred));
    this.libc.getsockopt(fd, SOL_SOCKET, SO_PEERCRED, value, target);
    return decodeStruct<Credentials>(value, ucred);
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
    if (!file) return this.bind(fd, { family: 'unix', path }, target);
    // The file takes its mode from the socket's own, set before the bind (without cr's umask),
    // and its owner from lchown: neither follows a symbolic link someone put at the path meanwhile.
    fchmodSync(fd, file.mode & 0o7777);
    const umask = process.umask(0);
    try {
      this.bind(fd, { family: 'unix', path }, target);
    } finally {
      process.umask(umask);
    }
    lchownSync(path, file.uid, file.gid);
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
   * The messages queued for the socket, without taking them, each with the descriptors in flight
   * with it (MSG_PEEK gives cr a copy of each; close them with closeQueue) and its credentials. A
   * message is a datagram, or a stream's bytes up to a write that carried descriptors or came from
   * another writer (the kernel does not glue those). Each message after the first is reached with
   * the socket's peek offset (SO_PEEK_OFF), set for the moment and put back.
   */
  peekQueue(fd: number, type: number, target: string): SocketQueue {
    // A datagram socket's SIOCINQ is its first datagram only; the others, the bytes of all.
    const total = type === SOCK_DGRAM ? Number.POSITIVE_INFINITY : this.queuedBytes(fd, target);
    const buffer = Buffer.alloc(type === SOCK_DGRAM ? LARGEST_MESSAGE : Math.max(total, 1));
    const previous = this.intOption(fd, SOL_SOCKET, SO_PEEK_OFF, target);
    const messages: SocketMessage[] = [];
    try {
      for (let offset = 0; ; ) {
        this.setIntOption(fd, SOL_SOCKET, SO_PEEK_OFF, offset, target);
        let peeked;
        try {
          peeked = this.peekOne(fd, buffer, target);
        } catch (err) {
          if (err instanceof KernelError && err.code === 'EAGAIN') return { messages };
          throw err;
        }
        const { message, flags } = peeked;
        // A stream or seqpacket socket whose peer is gone reads as empty once the queue is read.
        if (type !== SOCK_DGRAM && message.data.length === 0 && message.fds.length === 0 && offset >= total) return { messages };
        messages.push(message);
        if (flags & MSG_CTRUNC) throw new KernelError('recvmsg', 90, target, `a queued message carries more than ${CONTROL_SIZE} bytes of control messages`);
        if (flags & MSG_TRUNC) throw new KernelError('recvmsg', 90, target, `a queued message is larger than ${LARGEST_MESSAGE} bytes`);
        offset += message.data.length;
      }
    } catch (err) {
      closeQueue({ messages });
      throw err;
    } finally {
      this.setIntOption(fd, SOL_SOCKET, SO_PEEK_OFF, previous, target);
    }
  }

  /**
   * Sends one message whole, with descriptors of cr's in flight (SCM_RIGHTS) and the credentials
   * of its sender (SCM_CREDENTIALS: root may give any existing process's); never raises SIGPIPE.
   */
  sendMessage(fd: number, data: Uint8Array, extra: { fds?: readonly number[]; credentials?: Credentials }, target: string): void {
    const control = Buffer.concat([
      ...(extra.fds?.length ? [controlMessage(SCM_RIGHTS, encodeStruct(scmRights(extra.fds.length), extra.fds))] : []),
      ...(extra.credentials ? [controlMessage(SCM_CREDENTIALS, encodeStruct(ucred, extra.credentials))] : []),
    ]);
    const body = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    const iov = encodeStruct(iovec, { iov_base: this.libc.addressOf(body.length > 0 ? body : Buffer.alloc(1)), iov_len: body.length });
    const message = encodeStruct(msghdr, {
      msg_name: 0,
      msg_namelen: 0,
      msg_iov: this.libc.addressOf(iov),
      msg_iovlen: 1,
      msg_control: control.length > 0 ? this.libc.addressOf(control) : 0,
      msg_controllen: control.length,
      msg_flags: 0,
    });
    const sent = this.libc.sendmsg(fd, message, MSG_DONTWAIT | MSG_NOSIGNAL, target);
    if (sent !== data.byteLength) throw new KernelError('sendmsg', 11, target, `sent ${sent} of ${data.byteLength} bytes`);
  }

  /** shutdown(2): `how` is SHUT_RD (0), SHUT_WR (1) or SHUT_RDWR (2). */
  shutdown(fd: number, how: number, target: string): void {
    this.libc.shutdown(fd, how, target);
  }

  buffers(fd: number, target: string): SocketBuffers {
    return { send: this.intOption(fd, SOL_SOCKET, SO_SNDBUF, target), receive: this.intOption(fd, SOL_SOCKET, SO_RCVBUF, target) };
  }

  /**
   * Gives a socket the buffer sizes another had, where they differ from its own: set with the
   * *FORCE options (CAP_NET_ADMIN), beyond net.core.[rw]mem_max as the first may have been,
   * with half the value shown, which the kernel doubles.
   */
  setBuffers(fd: number, wanted: SocketBuffers, target: string): void {
    const now = this.buffers(fd, target);
    if (now.send !== wanted.send) this.setIntOption(fd, SOL_SOCKET, SO_SNDBUFFORCE, Math.floor(wanted.send / 2), target);
    if (now.receive !== wanted.receive) this.setIntOption(fd, SOL_SOCKET, SO_RCVBUFFORCE, Math.floor(wanted.receive / 2), target);
  }

  private peekOne(fd: number, into: Buffer, target: string): { message: SocketMessage; flags: number } {
    const control = Buffer.alloc(CONTROL_SIZE);
    const iov = encodeStruct(iovec, { iov_base: this.libc.addressOf(into), iov_len: into.length });
    const header = encodeStruct(msghdr, {
      msg_name: 0,
      msg_namelen: 0,
      msg_iov: this.libc.addressOf(iov),
      msg_iovlen: 1,
      msg_control: this.libc.addressOf(control),
      msg_controllen: control.length,
      msg_flags: 0,
    });
    const length = this.libc.recvmsg(fd, header, MSG_PEEK | MSG_DONTWAIT | MSG_CMSG_CLOEXEC, target);
    const { msg_flags: flags, msg_controllen: controlLength } = decodeStruct<{ msg_flags: number; msg_controllen: number }>(header, msghdr);
    return { message: { data: Buffer.from(into.subarray(0, length)), ...controlMessages(control.subarray(0, Number(controlLength))) }, flags };
  }
}

/** Closes the descriptors in flight that peekQueue gave cr. */
export function closeQueue(queue: SocketQueue): void {
  for (const m of queue.messages) for (const fd of m.fds) closeSync(fd);
}

/** One control message (a cmsghdr, then `data`), padded to CMSG_SPACE. */
function controlMessage(type: number, data: Buffer): Buffer {
  const at = cmsgAlign(structSize(cmsghdr));
  const bytes = Buffer.alloc(at + cmsgAlign(data.length));
  encodeStruct(cmsghdr, { cmsg_len: at + data.length, cmsg_level: SOL_SOCKET, cmsg_type: type }).copy(bytes);
  data.copy(bytes, at);
  return bytes;
}

/** The descriptors and credentials of a received message's control messages; a pidfd (SO_PASSPIDFD) cr has no use for is closed. */
function controlMessages(control: Buffer): { fds: number[]; credentials?: Credentials } {
  const header = structSize(cmsghdr);
  const at = cmsgAlign(header);
  const fds: number[] = [];
  let credentials: Credentials | undefined;
  for (let offset = 0; offset + header <= control.length; ) {
    const h = decodeStruct<{ cmsg_len: number; cmsg_level: number; cmsg_type: number }>(control.subarray(offset), cmsghdr);
    const length = Number(h.cmsg_len);
    if (length < at) break;
    const data = control.subarray(offset + at, offset + length);
    if (h.cmsg_level === SOL_SOCKET && h.cmsg_type === SCM_RIGHTS) fds.push(...decodeStruct<number[]>(data, scmRights(data.length / 4)));
    else if (h.cmsg_level === SOL_SOCKET && h.cmsg_type === SCM_CREDENTIALS) credentials = { ...decodeStruct<Credentials>(data, ucred) };
    else if (h.cmsg_level === SOL_SOCKET && h.cmsg_type === SCM_PIDFD) closeSync(decodeStruct<number[]>(data, scmRights(1))[0]!);
    offset += cmsgAlign(length);
  }
  return credentials ? { fds, credentials } : { fds };
}

function decodeAddress(bytes: Buffer): SocketAddress {
  const family = decodeStruct<{ sa_family: number }>(bytes, sockaddrFamily).sa_family;
  if (family === AF_UNIX) {
    const name = bytes.subarray(sunPathOffset());
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
    const at = sunPathOffset();
    name.copy(bytes, at);
    return bytes.subarray(0, at + name.length);
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
