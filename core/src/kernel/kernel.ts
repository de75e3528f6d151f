import { Cgroups } from './cgroups.js';
import { Directory } from './directory.js';
import { FeatureProbe } from './features.js';
import { FileLocks } from './file-locks.js';
import { KernelError } from './kernel-error.js';
import { Libc, WNOHANG, __WALL, type SyscallArg } from './libc.js';
import { Namespaces } from './namespaces.js';
import { pageRuns, type PageRange, type PageRun, type PageSelection } from './pagemap.js';
import { Inotify } from './inotify.js';
import { Pipes } from './pipes.js';
import { SockDiag } from './sock-diag.js';
import { Sockets, withFd } from './sockets.js';
import { NetlinkSockets } from './netlink-sockets.js';
import { TcpRepair } from './tcp-repair.js';
import { ConnectionBlocks } from './connection-blocks.js';
import { EventFds } from './event-fds.js';
import { readMappings, readVmas, type Mapping, type Vma } from './proc-maps.js';
import { Procfs } from './procfs.js';
import { Ptrace } from './ptrace.js';
import { Shmem } from './shmem.js';
import { RemoteTask } from './remote-task.js';
import { createChildSeed, createSeed } from './seed.js';
import { Sysctl } from './sysctl.js';
import { SysvIpc } from './sysvipc.js';
import { KCMP_FILES, KCMP_FS, KCMP_SIGHAND, KCMP_VM, SYS, type RawSyscall } from './syscalls.js';
import { createThread, seizeThreads } from './thread-group.js';
import { TaskMemory } from './task-memory.js';
import { Ttys } from './ttys.js';
import { WriteTracker } from './userfaultfd.js';
import { PageScans } from './pagemap-scan.js';

/** The tables a process may share with another beyond what fork shares (kcmp(2) compares them). */
export const SHARED_TABLES = ['vm', 'files', 'fs', 'sighand'] as const;
export type SharedTable = (typeof SHARED_TABLES)[number];
const KCMP_TYPES: Record<SharedTable, number> = { vm: KCMP_VM, files: KCMP_FILES, fs: KCMP_FS, sighand: KCMP_SIGHAND };

/**
 * The kernel layer as plugins see it: one injectable service (inject `Kernel`) whose parts wrap
 * libc calls and /proc with typed methods that throw KernelError or a CrError subclass. libc and
 * ptrace stay inside: a syscall the layer lacks goes through `syscall` (or `RemoteTask.syscall`).
 */
export class Kernel {
  private readonly libc = new Libc();
  private readonly ptrace = new Ptrace(this.libc);
  readonly namespaces = new Namespaces(this.libc);
  readonly sysctl = new Sysctl();
  readonly procfs = new Procfs();
  readonly cgroups = new Cgroups();
  readonly sysvipc = new SysvIpc(this.libc, this.sysctl);
  readonly features = new FeatureProbe(this.libc, this.namespaces);
  readonly memory = new TaskMemory();
  readonly pipes = new Pipes(this.libc);
  readonly eventFds = new EventFds(this.libc);
  readonly fileLocks = new FileLocks();
  readonly shmem = new Shmem(this.libc);
  readonly sockets = new Sockets(this.libc);
  readonly inotify = new Inotify(this.libc);
  readonly sockDiag = new SockDiag(this.libc, this.sockets);
  readonly netlinkSockets = new NetlinkSockets(this.libc, this.sockets);
  readonly ttys = new Ttys(this.libc, this.procfs);
  /** Whether the PAGEMAP_SCAN ioctl is there (false once the kernel said it is not). */
  private pagemapScan = true;
  readonly tcpRepair = new TcpRepair(this.libc, this.sockets);
  readonly connectionBlocks = new ConnectionBlocks(this.libc);

  /** Opens a directory for *at calls that never follow a symlink planted in it (see directory.ts). */
  openDirectory(path: string): Directory {
    return Directory.open(this.libc, path);
  }

  /** Seizes and stops a running process, to read its state and run syscalls inside it. */
  seize(pid: number): RemoteTask {
    return RemoteTask.seize(this.ptrace, pid);
  }

  /**
   * Seizes every thread of a running process, each as `seize` does, main thread first (see
   * thread-group.ts). Releasing each lets the process go; `kill` on the first kills it.
   */
  seizeThreads(pid: number): RemoteTask[] {
    return seizeThreads(this.ptrace, pid);
  }

  /** A stopped new thread with exactly `tid` in a process being restored, `leader` its seed (see thread-group.ts). */
  createThread(leader: RemoteTask, tid: number): RemoteTask {
    return createThread(this.ptrace, leader, tid);
  }

  /** The robust futex list thread `tid` registered (get_robust_list(2)): its head, and the size of the head it gave. */
  robustList(tid: number): { head: bigint; length: bigint } {
    const head = new Uint8Array(8);
    const length = new Uint8Array(8);
    this.libc.syscall('get_robust_list', SYS.get_robust_list, [tid, head, length], `tid ${tid}`);
    return { head: Buffer.from(head).readBigUInt64LE(), length: Buffer.from(length).readBigUInt64LE() };
  }

  /** A stopped child of cr with exactly `pid`, to be rebuilt into a restored process (see seed.ts). */
  createSeed(pid: number): RemoteTask {
    return createSeed(this.libc, this.ptrace, pid);
  }

  /** A pidfd of cr's on process `pid` (pidfd_open(2); close-on-exec): for a process being restored, to hand to another. */
  openPidfd(pid: number, target: string): number {
    return this.libc.pidfdOpen(pid, target);
  }

  /**
   * A pidfd of cr's on a process that has exited and been reaped, as a program holds one of a
   * child it has waited for: opened on a short-lived child of cr's, which cr then reaps.
   */
  exitedPidfd(target: string): number {
    const pid = this.libc.spawnQuiet('true', ['true']);
    try {
      return this.libc.pidfdOpen(pid, target);
    } finally {
      this.waitForExit(pid);
    }
  }

  /**
   * Waits for a child of cr (a restored process) to exit and returns a shell-style status: its
   * exit code, or 128 + the signal that killed it.
   */
  waitForExit(pid: number): number {
    for (;;) {
      const { status } = this.libc.waitpid(pid, __WALL);
      if ((status & 0x7f) === 0) return (status >> 8) & 0xff;
      if ((status & 0xff) !== 0x7f) return 128 + (status & 0x7f);
    }
  }

  /**
   * Reaps `pid` if it is a child of cr that has exited, without waiting: true once it is gone
   * (reaped now, or not a child of cr), false while it runs.
   */
  reapIfExited(pid: number): boolean {
    try {
      return this.libc.waitpid(pid, __WALL | WNOHANG).pid === pid;
    } catch (err) {
      if (err instanceof KernelError && err.code === 'ECHILD') return true;
      throw err;
    }
  }

  /** The file status flags (O_NONBLOCK, O_APPEND …) of cr's descriptor `fd` (fcntl F_GETFL). */
  fdStatusFlags(fd: number): number {
    const F_GETFL = 3;
    return this.libc.fcntl(fd, F_GETFL, 0, `fd ${fd} of cr`);
  }

  /** Makes cr's descriptor `onto` (0, 1 or 2) another descriptor of what `fd` is (dup3(2)), closing what it was. */
  replaceFd(fd: number, onto: number): void {
    this.libc.dup3(fd, onto, `fd ${onto} of cr`);
  }

  /** The mappings of a process, with their VmFlags (/proc/PID/smaps, which walks every page table: about 12 ms a GiB). */
  vmas(pid: number): Vma[] {
    return readVmas(pid);
  }

  /** The mappings of a process without their VmFlags, from /proc/PID/maps: for what needs only where mappings are and what they map. */
  mappings(pid: number): Mapping[] {
    return readMappings(pid);
  }

  /**
   * The runs of pages of [start, end) whose contents must be saved (see pagemap.ts): see pageRunsOf.
   */
  pageRuns(pid: number, start: bigint, end: bigint, selection: PageSelection): PageRun[] {
    return this.pageRunsOf(pid, [{ start, end, selection }])[0]!;
  }

  /**
   * The runs of pages of each range of `pid` whose contents must be saved (see pagemap.ts), in the
   * order of `ranges`. Through PAGEMAP_SCAN where the kernel has it (6.7+), which reports runs
   * rather than a word per page, leaves out pages that are the shared zero page, and opens the
   * process's pagemap once for all of them (an open of a /proc file costs tens of µs, and a
   * process has dozens of mappings).
   */
  pageRunsOf(pid: number, ranges: readonly PageRange[]): PageRun[][] {
    if (this.pagemapScan) {
      try {
        const scans = new PageScans(this.libc, pid);
        try {
          return ranges.map(({ start, end, selection }) => (selection === 'present' ? scans.present(start, end) : scans.privateCopies(start, end)));
        } finally {
          scans.close();
        }
      } catch (err) {
        if (!(err instanceof KernelError && (err.code === 'ENOTTY' || err.code === 'EINVAL'))) throw err;
        this.pagemapScan = false;
      }
    }
    return ranges.map(({ start, end, selection }) => pageRuns(pid, start, end, selection));
  }

  /**
   * Starts tracking which pages running process `pid` writes (see userfaultfd.ts): it is stopped
   * for a moment to create the userfaultfd in it. The caller closes the tracker, on every path.
   */
  trackWrites(pid: number): WriteTracker {
    return WriteTracker.start(this.libc, this.ptrace, pid);
  }

  /** hostname and domainname of the UTS namespace the calling thread is in. */
  utsNames(): { hostname: string; domainname: string } {
    const u = this.libc.uname();
    return { hostname: u.nodename, domainname: u.domainname };
  }

  setUtsNames(names: { hostname: string; domainname: string }): void {
    this.libc.sethostname(names.hostname);
    this.libc.setdomainname(names.domainname);
  }

  /** Whether fd1 of pid1 and fd2 of pid2 are the same open file description (kcmp KCMP_FILE). */
  sameOpenFile(pid1: number, fd1: number, pid2: number, fd2: number): boolean {
    return this.libc.kcmpFiles(pid1, fd1, pid2, fd2) === 0;
  }

  /**
   * Whether epoll instance `epfd` of `pid` watches, as its `toff`-th item added by number `tfd`, the file
   * that `pid` still has on descriptor `tfd` (kcmp KCMP_EPOLL_TFD): false when that descriptor was
   * closed since, or now holds another file, while the kernel keeps watching the old one.
   */
  epollWatchesOpenFd(pid: number, epfd: number, tfd: number, toff: number): boolean {
    try {
      return this.libc.kcmpEpollTarget(pid, tfd, epfd, tfd, toff) === 0;
    } catch (err) {
      if (err instanceof KernelError && (err.code === 'EBADF' || err.code === 'ENOENT')) return false;
      throw err;
    }
  }

  /**
   * A copy in cr of descriptor `fd` of process `pid` (pidfd_getfd(2), close-on-exec), sharing
   * its open file description: to look at a socket or an inotify instance from here. The caller
   * closes it. The process is not touched, and need not be stopped.
   */
  takeFd(pid: number, fd: number): number {
    return this.libc.takeFd(pid, fd, `fd ${fd} of PID ${pid}`);
  }

  /** Runs `use` on a copy in cr of descriptor `fd` of `pid` (takeFd), closed after; `target` names it in errors. */
  withFdOf<T>(pid: number, fd: number, use: (local: number, target: string) => T): T {
    return withFd(this.takeFd(pid, fd), (local) => use(local, `fd ${fd} of PID ${pid}`));
  }

  /**
   * What two processes share that fork does not share (they were made with clone flags): their
   * address space (CLONE_VM, as vfork), fd table (CLONE_FILES), cwd/umask/root (CLONE_FS) or
   * signal handlers (CLONE_SIGHAND).
   */
  sharedBetween(pid1: number, pid2: number): SharedTable[] {
    return SHARED_TABLES.filter((kind) => this.compareTables(pid1, pid2, kind) === 0);
  }

  /**
   * How the `kind` table of `pid1` compares with that of `pid2` (kcmp(2)): 0 when they are one
   * table, otherwise -1 or 1, an order by which processes can be sorted to find those that share one.
   */
  compareTables(pid1: number, pid2: number, kind: SharedTable): -1 | 0 | 1 {
    const order = this.libc.kcmp(pid1, pid2, KCMP_TYPES[kind]);
    return order === 0 ? 0 : order === 1 ? -1 : 1;
  }

  /**
   * A child of the stopped seed `parent` with exactly `pid`, made by fork inside it (see seed.ts):
   * stopped from its first instruction, a copy of the parent. `fromParentOf` makes it the
   * parent's sibling instead (CLONE_PARENT), for a task that creates members of its session or
   * group and then exits. `share`: the tables it shares with the parent (CLONE_FILES, CLONE_FS),
   * as a process made by clone() with those flags did.
   */
  createChildSeed(parent: RemoteTask, pid: number, fromParentOf = false, share: readonly ('files' | 'fs')[] = []): RemoteTask {
    return createChildSeed(this.ptrace, parent, pid, fromParentOf, share);
  }

  /** cr's own limit on `resource` (an RLIMIT_* number), as prlimit(2) reports it. */
  ownRlimit(resource: number): { soft: bigint; hard: bigint } {
    return this.libc.getRlimit(resource);
  }

  /**
   * The escape hatch: a syscall the layer has no method for, made by cr itself (in the namespaces
   * cr is in, see `namespaces.within`). Integers go as 64-bit values, a Uint8Array as a pointer to
   * its bytes. Returns the result; a failure throws a KernelError with the errno's name
   * (`mq_getsetattr(fd 3): EBADF (Bad file descriptor)`), `target` naming what it was aimed at.
   */
  syscall(call: RawSyscall, args: readonly SyscallArg[] = [], target?: string): bigint {
    return this.libc.syscall(call.name, call.nr, args, target);
  }
}
