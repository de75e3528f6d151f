import { decodeStruct, itimerspec, itimerval, kernelSigaction, rlimit64, stackT, structSize, u64, type Timeval } from './structs.js';
import { PR_GET_TID_ADDRESS, SYS } from './syscalls.js';

/**
 * Something of a stopped task that one syscall inside it reads, changing nothing: the call, the
 * bytes the kernel writes for it into the task's memory, and how its answer is made of them. Run
 * one at a time by RemoteTask's methods (getItimer, getAltStack …), in many tasks at once by
 * RemoteTask.readAcross.
 */
export interface TaskRead<T> {
  /** The call as errors name it: `getitimer(0)`. */
  readonly name: string;
  readonly nr: number;
  /** How many bytes the kernel writes for it, at the address `args` is given (0: none). */
  readonly outSize: number;
  args(out: bigint): readonly (bigint | number)[];
  /** The answer, from what the call returned (not an error) and the `outSize` bytes it wrote. */
  answer(result: bigint, out: Buffer): T;
}

/** One signal's disposition as rt_sigaction(2) reports it (struct kernel_sigaction on x86_64). */
export interface SignalAction {
  handler: bigint;
  flags: bigint;
  restorer: bigint;
  mask: bigint;
}

/** One interval timer (struct itimerval), in microseconds. */
export interface ItimerValue {
  intervalUs: bigint;
  valueUs: bigint;
}

/** How a POSIX timer is armed: the time to its next expiry and its interval, in nanoseconds. */
export interface PosixTimerSetting {
  valueNs: bigint;
  intervalNs: bigint;
}

/** An alternate signal stack (stack_t). */
export interface AltStack {
  sp: bigint;
  flags: number;
  size: bigint;
}

interface Timespec {
  tv_sec: number | bigint;
  tv_nsec: number | bigint;
}
const nanoseconds = (t: Timespec) => BigInt(t.tv_sec) * 1_000_000_000n + BigInt(t.tv_nsec);
const microseconds = (tv: Timeval) => BigInt(tv.tv_sec) * 1_000_000n + BigInt(tv.tv_usec);

/** The reads RemoteTask makes, each a syscall that only reports. */
export const TASK_READS = {
  signalAction: (signal: number): TaskRead<SignalAction> => ({
    name: `rt_sigaction(${signal})`,
    nr: SYS.rt_sigaction,
    outSize: structSize(kernelSigaction),
    args: (out) => [signal, 0, out, 8],
    answer: (_, out) => {
      const a = decodeStruct<Record<keyof SignalAction, number | bigint>>(out, kernelSigaction);
      return { handler: u64(a.handler), flags: u64(a.flags), restorer: u64(a.restorer), mask: u64(a.mask) };
    },
  }),

  /** getitimer(2): the interval and the time left of interval timer `which`. */
  itimer: (which: number): TaskRead<ItimerValue> => ({
    name: `getitimer(${which})`,
    nr: SYS.getitimer,
    outSize: structSize(itimerval),
    args: (out) => [which, out],
    answer: (_, out) => {
      const t = decodeStruct<Record<'it_interval' | 'it_value', Timeval>>(out, itimerval);
      return { intervalUs: microseconds(t.it_interval), valueUs: microseconds(t.it_value) };
    },
  }),

  altStack: (): TaskRead<AltStack> => ({
    name: 'sigaltstack',
    nr: SYS.sigaltstack,
    outSize: structSize(stackT),
    args: (out) => [0, out],
    answer: (_, out) => {
      const s = decodeStruct<{ ss_sp: number | bigint; ss_flags: number; ss_size: number | bigint }>(out, stackT);
      return { sp: u64(s.ss_sp), flags: s.ss_flags, size: u64(s.ss_size) };
    },
  }),

  /** A prctl that reports by its result (PR_GET_DUMPABLE, PR_GET_TIMERSLACK …). */
  prctl: (name: string, option: number): TaskRead<bigint> => ({
    name,
    nr: SYS.prctl,
    outSize: 0,
    args: () => [option],
    answer: (result) => result,
  }),

  /** A prctl that reports through an int the kernel writes (PR_GET_PDEATHSIG, PR_GET_CHILD_SUBREAPER). */
  prctlInt: (name: string, option: number): TaskRead<number> => ({
    name,
    nr: SYS.prctl,
    outSize: 4,
    args: (out) => [option, out],
    answer: (_, out) => out.readInt32LE(),
  }),

  /** Where the kernel clears the thread id and wakes a futex when the thread exits (PR_GET_TID_ADDRESS). */
  tidAddress: (): TaskRead<bigint> => ({
    name: 'prctl(PR_GET_TID_ADDRESS)',
    nr: SYS.prctl,
    outSize: 8,
    args: (out) => [PR_GET_TID_ADDRESS, out],
    answer: (_, out) => out.readBigUInt64LE(),
  }),

  rlimit: (resource: number): TaskRead<{ soft: bigint; hard: bigint }> => ({
    name: `prlimit64(${resource})`,
    nr: SYS.prlimit64,
    outSize: structSize(rlimit64),
    args: (out) => [0, resource, 0, out],
    answer: (_, out) => {
      const r = decodeStruct<{ rlim_cur: number | bigint; rlim_max: number | bigint }>(out, rlimit64);
      return { soft: u64(r.rlim_cur), hard: u64(r.rlim_max) };
    },
  }),

  /** timer_gettime(2) of POSIX timer `id`. */
  timerSetting: (id: number): TaskRead<PosixTimerSetting> => ({
    name: `timer_gettime(${id})`,
    nr: SYS.timer_gettime,
    outSize: structSize(itimerspec),
    args: (out) => [id, out],
    answer: (_, out) => {
      const t = decodeStruct<Record<'it_interval' | 'it_value', Timespec>>(out, itimerspec);
      return { valueNs: nanoseconds(t.it_value), intervalNs: nanoseconds(t.it_interval) };
    },
  }),

  /** timer_getoverrun(2): the expirations of timer `id` its last signal stood for, beyond the one. */
  timerOverrun: (id: number): TaskRead<number> => ({
    name: `timer_getoverrun(${id})`,
    nr: SYS.timer_getoverrun,
    outSize: 0,
    args: () => [id],
    answer: (result) => Number(result),
  }),
};
