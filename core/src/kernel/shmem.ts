import { closeSync, constants, ftruncateSync, openSync, unlinkSync } from 'node:fs';
import { O_RDWR } from 'node:constants';
import type { FileRegion } from '../io/file-regions.js';
import { nodeFsError } from './sysctl.js';
import type { Libc } from './libc.js';
import { MAP_ANONYMOUS, MAP_SHARED, O_CLOEXEC, PROT_READ, PROT_WRITE } from './syscalls.js';

const F_ADD_SEALS = 1033;
const F_GET_SEALS = 1034;
const MFD_CLOEXEC = 1;
const MFD_ALLOW_SEALING = 2;
const PAGE = 4096;

/** memfd seals (F_ADD_SEALS), by the bit the kernel gives each. */
export const SEALS = { seal: 1, shrink: 2, grow: 4, write: 8, futureWrite: 16, exec: 32 } as const;

/**
 * Shared memory objects — a memfd, or the shmem file behind a MAP_SHARED|MAP_ANONYMOUS mapping —
 * read and made again through descriptors of cr's own.
 */
export class Shmem {
  constructor(private readonly libc: Libc) {}

  /** The seals of the memfd behind `fd` (F_GET_SEALS); a file that cannot be sealed has none. */
  seals(fd: number, target: string): number {
    return this.libc.fcntl(fd, F_GET_SEALS, 0, target);
  }

  addSeals(fd: number, seals: number, target: string): void {
    this.libc.fcntl(fd, F_ADD_SEALS, seals, target);
  }

  /**
   * The parts of the first `size` bytes of a file that hold data, page by page (SEEK_DATA and
   * SEEK_HOLE): for a shmem file, every page it has, in memory or swapped out, whether or not a
   * process maps it; a hole was never written and reads as zeros.
   */
  dataRegions(fd: number, size: number, target: string): FileRegion[] {
    return this.libc.dataRegions(fd, size, target);
  }

  /** A new, sealable memfd called `name` (what /proc shows as "/memfd:NAME"), as a descriptor of cr's. */
  createMemfd(name: string, target: string): number {
    return this.libc.memfdCreate(name, MFD_CLOEXEC | MFD_ALLOW_SEALING, target);
  }

  /**
   * A new shmem file of `size` bytes such as MAP_SHARED|MAP_ANONYMOUS makes (its mappings show
   * "/dev/zero (deleted)"), as a read-write descriptor of cr's: cr maps one for a moment and opens
   * it through /proc/self/map_files, which leads to the file behind a mapping.
   */
  createSharedAnonymous(size: number, target: string): number {
    const length = Math.max(PAGE, Math.ceil(size / PAGE) * PAGE);
    const address = this.libc.mmapAnonymous(length, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, target);
    let fd: number;
    try {
      const path = `/proc/self/map_files/${address.toString(16)}-${(address + BigInt(length)).toString(16)}`;
      try {
        fd = openSync(path, O_RDWR);
      } catch (err) {
        throw nodeFsError('open', path, err);
      }
    } finally {
      this.libc.munmap(address, length, target);
    }
    try {
      if (size !== length) ftruncateSync(fd, size);
    } catch (err) {
      closeSync(fd);
      throw nodeFsError('ftruncate', target, err);
    }
    return fd;
  }

  /**
   * A new tmpfs file at `path` (where a file deleted while mapped was), created exclusively and
   * unlinked at once, as a read-write descriptor of cr's: its mappings show "PATH (deleted)" as
   * they did. A file at `path` is refused rather than replaced.
   */
  createDeleted(path: string, target: string): number {
    let fd: number;
    try {
      fd = openSync(path, constants.O_RDWR | constants.O_CREAT | constants.O_EXCL | O_CLOEXEC | constants.O_NOFOLLOW, 0o600);
    } catch (err) {
      throw nodeFsError('open', `${path} (${target})`, err);
    }
    try {
      unlinkSync(path);
    } catch (err) {
      closeSync(fd);
      throw nodeFsError('unlink', `${path} (${target})`, err);
    }
    return fd;
  }
}
