import type { HeldBlock, Kernel, RestoreContext, SaveContext, SocketAddress, TcpConnectionState } from '@cr/core';
import type { InetSocketRecord, TcpConnection } from './record.js';

const SOL_SOCKET = 1;
const SO_REUSEADDR = 2;

type InetAddress = Extract<SocketAddress, { port: number }>;

/** A connection cr has paused at the freeze: blocked by `block`, its address reuse as the program had set it. */
export interface PausedConnection {
  local: InetAddress;
  peer: InetAddress;
  block: HeldBlock;
  reuseaddr: number;
}

const SEND_QUEUE = 'send-queue';
const RECEIVE_QUEUE = 'receive-queue';

/**
 * Pauses an established connection of a frozen process: a block on its packets, so that nothing
 * the peer sends changes what cr reads, and so that the peer is not reset if the program is
 * killed. The socket is left as it is; repair mode comes only for the moments it is needed.
 */
export function pause(kernel: Kernel, fd: number, target: string): PausedConnection {
  const local = kernel.sockets.localAddress(fd, target) as InetAddress;
  const peer = kernel.sockets.peerAddress(fd, target) as InetAddress;
  const reuseaddr = kernel.sockets.intOption(fd, SOL_SOCKET, SO_REUSEADDR, target);
  return { local, peer, block: kernel.connectionBlocks.hold(local, peer), reuseaddr };
}

/**
 * A paused connection's state, read in repair mode, which it leaves at once (without a window
 * probe: it is blocked) with the program's address reuse back. What the kernel sends meanwhile
 * is dropped by the block, and sent again by a restored connection.
 */
export function readPaused(kernel: Kernel, fd: number, paused: PausedConnection, target: string): TcpConnectionState {
  kernel.tcpRepair.enter(fd, target);
  try {
    return kernel.tcpRepair.read(fd, target);
  } finally {
    kernel.tcpRepair.leave(fd, false, target);
    kernel.sockets.setIntOption(fd, SOL_SOCKET, SO_REUSEADDR, paused.reuseaddr, target);
  }
}

/**
 * The end of a pause for a program about to be killed: its socket goes into repair mode, so that
 * closing it sends the peer neither FIN nor reset, and the block is kept for the restore. (One
 * that carries on only has its block lifted.)
 */
export function keepForRestore(kernel: Kernel, fd: number, paused: PausedConnection, target: string): void {
  try {
    kernel.tcpRepair.enter(fd, target);
  } finally {
    paused.block.keep();
  }
}

/** The record part of a paused connection's state (read with TcpRepair.read), its queues written as blobs. */
export async function saveConnection(state: TcpConnectionState, paused: PausedConnection, ctx: SaveContext): Promise<TcpConnection> {
  if (state.sendQueue.length > 0) await ctx.writeBlob(SEND_QUEUE, state.sendQueue);
  if (state.receiveQueue.length > 0) await ctx.writeBlob(RECEIVE_QUEUE, state.receiveQueue);
  return {
    sendSeq: state.sendSeq,
    sendQueue: state.sendQueue.length,
    unsent: state.unsent,
    receiveSeq: state.receiveSeq,
    receiveQueue: state.receiveQueue.length,
    mss: state.mss,
    sack: state.sack,
    ...(state.windowScale ? { windowScale: state.windowScale } : {}),
    ...(state.timestamp !== undefined ? { timestamp: state.timestamp } : {}),
    window: state.window,
    buffers: state.buffers,
    block: paused.block.name,
  };
}

/** The blobs a connection's record implies, by name and size. */
export function connectionBlobs(connection: TcpConnection): Record<string, number> {
  return {
    ...(connection.sendQueue > 0 ? { [SEND_QUEUE]: connection.sendQueue } : {}),
    ...(connection.receiveQueue > 0 ? { [RECEIVE_QUEUE]: connection.receiveQueue } : {}),
  };
}

/**
 * Makes `fd`, a new socket of cr's with the program's options set, into the saved connection,
 * left in repair mode: the program's process is not running yet, and the block is still there.
 */
export async function rebuildConnection(kernel: Kernel, fd: number, record: InetSocketRecord & { connection: TcpConnection; local: InetAddress; peer: InetAddress }, target: string, ctx: RestoreContext): Promise<void> {
  const { connection } = record;
  const queue = async (name: string, size: number) => {
    const bytes = Buffer.alloc(size);
    if (size > 0) await ctx.readBlobInto(name, bytes);
    return bytes;
  };
  const state: TcpConnectionState = {
    sendSeq: connection.sendSeq,
    sendQueue: await queue(SEND_QUEUE, connection.sendQueue),
    unsent: connection.unsent,
    receiveSeq: connection.receiveSeq,
    receiveQueue: await queue(RECEIVE_QUEUE, connection.receiveQueue),
    mss: connection.mss,
    sack: connection.sack,
    ...(connection.windowScale ? { windowScale: connection.windowScale } : {}),
    ...(connection.timestamp !== undefined ? { timestamp: connection.timestamp } : {}),
    window: connection.window,
    buffers: connection.buffers,
  };
  kernel.tcpRepair.enter(fd, target);
  kernel.tcpRepair.rebuild(fd, state, record.local, record.peer, `${target} (${shown(record.local)} -> ${shown(record.peer)})`);
}

/**
 * The last step of a restored connection, once every object of the process is back: the block
 * lifted, then out of repair mode (with a window probe, so that the peer hears of it at once),
 * the program's address reuse again, and the bytes it had not sent yet written. Lifted first, so
 * that what the kernel sends from here on reaches the peer, rather than being dropped and sent
 * again only after a retransmission timeout.
 */
export function resumeConnection(kernel: Kernel, fd: number, record: InetSocketRecord & { connection: TcpConnection }, unsent: Uint8Array, target: string): void {
  kernel.connectionBlocks.lift(record.connection.block);
  kernel.tcpRepair.leave(fd, true, target);
  kernel.sockets.setIntOption(fd, SOL_SOCKET, SO_REUSEADDR, record.options.reuseaddr ?? 0, target);
  if (unsent.length > 0) kernel.tcpRepair.writeUnsent(fd, unsent, target);
}

/** The bytes of a saved connection's send queue that were never sent. */
export async function unsentBytes(connection: TcpConnection, ctx: RestoreContext): Promise<Uint8Array> {
  if (connection.unsent === 0) return new Uint8Array(0);
  const queue = Buffer.alloc(connection.sendQueue);
  await ctx.readBlobInto(SEND_QUEUE, queue);
  return queue.subarray(connection.sendQueue - connection.unsent);
}

export const shown = (a: SocketAddress | undefined) => (a && 'port' in a ? (a.family === 'inet6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`) : '?');
