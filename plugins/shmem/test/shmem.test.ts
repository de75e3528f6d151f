import { Kernel, type FdInfo } from '@cr/core';
import { ShmemPlugin, shmemOfFd, shmemOfVma, shmemRecordSchema, type ShmemRecord } from '@cr/plugin-shmem';
import { describe, expect, it } from 'vitest';
import { recordCheckContext } from '../../../test/helpers/record-check.js';

const fd = (link: string, kind: FdInfo['kind']): FdInfo => ({ fd: 3, link, pos: 0n, flags: 2, mntId: 1, kind, locks: [] });

describe('what is shared memory', () => {
  it('a memfd descriptor, by its name on the kernel-internal mount; not a file that only looks like one', () => {
    expect(shmemOfFd(fd('/memfd:my buf (deleted)', { kind: 'memfd', what: 'a memfd (memfd:my buf)' }))).toEqual({ kind: 'memfd', name: 'my buf' });
    expect(shmemOfFd(fd('/memfd:x', { kind: 'file', path: '/memfd:x', st: { mode: 0n, nlink: 1n, uid: 0n, gid: 0n, rdev: 0n, size: 0n } }))).toBeUndefined();
    expect(shmemOfFd(fd('/tmp/t (deleted)', { kind: 'memfd', what: 'a memfd (tmp/t)' }))).toBeUndefined();
  });

  it('memfd mappings shared or private, and shared anonymous memory, named or not; not private anonymous memory', () => {
    const at = { start: 0x1000n, end: 0x2000n };
    expect(shmemOfVma({ ...at, path: '/memfd:buf (deleted)', shared: false }, 1)).toEqual({ kind: 'memfd', name: 'buf' });
    expect(shmemOfVma({ ...at, path: '/dev/zero (deleted)', shared: true }, 1)).toEqual({ kind: 'anonymous' });
    expect(shmemOfVma({ ...at, path: '[anon_shmem:ring]', shared: true }, 1)).toEqual({ kind: 'anonymous' });
    expect(shmemOfVma({ ...at, path: '', shared: false }, 1)).toBeUndefined();
    expect(shmemOfVma({ ...at, path: '/dev/zero (deleted)', shared: false }, 1)).toBeUndefined();
  });
});

describe('shmem checkRecord', () => {
  const plugin = new ShmemPlugin(new Kernel());
  const record = (over: Partial<ShmemRecord>): ShmemRecord =>
    shmemRecordSchema.parse({ kind: 'memfd', name: 'buf', inode: 9, size: 3 * 4096, mode: 0o777, uid: 0, gid: 0, seals: 1, regions: [], ...over });
  const ctx = (contents?: number) => recordCheckContext('shmem:9', { parents: ['tasks:42'], blobSizes: contents === undefined ? {} : { contents } });

  it('accepts regions in order within its size, their bytes in the blob', () => {
    expect(plugin.checkRecord(record({ regions: [{ offset: 0, length: 4096 }, { offset: 8192, length: 4096 }] }), ctx(8192))).toEqual([]);
  });

  it('names overlapping regions, regions beyond its size, a nameless memfd and a blob of another size', () => {
    const bad = record({ name: undefined, regions: [{ offset: 0, length: 8192 }, { offset: 4096, length: 4096 }, { offset: 12288, length: 4096 }] });
    expect(plugin.checkRecord(bad, ctx(4096))).toEqual([
      'a memfd must have a name, and only a memfd',
      'its region at 4096 overlaps another or lies beyond its 12288 bytes',
      'its region at 12288 overlaps another or lies beyond its 12288 bytes',
      'its "contents" blob holds 4096 bytes where the record implies 16384',
    ]);
  });
});
