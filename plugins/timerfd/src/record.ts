import { holdersField } from '@cr/descriptor-base';
import { z } from 'zod';

/** A timerfd: its clock, how it is armed, the expirations not read yet, and the descriptors on it. */
export const timerfdRecordSchema = z.lazy(() => {
  const nanoseconds = z.string().regex(/^[0-9]+$/);
  return z.strictObject({
    clockId: z.number().int().min(0).max(11).describe('CLOCK_REALTIME 0, CLOCK_MONOTONIC 1, CLOCK_BOOTTIME 7 …'),
    valueNs: nanoseconds.describe('time to the next expiry at the checkpoint, relative; 0 when disarmed'),
    intervalNs: nanoseconds,
    ticks: nanoseconds.describe('expirations not read yet'),
    statusFlags: z.number().int().nonnegative().describe('O_NONBLOCK …'),
    fds: z.array(z.strictObject({ fd: z.number().int().min(0).max(0x7fff_ffff), closeOnExec: z.boolean() })).min(1),
    ...holdersField,
  });
});
export type TimerfdRecord = z.infer<typeof timerfdRecordSchema>;
