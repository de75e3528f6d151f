import { Kernel } from '@cr/core';
import { SysvSemPlugin, type SemRecord } from '@cr/plugin-sysvipc-sem';
import { describe, expect, it } from 'vitest';
import { recordCheckContext } from '../../../test/helpers/record-check.js';

const plugin = new SysvSemPlugin(new Kernel());
const set: SemRecord = { key: 0x77, id: 4, mode: 0o600, uid: 0, gid: 0, cuid: 0, cgid: 0, values: [1, 2] };

describe('sysvipc-sem checkRecord', () => {
  it('keeps its values in the record: any blob is one too many', () => {
    expect(plugin.checkRecord(set, recordCheckContext('sysvipc-sem:4'))).toEqual([]);
    expect(plugin.checkRecord(set, recordCheckContext('sysvipc-sem:4', { blobSizes: { values: 4 } }))).toEqual(['it has a "values" blob, which its type never writes']);
    expect(plugin.checkRecord(set, recordCheckContext('sysvipc-sem:40'))).toEqual(['it holds sem id 4, not 40']);
  });
});
