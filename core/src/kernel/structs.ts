import koffi, { type TypeObject } from 'koffi';

/**
 * The C structs cr passes to the kernel, each declared once with koffi's struct types (x86_64
 * layouts), and their conversion from and to bytes: for remote syscalls, whose arguments are
 * bytes in the task's memory, and for libc calls.
 */

/** stack_t of sigaltstack(2). */
export const stackT = koffi.struct('cr_stack_t', { ss_sp: 'uint64_t', ss_flags: 'int', ss_size: 'uint64_t' });

/** The kernel's struct sigaction of rt_sigaction(2) on x86_64 (not libc's: the mask comes last). */
export const kernelSigaction = koffi.struct('cr_kernel_sigaction', { handler: 'uint64_t', flags: 'uint64_t', restorer: 'uint64_t', mask: 'uint64_t' });

/** struct rlimit64 of prlimit(2). */
export const rlimit64 = koffi.struct('cr_rlimit64', { rlim_cur: 'uint64_t', rlim_max: 'uint64_t' });

const timeval = koffi.struct('cr_timeval', { tv_sec: 'int64_t', tv_usec: 'int64_t' });
/** A struct timeval as koffi reads (numbers or bigints) or takes it. */
export interface Timeval {
  tv_sec: number | bigint;
  tv_usec: number | bigint;
}
/** struct itimerval of getitimer(2) and setitimer(2). */
export const itimerval = koffi.struct('cr_itimerval', { it_interval: timeval, it_value: timeval });

const timespec = koffi.struct('cr_timespec', { tv_sec: 'int64_t', tv_nsec: 'int64_t' });
/** struct itimerspec of timerfd_settime(2). */
export const itimerspec = koffi.struct('cr_itimerspec', { it_interval: timespec, it_value: timespec });

/** struct flock of fcntl(2) F_SETLK and F_OFD_SETLK. */
export const flockStruct = koffi.struct('cr_flock', { l_type: 'int16_t', l_whence: 'int16_t', l_start: 'int64_t', l_len: 'int64_t', l_pid: 'int32_t' });

/** struct clone_args of clone3(2) (Linux 5.7+: up to cgroup). */
export const cloneArgs = koffi.struct('cr_clone_args', {
  flags: 'uint64_t',
  pidfd: 'uint64_t',
  child_tid: 'uint64_t',
  parent_tid: 'uint64_t',
  exit_signal: 'uint64_t',
  stack: 'uint64_t',
  stack_size: 'uint64_t',
  tls: 'uint64_t',
  set_tid: 'uint64_t',
  set_tid_size: 'uint64_t',
  cgroup: 'uint64_t',
});

/** struct ptrace_peeksiginfo_args of PTRACE_PEEKSIGINFO. */
export const peeksiginfoArgs = koffi.struct('cr_ptrace_peeksiginfo_args', { off: 'uint64_t', flags: 'uint32_t', nr: 'int32_t' });

/** struct ptrace_rseq_configuration of PTRACE_GET_RSEQ_CONFIGURATION. */
export const rseqConfiguration = koffi.struct('cr_ptrace_rseq_configuration', {
  rseq_abi_pointer: 'uint64_t',
  rseq_abi_size: 'uint32_t',
  signature: 'uint32_t',
  flags: 'uint32_t',
  pad: 'uint32_t',
});

/** struct utsname of uname(2): six NUL-terminated strings of 65 bytes. */
const utsField = koffi.array('char', 65, 'String');
export const utsname = koffi.struct('cr_utsname', {
  sysname: utsField,
  nodename: utsField,
  release: utsField,
  version: utsField,
  machine: utsField,
  domainname: utsField,
});

/** struct iovec of readv(2), process_vm_readv(2), PTRACE_GETREGSET. */
export const iovec = koffi.struct('cr_iovec', { iov_base: 'uint64_t', iov_len: 'uint64_t' });

/** struct __user_cap_header_struct of capset(2). */
export const capUserHeader = koffi.struct('cr_cap_user_header', { version: 'uint32_t', pid: 'int32_t' });
/** Two struct __user_cap_data_struct of capset(2) version 3: the low, then the high 32 bits of each set. */
export const capUserData = koffi.array(koffi.struct('cr_cap_user_data', { effective: 'uint32_t', permitted: 'uint32_t', inheritable: 'uint32_t' }), 2);

/** struct ipc64_perm (x86_64), which starts every *id64_ds. */
const ipc64Perm = koffi.struct('cr_ipc64_perm', {
  key: 'int32_t',
  uid: 'uint32_t',
  gid: 'uint32_t',
  cuid: 'uint32_t',
  cgid: 'uint32_t',
  mode: 'uint16_t',
  pad1: koffi.array('uint8_t', 2),
  seq: 'uint16_t',
  pad2: 'uint16_t',
  unused1: 'uint64_t',
  unused2: 'uint64_t',
});
/** struct msqid64_ds (x86_64) of msgctl(2). */
export const msqid64Ds = koffi.struct('cr_msqid64_ds', {
  msg_perm: ipc64Perm,
  msg_stime: 'int64_t',
  msg_rtime: 'int64_t',
  msg_ctime: 'int64_t',
  msg_cbytes: 'uint64_t',
  msg_qnum: 'uint64_t',
  msg_qbytes: 'uint64_t',
  msg_lspid: 'int32_t',
  msg_lrpid: 'int32_t',
  unused4: 'uint64_t',
  unused5: 'uint64_t',
});

/** The leading ipc64_perm of any *id64_ds, for reading and writing owners and mode in place. */
export const ipcPermHead = ipc64Perm;
/** A buffer that holds any *id64_ds (shmid64_ds, the largest, has 112 bytes). */
export const IPC_STAT_SIZE = 128;

/** sizeof(type). */
export const structSize = (type: TypeObject): number => koffi.sizeof(type);

/** The bytes of `value` laid out as `type`. */
export function encodeStruct(type: TypeObject, value: object): Buffer {
  const bytes = Buffer.alloc(koffi.sizeof(type));
  koffi.encode(bytes, 0, type, value);
  return bytes;
}

/** The fields of `type` read from `bytes`; koffi gives 64-bit fields as numbers where they fit, so take them with `u64`. */
export function decodeStruct<T>(bytes: Uint8Array, type: TypeObject): T {
  return koffi.decode(bytes, type) as T;
}

/** Changes some fields of the `type` at the start of `bytes`, leaving the rest as they are. */
export function patchStruct(bytes: Uint8Array, type: TypeObject, change: object): void {
  koffi.encode(bytes, 0, type, { ...(koffi.decode(bytes, type) as object), ...change });
}

/** A 64-bit field as koffi decodes it (a number, or a bigint beyond 2^53), as a bigint. */
export const u64 = (v: number | bigint): bigint => BigInt(v);
