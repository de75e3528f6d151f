import { ipcNsRecordSchema } from '@cr/plugin-ipc-ns';
import { describe, expect, it } from 'vitest';

describe('ipc-ns record', () => {
  it('takes the per-namespace sysctls, kernel.sem as its four numbers', () => {
    expect(ipcNsRecordSchema.safeParse({ sysctls: { msgmax: '8192', sem: '32000 1024000000 500 32000' } }).success).toBe(true);
    expect(ipcNsRecordSchema.safeParse({ sysctls: {} }).success).toBe(true);
  });

  it('refuses values no kernel shows, one-number kernel.sem, and the *_next_id sysctls the SysV plugins own', () => {
    expect(ipcNsRecordSchema.safeParse({ sysctls: { msgmax: 'lots' } }).success).toBe(false);
    expect(ipcNsRecordSchema.safeParse({ sysctls: { sem: '32000' } }).success).toBe(false);
    expect(ipcNsRecordSchema.safeParse({ sysctls: { shm_next_id: '5' } }).success).toBe(false);
  });
});
