import { pidSchema } from '@cr/schemas';
import { z } from 'zod';

const fdNumber = z.number().int().min(0).max(0x7fff_ffff);

/** One descriptor of the process on one end of the pipe. */
export const pipeEndSchema = z.strictObject({
  fd: fdNumber,
  end: z.enum(['read', 'write']),
  /** The file status flags of its open file description (O_NONBLOCK …), as fcntl(F_GETFL) would show them. */
  flags: z.number().int().nonnegative(),
  closeOnExec: z.boolean(),
});

/** A pipe both of whose ends the processes of the checkpoint hold, and the bytes queued in it (the "data" blob). */
export const pipeRecordSchema = z.strictObject({
  inode: z.number().int().positive().describe('the pipe as /proc/PID/fd/N names it, pipe:[INODE]; for information'),
  capacity: z.number().int().positive().describe('F_GETPIPE_SZ'),
  queued: z.number().int().nonnegative().describe('bytes queued in the pipe, in the "data" blob'),
  ends: z.array(pipeEndSchema).min(1).describe('the descriptors of the process the object is of'),
  holders: z
    .array(z.strictObject({ pid: pidSchema, ends: z.array(pipeEndSchema).min(1) }))
    .optional()
    .describe('the other processes holding an end (a pipeline between processes); images before process trees left it out'),
});
export type PipeRecord = z.infer<typeof pipeRecordSchema>;
export type PipeEnd = z.infer<typeof pipeEndSchema>;
