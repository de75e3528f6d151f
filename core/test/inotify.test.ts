import { inotifyWatches } from '@cr/core';
import { describe, expect, it } from 'vitest';

describe('inotifyWatches', () => {
  it('reads each watch of an inotify instance from its fdinfo: number, inode, device, mask and file handle', () => {
    const fdinfo = `pos:\t0
flags:\t00
mnt_id:\t17
ino:\t17
inotify wd:2 ino:21a072 sdev:fe00000 mask:80000fff ignored_mask:0 fhandle-bytes:8 fhandle-type:1 f_handle:72a02100350b4455
inotify wd:1 ino:21a066 sdev:fe00000 mask:300 ignored_mask:0 fhandle-bytes:8 fhandle-type:1 f_handle:66a02100443da983
`;
    expect(inotifyWatches(fdinfo)).toEqual([
      { wd: 2, inode: 0x21a072, sdev: 0xfe00000, mask: 0x80000fff, handleType: 1, handle: Buffer.from('72a02100350b4455', 'hex') },
      { wd: 1, inode: 0x21a066, sdev: 0xfe00000, mask: 0x300, handleType: 1, handle: Buffer.from('66a02100443da983', 'hex') },
    ]);
  });
});
