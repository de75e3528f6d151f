import { Kernel } from '@cr/core';
import { FifosPlugin, PipesPlugin, fifoRecordSchema, pipeRecordSchema, type FifoRecord, type PipeRecord } from '@cr/plugin-pipes';
import { describe, expect, it } from 'vitest';
import { recordCheckContext } from '../../../test/helpers/record-check.js';

const end = (fd: number, kind: 'read' | 'write') => ({ fd, end: kind, flags: 0, closeOnExec: false });

describe('pipes checkRecord', () => {
  const plugin = new PipesPlugin(new Kernel());
  const pipe = (over: Partial<PipeRecord>) => pipeRecordSchema.parse({ inode: 7, capacity: 65536, queued: 0, ends: [end(3, 'read'), end(4, 'write')], ...over });
  const ctx = (blobSizes: Record<string, number> = {}) => recordCheckContext('pipes:42:7', { parents: ['tasks:42'], blobSizes });

  it('accepts both ends with their bytes, or one end with the other outside and no bytes', () => {
    expect(plugin.checkRecord(pipe({ queued: 5 }), ctx({ data: 5 }))).toEqual([]);
    expect(plugin.checkRecord(pipe({ ends: [end(5, 'write')], outside: 'read' }), ctx())).toEqual([]);
  });

  it('names a missing end that is not outside, an end both here and outside, and bytes kept for an outside pipe', () => {
    expect(plugin.checkRecord(pipe({ ends: [end(5, 'write')] }), ctx())).toEqual(['it lacks a read end or a write end']);
    expect(plugin.checkRecord(pipe({ ends: [end(5, 'write')], outside: 'write', queued: 3 }), ctx({ data: 3 }))).toEqual([
      'its write end is outside, yet it holds that end, other holders or queued bytes',
    ]);
  });
});

describe('fifos checkRecord', () => {
  const plugin = new FifosPlugin(new Kernel());
  const fifo = (over: Partial<FifoRecord>) =>
    fifoRecordSchema.parse({ path: '/tmp/f', mode: 0o640, uid: 0, gid: 0, capacity: 65536, queued: 0, descriptions: [{ access: 'read', statusFlags: 0, fds: [{ fd: 3, closeOnExec: false }] }], ...over });

  it('wants its first descriptor to be the one of its id, each fd once, and the bytes it says in the blob', () => {
    expect(plugin.checkRecord(fifo({ queued: 9 }), recordCheckContext('fifos:42:3', { parents: ['tasks:42'], blobSizes: { data: 9 } }))).toEqual([]);
    const twice = fifo({ descriptions: [{ access: 'write', statusFlags: 0, fds: [{ fd: 4, closeOnExec: false }, { fd: 4, closeOnExec: true }] }] });
    expect(plugin.checkRecord(twice, recordCheckContext('fifos:42:3', { parents: ['tasks:41'] }))).toEqual([
      'it is a named pipe of PID 42 but does not hang below tasks:42',
      'its first descriptor is 4, not 3',
      'it names one fd twice',
    ]);
  });
});
