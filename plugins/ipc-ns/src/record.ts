import { z } from 'zod';

/**
 * The `kernel.*` sysctls that belong to an IPC namespace rather than to the host.
 * The `*_next_id` ones are left out on purpose: they steer id allocation, which the SysV object
 * plugins set themselves when they recreate objects with their saved ids.
 */
export const IPC_NS_SYSCTLS = [
  'msgmax',
  'msgmnb',
  'msgmni',
  'auto_msgmni',
  'shmmax',
  'shmall',
  'shmmni',
  'shm_rmid_forced',
  'sem',
] as const;
export type IpcNsSysctl = (typeof IPC_NS_SYSCTLS)[number];

export const ipcNsRecordSchema = z.lazy(() => {
  const oneValue = z.string().regex(/^[0-9]+$/, 'one unsigned integer');
  /** kernel.sem is four numbers: SEMMSL SEMMNS SEMOPM SEMMNI. Writing fewer changes only some. */
  const semValue = z.string().regex(/^[0-9]+([ \t]+[0-9]+){3}$/, 'four unsigned integers (SEMMSL SEMMNS SEMOPM SEMMNI)');
  return z.strictObject({
    sysctls: z.strictObject(Object.fromEntries(IPC_NS_SYSCTLS.map((name) => [name, (name === 'sem' ? semValue : oneValue).optional()])) as Record<IpcNsSysctl, z.ZodOptional<z.ZodString>>),
  });
});
export type IpcNsRecord = z.infer<typeof ipcNsRecordSchema>;
