/**
 * x86_64 system call numbers and the constants cr passes to them, for remote syscalls (which run
 * inside another task, so libc's wrappers cannot be used) and for libc's `syscall()`.
 */
export const SYS = {
  close: 3,
  poll: 7,
  lseek: 8,
  mmap: 9,
  mprotect: 10,
  munmap: 11,
  brk: 12,
  rt_sigaction: 13,
  mremap: 25,
  madvise: 28,
  shmat: 30,
  nanosleep: 35,
  getitimer: 36,
  setitimer: 38,
  fcntl: 72,
  fchdir: 81,
  io_setup: 206,
  io_submit: 209,
  chroot: 161,
  umask: 95,
  setpgid: 109,
  setsid: 112,
  setgroups: 116,
  setresuid: 117,
  setresgid: 119,
  capset: 126,
  rt_sigqueueinfo: 129,
  sigaltstack: 131,
  getpid: 39,
  set_tid_address: 218,
  set_robust_list: 273,
  get_robust_list: 274,
  personality: 135,
  setpriority: 141,
  sched_setscheduler: 144,
  prctl: 157,
  tkill: 200,
  sched_setaffinity: 203,
  setns: 308,
  clock_nanosleep: 230,
  rt_tgsigqueueinfo: 297,
  prlimit64: 302,
  kcmp: 312,
  rseq: 334,
  seccomp: 317,
  mlock2: 325,
  userfaultfd: 323,
  pidfd_open: 434,
  clone3: 435,
  close_range: 436,
  pidfd_getfd: 438,
  process_madvise: 440,
  dup2: 33,
  dup3: 292,
  preadv: 295,
  epoll_ctl: 233,
  timer_create: 222,
  timer_settime: 223,
  timer_gettime: 224,
  timer_getoverrun: 225,
  kill: 62,
  wait4: 61,
  exit_group: 231,
  exit: 60,
} as const;

/**
 * A syscall the kernel layer has no typed method for, by its x86_64 number (asm/unistd_64.h):
 * what `Kernel.syscall` and `RemoteTask.syscall` take. `name` is what errors call it.
 */
export interface RawSyscall {
  readonly name: string;
  readonly nr: number;
}

/** rax of a task stopped in a syscall the kernel restarts through restart_syscall() (-516). */
export const ERESTARTNOHAND = 514;
export const ERESTART_RESTARTBLOCK = 516;
export const EINTR = 4;

export const PROT_READ = 1;
export const PROT_WRITE = 2;
export const PROT_EXEC = 4;
export const MAP_SHARED = 0x01;
export const MAP_PRIVATE = 0x02;
export const MAP_FIXED = 0x10;
export const MAP_ANONYMOUS = 0x20;
export const MAP_GROWSDOWN = 0x0100;
export const MAP_NORESERVE = 0x4000;
export const MREMAP_MAYMOVE = 1;
export const MREMAP_FIXED = 2;
export const SHM_RDONLY = 0o10000;
export const SHM_REMAP = 0o40000;

export const PR_SET_PDEATHSIG = 1;
export const PR_GET_PDEATHSIG = 2;
export const PR_GET_DUMPABLE = 3;
export const PR_SET_DUMPABLE = 4;
export const PR_GET_KEEPCAPS = 7;
export const PR_SET_KEEPCAPS = 8;
export const PR_SET_NAME = 15;
export const PR_GET_TIMERSLACK = 30;
export const PR_SET_TIMERSLACK = 29;
export const PR_SET_MM = 35;
export const PR_SET_MM_MAP = 14;
export const PR_SET_CHILD_SUBREAPER = 36;
export const PR_GET_CHILD_SUBREAPER = 37;
export const PR_SET_NO_NEW_PRIVS = 38;
export const PR_GET_NO_NEW_PRIVS = 39;
export const PR_SET_THP_DISABLE = 41;
export const PR_CAPBSET_DROP = 24;
export const PR_CAP_AMBIENT = 47;
export const PR_CAP_AMBIENT_RAISE = 2;
export const PR_GET_THP_DISABLE = 42;
/** Linux 6.15+: timer_create(2) takes the id to give the new timer from *timerid (for restoring timers). */
export const PR_TIMER_CREATE_RESTORE_IDS = 77;

export const CLONE_PARENT = 0x00008000;
export const CLONE_FS = 0x00000200;
export const CLONE_FILES = 0x00000400;
export const PR_GET_TID_ADDRESS = 40;
export const F_GETFD = 1;
export const F_SETFD = 2;
export const F_SETFL = 4;
export const FD_CLOEXEC = 1;
export const O_CLOEXEC = 0o2000000;
export const SOCK_CLOEXEC = 0o2000000;
export const KCMP_FILE = 0;
export const KCMP_EPOLL_TFD = 7;
/** kcmp(2) types: whether two processes share one of these (CLONE_VM, CLONE_FILES, CLONE_FS, CLONE_SIGHAND). */
export const KCMP_VM = 1;
export const KCMP_FILES = 2;
export const KCMP_FS = 3;
export const KCMP_SIGHAND = 4;
export const RSEQ_FLAG_UNREGISTER = 1;
/** seccomp(2) operations, and the flag a filter that logs its actions is installed with. */
export const SECCOMP_SET_MODE_STRICT = 0;
export const SECCOMP_SET_MODE_FILTER = 1;
export const SECCOMP_FILTER_FLAG_LOG = 2;
export const SIGKILL = 9;
export const SIGCHLD = 17;
export const SIGSTOP = 19;
