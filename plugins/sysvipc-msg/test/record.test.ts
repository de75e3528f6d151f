import { msgRecordSchema } from '@cr/plugin-sysvipc-msg';
import { describe, expect, it } from 'vitest';

const owner = { key: 0x1234, id: 32768, mode: 0o600, uid: 0, gid: 0, cuid: 0, cgid: 0 };

describe('sysvipc-msg record', () => {
  it('takes messages of positive types, and refuses type 0 (which msgsnd refuses too)', () => {
    expect(msgRecordSchema.safeParse({ ...owner, qbytes: 16384, messages: [{ type: 1, size: 0 }] }).success).toBe(true);
    expect(msgRecordSchema.safeParse({ ...owner, qbytes: 1, messages: [{ type: 0, size: 1 }] }).success).toBe(false);
  });
});
