import { z } from 'zod';
import { intIdSchema, uidSchema } from './common.js';

const uint = z.number().int().nonnegative();

/** What every SysV IPC object has: its key and id (as ipcs shows them), owners and permission bits. */
const ipcObject = {
  key: z.number().int().min(0).max(0xffff_ffff).describe('key_t as ipcs shows it, unsigned 32-bit; 0 is IPC_PRIVATE'),
  id: intIdSchema,
  mode: z.number().int().min(0).max(0o777),
  uid: uidSchema,
  gid: uidSchema,
  cuid: uidSchema,
  cgid: uidSchema,
};

export const shmRecordSchema = z.strictObject({
  ...ipcObject,
  size: z.number().int().positive(),
  locked: z.boolean().describe('SHM_LOCKED: the segment is locked in memory'),
  markedForDestruction: z.boolean().describe('SHM_DEST: IPC_RMID was called while processes were attached'),
});
export type ShmRecord = z.infer<typeof shmRecordSchema>;

export const msgRecordSchema = z.strictObject({
  ...ipcObject,
  qbytes: uint,
  messages: z
    .array(z.strictObject({ type: z.number().int().positive(), size: uint }))
    .describe('In queue order; the payloads follow one another in the "messages" blob'),
});
export type MsgRecord = z.infer<typeof msgRecordSchema>;

export const semRecordSchema = z.strictObject({
  ...ipcObject,
  values: z.array(z.number().int().min(0).max(32767)).min(1),
});
export type SemRecord = z.infer<typeof semRecordSchema>;
