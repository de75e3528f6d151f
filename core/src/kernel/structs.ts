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

/** A 64-bit field as koffi decodes it (a number, or a bigint beyond 2^53), as a bigint. */
export const u64 = (v: number | bigint): bigint => BigInt(v);
