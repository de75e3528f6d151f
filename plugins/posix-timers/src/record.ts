import { z } from 'zod';

/** One POSIX timer of a process, as timer_create(2) made it and timer_settime(2) armed it. */
export const posixTimerSchema = z.lazy(() => {
  const nanoseconds = z.string().regex(/^[0-9]+$/);
  return z.strictObject({
    id: z.number().int().min(0).max(0x7fff_ffff).describe('the timer_t the program holds'),
    clockId: z.number().int().describe('CLOCK_REALTIME 0, CLOCK_MONOTONIC 1, CLOCK_BOOTTIME 7 … (negative: a CPU-time clock)'),
    notify: z.enum(['signal', 'thread', 'none']).describe('SIGEV_SIGNAL, SIGEV_THREAD_ID, SIGEV_NONE'),
    signal: z.number().int().min(0).max(64),
    value: z.string().regex(/^[0-9]+$/).describe('sigev_value, the 64 bits its signal carries, in decimal'),
    tid: z.number().int().nonnegative().describe('the thread SIGEV_THREAD_ID signals, or the process'),
    valueNs: nanoseconds.describe('time to its next expiry at the checkpoint, relative; 0 when disarmed'),
    intervalNs: nanoseconds,
    overrun: z.number().int().nonnegative().describe('timer_getoverrun(2) at the checkpoint; a new timer starts from 0'),
  });
});
export type PosixTimer = z.infer<typeof posixTimerSchema>;

/** The POSIX timers of a process. */
export const posixTimersRecordSchema = z.lazy(() => z.strictObject({ timers: z.array(posixTimerSchema) }));
export type PosixTimersRecord = z.infer<typeof posixTimersRecordSchema>;
