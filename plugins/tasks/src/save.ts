import {
  ERESTART_RESTARTBLOCK,
  EINTR,
  Kernel,
  REGISTER_NAMES,
  withoutRestartBlock,
  TargetError,
  type ProcessStat,
  type ProcessStatus,
  type AltStack,
  type RemoteTask,
  type SignalAction,
} from '@cr/core';
import { DISPOSITION_SIGNALS, type ProcessReadings } from './frozen-reads.js';
import { ITIMERS, RLIMIT_NAMES, type Credentials, type LiveTaskRecord, type ZombieRecord } from './record.js';
import { toHex } from './hex.js';
import { seccompOf } from './seccomp.js';

const CLOCK_MONOTONIC = 1;

/**
 * Everything of stopped process `pid` that is not its memory, its files or its other threads
 * (threads-save.ts), read through `task`: its main thread, or, when that had exited, another.
 * `readings` are what syscalls inside it report, read beforehand with the other processes'
 * (readFrozenProcesses); `status` is its /proc/PID/status.
 */
export function readTaskState(kernel: Kernel, pid: number, task: RemoteTask, readings: ProcessReadings, status: ProcessStatus): LiveTaskRecord {
  const stat = kernel.procfs.stat(pid);
  const { registers, restartSleep } = savedRegisters(task);
  // No-new-privs and seccomp are the thread's own: those of `task`, which is another than the main one when that had exited.
  const threadStatus = task.pid === pid ? status : kernel.procfs.status(task.pid);
  try {
    return {
      pid,
      comm: stat.comm,
      ppid: stat.ppid,
      pgid: stat.pgid,
      sid: stat.sid,
      sessionLeader: stat.sid === pid,
      groupLeader: stat.pgid === pid,
      credentials: credentialsOf(status),
      registers,
      xstate: task.xstate().toString('base64'),
      signals: {
        blocked: toHex(task.blockedSignals()),
        actions: signalActions(readings.dispositions),
        pending: [
          ...task.pendingSignals(false).map((info) => ({ shared: false, siginfo: info.toString('base64') })),
          ...task.pendingSignals(true).map((info) => ({ shared: true, siginfo: info.toString('base64') })),
        ],
        altStack: altStackRecord(readings.own.get(task)!.altStack),
      },
      rlimits: rlimitsOf(kernel, pid),
      scheduling: schedulingOf(stat, status),
      itimers: readings.itimers.flatMap(({ intervalUs, valueUs }, i) => {
        if (intervalUs === 0n && valueUs === 0n) return [];
        // A periodic timer that expired while its signal is still pending reads 0 until the
        // signal is taken, when the kernel re-arms it; restored with 0, it would be disarmed.
        const next = valueUs === 0n ? intervalUs : valueUs;
        return [{ which: ITIMERS[i]!, intervalUs: String(intervalUs), valueUs: String(next) }];
      }),
      personality: Number.parseInt(kernel.procfs.read(pid, 'personality').trim(), 16),
      umask: status.umask,
      cwd: kernel.procfs.link(pid, 'cwd'),
      ...rootOf(kernel, pid),
      ...rseqOf(task),
      prctl: { ...readings.prctl, noNewPrivs: threadStatus.noNewPrivs },
      ...seccompOf(task, threadStatus),
      ...(task.jobControlStop === undefined ? {} : { stopped: task.jobControlStop }),
      ...(restartSleep ? { restartSleep } : {}),
    };
  } finally {
    task.dropScratch();
  }
}

/**
 * The registers of a stopped task as they are saved, and the interrupted sleep to rebuild. A
 * poll() without a timeout is run again from the start (withoutRestartBlock). Other
 * restart-block syscalls (poll with a timeout, futex with a timeout …) cannot be rebuilt: like
 * CRIU, cr lets them fail with EINTR after restore, which programs must handle for signals anyway.
 */
export function savedRegisters(task: RemoteTask): Pick<LiveTaskRecord, 'registers' | 'restartSleep'> {
  // A copy: the task itself gets its own registers back when a checkpoint lets it run on.
  const regs = { ...withoutRestartBlock(task.stoppedRegs) };
  const restartSleep = interruptedSleep(task);
  if (!restartSleep && BigInt.asIntN(64, regs.rax) === BigInt(-ERESTART_RESTARTBLOCK)) regs.rax = BigInt(-EINTR);
  return {
    registers: Object.fromEntries(REGISTER_NAMES.map((name) => [name, toHex(regs[name])])) as LiveTaskRecord['registers'],
    ...(restartSleep ? { restartSleep } : {}),
  };
}

/** The credentials a thread's /proc status shows. */
export function credentialsOf(status: ProcessStatus): Credentials {
  return {
    uids: status.uids,
    gids: status.gids,
    groups: status.groups,
    capabilities: {
      inheritable: toHex(status.capInheritable),
      permitted: toHex(status.capPermitted),
      effective: toHex(status.capEffective),
      bounding: toHex(status.capBounding),
      ambient: toHex(status.capAmbient),
    },
  };
}

/** The root directory of a chrooted process; nothing for one whose root is cr's. */
function rootOf(kernel: Kernel, pid: number): Pick<LiveTaskRecord, 'root'> {
  const root = kernel.procfs.link(pid, 'root');
  return root === '/' ? {} : { root };
}

function rlimitsOf(kernel: Kernel, pid: number): LiveTaskRecord['rlimits'] {
  const limits = kernel.procfs.limits(pid);
  return RLIMIT_NAMES.map((resource, i) => {
    const limit = limits[i];
    if (!limit) throw new TargetError(`PID ${pid}: /proc/${pid}/limits does not show RLIMIT_${resource.toUpperCase()}`);
    return { resource, soft: toHex(limit.soft), hard: toHex(limit.hard) };
  });
}

/** Every catchable signal whose disposition is not the default one. */
function signalActions(dispositions: readonly SignalAction[]): LiveTaskRecord['signals']['actions'] {
  return DISPOSITION_SIGNALS.flatMap((signal, i) => {
    const a = dispositions[i]!;
    if (a.handler === 0n && a.flags === 0n && a.mask === 0n) return [];
    return [{ signal, handler: toHex(a.handler), flags: toHex(a.flags), restorer: toHex(a.restorer), mask: toHex(a.mask) }];
  });
}

/** A process that had exited and that its (frozen) parent had not reaped: what wait() will report of it. */
export function readZombie(kernel: Kernel, pid: number): ZombieRecord {
  const stat = kernel.procfs.stat(pid);
  return { pid, comm: stat.comm, ppid: stat.ppid, pgid: stat.pgid, sid: stat.sid, exited: { waitStatus: stat.exitCode & 0xffff } };
}

export function altStackRecord({ sp, flags, size }: AltStack): LiveTaskRecord['signals']['altStack'] {
  return { sp: toHex(sp), flags, size: toHex(size) };
}

/** Nice value, policy and affinity are each thread's own: `stat` and `status` are the thread's. */
export function schedulingOf(stat: ProcessStat, status: ProcessStatus): LiveTaskRecord['scheduling'] {
  return { nice: stat.nice, policy: stat.policy, rtPriority: stat.rtPriority, affinity: status.cpusAllowed };
}

export function rseqOf(task: RemoteTask): Pick<LiveTaskRecord, 'rseq'> {
  const rseq = task.rseqConfiguration();
  return rseq ? { rseq: { address: toHex(rseq.address), size: rseq.size, signature: rseq.signature } } : {};
}

/**
 * A relative nanosleep or clock_nanosleep interrupted by the freeze: the kernel has written the
 * time left into the program's `rem` buffer, which restore uses to sleep exactly that long again.
 * Without a `rem` buffer the time left is unknown and the call fails with EINTR instead.
 */
export function interruptedSleep(task: RemoteTask): LiveTaskRecord['restartSleep'] {
  const call = task.stoppedSyscall();
  if (call?.result !== BigInt(-ERESTART_RESTARTBLOCK)) return undefined;
  let clockId: number;
  let remainder: bigint;
  if (call.name === 'nanosleep') {
    clockId = CLOCK_MONOTONIC;
    remainder = call.args[1]!;
  } else if (call.name === 'clock_nanosleep') {
    clockId = Number(call.args[0]);
    remainder = call.args[3]!;
  } else {
    return undefined;
  }
  if (remainder === 0n) return undefined;
  const left = task.read(remainder, 16);
  const remainingNs = left.readBigInt64LE(0) * 1_000_000_000n + left.readBigInt64LE(8);
  return { clockId, remainingNs: String(remainingNs), remainder: toHex(remainder) };
}
