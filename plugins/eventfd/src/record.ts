import { holdersField } from '@cr/descriptor-base';
import { z } from 'zod';

/** An eventfd: its counter and mode, and the descriptors of the process on it. */
export const eventfdRecordSchema = z.lazy(() =>
  z.strictObject({
    count: z.string().regex(/^[0-9]+$/).describe('the 64-bit counter, in decimal'),
    semaphore: z.boolean().describe('EFD_SEMAPHORE: each read takes 1'),
    statusFlags: z.number().int().nonnegative().describe('O_NONBLOCK …'),
    fds: z.array(z.strictObject({ fd: z.number().int().min(0).max(0x7fff_ffff), closeOnExec: z.boolean() })).min(1),
    ...holdersField,
  }),
);
export type EventfdRecord = z.infer<typeof eventfdRecordSchema>;
