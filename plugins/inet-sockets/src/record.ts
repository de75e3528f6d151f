import { holdersField } from '@cr/descriptor-base';
import { z } from 'zod';

const descriptor = z.strictObject({ fd: z.number().int().min(0).max(0x7fff_ffff), closeOnExec: z.boolean() });

/** An IPv4 address (dotted) or IPv6 address (eight hex groups), and a port. */
export const inetAddressSchema = z.strictObject({
  family: z.enum(['inet', 'inet6']),
  address: z.string().regex(/^([0-9]{1,3}(\.[0-9]{1,3}){3}|[0-9a-f]{1,4}(:[0-9a-f]{1,4}){7})$/),
  port: z.number().int().min(0).max(65535),
});

/** The socket options cr carries over, by name (see options.ts). */
export const SOCKET_OPTION_NAMES = ['reuseaddr', 'reuseport', 'keepalive', 'broadcast', 'v6only', 'nodelay', 'deferAccept'] as const;

/** A TCP socket that listens or is not connected, or a UDP socket, and the descriptors of the process on it. */
export const inetSocketRecordSchema = z.strictObject({
  protocol: z.enum(['tcp', 'udp']),
  family: z.enum(['inet', 'inet6']),
  /** listen: a TCP listener; bound: bound to `local`, not connected (or a UDP socket connected to `peer`); unbound: neither. */
  state: z.enum(['listen', 'bound', 'unbound']),
  local: inetAddressSchema.optional(),
  peer: inetAddressSchema.optional().describe('the address a UDP socket is connected to'),
  backlog: z.number().int().min(0).max(0x7fff_ffff).optional().describe('listen(2) backlog of a TCP listener'),
  options: z.partialRecord(z.enum(SOCKET_OPTION_NAMES), z.number().int()),
  statusFlags: z.number().int().nonnegative().describe('O_NONBLOCK …'),
  fds: z.array(descriptor).min(1),
  ...holdersField,
});
export type InetSocketRecord = z.infer<typeof inetSocketRecordSchema>;
