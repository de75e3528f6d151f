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

  it('holds none of the flags open acts on and drops (O_CREAT, O_EXCL, O_NOCTTY, O_TRUNC): reopening with them would create or truncate the file', () => {
    const file: FilesRecord = { kind: 'file', fd: 3, closeOnExec: false, path: '/etc/hosts', flags: 0o2 | 0o2000, offset: '0', size: 10 };
    expect(plugin.checkRecord(file, recordCheckContext('files:42:3', below))).toEqual([]);
    expect(plugin.checkRecord({ ...file, flags: 0o1 | 0o1000 }, recordCheckContext('files:42:3', below))).toEqual(['its flags hold O_TRUNC, which an open file never keeps']);
    const stdio: FilesRecord = { kind: 'inherited', fd: 1, closeOnExec: false, flags: 0o100 | 0o200, description: 'pipe' };
    expect(plugin.checkRecord(stdio, recordCheckContext('files:42:1', below))).toEqual(['its flags hold O_CREAT, O_EXCL, which an open file never keeps']);
  });
});
