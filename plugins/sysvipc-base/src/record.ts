import { z } from 'zod';
import { intIdSchema, uidSchema } from '@cr/schemas';

/**
 * What every SysV IPC object has: its key and id (as ipcs shows them), owners and permission bits.
 * A function, so that the schemas are built only when a record schema that spreads them is.
 */
export function ipcObjectShape() {
  return {
    key: z.number().int().min(0).max(0xffff_ffff).describe('key_t as ipcs shows it, unsigned 32-bit; 0 is IPC_PRIVATE'),
    id: intIdSchema,
    mode: z.number().int().min(0).max(0o777),
    uid: uidSchema,
    gid: uidSchema,
    cuid: uidSchema,
    cgid: uidSchema,
  };
}
