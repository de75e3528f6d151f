import { Kernel } from '@cr/core';
import { SysvMsgPlugin, type MsgRecord } from '@cr/plugin-sysvipc-msg';
import { describe, expect, it } from 'vitest';
import { recordCheckContext } from '../../../test/helpers/record-check.js';

const plugin = new SysvMsgPlugin(new Kernel());
const queue = (sizes: number[]): MsgRecord => ({ key: 0x99, id: 3, mode: 0o600, uid: 0, gid: 0, cuid: 0, cgid: 0, qbytes: 16384, messages: sizes.map((size) => ({ type: 1, size })) });

describe('sysvipc-msg checkRecord', () => {
  it('wants one "messages" blob holding every message, one after the other', () => {
    expect(plugin.checkRecord(queue([10, 0, 5]), recordCheckContext('sysvipc-msg:3', { blobSizes: { messages: 15 } }))).toEqual([]);
    expect(plugin.checkRecord(queue([10, 5]), recordCheckContext('sysvipc-msg:3', { blobSizes: { messages: 14, extra: 1 } }))).toEqual([
      'its "messages" blob holds 14 bytes where the record implies 15',
      'it has a "extra" blob, which its type never writes',
    ]);
    expect(plugin.checkRecord(queue([]), recordCheckContext('sysvipc-msg:3'))).toEqual(['it has no "messages" blob']);
  });
});
