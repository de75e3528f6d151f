import { z } from 'zod';
import { intIdSchema, uidSchema } from '@cr/schemas';

/**
 * A shared memory object: a memfd, the shmem file behind shared anonymous memory
 * (MAP_SHARED|MAP_ANONYMOUS), or a tmpfs file deleted while mapped, with the parts of it that
 * hold data in the "contents" blob.
 */
export const shmemRecordSchema = z.lazy(() => {
  const byteCount = z.number().int().nonnegative();
  return z.strictObject({
    kind: z.enum(['memfd', 'anonymous', 'deleted']),
    name: z.string().optional().describe('a memfd\'s name, as /proc shows "/memfd:NAME (deleted)"'),
    path: z.string().startsWith('/').optional().describe('where a deleted tmpfs file was (/dev/shm/sem.NAME): made there again and deleted at once'),
    inode: z.number().int().positive().describe('its inode at the checkpoint, for information'),
    size: byteCount,
    mode: z.number().int().min(0).max(0o7777),
    uid: uidSchema,
    gid: uidSchema,
    seals: z.number().int().min(0).max(63).describe('F_GET_SEALS of a memfd'),
    regions: z
      .array(z.strictObject({ offset: byteCount, length: z.number().int().positive() }))
      .describe('the parts that hold data (SEEK_DATA), in the order their bytes follow one another in "contents"; the rest reads as zeros'),
  });
});
export type ShmemRecord = z.infer<typeof shmemRecordSchema>;

/** An open file description on a memfd, and every descriptor the process has on it. */
export const memfdRecordSchema = z.lazy(() =>
  z.strictObject({
    shmem: z.number().int().positive().describe('the shmem object it is open on (shmem:INODE)'),
    access: z.number().int().min(0).max(2).describe('O_RDONLY, O_WRONLY or O_RDWR'),
    statusFlags: z.number().int().nonnegative(),
    offset: z.string().regex(/^[0-9]+$/),
    fds: z.array(z.strictObject({ fd: intIdSchema, closeOnExec: z.boolean() })).min(1),
  }),
);
export type MemfdRecord = z.infer<typeof memfdRecordSchema>;
