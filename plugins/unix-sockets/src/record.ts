import { descriptionHoldersSchema, descriptorNumberSchema, pidSchema } from '@cr/schemas';
import { z } from 'zod';

const statusFlags = z.lazy(() => z.number().int().nonnegative().describe('its file status flags (O_NONBLOCK …)'));

/** A unix socket's name: a path, or an abstract name (its bytes in hex, without the leading NUL). */
export const unixNameSchema = z.lazy(() =>
  z.union([z.strictObject({ path: z.string().min(1).max(107) }), z.strictObject({ abstract: z.string().regex(/^([0-9a-f]{2}){0,107}$/) })]),
);
export type UnixName = z.infer<typeof unixNameSchema>;

/**
 * A file in flight (SCM_RIGHTS) in a queue: one a process of the checkpoint holds too, saved by
 * its own plugin and sent again from there; or one no process holds, saved here (an eventfd, or
 * an end of a pipe no process holds an end of).
 */
export const inflightFileSchema = z.lazy(() =>
  z.union([
    z.strictObject({ held: z.strictObject({ pid: pidSchema, fd: z.number().int().min(0).max(0x7fff_ffff) }).describe('the file process PID has on descriptor FD') }),
    z.strictObject({ eventfd: z.strictObject({ count: z.string().regex(/^\d{1,20}$/), semaphore: z.boolean() }), statusFlags }),
    z.strictObject({
      pipe: z.strictObject({
        inode: z.number().int().positive(),
        end: z.enum(['read', 'write']),
        capacity: z.number().int().positive(),
        data: z.string().base64().describe('the bytes queued in the pipe (the same for each end of one pipe)'),
      }),
      statusFlags,
    }),
  ]),
);
export type InflightFile = z.infer<typeof inflightFileSchema>;

/** A queued message: its bytes (base64), or its bytes with the files in flight with it and its sender's credentials. */
export const queuedMessageSchema = z.lazy(() => {
  /** Who sent a message, as SCM_CREDENTIALS showed it to a socket with SO_PASSCRED. */
  const credentialsSchema = z.strictObject({ pid: pidSchema, uid: z.number().int().nonnegative(), gid: z.number().int().nonnegative() });
  return z.union([
    z.string().base64(),
    z.strictObject({
      data: z.string().base64(),
      fds: z.array(z.number().int().nonnegative()).max(253).optional().describe("indexes into the record's inflight files, in the order they were sent"),
      credentials: credentialsSchema.optional(),
    }),
  ]);
});
export type QueuedMessage = z.infer<typeof queuedMessageSchema>;

/** One socket: its state and names, its queue, and the descriptors of the processes on it. */
export const unixEndSchema = z.lazy(() =>
  z.strictObject({
    state: z.enum(['listen', 'connected', 'unconnected']),
    name: unixNameSchema.optional().describe('what it is bound to'),
    file: z
      .strictObject({ mode: z.number().int().min(0).max(0o177777), uid: z.number().int().nonnegative(), gid: z.number().int().nonnegative() })
      .optional()
      .describe('the socket file of a name that is a path, as it was'),
    peer: unixNameSchema.optional().describe('the named socket outside the process a datagram socket is connected to'),
    outside: unixNameSchema
      .optional()
      .describe('the listener outside the checkpoint a stream or seqpacket socket was connected to; restored connected to what --inherit-fd names'),
    peerGone: z.literal(true).optional().describe('a stream or seqpacket socket whose peer was closed: it reads its queue, then end of file'),
    backlog: z.number().int().nonnegative().optional().describe('listen(2) backlog of a listener'),
    passcred: z.boolean().describe('SO_PASSCRED'),
    shutdown: z.number().int().min(1).max(3).optional().describe('shutdown(2) bits: 1 receiving (SHUT_RD), 2 sending (SHUT_WR)'),
    buffers: z.strictObject({ send: z.number().int().positive(), receive: z.number().int().positive() }).optional().describe('SO_SNDBUF and SO_RCVBUF as getsockopt shows them'),
    queue: z.array(queuedMessageSchema).describe('the messages queued for it to read, in order (a stream: its bytes, split where descriptors came)'),
    statusFlags,
    pid: pidSchema.optional().describe("the process whose descriptors `fds` are, when not the object's own (a socketpair shared by parent and child)"),
    fds: z.array(descriptorNumberSchema).min(1),
    holders: descriptionHoldersSchema,
  }),
);
export type UnixEnd = z.infer<typeof unixEndSchema>;

/** A unix socket on its own, or two connected to each other that the processes hold (a socketpair). */
export const unixSocketRecordSchema = z.lazy(() =>
  z.strictObject({
    type: z.enum(['stream', 'dgram', 'seqpacket']),
    ends: z.array(unixEndSchema).min(1).max(2).describe('two: the first is connected to the second'),
    inflight: z.array(inflightFileSchema).optional().describe('the files in flight in the queues (SCM_RIGHTS), which messages name by index'),
  }),
);
export type UnixSocketRecord = z.infer<typeof unixSocketRecordSchema>;
