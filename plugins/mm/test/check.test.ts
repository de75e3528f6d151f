import { Kernel } from '@cr/core';
import { MmPlugin, mmRecordSchema, type MmRecord, type VmaRecord } from '@cr/plugin-mm';
import { describe, expect, it } from 'vitest';
import { recordCheckContext } from '../../../test/helpers/record-check.js';

const plugin = new MmPlugin(new Kernel());
const zero = '0x0';
const anon = (start: string, end: string): VmaRecord => ({ start, end, prot: 3, shared: false, kind: 'anon', flags: ['rd', 'wr'] });

/** An address space as save writes one: the given mappings and saved page runs. */
function mm(vmas: VmaRecord[], pages: MmRecord['pages'] = []): MmRecord {
  const bounds = Object.fromEntries(['startCode', 'endCode', 'startData', 'endData', 'startBrk', 'brk', 'startStack', 'argStart', 'argEnd', 'envStart', 'envEnd'].map((k) => [k, zero]));
  return mmRecordSchema.parse({ vmas, bounds, auxv: Buffer.alloc(32).toString('base64'), exe: { path: '/bin/true', file: { size: 1, mtimeNs: '1' } }, pages });
}
const below = (blobSizes: Record<string, number>) => recordCheckContext('mm:42', { parents: ['tasks:42'], blobSizes });

describe('mm checkRecord', () => {
  it('accepts page-aligned mappings in order, with saved pages inside a private one filling the blob', () => {
    expect(plugin.checkRecord(mm([anon('0x10000', '0x14000'), anon('0x20000', '0x21000')], [{ address: '0x11000', pages: 2 }]), below({ pages: 8192 }))).toEqual([]);
  });

  it('names overlapping and unaligned mappings, pages outside a private mapping, and a blob of another size', () => {
    const record = mm([anon('0x10000', '0x14000'), anon('0x13000', '0x15001')], [{ address: '0x30000', pages: 1 }]);
    expect(plugin.checkRecord(record, below({ pages: 100 }))).toEqual([
      'mapping 0x13000-0x15001 is not a page-aligned range of user addresses',
      'mapping 0x13000-0x15001 overlaps or comes before mapping 0x10000-0x14000',
      'the saved pages at 0x30000 do not lie page-aligned in one private mapping',
      'its "pages" blob holds 100 bytes where the record implies 4096',
    ]);
  });

  it('wants the process it belongs to as its parent, and an attached segment in the image', () => {
    const shm: VmaRecord = { start: '0x40000', end: '0x41000', prot: 3, shared: true, kind: 'sysv-shm', shmid: 7, flags: [] };
    const ctx = recordCheckContext('mm:42', { parents: ['tasks:41'], blobSizes: { pages: 0 } });
    expect(plugin.checkRecord(mm([shm]), ctx)).toEqual([
      'it is the memory of PID 42 but does not hang below tasks:42',
      'mapping 0x40000-0x41000 attaches shm id 7, which the image neither holds nor refers to',
    ]);
    const inImage = recordCheckContext('mm:42', {
      parents: ['tasks:42'],
      blobSizes: { pages: 0 },
      objects: [{ key: 'sysvipc-shm:7', type: 'sysvipc-shm', id: '7', parents: ['ipc-ns:1'], attributes: {}, saved: false }],
    });
    expect(plugin.checkRecord(mm([shm]), inImage)).toEqual([]);
  });
});
