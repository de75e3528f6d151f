import { describe, expect, it } from 'vitest';
import { epollTargets, sameNumberBefore } from '../src/targets.js';

const FDINFO = `pos:\t0
flags:\t02
mnt_id:\t16
ino:\t1057
tfd:        3 events:       19 data:               64  pos:0 ino:415 sdev:10
tfd:        8 events: 80000001 data: ffffffffffffffff  pos:0 ino:415 sdev:10
tfd:        3 events:        1 data:                1  pos:0 ino:2c6 sdev:8
`;

describe('epollTargets', () => {
  it('reads every item of an epoll instance: the number it was added by, the mask and data in hex', () => {
    expect(epollTargets(FDINFO)).toEqual([
      { fd: 3, events: 0x19, data: '100' },
      { fd: 8, events: 0x80000001, data: '18446744073709551615' },
      { fd: 3, events: 1, data: '1' },
    ]);
    expect(epollTargets('pos:\t0\nflags:\t02\n')).toEqual([]);
  });

  it('counts the items added by the same number before one, as kcmp(KCMP_EPOLL_TFD) wants it', () => {
    const targets = epollTargets(FDINFO);
    expect(targets.map((_, i) => sameNumberBefore(targets, i))).toEqual([0, 0, 1]);
  });
});
