import { pidSchema } from '@cr/schemas';
import { z } from 'zod';
import { uidSchema } from '@cr/schemas';

/** One descriptor of the process on one end of the pipe. */
export const pipeEndSchema = z.lazy(() =>
  z.strictObject({
    fd: z.number().int().min(0).max(0x7fff_ffff),
    end: z.enum(['read', 'write']),
    /** The file status flags of its open file description (O_NONBLOCK …), as fcntl(F_GETFL) would show them. */
    flags: z.number().int().nonnegative(),
    closeOnExec: z.boolean(),
  }),
);

/**
 * A pipe of the checkpoint, and the bytes queued in it (the "data" blob): one whose both ends the
 * processes of the checkpoint hold, or (`outside`) one whose other end only processes outside the
 * checkpoint hold; the bytes then stay in the pipe, and the ends here are given again with --inherit-fd;
 * or (`closed`) one whose other end no process holds at all.
 */
export const pipeRecordSchema = z.lazy(() =>
  z.strictObject({
    inode: z.number().int().positive().describe('the pipe as /proc/PID/fd/N names it, pipe:[INODE]'),
    capacity: z.number().int().positive().describe('F_GETPIPE_SZ'),
    queued: z.number().int().nonnegative().describe('bytes queued in the pipe, in the "data" blob'),
    ends: z.array(pipeEndSchema).min(1).describe('the descriptors of the process the object is of'),
    outside: z.enum(['read', 'write']).optional().describe('the end outside the checkpoint; absent for a pipe whose both ends are here'),
    closed: z
      .enum(['read', 'write'])
      .optional()
      .describe('the end no process held any more (a command substitution whose writer had exited): restored closed, the bytes queued kept'),
    holders: z
      .array(z.strictObject({ pid: pidSchema, ends: z.array(pipeEndSchema).min(1) }))
      .optional()
      .describe('the other processes holding an end (a pipeline between processes); images before process trees left it out'),
  }),
);
export type PipeRecord = z.infer<typeof pipeRecordSchema>;
export type PipeEnd = z.infer<typeof pipeEndSchema>;

/** One open file description of the process on a named pipe, and its descriptors (dups). */
export const fifoDescriptionSchema = z.lazy(() =>
  z.strictObject({
    access: z.enum(['read', 'write', 'read-write']),
    /** Its file status flags (O_NONBLOCK …), without the access mode. */
    statusFlags: z.number().int().nonnegative(),
    fds: z.array(z.strictObject({ fd: z.number().int().min(0).max(0x7fff_ffff), closeOnExec: z.boolean() })).min(1),
  }),
);

/** A named pipe the process opened by path, with the bytes queued in it (the "data" blob). */
export const fifoRecordSchema = z.lazy(() =>
  z.strictObject({
    path: z.string().startsWith('/'),
    mode: z.number().int().min(0).max(0o7777),
    uid: uidSchema,
    gid: uidSchema,
    capacity: z.number().int().positive().describe('F_GETPIPE_SZ'),
    queued: z.number().int().nonnegative().describe('bytes queued in it, in the "data" blob'),
    descriptions: z.array(fifoDescriptionSchema).min(1),
  }),
);
export type FifoRecord = z.infer<typeof fifoRecordSchema>;
export type FifoDescription = z.infer<typeof fifoDescriptionSchema>;
