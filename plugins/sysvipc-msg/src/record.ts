import { ipcObjectShape } from '@cr/sysvipc-base';
import { z } from 'zod';

export const msgRecordSchema = z.lazy(() => {
  const uint = z.number().int().nonnegative();
  return z.strictObject({
    ...ipcObjectShape(),
    qbytes: uint,
    messages: z
      .array(z.strictObject({ type: z.number().int().positive(), size: uint }))
      .describe('In queue order; the payloads follow one another in the "messages" blob'),
  });
});
export type MsgRecord = z.infer<typeof msgRecordSchema>;
