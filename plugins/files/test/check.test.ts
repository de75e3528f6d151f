import { Kernel } from '@cr/core';
import { FilesPlugin, type FilesRecord } from '@cr/plugin-files';
import { describe, expect, it } from 'vitest';
import { recordCheckContext } from '../../../test/helpers/record-check.js';

const plugin = new FilesPlugin(new Kernel());
const below = { parents: ['tasks:42'] };

describe('files checkRecord', () => {
  it('is the fd its object names, below its process', () => {
    const file: FilesRecord = { kind: 'file', fd: 3, closeOnExec: false, path: '/etc/hosts', flags: 0, offset: '0', size: 10 };
    expect(plugin.checkRecord(file, recordCheckContext('files:42:3', below))).toEqual([]);
    expect(plugin.checkRecord(file, recordCheckContext('files:42:4', { parents: ['tasks:43'] }))).toEqual([
      'it holds fd 3, not 4',
      'it is an fd of PID 42 but does not hang below tasks:42',
    ]);
  });

  it('a dup refers to a lower fd, and a deleted file has its contents blob of its size', () => {
    const dup: FilesRecord = { kind: 'duplicate', fd: 3, closeOnExec: false, of: 5 };
    expect(plugin.checkRecord(dup, recordCheckContext('files:42:3', below))).toEqual(['it duplicates fd 5, which is not a lower fd']);
    const deleted: FilesRecord = { kind: 'deleted', fd: 4, closeOnExec: true, path: '/tmp/x', flags: 2, offset: '3', mode: 0o600, size: 100 };
    expect(plugin.checkRecord(deleted, recordCheckContext('files:42:4', { ...below, blobSizes: { contents: 100 } }))).toEqual([]);
    expect(plugin.checkRecord(deleted, recordCheckContext('files:42:4', below))).toEqual(['it has no "contents" blob']);
  });
});
