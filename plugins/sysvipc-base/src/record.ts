import { z } from 'zod';
import { intIdSchema, uidSchema } from '@cr/schemas';

/** What every SysV IPC object has: its key and id (as ipcs shows them), owners and permission bits. */
export const ipcObjectShape = {
  key: z.number().int().min(0).max(0xffff_ffff).describe('key_t as ipcs shows it, unsigned 32-bit; 0 is IPC_PRIVATE'),
  id: intIdSchema,
  mode: z.number().int().min(0).max(0o777),
  uid: uidSchema,
  gid: uidSchema,
  cuid: uidSchema,
  cgid: uidSchema,
};
