import { ipcObjectShape } from '@cr/sysvipc-base';
import { z } from 'zod';

export const semRecordSchema = z.lazy(() =>
  z.strictObject({
    ...ipcObjectShape(),
    values: z.array(z.number().int().min(0).max(32767)).min(1),
  }),
);
export type SemRecord = z.infer<typeof semRecordSchema>;
