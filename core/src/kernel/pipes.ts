import { closeSync, openSync, readSync, writeSync } from 'node:fs';
import { procDir } from './proc-dir.js';
import { O_NONBLOCK, O_RDONLY } from 'node:constants';
import { KernelError } from './kernel-error.js';
import type { Libc } from './libc.js';
import { O_CLOEXEC } from './syscalls.js';

const F_SETPIPE_SZ = 1031;
const F_GETPIPE_SZ = 1032;
const SPLICE_F_NONBLOCK = 2;
const EAGAIN = 11;

/** What a pipe holds: the bytes queued in it, and its capacity. */
export interface PipeContents {
  data: Buffer;
  capacity: number;
}

/** Pipes of other processes, read without disturbing them, and new pipes filled with saved data. */
export class Pipes {
  constructor(private readonly libc: Libc) {}

  /**
   * The bytes queued in the pipe behind descriptor `fd` of `pid`, left where they are: cr opens
   * the pipe anew (a reader of its own, non-blocking) and tee(2)s what it holds into a pipe of
   * its own, which it reads. The program's descriptors and their flags are not touched.
   */
  peek(pid: number, fd: number): PipeContents {
    const target = `fd ${fd} of PID ${pid}`;
    const pipe = openSync(`${procDir(pid)}/fd/${fd}`, O_RDONLY | O_NONBLOCK);
    try {
      const capacity = this.libc.fcntl(pipe, F_GETPIPE_SZ, 0, target);
      const [copyIn, copyOut] = this.libc.pipe2(O_NONBLOCK | O_CLOEXEC);
      try {
        this.libc.fcntl(copyOut, F_SETPIPE_SZ, capacity, target);
        let copied: number;
        try {
          copied = this.libc.tee(pipe, copyOut, capacity, SPLICE_F_NONBLOCK, target);
        } catch (err) {
          // An empty pipe: nothing to copy.
          if (err instanceof KernelError && err.errno === EAGAIN) copied = 0;
          else throw err;
        }
        const data = Buffer.alloc(copied);
        for (let at = 0; at < copied; ) at += readSync(copyIn, data, at, copied - at, null);
        return { data, capacity };
      } finally {
        closeSync(copyIn);
        closeSync(copyOut);
      }
    } finally {
      closeSync(pipe);
    }
  }

  /**
   * A new pipe of `capacity` bytes (at least) holding `data`, as [read end, write end] of cr's,
   * close-on-exec like every descriptor Node opens, so that no process cr starts inherits it.
   */
  create(contents: PipeContents, target: string): [number, number] {
    const [read, write] = this.libc.pipe2(O_CLOEXEC);
    try {
      this.fill(write, contents, target);
      return [read, write];
    } catch (err) {
      closeSync(read);
      closeSync(write);
      throw err;
    }
  }

  /** Gives the pipe behind `fd` (a writable descriptor of cr's) at least `capacity` bytes, and writes `data` into it. */
  fill(fd: number, contents: PipeContents, target: string): void {
    if (this.libc.fcntl(fd, F_GETPIPE_SZ, 0, target) < contents.capacity) this.libc.fcntl(fd, F_SETPIPE_SZ, contents.capacity, target);
    for (let at = 0; at < contents.data.length; ) at += writeSync(fd, contents.data, at, contents.data.length - at);
  }

  /** Makes a named pipe at `path` (mkfifo); its mode is then cr's umask's, for the caller to set. */
  makeFifo(path: string, mode: number): void {
    this.libc.mkfifo(path, mode);
  }
}
