import { holdersField } from '@cr/descriptor-base';
import { z } from 'zod';

/** An IPv4 address (dotted) or IPv6 address (eight hex groups), and a port. */
export const inetAddressSchema = z.lazy(() =>
  z.strictObject({
    family: z.enum(['inet', 'inet6']),
    address: z.string().regex(/^([0-9]{1,3}(\.[0-9]{1,3}){3}|[0-9a-f]{1,4}(:[0-9a-f]{1,4}){7})$/),
    port: z.number().int().min(0).max(65535),
  }),
);

/** The socket options cr carries over, by name (see options.ts). */
export const SOCKET_OPTION_NAMES = ['reuseaddr', 'reuseport', 'keepalive', 'broadcast', 'v6only', 'nodelay', 'deferAccept', 'keepIdle', 'keepInterval', 'keepCount', 'userTimeout'] as const;

/** The name of the nftables table that blocks a connection (see ConnectionBlocks in @cr/core). */
export const BLOCK_NAME = /^cr-tcp-[0-9a-f._-]+$/;

/**
 * An established TCP connection as TCP_REPAIR shows it. The bytes of its queues are the blobs
 * `send-queue` and `receive-queue` (absent when empty).
 */
export const tcpConnectionSchema = z.lazy(() => {
  const u32 = z.number().int().min(0).max(0xffff_ffff);
  const length = z.number().int().min(0).max(0x7fff_ffff);
  return z.strictObject({
    sendSeq: u32.describe('the sequence number after the last byte the program wrote (write_seq)'),
    sendQueue: length.describe('bytes written and not acknowledged by the peer yet'),
    unsent: length.describe('how many of the last of them were never sent'),
    receiveSeq: u32.describe('the sequence number after the last byte received (rcv_nxt)'),
    receiveQueue: length.describe('bytes received and not read by the program yet'),
    mss: z.number().int().min(0).max(65535),
    sack: z.boolean(),
    windowScale: z.strictObject({ send: z.number().int().min(0).max(14), receive: z.number().int().min(0).max(14) }).optional(),
    timestamp: u32.optional().describe("the connection's TCP timestamp clock at the checkpoint"),
    window: z.strictObject({ sndWl1: u32, sndWnd: u32, maxWindow: u32, rcvWnd: u32, rcvWup: u32 }),
    buffers: z.strictObject({ send: length, receive: length }).describe('SO_SNDBUF and SO_RCVBUF as they had grown'),
    block: z.string().regex(BLOCK_NAME).describe('the nftables table (family inet) that blocked the connection from the freeze on; restore lifts it if it is still there'),
  });
});
export type TcpConnection = z.infer<typeof tcpConnectionSchema>;

/**
 * A TCP socket that listens, is connected (`--tcp-established`), or neither, or a UDP socket, and
 * the descriptors of the process on it. Version 2 added established connections, and the
 * options keepIdle, keepInterval, keepCount and userTimeout.
 */
export const inetSocketRecordSchema = z.lazy(() =>
  z.strictObject({
    protocol: z.enum(['tcp', 'udp']),
    family: z.enum(['inet', 'inet6']),
    /** listen: a TCP listener; established: a TCP connection; bound: bound to `local`, not connected (or a UDP socket connected to `peer`); unbound: neither. */
    state: z.enum(['listen', 'established', 'bound', 'unbound']),
    local: inetAddressSchema.optional(),
    peer: inetAddressSchema.optional().describe('the address a UDP socket or a TCP connection is connected to'),
    connection: tcpConnectionSchema.optional().describe('an established TCP connection'),
    backlog: z.number().int().min(0).max(0x7fff_ffff).optional().describe('listen(2) backlog of a TCP listener'),
    options: z.partialRecord(z.enum(SOCKET_OPTION_NAMES), z.number().int()),
    statusFlags: z.number().int().nonnegative().describe('O_NONBLOCK …'),
    fds: z.array(z.strictObject({ fd: z.number().int().min(0).max(0x7fff_ffff), closeOnExec: z.boolean() })).min(1),
    ...holdersField,
  }),
);
export type InetSocketRecord = z.infer<typeof inetSocketRecordSchema>;

/** The options of the inet-sockets plugin (`pluginOptions.inet-sockets` in a config; `cr checkpoint --tcp-established`). */
export const inetSocketsOptionsSchema = z.lazy(() =>
  z.strictObject({
    tcpEstablished: z.boolean().default(false).describe('save established TCP connections with TCP_REPAIR (otherwise they are refused)'),
  }),
);
export type InetSocketsOptions = z.infer<typeof inetSocketsOptionsSchema>;
