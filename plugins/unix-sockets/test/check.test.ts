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
      'its first descriptor is not fd 4 of PID 42',
      'PID 42 holds it but it does not hang below tasks:42',
    ]);
    const broken: UnixSocketRecord = { type: 'dgram', ends: [end(3, 'connected'), end(3, 'listen')] };
    expect(plugin.checkRecord(broken, recordCheckContext('unix-sockets:42:3', { parents: ['tasks:42'] }))).toEqual([
      'it names fd 3 of PID 42 twice',
      'its two sockets are not both connected',
    ]);
  });

  it('a pair shared by parent and child names each process it hangs below, and every file in flight a message names', () => {
    const shared: UnixSocketRecord = {
      type: 'seqpacket',
      ends: [
        { ...end(3, 'connected'), holders: [{ pid: 43, fds: [{ fd: 3, closeOnExec: false }] }] },
        { ...end(4, 'connected'), pid: 43, queue: [{ data: 'aGk=', fds: [0, 1] }] },
      ],
      inflight: [{ held: { pid: 42, fd: 7 } }],
    };
    expect(plugin.checkRecord(shared, recordCheckContext('unix-sockets:42:3', { parents: ['tasks:42', 'tasks:43'] }))).toEqual([
      'a queued message names a file in flight the record does not have',
    ]);
    expect(plugin.checkRecord({ ...shared, inflight: [...shared.inflight!, { eventfd: { count: '2', semaphore: false }, statusFlags: 0 }] }, recordCheckContext('unix-sockets:42:3', { parents: ['tasks:42'] }))).toEqual([
      'PID 43 holds it but it does not hang below tasks:43',
    ]);
    const lone: UnixSocketRecord = { type: 'dgram', ends: [{ ...end(5, 'unconnected'), queue: ['aGk='] }] };
    expect(plugin.checkRecord(lone, recordCheckContext('unix-sockets:42:5', { parents: ['tasks:42'] }))).toEqual([
      'an unnamed socket on its own has messages queued, which nothing could send it',
    ]);
  });
});
