import { closeSync, openSync } from 'node:fs';
import type { LibraryHandle } from 'koffi';
import { ffi, onFirstUse } from './ffi.js';
import { KernelError } from './kernel-error.js';
import { cloneArgs, decodeStruct, encodeStruct, iovec, iovecs, kcmpEpollSlot, itimerspec, pageRegion, pmScanArg, pollfd, rlimit64, structSize, u64, utsname } from './structs.js';
import { KCMP_EPOLL_TFD, KCMP_FILE, O_CLOEXEC, SHM_RDONLY, SIGCHLD, SOCK_CLOEXEC, SYS } from './syscalls.js';
import { PAGE_SIZE } from './pagemap.js';
import { nodeFsError } from './sysctl.js';
import type { FileRegion } from '../io/file-regions.js';
import { liveTask } from './proc-dir.js';

/** pidfd_open(2) of a thread other than a main thread (O_EXCL). */
const PIDFD_THREAD = 0o200;

/** What a PAGEMAP_SCAN walks and selects (struct pm_scan_arg without its buffer). */
export interface PagemapScan {
  start: bigint;
  end: bigint;
  flags: number;
  inverted: number;
  mask: number;
  anyOf: number;
  returned: number;
}
/**
 * The one place cr binds libc. Everything above this file calls the typed methods of `Libc`,
 * which throw KernelError on failure; nothing else in cr (or in a plugin) touches koffi. Each
 * function is bound at its first call.
 */
let libc: LibraryHandle | undefined;
const lib = (): LibraryHandle => (libc ??= ffi().load('libc.so.6'));

const raw = onFirstUse({
  prlimit: () => lib().func('int prlimit(int pid, int resource, const void *limit, _Out_ void *old)'),
  strerror: () => lib().func('const char *strerror(int errnum)'),
  setns: () => lib().func('int setns(int fd, int nstype)'),
  unshare: () => lib().func('int unshare(int flags)'),
  mount: () => lib().func('int mount(const char *source, const char *target, const char *fstype, unsigned long flags, const void *data)'),
  umount2: () => lib().func('int umount2(const char *target, int flags)'),
  uname: () => lib().func('uname', 'int', [ffi().out(ffi().pointer(utsname))]),
  sethostname: () => lib().func('int sethostname(const char *name, size_t len)'),
  setdomainname: () => lib().func('int setdomainname(const char *name, size_t len)'),
  syscall: () => lib().func('long syscall(long number, ...)'),
  ptrace: () => lib().func('long ptrace(int request, ...)'),
  waitpid: () => lib().func('int waitpid(int pid, _Out_ int *status, int options)'),
  dup3: () => lib().func('int dup3(int oldfd, int newfd, int flags)'),
  kill: () => lib().func('int kill(int pid, int sig)'),
  pipe2: () => lib().func('int pipe2(_Out_ int *fds, int flags)'),
  tee: () => lib().func('long tee(int fd_in, int fd_out, size_t len, unsigned int flags)'),
  mkfifo: () => lib().func('int mkfifo(const char *path, uint32_t mode)'),
  memfdCreate: () => lib().func('int memfd_create(const char *name, unsigned int flags)'),
  lseek: () => lib().func('int64_t lseek(int fd, int64_t offset, int whence)'),
  fallocate: () => lib().func('int fallocate(int fd, int mode, int64_t offset, int64_t len)'),
  mmap: () => lib().func('uintptr_t mmap(uintptr_t addr, size_t length, int prot, int flags, int fd, int64_t offset)'),
  munmap: () => lib().func('int munmap(uintptr_t addr, size_t length)'),
  fcntlInt: () => lib().func('int fcntl(int fd, int cmd, int arg)'),
  eventfd: () => lib().func('int eventfd(unsigned int initval, int flags)'),
  epollCreate1: () => lib().func('int epoll_create1(int flags)'),
  poll: () => lib().func('int poll(void *fds, unsigned long nfds, int timeout)'),
  inotifyInit1: () => lib().func('int inotify_init1(int flags)'),
  inotifyAddWatch: () => lib().func('int inotify_add_watch(int fd, const char *path, uint32_t mask)'),
  inotifyRmWatch: () => lib().func('int inotify_rm_watch(int fd, int wd)'),
  openByHandleAt: () => lib().func('int open_by_handle_at(int mount_fd, const void *handle, int flags)'),
  socket: () => lib().func('int socket(int domain, int type, int protocol)'),
  socketpair: () => lib().func('int socketpair(int domain, int type, int protocol, _Out_ int *sv)'),
  bind: () => lib().func('int bind(int fd, const void *addr, uint32_t len)'),
  listen: () => lib().func('int listen(int fd, int backlog)'),
  connect: () => lib().func('int connect(int fd, const void *addr, uint32_t len)'),
  getsockopt: () => lib().func('int getsockopt(int fd, int level, int name, void *value, void *len)'),
  setsockopt: () => lib().func('int setsockopt(int fd, int level, int name, const void *value, uint32_t len)'),
  getsockname: () => lib().func('int getsockname(int fd, void *addr, void *len)'),
  getpeername: () => lib().func('int getpeername(int fd, void *addr, void *len)'),
  send: () => lib().func('long send(int fd, const void *buf, size_t len, int flags)'),
  recvmsg: () => lib().func('long recvmsg(int fd, void *msg, int flags)'),
  sendmsg: () => lib().func('long sendmsg(int fd, const void *msg, int flags)'),
  shutdown: () => lib().func('int shutdown(int fd, int how)'),
  recv: () => lib().func('long recv(int fd, void *buf, size_t len, int flags)'),
  signalfd: () => lib().func('int signalfd(int fd, const uint8_t *mask, int flags)'),
  timerfdCreate: () => lib().func('int timerfd_create(int clockid, int flags)'),
  timerfdSettime: () => lib().func('timerfd_settime', 'int', ['int', 'int', ffi().pointer(itimerspec), ffi().pointer(itimerspec)]),
  ioctlU64: () => lib().func('int ioctl(int fd, unsigned long request, const uint64_t *arg)'),
  openat: () => lib().func('int openat(int dirfd, const char *path, int flags, ...)'),
  mkdirat: () => lib().func('int mkdirat(int dirfd, const char *path, uint32_t mode)'),
  renameat: () => lib().func('int renameat(int olddirfd, const char *oldpath, int newdirfd, const char *newpath)'),
  unlinkat: () => lib().func('int unlinkat(int dirfd, const char *path, int flags)'),
  ioctl: () => lib().func('int ioctl(int fd, unsigned long request, ...)'),
  shmget: () => lib().func('int shmget(int key, size_t size, int flags)'),
  shmat: () => lib().func('void *shmat(int id, void *addr, int flags)'),
  shmdt: () => lib().func('int shmdt(void *addr)'),
  madvise: () => lib().func('int madvise(void *addr, size_t length, int advice)'),
  madviseAt: () => lib().func('int madvise(uintptr_t addr, size_t length, int advice)'),
  shmctl: () => lib().func('int shmctl(int id, int cmd, void *buf)'),
  msgget: () => lib().func('int msgget(int key, int flags)'),
  msgsnd: () => lib().func('int msgsnd(int id, const void *msg, size_t size, int flags)'),
  msgrcv: () => lib().func('long msgrcv(int id, _Out_ void *msg, size_t size, long type, int flags)'),
  msgctl: () => lib().func('int msgctl(int id, int cmd, void *buf)'),
  semget: () => lib().func('int semget(int key, int nsems, int flags)'),
  semctl: () => lib().func('int semctl(int id, int semnum, int cmd, ...)'),
  prctl: () => lib().func('int prctl(int option, unsigned long arg2, unsigned long arg3, unsigned long arg4, unsigned long arg5)'),
  getrusage: () => lib().func('int getrusage(int who, _Out_ uint8_t *usage)'),
  posixSpawnFileActionsInit: () => lib().func('int posix_spawn_file_actions_init(void *actions)'),
  posixSpawnFileActionsAddopen: () => lib().func('int posix_spawn_file_actions_addopen(void *actions, int fd, const char *path, int flags, uint32_t mode)'),
  posixSpawnFileActionsDestroy: () => lib().func('int posix_spawn_file_actions_destroy(void *actions)'),
  posixSpawnp: () => lib().func('int posix_spawnp(_Out_ int *pid, const char *file, const void *actions, const void *attributes, const char **argv, const char **envp)'),
  process_vm_writev: () => lib().func(
    'long process_vm_writev(int pid, const void *local_iov, unsigned long liovcnt, const void *remote_iov, unsigned long riovcnt, unsigned long flags)',
  ),
  process_vm_readv: () => lib().func(
    'long process_vm_readv(int pid, const void *local_iov, unsigned long liovcnt, const void *remote_iov, unsigned long riovcnt, unsigned long flags)',
  ),
});

export const CLONE_NEWNS = 0x00020000;
export const CLONE_NEWUTS = 0x04000000;
export const CLONE_NEWIPC = 0x08000000;
export const CLONE_NEWUSER = 0x10000000;
export const CLONE_NEWPID = 0x20000000;
export const CLONE_NEWNET = 0x40000000;
export const CLONE_NEWCGROUP = 0x02000000;
export const MS_BIND = 0x1000;
export const MNT_DETACH = 0x2;
export const __WALL = 0x40000000;
export const WNOHANG = 1;
/** madvise(2) advice that faults a whole range in with one call (Linux 5.14+). */
const SEEK_DATA = 3;
const SEEK_HOLE = 4;
const ENXIO = 6;
export const MADV_POPULATE_READ = 22;
export const MADV_POPULATE_WRITE = 23;
/** mmap(2)'s (void *)-1. */
const MAP_FAILED = 0xffff_ffff_ffff_ffffn;
/** openat(2)'s directory for paths relative to the current directory. */
export const AT_FDCWD = -100;
/** ioctl on an nsfs file: which CLONE_NEW* kind of namespace it is. */
export const NS_GET_NSTYPE = 0xb703;

function describe(errno: number): string {
  return raw.strerror(errno) as string;
}

function check(result: number | bigint, syscall: string, target?: string): number {
  const value = Number(result);
  if (value === -1) {
    const errno = ffi().errno();
    throw new KernelError(syscall, errno, target, describe(errno));
  }
  return value;
}

/**
 * process_vm_writev with one local iovec over `local` (its own memory, not a copy:
 * koffi.address of a Buffer is where its bytes are) and one remote iovec per range.
 */
function crossMemoryArgs(name: string, pid: number, local: Uint8Array, remote: readonly RemoteRange[]): [number, Buffer, number, Buffer, number, number] {
  if (remote.length > IOV_MAX) throw new Error(`internal error: ${name} of ${remote.length} ranges, more than ${IOV_MAX}`);
  const bytes = Buffer.isBuffer(local) ? local : Buffer.from(local.buffer, local.byteOffset, local.byteLength);
  const localIov = encodeStruct(iovec, { iov_base: ffi().address(bytes), iov_len: bytes.byteLength });
  const remoteIov = Buffer.alloc(structSize(iovec) * remote.length);
  ffi().encode(remoteIov, 0, iovecs(remote.length), remote.map((r) => ({ iov_base: r.address, iov_len: r.length })));
  return [liveTask(pid), localIov, 1, remoteIov, remote.length, 0];
}

/** The memory that calls running on libuv's pool read or fill: kept from the garbage collector until they return. */
const inFlight = new Set<object>();

const crossTarget = (pid: number, remote: readonly RemoteRange[]) => `pid ${pid} at ${remote[0] ? `0x${remote[0].address.toString(16)}` : 'nothing'}`;

function crossMemory(fn: (typeof raw)['process_vm_writev'], name: string, pid: number, local: Uint8Array, remote: readonly RemoteRange[]): number {
  return check(fn(...crossMemoryArgs(name, pid, local, remote)), name, crossTarget(pid, remote));
}

/** What uname(2) reports. */
export interface Utsname {
  sysname: string;
  nodename: string;
  release: string;
  version: string;
  machine: string;
  domainname: string;
}

export interface WaitResult {
  pid: number;
  status: number;
}

/** An argument of a raw syscall: an integer, or memory the call reads or fills. */
export type SyscallArg = bigint | number | Uint8Array;

/** A range of another process's memory. */
export interface RemoteRange {
  address: bigint;
  length: number;
}

/** How many iovecs one readv/writev-like call takes at most (IOV_MAX on Linux). */
export const IOV_MAX = 1024;

/** A byte range of a segment (or file). */
export interface ByteRange {
  offset: number;
  length: number;
}

/** An shmat() mapping: a zero-copy view of the segment until `detach()`. */
export interface ShmMapping {
  readonly size: number;
  view(): Uint8Array;
  /**
   * The ranges of the segment that hold pages, in order (SEEK_DATA/SEEK_HOLE on its shmem
   * file, whose swapped-out pages count as data): a page never written is a hole, which reads
   * as zeros and takes no memory.
   */
  dataRanges(): ByteRange[];
  /**
   * Faults in a range at once (one call instead of a page fault per page: on a VM each fault is
   * a costly exit). Reading a hole of a segment allocates a page, so only ranges that hold data
   * (or are about to) should be populated. Older kernels reject the advice; the range then
   * simply faults in as it is used.
   */
  populate(range: ByteRange): void;
  detach(): void;
}

export class Libc {
  setns(fd: number, nstype: number, target: string): void {
    check(raw.setns(fd, nstype), 'setns', target);
  }

  unshare(flags: number): void {
    check(raw.unshare(flags), 'unshare', `0x${flags.toString(16)}`);
  }

  bindMount(source: string, target: string): void {
    check(raw.mount(source, target, null, MS_BIND, null), 'mount', `${source} -> ${target}`);
  }

  umount2(target: string, flags: number): void {
    check(raw.umount2(target, flags), 'umount2', target);
  }

  uname(): Utsname {
    const names = {};
    check(raw.uname(names), 'uname');
    return names as Utsname;
  }

  sethostname(name: string): void {
    const bytes = Buffer.from(name, 'utf8');
    check(raw.sethostname(bytes, bytes.length), 'sethostname', name);
  }

  setdomainname(name: string): void {
    const bytes = Buffer.from(name, 'utf8');
    check(raw.setdomainname(bytes, bytes.length), 'setdomainname', name);
  }

  /**
   * clone3(2) with `set_tid`, used only as a probe: asking for a PID that is taken must fail with
   * EEXIST on a kernel that supports choosing PIDs, and creates no task.
   */
  clone3SetTidProbe(takenPid: number): number {
    const tid = ffi().alloc('int', 1);
    try {
      ffi().encode(tid, 'int', takenPid);
      const args = encodeStruct(cloneArgs, { exit_signal: SIGCHLD, set_tid: ffi().address(tid), set_tid_size: 1 });
      const result = Number(raw.syscall(SYS.clone3, 'void *', args, 'size_t', args.length));
      return result === -1 ? ffi().errno() : 0;
    } finally {
      ffi().free(tid);
    }
  }

  /**
   * `addr` and `data` are numbers (an option word, a signal, a size) or buffers the kernel reads
   * or fills.
   */
  ptrace(request: number, pid: number, addr: bigint | number | Buffer, data: bigint | number | Buffer, name: string): number {
    const arg = (v: bigint | number | Buffer) => (Buffer.isBuffer(v) ? ['void *', v] : ['uintptr_t', v]);
    return check(raw.ptrace(request, 'int', pid, ...arg(addr), ...arg(data)), name, `pid ${pid}`);
  }

  /**
   * A ptrace request whose data is a struct iovec (PTRACE_GETREGSET / SETREGSET): `buf` is
   * what the kernel reads or fills; returns how many bytes it used.
   */
  ptraceIov(request: number, pid: number, addr: number, buf: Buffer, name: string): number {
    const data = ffi().alloc('uint8_t', buf.length);
    try {
      const view = new Uint8Array(ffi().view(data, buf.length));
      view.set(buf);
      const iov = encodeStruct(iovec, { iov_base: ffi().address(data), iov_len: buf.length });
      check(raw.ptrace(request, 'int', pid, 'uintptr_t', addr, 'void *', iov), name, `pid ${pid}`);
      const used = Number(decodeStruct<{ iov_len: number | bigint }>(iov, iovec).iov_len);
      buf.set(view.subarray(0, used));
      return used;
    } finally {
      ffi().free(data);
    }
  }

  /** prctl(2) on the calling process; returns its result. */
  prctl(option: number, arg2: number | bigint, name: string): number {
    return check(raw.prctl(option, arg2, 0, 0, 0), name);
  }

  /**
   * kcmp(2): 0 when fd1 of pid1 and fd2 of pid2 are the same open file description (KCMP_FILE),
   * another value when they are not.
   */
  kcmpFiles(pid1: number, fd1: number, pid2: number, fd2: number): number {
    return check(raw.syscall(SYS.kcmp, 'long', liveTask(pid1), 'long', liveTask(pid2), 'long', KCMP_FILE, 'long', fd1, 'long', fd2), 'kcmp', `pid ${pid1} fd ${fd1}`);
  }

  /**
   * kcmp(2) KCMP_EPOLL_TFD: 0 when fd `fd` of `pid` is the file that epoll instance `epfd` of
   * `pid` watches as its `toff`-th item added by number `tfd`; ENOENT when it has no such item.
   */
  kcmpEpollTarget(pid: number, fd: number, epfd: number, tfd: number, toff: number): number {
    const slot = encodeStruct(kcmpEpollSlot, { efd: epfd, tfd, toff });
    return check(raw.syscall(SYS.kcmp, 'long', liveTask(pid), 'long', liveTask(pid), 'long', KCMP_EPOLL_TFD, 'long', fd, 'void *', slot), 'kcmp(KCMP_EPOLL_TFD)', `pid ${pid} fd ${epfd}`);
  }

  /** pidfd_open(2) of process `pid` (with PIDFD_THREAD, of thread `pid`); the descriptor is close-on-exec. */
  pidfdOpen(pid: number, target: string, flags = 0): number {
    return check(raw.syscall(SYS.pidfd_open, 'long', pid, 'long', flags), 'pidfd_open', target);
  }

  /**
   * A copy of descriptor `fd` of process `pid` in cr (pidfd_getfd(2), close-on-exec): the same
   * open file description, to look at it from here. The process is not touched.
   */
  takeFd(pid: number, fd: number, target: string): number {
    const task = liveTask(pid);
    const pidfd = this.pidfdOpen(task, `pid ${pid}`, task === pid ? 0 : PIDFD_THREAD);
    try {
      return check(raw.syscall(SYS.pidfd_getfd, 'long', pidfd, 'long', fd, 'long', 0), 'pidfd_getfd', target);
    } finally {
      closeSync(pidfd);
    }
  }

  /** kcmp(2) of a per-process object (KCMP_VM, KCMP_FILES, KCMP_FS, KCMP_SIGHAND): 0 when the two processes share it. */
  kcmp(pid1: number, pid2: number, type: number): number {
    return check(raw.syscall(SYS.kcmp, 'long', liveTask(pid1), 'long', liveTask(pid2), 'long', type, 'long', 0, 'long', 0), 'kcmp', `pid ${pid1} and ${pid2}`);
  }

  /** Where a buffer's bytes are in this process's memory (they stay there while it is referenced). */
  addressOf(buf: Uint8Array): bigint {
    return BigInt(ffi().address(buf));
  }

  /** This process's own limit on `resource` (RLIMIT_*), as prlimit(2) reports it. */
  getRlimit(resource: number): { soft: bigint; hard: bigint } {
    const out = Buffer.alloc(ffi().sizeof(rlimit64));
    check(raw.prlimit(0, resource, null, out), 'prlimit', `resource ${resource}`);
    const limit = decodeStruct<{ rlim_cur: number | bigint; rlim_max: number | bigint }>(out, rlimit64);
    return { soft: u64(limit.rlim_cur), hard: u64(limit.rlim_max) };
  }

  /**
   * Any syscall by number, in cr itself: integers are passed as 64-bit values, a Uint8Array as a
   * pointer to its bytes (which the kernel may write into). A -1 result throws, named `name`.
   */
  syscall(name: string, nr: number, args: readonly SyscallArg[], target?: string): bigint {
    const typed = args.flatMap((a): unknown[] => (typeof a === 'object' ? ['void *', a] : ['int64_t', BigInt(a)]));
    const result = BigInt(raw.syscall(nr, ...typed) as number | bigint);
    if (result === -1n) {
      const errno = ffi().errno();
      throw new KernelError(name, errno, target, describe(errno));
    }
    return result;
  }

  /** The largest peak RSS (bytes) among the children this process has waited for. */
  childrenMaxRss(): number {
    const RUSAGE_CHILDREN = -1;
    const usage = Buffer.alloc(144);
    check(raw.getrusage(RUSAGE_CHILDREN, usage), 'getrusage');
    // struct rusage: two struct timevals (32 bytes), then ru_maxrss in KiB.
    return Number(usage.readBigInt64LE(32)) * 1024;
  }

  /**
   * process_vm_writev(2): copies `local` into the `remote` ranges of process `pid` (at most
   * IOV_MAX), in order, with one copy, and returns how many bytes it copied. That is fewer than
   * asked when it met a page the process itself could not write (read-only): nothing after that
   * page is copied. Throws KernelError when not even the first page could be written (EFAULT),
   * or the call is refused (ESRCH, EPERM, ENOSYS).
   */
  processVmWrite(pid: number, local: Uint8Array, remote: readonly RemoteRange[]): number {
    return crossMemory(raw.process_vm_writev, 'process_vm_writev', pid, local, remote);
  }

  /** processVmReadAsync's call made at once, on the JS thread: for a read too small to be worth a trip to the pool. */
  processVmRead(pid: number, local: Uint8Array, remote: readonly RemoteRange[]): number {
    return Math.max(Number(raw.process_vm_readv(...crossMemoryArgs('process_vm_readv', pid, local, remote))), 0);
  }

  /**
   * process_vm_readv(2) on libuv's pool: copies the `remote` ranges of process `pid` (at most
   * IOV_MAX), in order, into `local`, with one copy, and resolves to how many bytes it copied.
   * That is fewer than asked, down to none, when the call stopped at a page it could not read or
   * failed: the caller reads the rest another way, which names what went wrong (koffi does not
   * hand over the errno of a call on another thread). It pins every page it reads, and the kernel
   * first gives the process its own copy of an anonymous page it shares copy-on-write: see
   * TaskMemory.read for when that cannot happen.
   */
  processVmReadAsync(pid: number, local: Uint8Array, remote: readonly RemoteRange[]): Promise<number> {
    const args = crossMemoryArgs('process_vm_readv', pid, local, remote);
    const memory = { args, local };
    inFlight.add(memory);
    return new Promise((resolve, reject) => {
      raw.process_vm_readv.async(...args, (err: unknown, copied: number) => {
        inFlight.delete(memory);
        if (err) reject(err);
        else resolve(Math.max(copied, 0));
      });
    });
  }

  /** pipe2(2): a new pipe, as [read end, write end]. */
  pipe2(flags: number): [number, number] {
    const fds = [0, 0];
    check(raw.pipe2(fds, flags), 'pipe2');
    return [fds[0]!, fds[1]!];
  }

  /** eventfd(2) with a counter of 0 (the counter is 64-bit, its initial value only 32). */
  eventfd(flags: number, target: string): number {
    return check(raw.eventfd(0, flags), 'eventfd', target);
  }

  epollCreate1(flags: number, target: string): number {
    return check(raw.epollCreate1(flags), 'epoll_create1', target);
  }

  inotifyInit1(flags: number, target: string): number {
    return check(raw.inotifyInit1(flags), 'inotify_init1', target);
  }

  inotifyAddWatch(fd: number, path: string, mask: number, target: string): number {
    return check(raw.inotifyAddWatch(fd, path, mask), 'inotify_add_watch', `${target} (${path})`);
  }

  inotifyRmWatch(fd: number, wd: number, target: string): void {
    check(raw.inotifyRmWatch(fd, wd), 'inotify_rm_watch', target);
  }

  /** open_by_handle_at(2): `handle` is a whole struct file_handle. */
  openByHandleAt(mountFd: number, handle: Buffer, flags: number, target: string): number {
    return check(raw.openByHandleAt(mountFd, handle, flags | O_CLOEXEC), 'open_by_handle_at', target);
  }

  socket(domain: number, type: number, protocol: number, target: string): number {
    return check(raw.socket(domain, type | SOCK_CLOEXEC, protocol), 'socket', target);
  }

  socketpair(domain: number, type: number, target: string): [number, number] {
    const fds = [0, 0];
    check(raw.socketpair(domain, type | SOCK_CLOEXEC, 0, fds), 'socketpair', target);
    return [fds[0]!, fds[1]!];
  }

  bind(fd: number, address: Buffer, target: string): void {
    check(raw.bind(fd, address, address.length), 'bind', target);
  }

  listen(fd: number, backlog: number, target: string): void {
    check(raw.listen(fd, backlog), 'listen', target);
  }

  connect(fd: number, address: Buffer, target: string): void {
    check(raw.connect(fd, address, address.length), 'connect', target);
  }

  /** getsockopt(2) into `value`; returns how many bytes the kernel wrote. */
  getsockopt(fd: number, level: number, name: number, value: Buffer, target: string): number {
    const length = new Uint32Array([value.length]);
    check(raw.getsockopt(fd, level, name, value, length), `getsockopt(${level}, ${name})`, target);
    return length[0]!;
  }

  setsockopt(fd: number, level: number, name: number, value: Buffer, target: string): void {
    check(raw.setsockopt(fd, level, name, value, value.length), `setsockopt(${level}, ${name})`, target);
  }

  /** getsockname(2) or getpeername(2): the address's bytes, as long as the kernel says it is. */
  sockaddr(fd: number, peer: boolean, target: string): Buffer {
    const address = Buffer.alloc(128);
    const length = new Uint32Array([address.length]);
    check((peer ? raw.getpeername : raw.getsockname)(fd, address, length), peer ? 'getpeername' : 'getsockname', target);
    return address.subarray(0, Math.min(length[0]!, address.length));
  }

  send(fd: number, data: Uint8Array, flags: number, target: string): number {
    return check(raw.send(fd, data, data.byteLength, flags), 'send', target);
  }

  recv(fd: number, into: Uint8Array, flags: number, target: string): number {
    return check(raw.recv(fd, into, into.byteLength, flags), 'recv', target);
  }

  /** recvmsg(2) with a msghdr cr encoded (its buffers stay referenced by the caller); returns the bytes received. */
  recvmsg(fd: number, message: Buffer, flags: number, target: string): number {
    return check(raw.recvmsg(fd, message, flags), 'recvmsg', target);
  }

  /** sendmsg(2) with a msghdr cr encoded (its buffers stay referenced by the caller); returns the bytes sent. */
  sendmsg(fd: number, message: Buffer, flags: number, target: string): number {
    return check(raw.sendmsg(fd, message, flags), 'sendmsg', target);
  }

  shutdown(fd: number, how: number, target: string): void {
    check(raw.shutdown(fd, how), 'shutdown', target);
  }

  /** poll(2) of one descriptor for `events`, waiting at most `timeout` ms: the events it has (revents), 0 when none. */
  poll(fd: number, events: number, timeout: number, target: string): number {
    const entry = encodeStruct(pollfd, { fd, events, revents: 0 });
    check(raw.poll(entry, 1, timeout), 'poll', target);
    return decodeStruct<{ revents: number }>(entry, pollfd).revents;
  }

  /** ioctl(2) whose argument is an int the kernel fills (FIONREAD, SIOCINQ). */
  ioctlInt(fd: number, request: number, name: string, target: string): number {
    const value = new Int32Array(1);
    check(raw.ioctl(fd, request, 'void *', value), name, target);
    return value[0]!;
  }

  /** ioctl(2) whose argument is a pointer to `arg`, which the kernel reads or fills (a struct); returns ioctl's result. */
  ioctlPointer(fd: number, request: number, arg: Uint8Array, name: string, target: string): number {
    return check(raw.ioctl(fd, request, 'void *', arg), name, target);
  }

  /** ioctl(2) whose argument is an int given by value (TIOCGPTPEER's open flags); returns ioctl's result. */
  ioctlValue(fd: number, request: number, value: number, name: string, target: string): number {
    return check(raw.ioctl(fd, request, 'int', value), name, target);
  }

  /** signalfd(2): a new signalfd for the signals of `mask` (bit N-1 for signal N). */
  signalfd(mask: bigint, flags: number, target: string): number {
    const set = Buffer.alloc(128);
    set.writeBigUInt64LE(mask);
    return check(raw.signalfd(-1, set, flags), 'signalfd', target);
  }

  timerfdCreate(clockId: number, flags: number, target: string): number {
    return check(raw.timerfdCreate(clockId, flags), 'timerfd_create', target);
  }

  /** timerfd_settime(2) with a relative first expiry and an interval, both in nanoseconds. */
  timerfdSettime(fd: number, valueNs: bigint, intervalNs: bigint, target: string): void {
    const spec = (ns: bigint) => ({ tv_sec: ns / 1_000_000_000n, tv_nsec: ns % 1_000_000_000n });
    check(raw.timerfdSettime(fd, 0, { it_interval: spec(intervalNs), it_value: spec(valueNs) }, null), 'timerfd_settime', target);
  }

  /** ioctl(2) whose argument is a struct, `arg` its bytes, which the kernel may update in place; returns the result. */
  ioctlStruct(fd: number, request: number, arg: Uint8Array, name: string, target: string): number {
    return check(raw.ioctl(fd, request, 'void *', arg), name, target);
  }

  /**
   * The PAGEMAP_SCAN ioctl on an open /proc/PID/pagemap: fills `regions` with struct page_region
   * entries for `scan`; returns how many it filled and the address the walk stopped at.
   */
  pagemapScan(fd: number, request: number, scan: PagemapScan, regions: Buffer, target: string): { filled: number; walkEnd: bigint } {
    const arg = encodeStruct(pmScanArg, {
      size: structSize(pmScanArg),
      flags: scan.flags,
      start: scan.start,
      end: scan.end,
      walk_end: 0,
      vec: ffi().address(regions),
      vec_len: Math.floor(regions.byteLength / structSize(pageRegion)),
      max_pages: 0,
      category_inverted: scan.inverted,
      category_mask: scan.mask,
      category_anyof_mask: scan.anyOf,
      return_mask: scan.returned,
    });
    const filled = check(raw.ioctl(fd, request, 'void *', arg), 'ioctl(PAGEMAP_SCAN)', target);
    return { filled, walkEnd: u64(decodeStruct<{ walk_end: number | bigint }>(arg, pmScanArg).walk_end) };
  }

  /** ioctl(2) whose argument is a pointer to one u64 (TFD_IOC_SET_TICKS). */
  ioctlU64(fd: number, request: number, value: bigint, name: string, target: string): void {
    check(raw.ioctlU64(fd, request, new BigUint64Array([value])), name, target);
  }

  /** tee(2): copies up to `length` bytes from one pipe into another without consuming them. */
  tee(fdIn: number, fdOut: number, length: number, flags: number, target: string): number {
    return check(raw.tee(fdIn, fdOut, length, flags), 'tee', target);
  }

  /** mkfifo(3): a named pipe at `path` with `mode` (less cr's umask). */
  mkfifo(path: string, mode: number): void {
    check(raw.mkfifo(path, mode), 'mkfifo', path);
  }

  /** memfd_create(2). */
  memfdCreate(name: string, flags: number, target: string): number {
    return check(raw.memfdCreate(name, flags), 'memfd_create', target);
  }

  /** lseek(2); -1 with ENXIO (SEEK_DATA or SEEK_HOLE past the last data) comes back as undefined. */
  lseek(fd: number, offset: bigint, whence: number, target: string): bigint | undefined {
    const result = BigInt(raw.lseek(fd, offset, whence) as number | bigint);
    if (result === -1n && ffi().errno() === ENXIO) return undefined;
    return BigInt(check(result, 'lseek', target));
  }

  /** fallocate(2) with mode 0: disk space for `length` bytes from `offset`, the file grown to cover them. */
  fallocate(fd: number, offset: number, length: number, target: string): void {
    check(raw.fallocate(fd, 0, offset, length), 'fallocate', target);
  }

  /** mmap(2) in cr itself, MAP_ANONYMOUS: the address of the new mapping. */
  mmapAnonymous(length: number, prot: number, flags: number, target: string): bigint {
    const address = BigInt(raw.mmap(0, length, prot, flags, -1, 0) as number | bigint);
    if (address === MAP_FAILED) {
      const errno = ffi().errno();
      throw new KernelError('mmap', errno, target, describe(errno));
    }
    return address;
  }

  munmap(address: bigint, length: number, target: string): void {
    check(raw.munmap(address, length), 'munmap', target);
  }

  /** fcntl(2) with an int argument (F_GETPIPE_SZ, F_SETPIPE_SZ, F_GETFL …). */
  fcntl(fd: number, cmd: number, arg: number, target: string): number {
    return check(raw.fcntlInt(fd, cmd, arg), `fcntl(${cmd})`, target);
  }

  waitpid(pid: number, options: number): WaitResult {
    const status = [0];
    const result = check(raw.waitpid(pid, status, options), 'waitpid', `pid ${pid}`);
    return { pid: result, status: status[0]! };
  }

  /** dup3(2): `fd` becomes also descriptor `onto` of cr, closing what `onto` was (not close-on-exec). */
  dup3(fd: number, onto: number, target: string): void {
    check(raw.dup3(fd, onto, 0), 'dup3', target);
  }

  /** The CLONE_NEW* flag of the namespace an nsfs fd refers to. */
  nsType(fd: number, target: string): number {
    return check(raw.ioctl(fd, NS_GET_NSTYPE), 'ioctl(NS_GET_NSTYPE)', target);
  }

  /** `key` is unsigned, as cr holds keys; key_t is a C int, so it goes in as the same 32 bits. */
  shmget(key: number, size: number, flags: number, target: string): number {
    return check(raw.shmget(key | 0, size, flags), 'shmget', target);
  }

  shmat(id: number, size: number, flags: number): ShmMapping {
    const addr = raw.shmat(id, null, flags);
    const start = BigInt(ffi().address(addr));
    if (start === 0xffffffffffffffffn) {
      const errno = ffi().errno();
      throw new KernelError('shmat', errno, `shm id ${id}`, describe(errno));
    }
    const readOnly = (flags & SHM_RDONLY) !== 0;
    let attached = true;
    return {
      size,
      view: () => new Uint8Array(ffi().view(addr, size)),
      dataRanges: () => this.dataRanges(`/proc/self/map_files/${start.toString(16)}-${(start + BigInt(Math.ceil(size / PAGE_SIZE) * PAGE_SIZE)).toString(16)}`, size, `shm id ${id}`),
      populate: (range) => void raw.madviseAt(start + BigInt(range.offset), range.length, readOnly ? MADV_POPULATE_READ : MADV_POPULATE_WRITE),
      detach: () => {
        if (attached) {
          attached = false;
          check(raw.shmdt(addr), 'shmdt', `shm id ${id}`);
        }
      },
    };
  }

  /** The data ranges of the file at `path` below `size` (see dataRegions). */
  private dataRanges(path: string, size: number, target: string): ByteRange[] {
    let fd: number;
    try {
      fd = openSync(path, 'r');
    } catch (err) {
      throw nodeFsError('open', `${path} (${target})`, err);
    }
    try {
      return this.dataRegions(fd, size, target).map(({ position, length }) => ({ offset: position, length }));
    } finally {
      closeSync(fd);
    }
  }

  /**
   * The parts of the first `size` bytes of a file that hold data, page by page (SEEK_DATA and
   * SEEK_HOLE): for a shmem file, every page it has, in memory or swapped out, whether or not a
   * process maps it; a hole was never written and reads as zeros.
   */
  dataRegions(fd: number, size: number, target: string): FileRegion[] {
    const regions: FileRegion[] = [];
    for (let at = 0; at < size; ) {
      const data = this.lseek(fd, BigInt(at), SEEK_DATA, target);
      if (data === undefined || data >= BigInt(size)) break;
      const hole = this.lseek(fd, data, SEEK_HOLE, target) ?? BigInt(size);
      const end = Math.min(Number(hole), size);
      regions.push({ position: Number(data), length: end - Number(data) });
      at = end;
    }
    return regions;
  }

  shmctl(id: number, cmd: number, buf: Buffer | null, name: string): number {
    return check(raw.shmctl(id, cmd, buf), name, `shm id ${id}`);
  }

  msgget(key: number, flags: number, target: string): number {
    return check(raw.msgget(key | 0, flags), 'msgget', target);
  }

  msgsnd(id: number, msg: Buffer, size: number, flags: number): void {
    check(raw.msgsnd(id, msg, size, flags), 'msgsnd', `msg id ${id}`);
  }

  /** Returns the payload size, or -1 with the errno when `quietErrnos` lists it. */
  msgrcv(id: number, buf: Buffer, size: number, type: number, flags: number, quietErrnos: readonly number[] = []): number {
    const n = Number(raw.msgrcv(id, buf, size, type, flags));
    if (n === -1) {
      const errno = ffi().errno();
      if (quietErrnos.includes(errno)) return -errno;
      throw new KernelError('msgrcv', errno, `msg id ${id}`, describe(errno));
    }
    return n;
  }

  msgctl(id: number, cmd: number, buf: Buffer | null, name: string): number {
    return check(raw.msgctl(id, cmd, buf), name, `msg id ${id}`);
  }

  semget(key: number, nsems: number, flags: number, target: string): number {
    return check(raw.semget(key | 0, nsems, flags), 'semget', target);
  }

  semctl(id: number, cmd: number, arg: Buffer | null, name: string): number {
    return check(raw.semctl(id, 0, cmd, 'void *', arg), name, `sem id ${id}`);
  }

  /**
   * Sets the calling thread's effective uid (setresuid(-1, euid, -1)) by the raw syscall: glibc's
   * wrappers, and process.seteuid, change every thread of the process, this only the one calling.
   */
  setThreadEuid(euid: number): void {
    check(raw.syscall(SYS.setresuid, 'long', -1, 'long', euid, 'long', -1), 'setresuid', `euid ${euid}`);
  }

  /** Sets the calling thread's effective gid only; see setThreadEuid. */
  setThreadEgid(egid: number): void {
    check(raw.syscall(SYS.setresgid, 'long', -1, 'long', egid, 'long', -1), 'setresgid', `egid ${egid}`);
  }

  /** openat(2), always close-on-exec; `target` names the file in errors. */
  openat(dirfd: number, path: string, flags: number, mode: number, target: string): number {
    return check(raw.openat(dirfd, path, flags | O_CLOEXEC, 'uint32_t', mode), 'openat', target);
  }

  mkdirat(dirfd: number, path: string, mode: number, target: string): void {
    check(raw.mkdirat(dirfd, path, mode), 'mkdirat', target);
  }

  renameat(dirfd: number, from: string, to: string, target: string): void {
    check(raw.renameat(dirfd, from, dirfd, to), 'renameat', target);
  }

  unlinkat(dirfd: number, path: string, target: string): void {
    check(raw.unlinkat(dirfd, path, 0), 'unlinkat', target);
  }

  kill(pid: number, signal: number): void {
    check(raw.kill(pid, signal), 'kill', `pid ${pid}`);
  }

  /**
   * Starts program `file` (looked up in PATH) with `argv` as a child of cr that libuv knows
   * nothing of (posix_spawnp(3): one vfork and exec, no shell), its stdin, stdout and stderr on
   * /dev/null so that it holds none of cr's. Returns its PID; cr reaps it.
   */
  spawnQuiet(file: string, argv: readonly string[]): number {
    const actions = Buffer.alloc(POSIX_SPAWN_FILE_ACTIONS_SIZE);
    checkErrno(raw.posixSpawnFileActionsInit(actions), 'posix_spawn_file_actions_init', file);
    try {
      for (const [fd, flags] of [[0, O_RDONLY], [1, O_WRONLY], [2, O_WRONLY]] as const) {
        checkErrno(raw.posixSpawnFileActionsAddopen(actions, fd, '/dev/null', flags, 0), 'posix_spawn_file_actions_addopen', file);
      }
      const pid = [0];
      const env = Object.entries(process.env).map(([name, value]) => `${name}=${value}`);
      checkErrno(raw.posixSpawnp(pid, file, actions, null, [...argv, null], [...env, null]), 'posix_spawnp', file);
      return pid[0]!;
    } finally {
      raw.posixSpawnFileActionsDestroy(actions);
    }
  }
}

/** sizeof(posix_spawn_file_actions_t) in glibc on x86_64. */
const POSIX_SPAWN_FILE_ACTIONS_SIZE = 80;
const O_RDONLY = 0;
const O_WRONLY = 1;

/** For the calls that return an error number instead of setting errno (posix_spawn and its helpers). */
function checkErrno(result: number, name: string, target: string): void {
  if (result !== 0) throw new KernelError(name, result, target, describe(result));
}
