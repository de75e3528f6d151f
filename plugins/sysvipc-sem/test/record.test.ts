import { semRecordSchema } from '@cr/plugin-sysvipc-sem';
import { describe, expect, it } from 'vitest';

const owner = { key: 0x1234, id: 32768, mode: 0o600, uid: 0, gid: 0, cuid: 0, cgid: 0 };

const sem = (change: Record<string, number>) => semRecordSchema.safeParse({ ...owner, ...change, values: [1] }).success;

describe('sysvipc-sem record', () => {
  it('takes one or more values up to SEMVMX, and permission bits only', () => {
    expect(semRecordSchema.safeParse({ ...owner, values: [0, 32767] }).success).toBe(true);
    expect(semRecordSchema.safeParse({ ...owner, values: [] }).success).toBe(false);
    expect(semRecordSchema.safeParse({ ...owner, values: [32768] }).success).toBe(false);
    expect(sem({ mode: 0o1777 })).toBe(false);
  });

  it('holds keys unsigned in 32 bits, ids in a C int, and owners from 0 to 2^32-2 ((uid_t)-1 means "unchanged")', () => {
    expect([0, 0xcc6703ec, 0xffffffff].map((key) => sem({ key }))).toEqual([true, true, true]);
    expect([2 ** 32, -0x3398fc14].map((key) => sem({ key }))).toEqual([false, false]);
    expect([sem({ id: 0x7fffffff }), sem({ id: 0x80000000 }), sem({ id: -1 })]).toEqual([true, false, false]);
    expect([sem({ uid: 0xfffffffe }), sem({ uid: 0xffffffff }), sem({ cgid: -1 })]).toEqual([true, false, false]);
  });
});
