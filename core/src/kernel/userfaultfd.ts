import { closeSync } from 'node:fs';
import type { Libc } from './libc.js';
import { PagemapScanner, PAGE_IS_WPALLOWED, PAGE_IS_WRITTEN, type PageRegion } from './pagemap-scan.js';
import type { PageRun } from './pagemap.js';
import type { Ptrace } from './ptrace.js';
import { RemoteTask } from './remote-task.js';
import { encodeStruct, uffdioApi, uffdioRegister, uffdioWriteprotect } from './structs.js';
import { O_CLOEXEC, SYS } from './syscalls.js';

const O_NONBLOCK = 0o4000;
/** Faults of the kernel itself are not handed to a handler: none is, in async mode, and an unprivileged process may then create one. */
const UFFD_USER_MODE_ONLY = 1;
const UFFD_API = 0xaan;
/** A write to a protected page marks it written and goes on: nobody has to answer a fault. */
const UFFD_FEATURE_WP_UNPOPULATED = 1n << 13n;
const UFFD_FEATURE_WP_ASYNC = 1n << 15n;
const UFFDIO_API = 0xc018aa3f;
const UFFDIO_REGISTER = 0xc020aa00;
const UFFDIO_WRITEPROTECT = 0xc018aa06;
const UFFDIO_REGISTER_MODE_WP = 2n;
const UFFDIO_WRITEPROTECT_MODE_WP = 1n;

/**
 * Which pages of a running process it writes, without soft-dirty bits: a userfaultfd of the
 * process's own address space, in asynchronous write-protect mode, protects its private memory;
 * a write then just clears the protection of its page (the process never waits), and PAGEMAP_SCAN
 * reports the pages written since (PAGE_IS_WRITTEN) and protects them again.
 *
 * A userfaultfd belongs to the mm of whoever creates it, so it is created inside the process (a
 * remote syscall while one of its threads is stopped for a moment) and taken into cr with
 * pidfd_getfd; the process's own descriptor is closed again at once. cr's descriptor is then the
 * only one: closing it, or cr dying, makes the kernel unregister every range and drop the
 * protection, and the process is as it was.
 */
export class WriteTracker {
  private readonly scanner: PagemapScanner;
  private closed = false;

  private constructor(
    private readonly libc: Libc,
    readonly pid: number,
    private readonly fd: number,
  ) {
    try {
      const api = encodeStruct(uffdioApi, { api: UFFD_API, features: UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED, ioctls: 0 });
      libc.ioctlStruct(fd, UFFDIO_API, api, 'ioctl(UFFDIO_API)', this.target);
      this.scanner = new PagemapScanner(libc, pid);
    } catch (err) {
      closeSync(fd);
      throw err;
    }
  }

  /** Starts tracking the writes of running process `pid` (see the class). */
  static start(libc: Libc, ptrace: Ptrace, pid: number): WriteTracker {
    const task = RemoteTask.seize(ptrace, pid);
    let local: number;
    try {
      const remote = Number(task.syscall({ name: 'userfaultfd', nr: SYS.userfaultfd }, [O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY]));
      try {
        local = libc.takeFd(pid, remote, `the userfaultfd cr made in PID ${pid}`);
      } finally {
        task.close(remote);
      }
    } finally {
      task.release();
    }
    return new WriteTracker(libc, pid, local);
  }

  private get target(): string {
    return `the userfaultfd of PID ${this.pid}`;
  }

  /** Write-protects the private anonymous mapping [start, end): from now on its pages are unwritten until written. */
  protect(start: bigint, end: bigint): void {
    const range = { start, len: end - start };
    const where = `${this.target} at 0x${start.toString(16)}`;
    this.libc.ioctlStruct(this.fd, UFFDIO_REGISTER, encodeStruct(uffdioRegister, { range, mode: UFFDIO_REGISTER_MODE_WP, ioctls: 0 }), 'ioctl(UFFDIO_REGISTER)', where);
    this.libc.ioctlStruct(this.fd, UFFDIO_WRITEPROTECT, encodeStruct(uffdioWriteprotect, { range, mode: UFFDIO_WRITEPROTECT_MODE_WP }), 'ioctl(UFFDIO_WRITEPROTECT)', where);
  }

  /** The pages of [start, end) written since they were protected, protected again in the same walk. */
  takeWritten(start: bigint, end: bigint): PageRun[] {
    return runs(this.scanner.scan(start, end, { mask: PAGE_IS_WRITTEN, returned: PAGE_IS_WRITTEN }, true));
  }

  /** The pages of [start, end) that are tracked and were not written since they were protected. */
  unwritten(start: bigint, end: bigint): PageRun[] {
    const mask = PAGE_IS_WPALLOWED | PAGE_IS_WRITTEN;
    return runs(this.scanner.scan(start, end, { mask, inverted: PAGE_IS_WRITTEN, returned: mask }));
  }

  /** Ends the tracking: the kernel unregisters every range and lifts the protection. Safe to call twice. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.scanner.close();
    closeSync(this.fd);
  }
}

const runs = (regions: readonly PageRegion[]): PageRun[] => regions.map(({ address, pages }) => ({ address, pages }));
