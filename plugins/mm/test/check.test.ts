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
    const shm: VmaRecord = { start: '0x40000', end: '0x41000', prot: 3, shared: true, kind: 'sysv-shm', shmid: 7, flags: ['rd', 'wr', 'sh', 'mr', 'mw', 'me', 'ms'] };
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

describe('mm checkRecord of pre-copied and parent pages', () => {
  const vmas = [anon('0x10000', '0x20000')];
  const withRounds = (precopied: MmRecord['precopied'], fromParent?: MmRecord['fromParent']) =>
    mmRecordSchema.parse({ ...mm(vmas, [{ address: '0x10000', pages: 1 }]), precopied, ...(fromParent ? { fromParent } : {}) });

  it('accepts rounds whose blobs hold their runs, stale ones too, and pages restored from one place each', () => {
    const record = withRounds(
      [
        { blob: 'precopy-0', runs: [{ address: '0x10000', pages: 1, stale: true }, { address: '0x11000', pages: 2 }] },
        { blob: 'precopy-1', runs: [{ address: '0x11000', pages: 1, stale: true }] },
      ],
      [{ address: '0x14000', pages: 4 }],
    );
    expect(plugin.checkRecord(record, below({ pages: 4096, 'precopy-0': 3 * 4096, 'precopy-1': 4096 }))).toEqual([]);
  });

  it('names a page restored twice, a round blob of another size, and one it does not list', () => {
    const record = withRounds([{ blob: 'precopy-0', runs: [{ address: '0x10000', pages: 2 }] }], [{ address: '0x11000', pages: 1 }]);
    expect(plugin.checkRecord(record, below({ pages: 4096, 'precopy-0': 4096, 'precopy-7': 0 }))).toEqual([
      'the saved pages at 0x10000 overlap those at 0x10000',
      'the saved pages at 0x11000 overlap those at 0x10000',
      'its "precopy-0" blob holds 4096 bytes where the record implies 8192',
      'it has a "precopy-7" blob, which its type never writes',
    ]);
  });
});

describe('mm checkRecord of shared memory mappings', () => {
  const memfd: VmaRecord = { start: '0x50000', end: '0x52000', prot: 3, shared: true, kind: 'shmem', shmem: 9, path: '/memfd:buf (deleted)', offset: '0x0', flags: ['rd', 'wr', 'sh', 'mr', 'mw', 'me', 'ms'] };
  const withShmem = (saved: boolean, pages = 0) =>
    recordCheckContext('mm:42', {
      parents: ['tasks:42'],
      blobSizes: { pages },
      objects: [{ key: 'shmem:9', type: 'shmem', id: '9', parents: ['tasks:42'], attributes: {}, saved }],
    });

  it('wants the shmem object it maps saved in the image, at a page-aligned offset', () => {
    expect(plugin.checkRecord(mm([memfd]), withShmem(true))).toEqual([]);
    expect(plugin.checkRecord(mm([memfd]), withShmem(false))).toEqual([
      'mapping 0x50000-0x52000 maps shmem:9, which the image does not hold (shared memory comes back only from the image: checkpoint again without leaving it out)',
    ]);
    expect(plugin.checkRecord(mm([{ ...memfd, offset: '0x10' }]), withShmem(true))).toEqual(['mapping 0x50000-0x52000 maps shmem:9 at offset 0x10, which is not page-aligned']);
  });

  it('keeps saved pages to private mappings: a shared one holds none, a private memfd mapping may', () => {
    const pages = [{ address: '0x50000', pages: 1 }];
    expect(plugin.checkRecord(mm([memfd], pages), withShmem(true, 4096))).toEqual(['the saved pages at 0x50000 do not lie page-aligned in one private mapping']);
    expect(plugin.checkRecord(mm([{ ...memfd, shared: false, flags: ['rd', 'wr', 'mr', 'mw', 'me'] }], pages), withShmem(true, 4096))).toEqual([]);
  });

  it('is shared exactly when its VmFlags say so ("ms"), and may be written through its file ("mw") only if the file was open for writing ("sh"); a memfd sealed against writes has "sh" alone', () => {
    const flags = (...names: string[]) => ['rd', 'mr', 'me', ...names];
    expect(plugin.checkRecord(mm([{ ...memfd, flags: flags('ms', 'sh') }]), withShmem(true))).toEqual([]);
    expect(plugin.checkRecord(mm([{ ...memfd, flags: flags('ms') }]), withShmem(true))).toEqual([]);
    expect(plugin.checkRecord(mm([{ ...memfd, flags: flags('sh', 'mw') }]), withShmem(true))).toEqual(['mapping 0x50000-0x52000 is shared, but its VmFlags lack "ms"']);
    expect(plugin.checkRecord(mm([{ ...memfd, flags: flags('ms', 'mw') }]), withShmem(true))).toEqual(['mapping 0x50000-0x52000 is shared and its VmFlags have "mw" without "sh"']);
    expect(plugin.checkRecord(mm([{ ...memfd, shared: false, flags: flags('ms', 'mw') }]), withShmem(true))).toEqual(['mapping 0x50000-0x52000 is private, but its VmFlags have "ms"']);
  });
});
