import { closeSync, fstatSync, ftruncateSync, readlinkSync, readSync, writeSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Kernel, SEALS } from '../src/index.js';

const kernel = new Kernel();
const PAGE = 4096;

describe('Shmem, on the real kernel', () => {
  it('finds the pages a memfd holds (SEEK_DATA), and adds and reads its seals', () => {
    const fd = kernel.shmem.createMemfd('cr-test', 'a test memfd');
    try {
      expect(readlinkSync(`/proc/self/fd/${fd}`)).toBe('/memfd:cr-test (deleted)');
      ftruncateSync(fd, 5 * PAGE + 10);
      writeSync(fd, Buffer.from('a'), 0, 1, 0);
      writeSync(fd, Buffer.from('b'), 0, 1, 3 * PAGE + 5);
      writeSync(fd, Buffer.from('c'), 0, 1, 5 * PAGE + 1);
      expect(kernel.shmem.dataRegions(fd, 5 * PAGE + 10, 'a test memfd')).toEqual([
        { position: 0, length: PAGE },
        { position: 3 * PAGE, length: PAGE },
        { position: 5 * PAGE, length: 10 },
      ]);
      expect(kernel.shmem.seals(fd, 'a test memfd')).toBe(0);
      kernel.shmem.addSeals(fd, SEALS.grow | SEALS.seal, 'a test memfd');
      expect(kernel.shmem.seals(fd, 'a test memfd')).toBe(SEALS.grow | SEALS.seal);
    } finally {
      closeSync(fd);
    }
  });

  it('makes shared anonymous memory of any size, as its mappings name it, empty', () => {
    const fd = kernel.shmem.createSharedAnonymous(2 * PAGE + 1, 'a test region');
    try {
      expect(readlinkSync(`/proc/self/fd/${fd}`)).toBe('/dev/zero (deleted)');
      expect(fstatSync(fd).size).toBe(2 * PAGE + 1);
      expect(kernel.shmem.dataRegions(fd, 2 * PAGE + 1, 'a test region')).toEqual([]);
      writeSync(fd, Buffer.from('kept'), 0, 4, PAGE);
      const back = Buffer.alloc(4);
      readSync(fd, back, 0, 4, PAGE);
      expect(back.toString()).toBe('kept');
    } finally {
      closeSync(fd);
    }
  });
});
