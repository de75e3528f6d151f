import { holdersField } from '@cr/descriptor-base';
import { z } from 'zod';

/** An inotify instance: each watch with its number, mask and the path of what it watches, and the descriptors on it. */
export const inotifyRecordSchema = z.lazy(() =>
  z.strictObject({
    watches: z.array(
      z.strictObject({
        wd: z.number().int().min(1).max(0x7fff_ffff).describe('the watch descriptor the program knows its events by'),
        mask: z.number().int().min(0).max(0xffff_ffff).describe('IN_CREATE, IN_MODIFY … and IN_ONESHOT, IN_EXCL_UNLINK'),
        path: z.string().startsWith('/'),
      }),
    ),
    statusFlags: z.number().int().nonnegative().describe('O_NONBLOCK …'),
    fds: z.array(z.strictObject({ fd: z.number().int().min(0).max(0x7fff_ffff), closeOnExec: z.boolean() })).min(1),
    ...holdersField,
  }),
);
export type InotifyRecord = z.infer<typeof inotifyRecordSchema>;
