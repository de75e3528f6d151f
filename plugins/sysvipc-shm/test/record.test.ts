import { shmRecordSchema } from '@cr/plugin-sysvipc-shm';
import { describe, expect, it } from 'vitest';

const owner = { key: 0x1234, id: 32768, mode: 0o600, uid: 0, gid: 0, cuid: 0, cgid: 0 };

describe('sysvipc-shm record', () => {
  it('takes a segment as ipcs shows it, and refuses an empty one', () => {
    expect(shmRecordSchema.safeParse({ ...owner, size: 4096, locked: true, markedForDestruction: false }).success).toBe(true);
    expect(shmRecordSchema.safeParse({ ...owner, size: 0, locked: false, markedForDestruction: false }).success).toBe(false);
  });
});
