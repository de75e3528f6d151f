import { Kernel } from '@cr/core';
import { UnixSocketsPlugin, type UnixSocketRecord } from '@cr/plugin-unix-sockets';
import { describe, expect, it } from 'vitest';
import { recordCheckContext } from '../../../test/helpers/record-check.js';

const plugin = new UnixSocketsPlugin(new Kernel());
const end = (fd: number, state: UnixSocketRecord['ends'][number]['state']) => ({ state, passcred: false, queue: [], statusFlags: 0, fds: [{ fd, closeOnExec: false }] });

describe('unix-sockets checkRecord', () => {
  it('a pair is two connected sockets, named by the lowest fd of its first, below its process', () => {
    const pair: UnixSocketRecord = { type: 'stream', ends: [end(3, 'connected'), end(4, 'connected')] };
    expect(plugin.checkRecord(pair, recordCheckContext('unix-sockets:42:3', { parents: ['tasks:42'] }))).toEqual([]);
    expect(plugin.checkRecord(pair, recordCheckContext('unix-sockets:42:4', { parents: ['tasks:43'] }))).toEqual([
      'it belongs to PID 42 but does not hang below tasks:42',
      'its first descriptor is 3, not 4',
    ]);
    const broken: UnixSocketRecord = { type: 'dgram', ends: [end(3, 'connected'), end(3, 'listen')] };
    expect(plugin.checkRecord(broken, recordCheckContext('unix-sockets:42:3', { parents: ['tasks:42'] }))).toEqual([
      'it names one descriptor twice',
      'its two sockets are not both connected',
    ]);
  });
});
