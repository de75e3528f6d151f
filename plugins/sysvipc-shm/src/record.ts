import { ipcObjectShape } from '@cr/sysvipc-base';
import { z } from 'zod';

export const shmRecordSchema = z.strictObject({
  ...ipcObjectShape,
  size: z.number().int().positive(),
  locked: z.boolean().describe('SHM_LOCKED: the segment is locked in memory'),
  markedForDestruction: z.boolean().describe('SHM_DEST: IPC_RMID was called while processes were attached'),
});
export type ShmRecord = z.infer<typeof shmRecordSchema>;
