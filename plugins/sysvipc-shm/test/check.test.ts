import { Kernel } from '@cr/core';
import { SysvShmPlugin, type ShmRecord } from '@cr/plugin-sysvipc-shm';
import { describe, expect, it } from 'vitest';
import { recordCheckContext } from '../../../test/helpers/record-check.js';

const plugin = new SysvShmPlugin(new Kernel());
const segment = (id: number, key: number): ShmRecord => ({ key, id, mode: 0o600, uid: 0, gid: 0, cuid: 0, cgid: 0, size: 8192, locked: false, markedForDestruction: false });

describe('sysvipc-shm checkRecord', () => {
  it('accepts a segment whose id, key and contents blob agree with the image', () => {
    const ctx = recordCheckContext('sysvipc-shm:5', { parents: ['ipc-ns:1'], blobSizes: { contents: 8192 } });
    expect(plugin.checkRecord(segment(5, 0x1234), ctx)).toEqual([]);
  });

  it('names another id, a key taken twice in one namespace, and a contents blob of another size', () => {
    const twin = { key: 'sysvipc-shm:6', parents: ['ipc-ns:1'], record: segment(6, 0x1234) };
    const ctx = recordCheckContext('sysvipc-shm:5', { parents: ['ipc-ns:1'], blobSizes: { contents: 4096 }, records: { 'sysvipc-shm': [twin] } });
    expect(plugin.checkRecord(segment(7, 0x1234), ctx)).toEqual([
      'it holds shm id 7, not 5',
      'sysvipc-shm:6 has the same key 0x00001234 in the same IPC namespace',
      'its "contents" blob holds 4096 bytes where the record implies 8192',
    ]);
  });

  it('lets private segments, and equal keys in other namespaces, be', () => {
    const others = [
      { key: 'sysvipc-shm:6', parents: ['ipc-ns:1'], record: segment(6, 0) },
      { key: 'sysvipc-shm:7', parents: ['ipc-ns:2'], record: segment(7, 0x1234) },
    ];
    const blobs = { contents: 8192 };
    expect(plugin.checkRecord(segment(5, 0), recordCheckContext('sysvipc-shm:5', { parents: ['ipc-ns:1'], blobSizes: blobs, records: { 'sysvipc-shm': others } }))).toEqual([]);
    expect(plugin.checkRecord(segment(5, 0x1234), recordCheckContext('sysvipc-shm:5', { parents: ['ipc-ns:1'], blobSizes: blobs, records: { 'sysvipc-shm': others } }))).toEqual([]);
  });
});
