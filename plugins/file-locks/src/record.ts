import { z } from 'zod';
import { intIdSchema } from '@cr/schemas';

export const fileLockRecordSchema = z.lazy(() => {
  const offset = z.string().regex(/^[0-9]+$/, 'a byte offset in decimal');
  return z
    .strictObject({
      fd: intIdSchema.describe('a descriptor the lock is on; the lock is taken again through it'),
      kind: z.enum(['flock', 'posix', 'ofd', 'lease']).describe('flock(2), an fcntl record lock of the process, an open file description lock, or a lease'),
      type: z.enum(['read', 'write']),
      start: offset,
      end: offset.optional().describe('the last byte locked; absent: to the end of the file, however long it grows'),
    })
    .refine((l) => l.end === undefined || BigInt(l.end) >= BigInt(l.start), { message: 'a lock must not end before it starts', path: ['end'] })
    .refine((l) => l.kind === 'posix' || l.kind === 'ofd' || (l.start === '0' && l.end === undefined), {
      message: 'a flock or a lease covers the whole file',
      path: ['start'],
    });
});

export const fileLocksRecordSchema = z.lazy(() =>
  z.strictObject({
    locks: z.array(fileLockRecordSchema).min(1).describe('each lock once, on the lowest descriptor that holds it'),
  }),
);
export type FileLocksRecord = z.infer<typeof fileLocksRecordSchema>;
export type FileLockRecord = FileLocksRecord['locks'][number];
