import { Kernel } from '@cr/core';
import { TtysPlugin, ttysRecordSchema, type PtyRecord } from '@cr/plugin-ttys';
import { describe, expect, it } from 'vitest';
import { recordCheckContext } from '../../../test/helpers/record-check.js';

const termios = { iflag: 0x500, oflag: 5, cflag: 0xbf, lflag: 0x8a3b, line: 0, cc: Array.from({ length: 19 }, () => 0), ispeed: 38400, ospeed: 38400 };
const holder = (pid: number, ...fds: number[]) => ({ pid, fds: fds.map((fd) => ({ fd, closeOnExec: false })) });

describe('ttys checkRecord', () => {
  const plugin = new TtysPlugin(new Kernel());
  const pty = (over: Partial<PtyRecord>) =>
    ttysRecordSchema.parse({
      kind: 'pty',
      index: 4,
      termios,
      winsize: { rows: 24, cols: 80, xpixel: 0, ypixel: 0 },
      locked: false,
      packet: false,
      exclusive: false,
      session: 0,
      foreground: 0,
      output: 0,
      descriptions: [
        { end: 'master', flags: 2, holders: [holder(42, 3)] },
        { end: 'slave', flags: 2, holders: [holder(42, 4), holder(43, 0, 1, 2)] },
      ],
      ...over,
    });
  const ctx = (blobSizes: Record<string, number> = {}, parents = ['tasks:42', 'tasks:43']) => recordCheckContext('ttys:4', { parents, blobSizes });

  it('accepts a pair held by two processes, with its unread output in the blob', () => {
    expect(plugin.checkRecord(pty({ output: 9 }), ctx({ output: 9 }))).toEqual([]);
  });

  it('names another index, a pair without its one master, a holder it does not hang below, a descriptor twice, and a blob of another size', () => {
    const bad = pty({
      index: 5,
      output: 3,
      descriptions: [{ end: 'slave', flags: 2, holders: [holder(42, 4, 4), holder(44, 0)] }],
    });
    expect(plugin.checkRecord(bad, ctx({ output: 2 }))).toEqual([
      'it is pty 5, not 4',
      'it has not exactly one master description',
      'PID 42 holds it on one descriptor twice',
      'PID 44 holds it but it does not hang below tasks:44',
      'its "output" blob holds 2 bytes where the record implies 3',
    ]);
  });

  it('wants a terminal given with --inherit-fd to start at the fd of its id, below its process', () => {
    const given = ttysRecordSchema.parse({ kind: 'given', index: 1, path: '/dev/pts/1', flags: 2, fds: [{ fd: 5, closeOnExec: false }] });
    expect(plugin.checkRecord(given, recordCheckContext('ttys:42:5', { parents: ['tasks:42'] }))).toEqual([]);
    expect(plugin.checkRecord(given, recordCheckContext('ttys:41:6', { parents: ['tasks:42'] }))).toEqual([
      'its first descriptor is 5, not 6',
      'it is a terminal of PID 41 but does not hang below tasks:41',
    ]);
    expect(plugin.inheritableFds(given)).toEqual([5]);
  });
});
