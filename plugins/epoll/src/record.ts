import { holdersField } from '@cr/descriptor-base';
import { z } from 'zod';

/** One file the epoll instance watches: the task's descriptor number it was added by, what for, and what it reports. */
export const epollTargetSchema = z.lazy(() =>
  z.strictObject({
    fd: z.number().int().min(0).max(0x7fff_ffff).describe('the descriptor the process added it by (epoll knows an item by file and number)'),
    events: z.number().int().min(0).max(0xffff_ffff).describe('EPOLLIN, EPOLLOUT, EPOLLET, EPOLLONESHOT … as epoll_ctl(2) took them'),
    data: z.string().regex(/^[0-9]+$/).describe('the 64-bit epoll_data the program gets back, in decimal'),
  }),
);
export type EpollTarget = z.infer<typeof epollTargetSchema>;

/** An epoll instance: every file it watches, and the descriptors of the process on it. */
export const epollRecordSchema = z.lazy(() =>
  z.strictObject({
    targets: z.array(epollTargetSchema),
    statusFlags: z.number().int().nonnegative().describe('O_NONBLOCK …'),
    fds: z.array(z.strictObject({ fd: z.number().int().min(0).max(0x7fff_ffff), closeOnExec: z.boolean() })).min(1),
    ...holdersField,
  }),
);
export type EpollRecord = z.infer<typeof epollRecordSchema>;
