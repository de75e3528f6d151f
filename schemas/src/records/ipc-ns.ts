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

const sysctlValue = z.string().regex(/^[0-9]+([ \t]+[0-9]+)*$/, 'one or more unsigned integers');

export const ipcNsRecordSchema = z.strictObject({
  sysctls: z.partialRecord(z.enum(IPC_NS_SYSCTLS), sysctlValue),
});
export type IpcNsRecord = z.infer<typeof ipcNsRecordSchema>;
