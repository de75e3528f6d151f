import { KernelError } from './kernel-error.js';
import type { Libc } from './libc.js';
import type { SocketAddress, Sockets } from './sockets.js';
import { decodeStruct, encodeStruct, structSize, tcpInfoHead, tcpRepairOpt, tcpRepairWindow } from './structs.js';

const IPPROTO_TCP = 6;
const SOL_SOCKET = 1;
const TCP_MAXSEG = 2;
const TCP_INFO = 11;
const TCP_REPAIR = 19;
const TCP_REPAIR_QUEUE = 20;
const TCP_QUEUE_SEQ = 21;
const TCP_REPAIR_OPTIONS = 22;
const TCP_TIMESTAMP = 24;
const TCP_REPAIR_WINDOW = 29;
/** TCP_REPAIR values: on; off, with a window probe to the peer; off, without one. */
const REPAIR_ON = 1;
const REPAIR_OFF = 0;
const REPAIR_OFF_NO_PROBE = -1;
const TCP_NO_QUEUE = 0;
const TCP_RECV_QUEUE = 1;
const TCP_SEND_QUEUE = 2;
const SIOCINQ = 0x541b;
const SIOCOUTQ = 0x5411;
/** Bytes of the send queue not sent yet. */
const SIOCOUTQNSD = 0x894b;
const TCPI_OPT_TIMESTAMPS = 1;
const TCPI_OPT_SACK = 2;
const TCPI_OPT_WSCALE = 4;
const TCPOPT_MAXSEG = 2;
const TCPOPT_WINDOW = 3;
const TCPOPT_SACK_PERM = 4;
const TCPOPT_TIMESTAMP = 8;
const SO_SNDBUF = 7;
const SO_RCVBUF = 8;
const SO_SNDBUFFORCE = 32;
const SO_RCVBUFFORCE = 33;
const MSG_PEEK = 2;
const MSG_DONTWAIT = 0x40;
const MSG_NOSIGNAL = 0x4000;
const TCP_ESTABLISHED = 1;
/** The most a queue's bytes are given to the kernel at once; a refused piece is halved down to MIN_PIECE. */
const MAX_PIECE = 1024 * 1024;
const MIN_PIECE = 1024;

/** Both windows of a connection (struct tcp_repair_window). */
export interface TcpWindow {
  sndWl1: number;
  sndWnd: number;
  maxWindow: number;
  rcvWnd: number;
  rcvWup: number;
}

/**
 * Everything the kernel needs to make a TCP connection again without the peer noticing: the
 * sequence numbers at the end of both queues, the bytes in them (the send queue's last `unsent`
 * bytes were never sent), the options negotiated at the handshake, the timestamp clock, both
 * windows, and the socket buffer sizes the queues need.
 */
export interface TcpConnectionState {
  /** write_seq: the sequence number after the last byte the program wrote. */
  sendSeq: number;
  sendQueue: Buffer;
  unsent: number;
  /** rcv_nxt: the sequence number after the last byte received. */
  receiveSeq: number;
  receiveQueue: Buffer;
  mss: number;
  sack: boolean;
  windowScale?: { send: number; receive: number };
  /** The connection's TCP timestamp clock now, when it uses timestamps. */
  timestamp?: number;
  window: TcpWindow;
  buffers: { send: number; receive: number };
}

/**
 * TCP connections in repair mode (TCP_REPAIR, Linux 3.11+, CAP_NET_ADMIN): a connection whose
 * socket is in repair mode sends nothing (closing it sends no FIN or RST), and shows and takes its
 * sequence numbers, queues, options and windows, so that a new socket can be made into the same
 * connection. Each works on a descriptor of cr's on the socket (a program's, taken with
 * pidfd_getfd, or one cr made): repair mode belongs to the socket.
 */
export class TcpRepair {
  constructor(
    private readonly libc: Libc,
    private readonly sockets: Sockets,
  ) {}

  enter(fd: number, target: string): void {
    this.setInt(fd, TCP_REPAIR, REPAIR_ON, 'TCP_REPAIR', target);
  }

  /**
   * Leaves repair mode: the connection runs again. With `probe`, the kernel sends the peer a
   * window probe at once, which a restored connection wants and a paused one does not need.
   * Repair mode forced the socket's address reuse (SO_REUSEADDR): the caller sets it again.
   */
  leave(fd: number, probe: boolean, target: string): void {
    this.setInt(fd, TCP_REPAIR, probe ? REPAIR_OFF : REPAIR_OFF_NO_PROBE, 'TCP_REPAIR', target);
  }

  /** The state of a connection in repair mode; the queues are peeked at, and stay. */
  read(fd: number, target: string): TcpConnectionState {
    const info = this.info(fd, target);
    if (info.tcpi_state !== TCP_ESTABLISHED) throw new KernelError('getsockopt(TCP_INFO)', 22, target, `the connection is in TCP state ${info.tcpi_state}, not established`);
    const sendLength = this.libc.ioctlInt(fd, SIOCOUTQ, 'ioctl(SIOCOUTQ)', target);
    const unsent = this.libc.ioctlInt(fd, SIOCOUTQNSD, 'ioctl(SIOCOUTQNSD)', target);
    const receiveLength = this.libc.ioctlInt(fd, SIOCINQ, 'ioctl(SIOCINQ)', target);
    const windowBytes = Buffer.alloc(structSize(tcpRepairWindow));
    this.libc.getsockopt(fd, IPPROTO_TCP, TCP_REPAIR_WINDOW, windowBytes, target);
    const w = decodeStruct<{ snd_wl1: number; snd_wnd: number; max_window: number; rcv_wnd: number; rcv_wup: number }>(windowBytes, tcpRepairWindow);
    const receive = this.queue(fd, TCP_RECV_QUEUE, receiveLength, target);
    const send = this.queue(fd, TCP_SEND_QUEUE, sendLength, target);
    return {
      sendSeq: send.seq,
      sendQueue: send.data,
      unsent,
      receiveSeq: receive.seq,
      receiveQueue: receive.data,
      mss: this.getInt(fd, IPPROTO_TCP, TCP_MAXSEG, target),
      sack: (info.tcpi_options & TCPI_OPT_SACK) !== 0,
      ...(info.tcpi_options & TCPI_OPT_WSCALE ? { windowScale: { send: info.tcpi_wscale & 0xf, receive: info.tcpi_wscale >> 4 } } : {}),
      ...(info.tcpi_options & TCPI_OPT_TIMESTAMPS ? { timestamp: this.getInt(fd, IPPROTO_TCP, TCP_TIMESTAMP, target) >>> 0 } : {}),
      window: { sndWl1: w.snd_wl1, sndWnd: w.snd_wnd, maxWindow: w.max_window, rcvWnd: w.rcv_wnd, rcvWup: w.rcv_wup },
      buffers: { send: this.getInt(fd, SOL_SOCKET, SO_SNDBUF, target), receive: this.getInt(fd, SOL_SOCKET, SO_RCVBUF, target) },
    };
  }

  /**
   * Makes `fd`, a new TCP socket of cr's that is in repair mode, into the connection `state`
   * between `local` and `peer`: bound, given its sequence numbers, connected
   * (repair mode sends no SYN), with its options, clock, queues and windows, but without the
   * bytes never sent (`writeUnsent` writes those once it has left repair mode). It stays in repair
   * mode: nothing reaches the peer until `leave`.
   */
  rebuild(fd: number, state: TcpConnectionState, local: SocketAddress, peer: SocketAddress, target: string): void {
    this.sockets.bind(fd, local, target);
    this.setQueueSeq(fd, TCP_RECV_QUEUE, state.receiveSeq - state.receiveQueue.length, target);
    this.setQueueSeq(fd, TCP_SEND_QUEUE, state.sendSeq - state.sendQueue.length, target);
    this.sockets.connect(fd, peer, target);
    const options = [
      ...(state.sack ? [{ opt_code: TCPOPT_SACK_PERM, opt_val: 0 }] : []),
      ...(state.windowScale ? [{ opt_code: TCPOPT_WINDOW, opt_val: state.windowScale.send + (state.windowScale.receive << 16) }] : []),
      ...(state.timestamp !== undefined ? [{ opt_code: TCPOPT_TIMESTAMP, opt_val: 0 }] : []),
      { opt_code: TCPOPT_MAXSEG, opt_val: state.mss },
    ];
    this.libc.setsockopt(fd, IPPROTO_TCP, TCP_REPAIR_OPTIONS, Buffer.concat(options.map((o) => encodeStruct(tcpRepairOpt, o))), `${target}, TCP_REPAIR_OPTIONS`);
    if (state.timestamp !== undefined) this.setInt(fd, TCP_TIMESTAMP, state.timestamp | 0, 'TCP_TIMESTAMP', target);
    // The queues must fit the buffers: the sizes they had grew with them (this stops the kernel's own tuning of that buffer).
    if (state.receiveQueue.length > 0) this.setSocketInt(fd, SO_RCVBUFFORCE, state.buffers.receive / 2, target);
    if (state.sendQueue.length > 0) this.setSocketInt(fd, SO_SNDBUFFORCE, state.buffers.send / 2, target);
    this.fill(fd, TCP_RECV_QUEUE, state.receiveQueue, target);
    const sent = state.sendQueue.length - state.unsent;
    this.fill(fd, TCP_SEND_QUEUE, state.sendQueue.subarray(0, sent), target);
    this.setQueue(fd, TCP_NO_QUEUE, target);
    const w = state.window;
    this.libc.setsockopt(
      fd,
      IPPROTO_TCP,
      TCP_REPAIR_WINDOW,
      encodeStruct(tcpRepairWindow, { snd_wl1: w.sndWl1, snd_wnd: w.sndWnd, max_window: w.maxWindow, rcv_wnd: w.rcvWnd, rcv_wup: w.rcvWup }),
      `${target}, TCP_REPAIR_WINDOW`,
    );
  }

  /**
   * Writes the bytes of the send queue that were never sent (the last `unsent` of it), as the
   * program would have, on a rebuilt connection out of repair mode: the kernel sends them when
   * the peer's window allows.
   */
  writeUnsent(fd: number, bytes: Uint8Array, target: string): void {
    this.sendAll(fd, Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), MSG_DONTWAIT, target);
  }

  private info(fd: number, target: string): { tcpi_state: number; tcpi_options: number; tcpi_wscale: number } {
    const bytes = Buffer.alloc(structSize(tcpInfoHead));
    this.libc.getsockopt(fd, IPPROTO_TCP, TCP_INFO, bytes, target);
    return decodeStruct(bytes, tcpInfoHead);
  }

  /** A queue's sequence number (the end of it) and its `length` bytes, peeked at. */
  private queue(fd: number, queue: number, length: number, target: string): { seq: number; data: Buffer } {
    this.setQueue(fd, queue, target);
    const seq = this.getInt(fd, IPPROTO_TCP, TCP_QUEUE_SEQ, target) >>> 0;
    const data = Buffer.alloc(length + 1);
    // One byte more than the queue holds: a queue that changed under cr shows as a length that differs.
    const got = length === 0 ? 0 : this.libc.recv(fd, data, MSG_PEEK | MSG_DONTWAIT, `${target}, ${queue === TCP_SEND_QUEUE ? 'send' : 'receive'} queue`);
    if (got !== length) throw new KernelError('recv', 5, target, `peeked ${got} bytes of a ${queue === TCP_SEND_QUEUE ? 'send' : 'receive'} queue of ${length}`);
    this.setQueue(fd, TCP_NO_QUEUE, target);
    return { seq, data: data.subarray(0, length) };
  }

  private setQueueSeq(fd: number, queue: number, seq: number, target: string): void {
    this.setQueue(fd, queue, target);
    const bytes = Buffer.alloc(4);
    bytes.writeUInt32LE(seq >>> 0);
    this.libc.setsockopt(fd, IPPROTO_TCP, TCP_QUEUE_SEQ, bytes, `${target}, TCP_QUEUE_SEQ`);
  }

  /** Puts `data` into a queue of a socket in repair mode: the receive queue as received, the send queue as sent. */
  private fill(fd: number, queue: number, data: Buffer, target: string): void {
    if (data.length === 0) return;
    this.setQueue(fd, queue, target);
    this.sendAll(fd, data, MSG_DONTWAIT, target);
  }

  /**
   * Sends every byte of `data`. In repair mode the kernel takes a piece for the receive queue as
   * one buffer, and may refuse a large one (ENOMEM): the piece is halved and tried again.
   */
  private sendAll(fd: number, data: Buffer, flags: number, target: string): void {
    let piece = MAX_PIECE;
    for (let at = 0; at < data.length; ) {
      try {
        at += this.libc.send(fd, data.subarray(at, at + piece), flags | MSG_NOSIGNAL, target);
      } catch (err) {
        if (!(err instanceof KernelError) || err.code !== 'ENOMEM' || piece <= MIN_PIECE) throw err;
        piece >>= 1;
      }
    }
  }

  private setQueue(fd: number, queue: number, target: string): void {
    this.setInt(fd, TCP_REPAIR_QUEUE, queue, 'TCP_REPAIR_QUEUE', target);
  }

  private getInt(fd: number, level: number, name: number, target: string): number {
    const value = Buffer.alloc(4);
    this.libc.getsockopt(fd, level, name, value, target);
    return value.readInt32LE();
  }

  private setInt(fd: number, name: number, value: number, option: string, target: string): void {
    const bytes = Buffer.alloc(4);
    bytes.writeInt32LE(value);
    this.libc.setsockopt(fd, IPPROTO_TCP, name, bytes, `${target}, ${option}`);
  }

  private setSocketInt(fd: number, name: number, value: number, target: string): void {
    const bytes = Buffer.alloc(4);
    bytes.writeInt32LE(value);
    this.libc.setsockopt(fd, SOL_SOCKET, name, bytes, target);
  }
}
