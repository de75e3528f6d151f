import { configSchema, ipcNsRecordSchema, msgRecordSchema, semRecordSchema, shmRecordSchema, utsNsRecordSchema } from '@cr/schemas';
import { describe, expect, it } from 'vitest';

const owner = { key: 0x1234, id: 32768, mode: 0o600, uid: 0, gid: 0, cuid: 0, cgid: 0 };

describe('record schemas', () => {
  it('accept what the plugins save', () => {
    expect(utsNsRecordSchema.safeParse({ hostname: 'box', domainname: '(none)' }).success).toBe(true);
    expect(ipcNsRecordSchema.safeParse({ sysctls: { msgmax: '8192', sem: '32000 1024000000 500 32000' } }).success).toBe(true);
    expect(shmRecordSchema.safeParse({ ...owner, size: 4096, locked: true, markedForDestruction: false }).success).toBe(true);
    expect(msgRecordSchema.safeParse({ ...owner, qbytes: 16384, messages: [{ type: 1, size: 0 }] }).success).toBe(true);
    expect(semRecordSchema.safeParse({ ...owner, values: [0, 32767] }).success).toBe(true);
  });

  it('reject what no kernel could have produced', () => {
    expect(utsNsRecordSchema.safeParse({ hostname: 'x'.repeat(65), domainname: '' }).success).toBe(false);
    expect(ipcNsRecordSchema.safeParse({ sysctls: { msgmax: 'lots' } }).success).toBe(false);
    expect(ipcNsRecordSchema.safeParse({ sysctls: { shm_next_id: '5' } }).success).toBe(false);
    expect(shmRecordSchema.safeParse({ ...owner, size: 0, locked: false, markedForDestruction: false }).success).toBe(false);
    expect(msgRecordSchema.safeParse({ ...owner, qbytes: 1, messages: [{ type: 0, size: 1 }] }).success).toBe(false);
    expect(semRecordSchema.safeParse({ ...owner, values: [] }).success).toBe(false);
    expect(semRecordSchema.safeParse({ ...owner, mode: 0o1777, values: [1] }).success).toBe(false);
  });
});

describe('config schema', () => {
  it('takes types and single-object selections, and nothing else', () => {
    expect(configSchema.safeParse({ checkpoint: { exclude: ['sysvipc-shm'], include: ['sysvipc-shm:key=0x1234'] } }).success).toBe(true);
    expect(configSchema.safeParse({ checkpoint: { exclude: ['Not A Type'] } }).success).toBe(false);
    expect(configSchema.safeParse({ checkpoint: { only: ['sysvipc-shm:key=1'] } }).success).toBe(false);
    expect(configSchema.safeParse({ policy: { rules: [{ type: 'sysvipc-shm', match: { key: '0x1234' }, decision: 'include' }] } }).success).toBe(true);
    expect(configSchema.safeParse({ policy: { default: 'sometimes' } }).success).toBe(false);
  });
});
