import { Kernel } from '@cr/core';
import { IpcNsPlugin } from '@cr/plugin-ipc-ns';
import { describe, expect, it } from 'vitest';
import { recordCheckContext } from '../../../test/helpers/record-check.js';

const plugin = new IpcNsPlugin(new Kernel());

describe('ipc-ns checkRecord', () => {
  it('keeps its limits in the record: any blob is one too many', () => {
    const record = { sysctls: { msgmax: '8192' } };
    expect(plugin.checkRecord(record, recordCheckContext('ipc-ns:4026531839'))).toEqual([]);
    expect(plugin.checkRecord(record, recordCheckContext('ipc-ns:4026531839', { blobSizes: { sysctls: 2 } }))).toEqual(['it has a "sysctls" blob, which its type never writes']);
  });
});
