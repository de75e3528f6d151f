import { holdersField } from '@cr/descriptor-base';
import { pidSchema } from '@cr/schemas';
import { z } from 'zod';

/** A pidfd (pidfd_open(2), clone(CLONE_PIDFD)): the process it refers to, and the descriptors of the process on it. */
export const pidfdRecordSchema = z.lazy(() =>
  z.strictObject({
    pid: pidSchema.optional().describe('the process of the checkpoint it refers to; absent: one that had exited and been reaped, which it still refers to'),
    statusFlags: z.number().int().nonnegative().describe('O_NONBLOCK (PIDFD_NONBLOCK) …'),
    fds: z.array(z.strictObject({ fd: z.number().int().min(0).max(0x7fff_ffff), closeOnExec: z.boolean() })).min(1),
    ...holdersField,
  }),
);
export type PidfdRecord = z.infer<typeof pidfdRecordSchema>;
