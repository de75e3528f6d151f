import { closeSync, openSync, readlinkSync, readFileSync, readSync } from 'node:fs';
import { KernelError } from './kernel-error.js';
import type { Libc } from './libc.js';
import { encodeStruct, fileHandleHead } from './structs.js';

const IN_NONBLOCK = 0o4000;
const O_PATH = 0o10000000;
const O_DIRECTORY = 0o200000;
const FIONREAD = 0x541b;
const DELETED = ' (deleted)';

/** One watch of an inotify instance, as /proc/PID/fdinfo shows it. */
export interface InotifyWatchInfo {
  wd: number;
  mask: number;
  /** The watched inode and its filesystem's device (the kernel's dev_t: major << 20 | minor). */
  inode: number;
  sdev: number;
  /** The file handle that finds the inode again (open_by_handle_at(2)). */
  handleType: number;
  handle: Buffer;
}

/** A watch to make: its number, mask and the path of what it watches. */
export interface InotifyWatch {
  wd: number;
  mask: number;
  path: string;
}

/** "inotify wd:1 ino:21a066 sdev:fe00000 mask:300 ignored_mask:0 fhandle-bytes:8 fhandle-type:1 f_handle:66a0…" */
const WATCH_LINE = /^inotify wd:(\d+) ino:([0-9a-f]+) sdev:([0-9a-f]+) mask:([0-9a-f]+) ignored_mask:[0-9a-f]+ fhandle-bytes:([0-9a-f]+) fhandle-type:([0-9a-f]+) f_handle:([0-9a-f]*)/;

/** The watches of an inotify instance, from the text of its /proc/PID/fdinfo. */
export function inotifyWatches(fdinfo: string): InotifyWatchInfo[] {
  return fdinfo.split('\n').flatMap((line) => {
    const m = WATCH_LINE.exec(line);
    if (!m) return [];
    const hex = (i: number) => Number.parseInt(m[i]!, 16);
    return [{ wd: Number(m[1]), inode: hex(2), sdev: hex(3), mask: hex(4) >>> 0, handleType: hex(6), handle: Buffer.from(m[7]!, 'hex').subarray(0, hex(5)) }];
  });
}

/** inotify instances: where their watches lead, and new ones with the same watches on the same numbers. */
export class Inotify {
  constructor(private readonly libc: Libc) {}

  /**
   * The path of a watched inode, found again by its file handle on a mount of its filesystem in
   * cr's mount table; undefined when no path leads to it any more (deleted, or on no mount here).
   */
  pathOf(watch: InotifyWatchInfo): string | undefined {
    const mount = mountOf(watch.sdev);
    if (!mount) return undefined;
    // Not O_PATH: open_by_handle_at(2) refuses an O_PATH descriptor as its mount.
    const mountFd = openSync(mount, O_DIRECTORY);
    try {
      const handle = Buffer.concat([encodeStruct(fileHandleHead, { handle_bytes: watch.handle.length, handle_type: watch.handleType }), watch.handle]);
      let fd;
      try {
        fd = this.libc.openByHandleAt(mountFd, handle, O_PATH, `inode ${watch.inode}`);
      } catch (err) {
        if (err instanceof KernelError && err.code === 'ESTALE') return undefined;
        throw err;
      }
      try {
        const path = readlinkSync(`/proc/self/fd/${fd}`);
        return path.endsWith(DELETED) ? undefined : path;
      } finally {
        closeSync(fd);
      }
    } finally {
      closeSync(mountFd);
    }
  }

  /** How many bytes of events an inotify instance (cr's copy of its descriptor) holds unread. */
  pendingBytes(fd: number, target: string): number {
    return this.libc.ioctlInt(fd, FIONREAD, 'ioctl(FIONREAD)', target);
  }

  /**
   * A new inotify instance with `watches` on exactly their numbers. Watch numbers are handed out
   * in increasing order, so a number not reached yet is reached by adding the watch and removing
   * it again until the kernel gives it; the IN_IGNORED events that leaves are read away at once.
   */
  create(watches: readonly InotifyWatch[], target: string): number {
    const fd = this.libc.inotifyInit1(IN_NONBLOCK, target);
    try {
      for (const w of [...watches].sort((a, b) => a.wd - b.wd)) {
        for (;;) {
          const wd = this.libc.inotifyAddWatch(fd, w.path, w.mask, target);
          if (wd === w.wd) break;
          if (wd > w.wd) throw new KernelError('inotify_add_watch', 17, `${target} (${w.path})`, `gave watch ${wd}, past ${w.wd}`);
          this.libc.inotifyRmWatch(fd, wd, target);
          drain(fd);
        }
      }
      return fd;
    } catch (err) {
      closeSync(fd);
      throw err;
    }
  }
}

/** Reads whatever events a non-blocking inotify descriptor holds. */
function drain(fd: number): void {
  const buffer = Buffer.alloc(4096);
  for (;;) {
    try {
      if (readSync(fd, buffer) <= 0) return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EAGAIN') return;
      throw err;
    }
  }
}

/** A mount point in cr's mount table of the filesystem with kernel dev_t `sdev`, the one showing its root if there is one. */
function mountOf(sdev: number): string | undefined {
  const device = `${sdev >>> 20}:${sdev & 0xfffff}`;
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((line) => line.split(' '))
    .filter((f) => f[2] === device);
  const chosen = mounts.find((f) => f[3] === '/') ?? mounts[0];
  return chosen?.[4]?.replace(/\\(\d{3})/g, (_, octal: string) => String.fromCharCode(Number.parseInt(octal, 8)));
}

