import { z } from 'zod';

/** Record of one UTS namespace: the two names it holds (each at most 64 bytes, as the kernel allows). */
export const utsNsRecordSchema = z.lazy(() =>
  z.strictObject({
    hostname: z.string().max(64),
    domainname: z.string().max(64),
  }),
);
export type UtsNsRecord = z.infer<typeof utsNsRecordSchema>;
