import { ipcObjectShape } from '@cr/sysvipc-base';
import { z } from 'zod';

export const shmRecordSchema = z.lazy(() => {
  const rangeSchema = z.strictObject({ offset: z.number().int().nonnegative(), length: z.number().int().positive() });
  return z
    .strictObject({
      ...ipcObjectShape(),
      size: z.number().int().positive(),
      locked: z.boolean().describe('SHM_LOCKED: the segment is locked in memory'),
      markedForDestruction: z.boolean().describe('SHM_DEST: IPC_RMID was called while processes were attached'),
      ranges: z
        .array(rangeSchema)
        .optional()
        .describe(
          'The byte ranges of the segment its contents blob holds, in order: its pages that exist and are not all zeros. The rest reads as zeros and is left a hole on restore. Absent in older images, whose blob holds the whole segment.',
        ),
    })
    .refine((r) => (r.ranges ?? []).every((range, i, all) => range.offset + range.length <= r.size && (i === 0 || all[i - 1]!.offset + all[i - 1]!.length < range.offset)), {
      message: 'ranges must lie within the segment, in order, apart from each other',
      path: ['ranges'],
    });
});
export type ShmRecord = z.infer<typeof shmRecordSchema>;
