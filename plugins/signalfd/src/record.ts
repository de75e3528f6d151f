import { holdersField } from '@cr/descriptor-base';
import { z } from 'zod';

/** A signalfd: the signals it reads, and the descriptors of the process on it. */
export const signalfdRecordSchema = z.lazy(() =>
  z.strictObject({
    mask: z.string().regex(/^0x[0-9a-f]{1,16}$/).describe('the signals it takes, bit N-1 for signal N'),
    statusFlags: z.number().int().nonnegative().describe('O_NONBLOCK …'),
    fds: z.array(z.strictObject({ fd: z.number().int().min(0).max(0x7fff_ffff), closeOnExec: z.boolean() })).min(1),
    ...holdersField,
  }),
);
export type SignalfdRecord = z.infer<typeof signalfdRecordSchema>;
