import { z } from 'zod';

const descriptor = z.strictObject({ fd: z.number().int().min(0).max(0x7fff_ffff), closeOnExec: z.boolean() });

/** A unix socket's name: a path, or an abstract name (its bytes in hex, without the leading NUL). */
export const unixNameSchema = z.union([z.strictObject({ path: z.string().min(1).max(107) }), z.strictObject({ abstract: z.string().regex(/^([0-9a-f]{2}){0,107}$/) })]);
export type UnixName = z.infer<typeof unixNameSchema>;

/** One socket: its state and names, its queue, and the descriptors of the process on it. */
export const unixEndSchema = z.strictObject({
  state: z.enum(['listen', 'connected', 'unconnected']),
  name: unixNameSchema.optional().describe('what it is bound to'),
  file: z
    .strictObject({ mode: z.number().int().min(0).max(0o177777), uid: z.number().int().nonnegative(), gid: z.number().int().nonnegative() })
    .optional()
    .describe('the socket file of a name that is a path, as it was'),
  peer: unixNameSchema.optional().describe('the named socket outside the process a datagram socket is connected to'),
  backlog: z.number().int().nonnegative().optional().describe('listen(2) backlog of a listener'),
  passcred: z.boolean().describe('SO_PASSCRED'),
  queue: z.array(z.string().base64()).describe('the messages queued for it to read, in order (a stream: its bytes as one)'),
  statusFlags: z.number().int().nonnegative().describe('O_NONBLOCK …'),
  fds: z.array(descriptor).min(1),
});
export type UnixEnd = z.infer<typeof unixEndSchema>;

/** A unix socket on its own, or two connected to each other that the process both holds (a socketpair). */
export const unixSocketRecordSchema = z.strictObject({
  type: z.enum(['stream', 'dgram', 'seqpacket']),
  ends: z.array(unixEndSchema).min(1).max(2).describe('two: the first is connected to the second'),
});
export type UnixSocketRecord = z.infer<typeof unixSocketRecordSchema>;
