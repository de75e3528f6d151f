import { readFileSync } from 'node:fs';
import { TargetError, UnsupportedError } from '../errors.js';
import { findCodeSites, SYSCALL_RET, type CodeSites } from './code-sites.js';
import { KernelError } from './kernel-error.js';
import { __WALL, IOV_MAX, type RemoteRange } from './libc.js';
import { mmMapStruct, type MmMap } from './mm-map.js';
import { readMappings, type Mapping } from './proc-maps.js';
import { stoppedSyscall, type StoppedSyscall } from './stopped-syscall.js';
import { BATCH_CODE, batchResults, batchTable, type BatchedCall, type ResultOf } from './syscall-batch.js';
import { checkRemote, SEED_OPTIONS, SOCK_FILTER_SIZE, type Ptrace, type Registers, type RemoteResult, type RseqConfiguration, type RunningSyscall, type SeccompFilter } from './ptrace.js';
import { buildReturnFrame, OUT_AREA_SIZE, type ReturnFrame } from './return-frame.js';
import { TASK_READS, type AltStack, type ItimerValue, type PosixTimerSetting, type SignalAction, type TaskRead } from './task-reads.js';
import {
  F_GETFD,
  F_SETFD,
  F_SETFL,
  O_CLOEXEC,
  MAP_ANONYMOUS,
  MAP_PRIVATE,
  MREMAP_FIXED,
  MREMAP_MAYMOVE,
  PROT_EXEC,
  PROT_READ,
  PR_SET_MM,
  PR_SET_MM_MAP,
  PR_SET_NAME,
  RSEQ_FLAG_UNREGISTER,
  PROT_WRITE,
  SECCOMP_FILTER_FLAG_LOG,
  SECCOMP_SET_MODE_FILTER,
  SECCOMP_SET_MODE_STRICT,
  SIGSTOP,
  SYS,
  type RawSyscall,
} from './syscalls.js';
import { capUserData, capUserHeader, encodeStruct, epollEvent, iovecs, itimerspec, itimerval, sigevent, kernelSigaction, rlimit64, sockFprog, stackT, structSize, type Timeval } from './structs.js';

export type { AltStack, ItimerValue, PosixTimerSetting, SignalAction, TaskRead } from './task-reads.js';

/** capset(2) with 64-bit capability sets. */
const _LINUX_CAPABILITY_VERSION_3 = 0x20080522;
const SCRATCH_SIZE = 64 * 1024;
/** Where a batch's table goes in the scratch area: its calls' memory arguments go below. */
const BATCH_TABLE_OFFSET = 16 * 1024;
const CODE_SIZE = 4096;
/** In a task cr made, its work area: the scratch area, then the page of batch code. */
const WORK_AREA_SIZE = BigInt(SCRATCH_SIZE + CODE_SIZE);
/** Entries a batch's table has room for, the closing tkill among them. */
const BATCH_CAPACITY = (SCRATCH_SIZE - BATCH_TABLE_OFFSET) / 64;
/** Descriptors installFds puts in one batch: six calls each. */
const INSTALLS_PER_BATCH = 100;
/** Calls queued by `together` are sent once this many are waiting, leaving room for the calls a batch adds. */
const QUEUE_LIMIT = BATCH_CAPACITY - 128;
/**
 * Room kept free on each side of the work area where it is moved: more than the kernel's stack
 * guard gap (1 MiB by default), so that it never stops a stack from growing.
 */
const WORK_AREA_MARGIN = 2n << 20n;
/** The work area is never moved below 4 GiB, where programs built without PIE are mapped. */
const WORK_AREA_LOWEST = 1n << 32n;
/** The end of the user address space (x86_64, 4-level page tables). */
const TASK_SIZE = 0x7ffffffff000n;
/** x86_64 CET: a task with a shadow stack would fault on the `ret` of a parked task. */
const SHADOW_STACK = /^x86_Thread_features:.*\bshstk\b/m;
const ALL_SIGNALS = 0xffffffffffffffffn;
const MADV_POPULATE_WRITE = 23;
const EINVAL = 22;
const ENOSYS = 38;
const RLIMIT_CORE = 4;
const u = (v: bigint | number) => BigInt.asUintN(64, BigInt(v));
const align8 = (n: number) => (n + 7) & ~7;
/** pidfd_open of cr itself, in a batch: what the batch's pidfd_getfd calls pull cr's descriptors through. */
const openPidfdOfCr = (): BatchedCall => ({ name: 'pidfd_open', nr: SYS.pidfd_open, args: [BigInt(process.pid), 0n] });
/** pidfd_getfd of cr's descriptor `localFd`, through the pidfd an earlier call of the batch opened. */
const getFd = (pidfd: ResultOf, localFd: number): BatchedCall => ({ name: `pidfd_getfd(${localFd})`, nr: SYS.pidfd_getfd, args: [pidfd, BigInt(localFd), 0n] });
const NOTHING = Buffer.alloc(0);

/** A call the task is running (see startPreadv): `finish` waits for its end, `poll` only looks (undefined while it runs). */
export interface RunningCall<T> {
  finish(): T;
  poll(): T | undefined;
}

/** `call` with its raw result turned into `T` by `outcome` (which throws a failure), once, however it is asked for. */
function runningCall<T>(call: RunningSyscall, outcome: (result: bigint) => T): RunningCall<T> {
  return {
    finish: () => outcome(call.finish()),
    poll: () => {
      const result = call.poll();
      return result === undefined ? undefined : outcome(result);
    },
  };
}

/** What a POSIX timer does when it expires (struct sigevent): SIGEV_SIGNAL 0, SIGEV_NONE 1, SIGEV_THREAD_ID 4. */
export interface PosixTimerNotification {
  notify: number;
  signal: number;
  /** sigev_value, the 64 bits the signal carries. */
  value: bigint;
  /** The thread SIGEV_THREAD_ID signals. */
  tid: number;
}

/**
 * What the threads of one process share and `RemoteTask.seize` looks up: its mappings and the code
 * it runs remote syscalls from, found for the first thread seized and used for the others.
 */
export interface ProcessLayout {
  mappings?: Mapping[];
  sites?: CodeSites;
}

/** A range of addresses in a task, `end` excluded. */
export interface AddressRange {
  start: bigint;
  end: bigint;
}

/** A call `together` holds back: what it must return, and what part of the address space it changes. */
interface QueuedCall extends BatchedCall {
  expect?: bigint;
  touches?: readonly AddressRange[];
  /** It reads what `put` wrote into the work area: the area must stay where it is until it ran. */
  usesScratch?: boolean;
}

const overlaps = (a: AddressRange, b: AddressRange) => a.start < b.end && b.start < a.end;

/**
 * A task stopped under ptrace, and typed syscalls run inside it ("remote syscalls"). Arguments
 * that live in memory (a struct, a path) go through a scratch area: in a live program's task, dead
 * stack memory below its return frame; in a task cr made, cr's work area (scratch and batch code),
 * mapped while it is needed and removed again (`dropScratch`, `release`).
 *
 * Every method throws a KernelError naming the syscall, the errno and the PID when the call fails.
 */
export class RemoteTask {
  /** In a task cr made, while it is mapped: the scratch area and the page of batch code (syscall-batch.ts). */
  private workAreaAddress: bigint | undefined;
  /** A thread using this task's work area (see `lender`) that may have calls held back which read it. */
  private borrower: RemoteTask | undefined;
  /** In a task cr made: whether its seccomp is suspended while cr traces it (see installSeccompFilter). */
  private seccompSuspended = false;
  /** The blocked-signal mask the task gets back when it is let go. */
  private maskOnRelease: bigint;
  /** Calls `together` holds back, sent in one batch when cr next needs the task. */
  private queued: QueuedCall[] = [];
  /** How many `together` scopes are open. */
  private gathering = 0;
  /**
   * Bytes at the start of the scratch area that `put` handed out for calls not made yet: the next
   * `put` goes after them, so that putting an argument does not make the calls held back run first.
   */
  private scratchUsed = 0;

  /**
   * Takes over a task stopped under ptrace. Every signal is blocked while cr works in it: a signal
   * arriving meanwhile stays pending instead of interrupting a remote syscall, and is delivered,
   * as the program expects, once the task runs again with its own mask.
   */
  constructor(
    readonly pid: number,
    private readonly ptrace: Ptrace,
    /** The registers the task had when cr stopped it. */
    readonly stoppedRegs: Registers,
    /** A live program's task: where its return frame keeps the results of remote syscalls. */
    private readonly guarded?: { outArea: bigint },
    /** In a task cr made by fork inside another: the work area it inherited from it, at the same address. */
    inheritedWorkArea?: bigint,
    /**
     * In a thread cr made in the process of `lender`: the work area it uses is the lender's, in the
     * address space they share, instead of one of its own (a mapping and an unmapping fewer per
     * thread). cr works in one task at a time; before either uses the area, what the other held
     * back is sent. The lender unmaps it.
     */
    private readonly lender?: RemoteTask,
  ) {
    this.workAreaAddress = guarded ? undefined : inheritedWorkArea;
    this.maskOnRelease = ptrace.getSigmask(pid);
    ptrace.setSigmask(pid, ALL_SIGNALS);
  }

  /**
   * Seizes and stops a running program's task so that it comes back unharmed whatever happens
   * to cr, SIGKILL included: before anything runs inside it, a return frame below its stack (see
   * return-frame.ts) and registers "parked" on a `ret` into rt_sigreturn make the kernel itself
   * restore its registers, FPU state and signal mask if cr dies. No code and no mapping is added
   * to the task; results of remote syscalls land in dead stack memory past the red zone.
   */
  static seize(ptrace: Ptrace, pid: number, sameProcess: ProcessLayout = {}): RemoteTask {
    const regs = ptrace.stop(pid);
    let parked = false;
    try {
      const frame = prepareReturnFrame(ptrace, pid, regs, sameProcess);
      ptrace.setRegs(pid, { ...regs, rip: frame.sites.syscallRet + BigInt(SYSCALL_RET.length - 1), rsp: frame.stackPointer, rax: 0n, orig_rax: -1n });
      parked = true;
      ptrace.useCallSite(pid, frame.sites.syscallRet, frame.stackPointer);
      return new RemoteTask(pid, ptrace, regs, { outArea: frame.outArea });
    } catch (err) {
      if (parked) ptrace.setRegs(pid, regs);
      ptrace.detach(pid);
      throw err;
    }
  }

  /** The syscall the task was in when cr stopped it (by name, with its arguments), if any. */
  stoppedSyscall(): StoppedSyscall | undefined {
    return stoppedSyscall(this.stoppedRegs);
  }

  /** The mask the task had when cr took it over (cr blocks every signal meanwhile). */
  blockedSignals(): bigint {
    return this.maskOnRelease;
  }

  /** The mask the task runs with once released. */
  setBlockedSignals(mask: bigint): void {
    this.maskOnRelease = mask;
  }

  /**
   * The escape hatch: a syscall the layer has no method for, run inside the task (in its
   * namespaces, on its fds and memory). Arguments are integers; memory goes through `put` and
   * `read`. Returns the result; a failure throws a KernelError with the errno's name and the PID.
   */
  syscall(call: RawSyscall, args: readonly (bigint | number)[] = []): bigint {
    return this.call(call.name, call.nr, args);
  }

  /** Makes `read` in the task now (after the calls `together` held back) and returns its answer. */
  readNow<T>(read: TaskRead<T>): T {
    const at = this.scratchAt(0);
    const result = this.call(read.name, read.nr, read.args(at));
    return read.answer(result, read.outSize > 0 ? this.read(at, read.outSize) : NOTHING);
  }

  /**
   * Makes every read of `requests` in its task, all the tasks at once (Ptrace.remoteSyscallsAcross):
   * each task runs its reads in order while cr serves the others, where one by one every read is a
   * round trip of its own. Returns the answers in the order of `requests`. The bytes the kernel
   * writes for a task's reads lie side by side in its scratch area, read back in one go; reads
   * that do not fit wait for the next round. A read that fails throws a KernelError naming it and
   * its PID, once every task is back where it was; so does a task that dies meanwhile, while the
   * others are given back their registers (see `TaskReads` for a typed way to gather them).
   */
  static readAcross(requests: readonly { task: RemoteTask; read: TaskRead<unknown> }[]): unknown[] {
    const ptrace = requests[0]?.task.ptrace;
    if (!ptrace) return [];
    if (requests.some((r) => r.task.ptrace !== ptrace)) throw new Error('internal error: the tasks have different tracers');
    // Each task's reads in groups whose bytes fit its scratch area side by side: one group a round.
    const plans = new Map<RemoteTask, { groups: { read: TaskRead<unknown>; index: number; offset: number }[][]; used: number }>();
    requests.forEach(({ task, read }, index) => {
      let plan = plans.get(task);
      if (!plan) plans.set(task, (plan = { groups: [[]], used: 0 }));
      if (read.outSize > task.scratchSize()) throw new Error(`internal error: ${read.name} writes ${read.outSize} bytes, more than the scratch area holds`);
      if (plan.used + read.outSize > task.scratchSize()) {
        plan.groups.push([]);
        plan.used = 0;
      }
      plan.groups[plan.groups.length - 1]!.push({ read, index, offset: plan.used });
      plan.used += align8(read.outSize);
    });
    for (const task of plans.keys()) task.flush();
    const answers = new Array<unknown>(requests.length);
    const roundCount = Math.max(0, ...[...plans.values()].map((p) => p.groups.length));
    for (let round = 0; round < roundCount; round++) {
      const taking = [...plans].flatMap(([task, { groups }]) => (round < groups.length ? [{ task, group: groups[round]! }] : []));
      const chains = taking.map(({ task, group }) => ({ pid: task.pid, calls: group.map(({ read, offset }) => ({ nr: read.nr, args: read.args(task.scratchAt(offset)).map(u) })) }));
      const results = ptrace.remoteSyscallsAcross(chains);
      taking.forEach(({ task, group }, i) => group.forEach(({ read }, k) => checkRemote(task.pid, read.name, results[i]![k]!)));
      taking.forEach(({ task, group }, i) => {
        const written = Math.max(0, ...group.map(({ read, offset }) => offset + read.outSize));
        const bytes = written > 0 ? task.read(task.scratchAt(0), written) : NOTHING;
        group.forEach(({ read, index, offset }, k) => {
          answers[index] = read.answer(results[i]![k]!, bytes.subarray(offset, offset + read.outSize));
        });
      });
    }
    return answers;
  }

  /** Runs syscall `nr` inside the task now (after the calls `together` held back); a -errno result is thrown as a KernelError named `name`. */
  private call(name: string, nr: number, args: readonly (bigint | number)[] = []): bigint {
    this.flush();
    return this.callNow(name, nr, args);
  }

  private callNow(name: string, nr: number, args: readonly (bigint | number)[] = []): bigint {
    try {
      return checkRemote(this.pid, name, this.ptrace.remoteSyscall(this.pid, nr, args.map(u)));
    } finally {
      this.scratchUsed = 0;
    }
  }

  /**
   * Runs syscall `nr` now (after the calls held back) through Ptrace.remoteSyscallWithEvent: for a
   * clone3 that stops with a ptrace event on the way. Returns the raw result and the event's message.
   */
  callWithEvent(nr: number, args: readonly bigint[]): RemoteResult {
    this.flush();
    try {
      return this.ptrace.remoteSyscallWithEvent(this.pid, nr, args);
    } finally {
      this.scratchUsed = 0;
    }
  }

  /**
   * Runs `work`, holding back the calls it makes that answer nothing cr waits for (munmap, mmap at
   * a fixed address, mprotect, madvise, close, dup3, setting prctl options, ...) and sending them to
   * the task together: in one round trip (syscall-batch.ts) when cr next needs an answer from the
   * task, its memory or its registers, and when `work` returns. What answers cr (a descriptor
   * pulled, a value read) runs in order after them. A failed call throws then, naming the call;
   * every call of its batch has run. In a live program's task every call runs at once.
   *
   * cr's work area in the task is kept out of the way of what the calls map and unmap (moved
   * elsewhere first). The escape hatch `syscall` is not watched: it must not map over it.
   */
  together<T>(work: () => T): T {
    this.gathering++;
    let done = false;
    try {
      const result = work();
      done = true;
      return result;
    } finally {
      if (--this.gathering === 0) {
        if (done) this.flush();
        else this.queued = [];
      }
    }
  }

  /** A call whose result cr does not wait for: held back inside `together` in a task cr made, else run now. */
  private send(name: string, nr: number, args: readonly (bigint | number)[], options: Pick<QueuedCall, 'expect' | 'touches' | 'usesScratch'> = {}): void {
    if (this.gathering > 0 && !this.guarded) {
      this.queued.push({ name, nr, args: args.map(u), ...options });
      if (this.queued.length >= QUEUE_LIMIT) this.flush();
      return;
    }
    this.flush();
    this.sendNow({ name, nr, args: args.map(u), ...options });
  }

  /** Sends the calls `together` held back, if any. */
  private flush(): void {
    if (this.queued.length > 0) this.runBatch([]);
  }

  /**
   * Runs the held-back calls and then `calls` in one round trip, and returns the results of
   * `calls` (whose references to earlier results count from their own first call).
   */
  private runBatch(calls: readonly BatchedCall[]): bigint[] {
    // What was held back goes alone first where it and `calls` do not fit one table together.
    if (this.queued.length > 0 && this.queued.length + calls.length >= BATCH_CAPACITY) this.flush();
    const queued = this.queued;
    this.queued = [];
    const shift = (arg: bigint | ResultOf) => (typeof arg === 'bigint' ? arg : { resultOf: arg.resultOf + queued.length });
    const all: QueuedCall[] = [...queued, ...calls.map((c) => ({ ...c, args: c.args.map(shift) }))];
    if (all.length === 0) return [];
    if (all.length >= BATCH_CAPACITY) throw new Error(`internal error: ${all.length} calls do not fit one batch`);
    const touched = queued.flatMap((c) => c.touches ?? []);
    // The area may move out of their way, unless a call reads what was put in it.
    const area = this.workAreaIn(touched) && queued.some((c) => c.usesScratch) ? undefined : this.workAreaClearOf(touched);
    if (area === undefined) {
      // Nowhere to keep the work area out of their way (they unmap nearly everything): one by one.
      for (const c of queued) this.sendNow(c);
      return this.runBatch(calls);
    }
    const table = batchTable(all, this.pid, SYS.tkill, SIGSTOP);
    const at = area + BigInt(BATCH_TABLE_OFFSET);
    this.ptrace.writeMemory(this.pid, at, table);
    try {
      this.ptrace.runUntilSelfStop(this.pid, area + BigInt(SCRATCH_SIZE), { r12: at, r13: BigInt(all.length + 1), r14: at });
    } finally {
      this.scratchUsed = 0;
    }
    const results = batchResults(this.ptrace.readMemory(this.pid, at, table.length), all.length);
    results.forEach((result, i) => {
      const c = all[i]!;
      checkRemote(this.pid, c.name, result);
      if (c.expect !== undefined && result !== c.expect) throw unexpected(this.pid, c.name, c.expect, result);
    });
    return results.slice(queued.length);
  }

  private sendNow(c: QueuedCall): void {
    if (c.usesScratch && this.area() === undefined) throw new Error(`internal error: ${c.name} reads cr's work area, which an earlier call of its batch unmapped`);
    if (this.workAreaIn(c.touches)) (this.lender ?? this).dropWorkArea();
    const result = this.callNow(c.name, c.nr, c.args as bigint[]);
    if (c.expect !== undefined && result !== c.expect) throw unexpected(this.pid, c.name, c.expect, result);
  }

  /** The FPU, SSE and AVX state (XSAVE area), exactly as the CPU saved it. */
  xstate(): Buffer {
    this.flush();
    return this.ptrace.getXstate(this.pid);
  }

  setXstate(xstate: Buffer): void {
    this.flush();
    this.ptrace.setXstate(this.pid, xstate);
  }

  /** The signals queued for the task (or, shared, for its process), each as its raw siginfo, left queued. */
  pendingSignals(shared: boolean): Buffer[] {
    this.flush();
    return this.ptrace.peekSiginfo(this.pid, shared);
  }

  /** The rseq area the task registered, or undefined. */
  rseqConfiguration(): RseqConfiguration | undefined {
    this.flush();
    return this.ptrace.rseqConfiguration(this.pid);
  }

  /**
   * Starts clock_nanosleep(clockId, 0, request, remain) inside the task and interrupts it at once,
   * as a signal would, leaving the kernel's restart block in the task; returns the raw result,
   * normally -ERESTART_RESTARTBLOCK. The registers are NOT put back: the caller sets them next.
   */
  interruptedSleep(clockId: number, request: bigint, remain: bigint): bigint {
    this.flush();
    try {
      return this.ptrace.remoteSyscallInterrupted(this.pid, SYS.clock_nanosleep, [BigInt(clockId), 0n, request, remain]);
    } finally {
      this.scratchUsed = 0;
    }
  }

  read(address: bigint, length: number): Buffer {
    this.flush();
    return this.ptrace.readMemory(this.pid, address, length);
  }

  write(address: bigint, data: Uint8Array): void {
    this.flush();
    this.ptrace.writeMemory(this.pid, address, data);
  }

  /**
   * Copies `data` into the scratch area, after what earlier `put`s placed there for calls not made
   * yet, and returns its address in the task: a call held back (`together`) reads it when its
   * batch runs. Only where that room (below a batch's table) is used up do the calls held back
   * run first. More than that room (iovecs for a call started at once) only as the first thing
   * put since the last call.
   */
  put(data: Uint8Array): bigint {
    const room = this.guarded ? OUT_AREA_SIZE : BATCH_TABLE_OFFSET;
    let offset = align8(this.scratchUsed);
    if (offset + data.byteLength > room) {
      // Once what was held back ran, only a call about to be made may still read the room, from
      // high in it, clear of `data` at its start.
      this.flush();
      offset = 0;
    }
    if (offset + data.byteLength > (offset === 0 ? this.scratchSize() : room)) throw new Error(`internal error: ${data.byteLength} bytes do not fit the scratch area`);
    const address = this.scratch() + BigInt(offset);
    this.ptrace.writeMemory(this.pid, address, data);
    this.scratchUsed = offset + data.byteLength;
    return address;
  }

  /** How many bytes the scratch area has: in a live program's task, the return frame's out area. */
  private scratchSize(): number {
    return this.guarded ? OUT_AREA_SIZE : SCRATCH_SIZE;
  }

  /** Address of `offset` in the scratch area, for the kernel to fill. */
  scratchAt(offset: number): bigint {
    return this.scratch() + BigInt(offset);
  }

  /** Unmaps cr's work area (scratch area and batch code) in a task cr made, after the calls held back. */
  dropScratch(): void {
    this.flush();
    this.dropWorkArea();
  }

  /** Whether the mapping at `start` is cr's work area in the task, not the program's. */
  isWorkArea(start: bigint): boolean {
    return this.area() === start;
  }

  /** The work area, for a task forked inside this one to use as its own copy (see createChildSeed). */
  workAreaForChild(): bigint | undefined {
    return this.area();
  }

  /**
   * Lets the task run again with its own signal mask (see Ptrace.detach): a seized program with
   * the registers it was stopped with, a restored one with the registers it has now. The mask is
   * given back before the registers, so that the task is safe at every step (return-frame.ts).
   */
  release(): void {
    try {
      this.dropScratch();
    } finally {
      try {
        this.ptrace.setSigmask(this.pid, this.maskOnRelease);
        if (this.guarded) this.ptrace.setRegs(this.pid, this.stoppedRegs);
      } finally {
        this.ptrace.detach(this.pid);
      }
    }
  }

  kill(): void {
    this.queued = [];
    this.ptrace.kill(this.pid);
  }

  /**
   * Makes the task's first act, once let go, to end as a process whose wait status was
   * `waitStatus`: exit with its code, or die of its signal (with no core file). For a zombie
   * being restored, which its restored parent then reaps.
   */
  exitOnRelease(waitStatus: number): void {
    const signal = waitStatus & 0x7f;
    if (signal === 0) {
      this.dropScratch();
      this.ptrace.callOnRelease(this.pid, SYS.exit_group, [BigInt((waitStatus >> 8) & 0xff)]);
      return;
    }
    this.setRlimit(RLIMIT_CORE, 0n, 0n);
    this.setSignalAction(signal, { handler: 0n, flags: 0n, restorer: 0n, mask: 0n });
    this.dropScratch();
    this.maskOnRelease = 0n;
    this.ptrace.callOnRelease(this.pid, SYS.kill, [BigInt(this.pid), BigInt(signal)]);
  }

  /**
   * Makes the task's first act, once let go, to end as a thread (exit(2), not exit_group): the
   * main thread of a restored process whose main thread had exited, while its other threads run on.
   */
  exitThreadOnRelease(): void {
    this.dropScratch();
    this.ptrace.callOnRelease(this.pid, SYS.exit, [0n]);
  }

  /** wait4(2) inside the task for its child `pid`, which has exited or is about to: reaps it, returns its wait status. */
  reap(pid: number): number {
    const at = this.scratchAt(0);
    this.call(`wait4(${pid})`, SYS.wait4, [pid, at, __WALL, 0]);
    return this.read(at, 4).readInt32LE();
  }

  setRegs(regs: Registers): void {
    this.flush();
    this.ptrace.setRegs(this.pid, regs);
  }

  // --- memory ---------------------------------------------------------------------------------

  /** A new mapping where the kernel finds room; returns its address. */
  mmapAnywhere(length: bigint, prot: number, flags: number, fd = -1, offset = 0n): bigint {
    return this.call('mmap', SYS.mmap, [0, length, prot, flags, fd, offset]);
  }

  /** A mapping at exactly `address` (the caller passes MAP_FIXED or MAP_FIXED_NOREPLACE). */
  mmap(address: bigint, length: bigint, prot: number, flags: number, fd = -1, offset = 0n): void {
    this.send('mmap', SYS.mmap, [address, length, prot, flags, fd, offset], { expect: address, touches: [{ start: address, end: address + length }] });
  }

  munmap(address: bigint, length: bigint): void {
    this.send('munmap', SYS.munmap, [address, length], { touches: [{ start: address, end: address + length }] });
  }

  mprotect(address: bigint, length: bigint, prot: number): void {
    this.send('mprotect', SYS.mprotect, [address, length, prot], { touches: [{ start: address, end: address + length }] });
  }

  /** Moves a mapping to exactly `to` (MREMAP_MAYMOVE | MREMAP_FIXED); a moved vdso's syscall instruction is looked for again. */
  mremapTo(from: bigint, length: bigint, to: bigint): void {
    this.send('mremap', SYS.mremap, [from, length, length, MREMAP_MAYMOVE | MREMAP_FIXED, to], {
      expect: to,
      touches: [
        { start: from, end: from + length },
        { start: to, end: to + length },
      ],
    });
    this.ptrace.forgetSyscallSite(this.pid);
  }

  madvise(address: bigint, length: bigint, advice: number): void {
    this.send(`madvise(${advice})`, SYS.madvise, [address, length, advice]);
  }

  mlock(address: bigint, length: bigint): void {
    this.send('mlock2', SYS.mlock2, [address, length, 0]);
  }

  brk(address: bigint): bigint {
    return this.call('brk', SYS.brk, [address]);
  }

  /** Attaches SysV segment `shmid`, `length` bytes long, at exactly `address`. */
  shmat(shmid: number, address: bigint, length: bigint, flags: number): void {
    this.send(`shmat(${shmid})`, SYS.shmat, [shmid, address, flags], { expect: address, touches: [{ start: address, end: address + length }] });
  }

  // --- files ----------------------------------------------------------------------------------

  /** How many memory ranges one `startPreadv` takes: its iovecs must fit the scratch area. */
  iovecCapacity(): number {
    return Math.min(IOV_MAX, Math.floor(this.scratchSize() / structSize(iovecs(1))));
  }

  /** A pidfd of the task on itself (pidfd_open of its own PID), for calls that take one; the caller closes it. */
  ownPidfd(): number {
    return Number(this.call('pidfd_open', SYS.pidfd_open, [this.call('getpid', SYS.getpid), 0]));
  }

  /**
   * Starts faulting in `ranges` of the task's memory for writing, all in one call, and returns
   * while it runs (as startPreadv): process_madvise(2) of MADV_POPULATE_WRITE on `pidfd`, the
   * task's own (ownPidfd). Far cheaper than the page fault per page that a copy into fresh memory
   * takes otherwise. `finish` says false, with nothing done, where the kernel does not do it
   * (EINVAL: before Linux 6.13 process_madvise took only a few advice values; ENOSYS: before 5.10
   * there was no process_madvise).
   */
  startPopulateWrite(pidfd: number, ranges: readonly RemoteRange[]): RunningCall<boolean> {
    const call = this.startCall(SYS.process_madvise, [pidfd, this.putIovecs(ranges), ranges.length, MADV_POPULATE_WRITE, 0]);
    return runningCall(call, (result) => {
      if (result === -BigInt(EINVAL) || result === -BigInt(ENOSYS)) return false;
      checkRemote(this.pid, 'process_madvise(MADV_POPULATE_WRITE)', result);
      return true;
    });
  }

  /**
   * Starts preadv(2) in the task and returns while it runs (see Ptrace.startRemoteSyscall): the
   * task reads its descriptor `fd` from byte `position` on into `ranges` of its own memory, in
   * order, one copy from the page cache to where the bytes belong. Nothing else may be asked of
   * the task before `finish`, which returns how many bytes it read (fewer at the end of the file)
   * and throws a KernelError naming preadv, the errno and the PID when the call failed.
   */
  startPreadv(fd: number, ranges: readonly RemoteRange[], position: number): RunningCall<number> {
    const call = this.startCall(SYS.preadv, [fd, this.putIovecs(ranges), ranges.length, position, 0]);
    return runningCall(call, (result) => Number(checkRemote(this.pid, 'preadv', result)));
  }

  /**
   * `ranges` as struct iovecs in the scratch area, and their address there: for a call started at
   * once (startCall), so what was held back goes first, and the whole scratch area is free.
   */
  private putIovecs(ranges: readonly RemoteRange[]): bigint {
    if (ranges.length > this.iovecCapacity()) throw new Error(`internal error: ${ranges.length} iovecs, more than the ${this.iovecCapacity()} the scratch area holds`);
    this.flush();
    return this.put(encodeStruct(iovecs(ranges.length), ranges.map((r) => ({ iov_base: r.address, iov_len: r.length }))));
  }

  /** Starts syscall `nr` (Ptrace.startRemoteSyscall); nothing may be asked of the task until it is finished, so the scratch area is free again. */
  private startCall(nr: number, args: readonly (bigint | number)[]): RunningSyscall {
    this.flush();
    try {
      return this.ptrace.startRemoteSyscall(this.pid, nr, args.map(u));
    } finally {
      this.scratchUsed = 0;
    }
  }


  /**
   * Copies file descriptor `localFd` of *this* process (cr) into the task, on the lowest free
   * number there, and returns that number. The two share one open file description, as after
   * dup(): cr opens a file with the flags the task needs, and hands it over.
   */
  pullFd(localFd: number): number {
    return this.together(() => {
      const fd = this.pullFdCloseOnExec(localFd);
      this.send('fcntl(F_SETFD)', SYS.fcntl, [fd, F_SETFD, 0]);
      return fd;
    });
  }

  /**
   * Gives the task cr's descriptor `localFd` as exactly descriptor `fd` (pulled, then dup3'd onto
   * `fd`), close-on-exec or not: in a task cr made, in one round trip with the calls held back
   * (see installFds). Whatever `fd` held is closed. cr keeps its own copy: the caller closes it.
   */
  installFd(localFd: number, fd: number, closeOnExec: boolean): void {
    this.installFds([{ localFd, fd, closeOnExec }]);
  }

  /**
   * installFd of several descriptors: in a task cr made, in one round trip with the calls held
   * back (a hundred at a time). For each, whatever number the pulled copy would land on, a dup2
   * copy of a pidfd holds `fd` while the file is pulled (so that it lands elsewhere), and is gone
   * before dup3 puts the file there; dup2, unlike dup3, takes the pidfd already being `fd`.
   */
  installFds(fds: readonly { localFd: number; fd: number; closeOnExec: boolean }[]): void {
    if (this.guarded) {
      for (const { localFd, fd, closeOnExec } of fds) this.installPulled(localFd, fd, closeOnExec);
      return;
    }
    for (let at = 0; at < fds.length; at += INSTALLS_PER_BATCH) this.installBatch(fds.slice(at, at + INSTALLS_PER_BATCH));
  }

  private installBatch(fds: readonly { localFd: number; fd: number; closeOnExec: boolean }[]): void {
    this.runBatch(
      fds.flatMap(({ localFd, fd, closeOnExec }, i) => {
        const pidfd = { resultOf: 6 * i };
        const pulled = { resultOf: 6 * i + 2 };
        return [
          openPidfdOfCr(),
          { name: `dup2(${fd})`, nr: SYS.dup2, args: [pidfd, BigInt(fd)] },
          getFd(pidfd, localFd),
          { name: 'close', nr: SYS.close, args: [pidfd] },
          { name: `dup3(${fd})`, nr: SYS.dup3, args: [pulled, BigInt(fd), BigInt(closeOnExec ? O_CLOEXEC : 0)] },
          { name: 'close', nr: SYS.close, args: [pulled] },
        ];
      }),
    );
  }

  /** installFd in a live program's task, call by call: pulled, then moved onto `fd` where it landed elsewhere. */
  private installPulled(localFd: number, fd: number, closeOnExec: boolean): void {
    const pulled = this.pullFdCloseOnExec(localFd);
    if (pulled !== fd) {
      this.dup3(pulled, fd, closeOnExec ? O_CLOEXEC : 0);
      this.close(pulled);
    } else if (!closeOnExec) {
      this.send('fcntl(F_SETFD)', SYS.fcntl, [fd, F_SETFD, 0]);
    }
  }

  /**
   * cr's descriptor `localFd` in the task, close-on-exec as pidfd_getfd always makes it, for a
   * caller that closes it again or sets the flag anyway.
   */
  pullFdCloseOnExec(localFd: number): number {
    return this.pullFdsCloseOnExec([localFd])[0]!;
  }

  /**
   * pullFdCloseOnExec of several descriptors, in order. In a task cr made, pidfd_open of cr, every
   * pidfd_getfd and the close of the pidfd go in one round trip (with the calls held back).
   */
  pullFdsCloseOnExec(localFds: readonly number[]): number[] {
    if (localFds.length === 0) return [];
    if (!this.guarded) {
      const results = this.runBatch([
        openPidfdOfCr(),
        ...localFds.map((fd) => getFd({ resultOf: 0 }, fd)),
        { name: 'close', nr: SYS.close, args: [{ resultOf: 0 }] },
      ]);
      return results.slice(1, -1).map(Number);
    }
    const pidfd = Number(this.call('pidfd_open', SYS.pidfd_open, [process.pid, 0]));
    try {
      return localFds.map((fd) => Number(this.call(`pidfd_getfd(${fd})`, SYS.pidfd_getfd, [pidfd, fd, 0])));
    } finally {
      this.call('close', SYS.close, [pidfd]);
    }
  }

  /** Whether the task has descriptor `fd` open. */
  hasFd(fd: number): boolean {
    this.flush();
    return this.ptrace.remoteSyscall(this.pid, SYS.fcntl, [u(fd), u(F_GETFD)]) >= 0n;
  }

  close(fd: number): void {
    this.send('close', SYS.close, [fd]);
  }

  closeRange(first: number, last: number): void {
    this.send('close_range', SYS.close_range, [first, last, 0]);
  }

  dup3(oldFd: number, newFd: number, flags: number): void {
    this.send('dup3', SYS.dup3, [oldFd, newFd, flags]);
  }

  fcntl(fd: number, cmd: number, arg: number | bigint = 0): bigint {
    return this.call(`fcntl(${cmd})`, SYS.fcntl, [fd, cmd, arg]);
  }

  /** fcntl(F_SETFL): the status flags of the open file behind `fd`. */
  setStatusFlags(fd: number, flags: number): void {
    this.send('fcntl(F_SETFL)', SYS.fcntl, [fd, F_SETFL, flags]);
  }

  lseek(fd: number, offset: bigint, whence = 0): void {
    this.send('lseek', SYS.lseek, [fd, offset, whence]);
  }

  fchdir(fd: number): void {
    this.send('fchdir', SYS.fchdir, [fd]);
  }

  setns(fd: number, nstype: number): void {
    this.send('setns', SYS.setns, [fd, nstype]);
  }

  /** Makes the directory cr holds open as `localFd` the task's working directory (see runOnPulledFd). */
  enterDirectory(localFd: number): void {
    this.runOnPulledFd(localFd, 'fchdir', SYS.fchdir, []);
  }

  /**
   * Makes the directory cr holds open as `localFd` the task's root directory: fchdir into it,
   * then chroot("."), so that the path is never resolved from the task's root, whatever that is.
   * The working directory is left there: set it afterwards.
   */
  enterRoot(localFd: number): void {
    this.enterDirectory(localFd);
    this.send('chroot(".")', SYS.chroot, [this.put(Buffer.from('.\0'))], { usesScratch: true });
  }

  /** Moves the task into the namespace cr holds `localFd` of, of kind `nstype` (see runOnPulledFd). */
  enterNamespace(localFd: number, nstype: number): void {
    this.runOnPulledFd(localFd, 'setns', SYS.setns, [BigInt(nstype)]);
  }

  /**
   * Syscall `nr` on cr's descriptor `localFd` as the task's own (its first argument, then `args`),
   * and the task's copy closed again: in a task cr made, one round trip with the calls held back,
   * the batch passing on the number pidfd_getfd gave; in a live program's task, call by call.
   */
  private runOnPulledFd(localFd: number, name: string, nr: number, args: readonly bigint[]): void {
    if (this.guarded) {
      const fd = this.pullFdCloseOnExec(localFd);
      try {
        this.call(name, nr, [fd, ...args]);
      } finally {
        this.close(fd);
      }
      return;
    }
    this.runBatch([
      openPidfdOfCr(),
      getFd({ resultOf: 0 }, localFd),
      { name: 'close', nr: SYS.close, args: [{ resultOf: 0 }] },
      { name, nr, args: [{ resultOf: 1 }, ...args] },
      { name: 'close', nr: SYS.close, args: [{ resultOf: 1 }] },
    ]);
  }

  /**
   * epoll_ctl(EPOLL_CTL_ADD) in the task: its epoll instance `epfd` watches its descriptor `fd`
   * (an epoll item is known by the file and the number it was added with, so it is added by the
   * task's own number) for `events`, reporting `data`.
   */
  epollAdd(epfd: number, fd: number, events: number, data: bigint): void {
    const EPOLL_CTL_ADD = 1;
    this.call(`epoll_ctl(${epfd}, EPOLL_CTL_ADD, ${fd})`, SYS.epoll_ctl, [epfd, EPOLL_CTL_ADD, fd, this.put(encodeStruct(epollEvent, { events, data }))]);
  }

  // --- signals --------------------------------------------------------------------------------

  getSignalAction(signal: number): SignalAction {
    return this.readNow(TASK_READS.signalAction(signal));
  }

  setSignalAction(signal: number, action: SignalAction): void {
    this.send(`rt_sigaction(${signal})`, SYS.rt_sigaction, [signal, this.put(encodeStruct(kernelSigaction, action)), 0, 8], { usesScratch: true });
  }

  /**
   * Sets many dispositions at once: in a task cr made, held back with the calls around them (in
   * one round trip, see syscall-batch.ts); in a live program's task, one by one.
   */
  setSignalActions(actions: ReadonlyMap<number, SignalAction>): void {
    if (this.guarded) {
      for (const [signal, action] of actions) this.setSignalAction(signal, action);
      return;
    }
    const size = structSize(kernelSigaction);
    const all = [...actions];
    this.together(() => {
      // One write into the task for all of them.
      const at = this.put(Buffer.concat(all.map(([, action]) => encodeStruct(kernelSigaction, action))));
      all.forEach(([signal], i) => this.send(`rt_sigaction(${signal})`, SYS.rt_sigaction, [signal, at + BigInt(i * size), 0, 8], { usesScratch: true }));
    });
  }

  getAltStack(): AltStack {
    return this.readNow(TASK_READS.altStack());
  }

  setAltStack(stack: AltStack): void {
    this.send('sigaltstack', SYS.sigaltstack, [this.put(encodeStruct(stackT, { ss_sp: stack.sp, ss_flags: stack.flags, ss_size: stack.size })), 0], { usesScratch: true });
  }

  /**
   * Sets the mm bounds, auxv and exe link at once (PR_SET_MM_MAP), held back inside `together`:
   * the auxv goes into the scratch area, then the struct that points at it.
   */
  setMmMap(map: MmMap): void {
    const struct = mmMapStruct(map, this.put(map.auxv));
    this.send('prctl(PR_SET_MM, PR_SET_MM_MAP)', SYS.prctl, [PR_SET_MM, PR_SET_MM_MAP, this.put(struct), struct.length], { usesScratch: true });
  }

  /** Queues a signal with its full siginfo, on the process (shared) or on this thread. */
  queueSignal(siginfo: Buffer, shared: boolean): void {
    const signal = siginfo.readInt32LE(0);
    const at = this.put(siginfo);
    if (shared) this.call(`rt_sigqueueinfo(${signal})`, SYS.rt_sigqueueinfo, [this.pid, signal, at]);
    else this.call(`rt_tgsigqueueinfo(${signal})`, SYS.rt_tgsigqueueinfo, [this.call('getpid', SYS.getpid), this.pid, signal, at]);
  }

  // --- thread state ---------------------------------------------------------------------------

  /** Where the kernel clears the thread id and wakes a futex when this thread exits (PR_GET_TID_ADDRESS). */
  tidAddress(): bigint {
    return this.readNow(TASK_READS.tidAddress());
  }

  setTidAddress(address: bigint): void {
    this.send('set_tid_address', SYS.set_tid_address, [address]);
  }

  /** Registers the thread's robust futex list (set_robust_list(2)); `length` is the size of its head. */
  setRobustList(head: bigint, length: bigint): void {
    this.send('set_robust_list', SYS.set_robust_list, [head, length]);
  }

  // --- process state --------------------------------------------------------------------------

  prctl(name: string, option: number, ...args: (bigint | number)[]): bigint {
    return this.call(name, SYS.prctl, [option, ...args]);
  }

  /**
   * A prctl that sets an option and whose result cr does not need: held back inside `together`.
   * Integer arguments only: a call held back may run after cr's work area moved (setName is the
   * one that points into it).
   */
  setPrctl(name: string, option: number, ...args: (bigint | number)[]): void {
    this.send(name, SYS.prctl, [option, ...args]);
  }

  /** The thread's name (PR_SET_NAME), 15 bytes at most; held back inside `together`. */
  setName(comm: string): void {
    this.send('prctl(PR_SET_NAME)', SYS.prctl, [PR_SET_NAME, this.put(Buffer.from(`${comm}\0`))], { usesScratch: true });
  }

  /** prctl that reports through an int the kernel writes (PR_GET_PDEATHSIG). */
  prctlGetInt(name: string, option: number): number {
    return this.readNow(TASK_READS.prctlInt(name, option));
  }

  setRlimit(resource: number, soft: bigint, hard: bigint): void {
    this.send(`prlimit64(${resource})`, SYS.prlimit64, [0, resource, this.put(encodeStruct(rlimit64, { rlim_cur: soft, rlim_max: hard })), 0], { usesScratch: true });
  }

  getRlimit(resource: number): { soft: bigint; hard: bigint } {
    return this.readNow(TASK_READS.rlimit(resource));
  }

  /** getitimer(2): the interval and the time left of one interval timer, in microseconds. */
  getItimer(which: number): ItimerValue {
    return this.readNow(TASK_READS.itimer(which));
  }

  setItimer(which: number, timer: ItimerValue): void {
    const tv = (us: bigint): Timeval => ({ tv_sec: us / 1_000_000n, tv_usec: us % 1_000_000n });
    const b = encodeStruct(itimerval, { it_interval: tv(timer.intervalUs), it_value: tv(timer.valueUs) });
    this.send(`setitimer(${which})`, SYS.setitimer, [which, this.put(b), 0], { usesScratch: true });
  }

  /** timer_gettime(2) of the task's POSIX timer `id`: the time to its next expiry and its interval, in nanoseconds. */
  timerGettime(id: number): PosixTimerSetting {
    return this.readNow(TASK_READS.timerSetting(id));
  }

  /** timer_getoverrun(2): the expirations of timer `id` its last signal stood for, beyond the one. */
  timerGetoverrun(id: number): number {
    return this.readNow(TASK_READS.timerOverrun(id));
  }

  /**
   * timer_create(2) of a timer with exactly id `id` (the task must have PR_TIMER_CREATE_RESTORE_IDS
   * on), notifying as `notification` says.
   */
  timerCreate(id: number, clockId: number, notification: PosixTimerNotification): void {
    const event = encodeStruct(sigevent, {
      sigev_value: notification.value,
      sigev_signo: notification.signal,
      sigev_notify: notification.notify,
      sigev_notify_thread_id: notification.tid,
      pad: new Array(11).fill(0),
    });
    const eventAt = this.put(event);
    const idAt = this.put(new Uint8Array(new Int32Array([id]).buffer));
    this.call(`timer_create(${id})`, SYS.timer_create, [clockId, eventAt, idAt]);
    const created = this.read(idAt, 4).readInt32LE();
    if (created !== id) throw new KernelError('timer_create', 17, `in PID ${this.pid}`, `created timer ${created} instead of ${id}`);
  }

  /** timer_settime(2), relative: timer `id` expires after `valueNs`, then every `intervalNs` (0: once). */
  timerSettime(id: number, setting: PosixTimerSetting): void {
    const spec = (ns: bigint) => ({ tv_sec: ns / 1_000_000_000n, tv_nsec: ns % 1_000_000_000n });
    this.call(`timer_settime(${id})`, SYS.timer_settime, [id, 0, this.put(encodeStruct(itimerspec, { it_interval: spec(setting.intervalNs), it_value: spec(setting.valueNs) })), 0]);
  }

  /** setpriority(PRIO_PROCESS, self, nice). */
  setNice(nice: number): void {
    this.send('setpriority', SYS.setpriority, [0, 0, BigInt.asUintN(64, BigInt(nice))]);
  }

  setScheduler(policy: number, priority: number): void {
    const b = Buffer.alloc(4);
    b.writeInt32LE(priority);
    this.send('sched_setscheduler', SYS.sched_setscheduler, [0, policy, this.put(b)], { usesScratch: true });
  }

  /** sched_setaffinity(2) with a CPU mask, lowest CPU in the lowest bit of the first byte. */
  setAffinity(mask: Buffer): void {
    this.send('sched_setaffinity', SYS.sched_setaffinity, [0, mask.length, this.put(mask)], { usesScratch: true });
  }

  umask(mask: number): void {
    this.send('umask', SYS.umask, [mask]);
  }

  personality(value: number): void {
    this.send('personality', SYS.personality, [value]);
  }

  setsid(): void {
    this.send('setsid', SYS.setsid, []);
  }

  setpgid(pgid: number): void {
    this.send('setpgid', SYS.setpgid, [0, pgid]);
  }

  setGroups(groups: readonly number[]): void {
    const b = Buffer.alloc(Math.max(4, groups.length * 4));
    groups.forEach((g, i) => b.writeUInt32LE(g, i * 4));
    this.send('setgroups', SYS.setgroups, [groups.length, this.put(b)], { usesScratch: true });
  }

  setresgid(real: number, effective: number, saved: number): void {
    this.send('setresgid', SYS.setresgid, [real, effective, saved]);
  }

  setresuid(real: number, effective: number, saved: number): void {
    this.send('setresuid', SYS.setresuid, [real, effective, saved]);
  }

  /** capset(2) with version 3 (64-bit sets): effective, permitted, inheritable. */
  capset(effective: bigint, permitted: bigint, inheritable: bigint): void {
    const header = encodeStruct(capUserHeader, { version: _LINUX_CAPABILITY_VERSION_3, pid: 0 });
    const half = (shift: bigint) => ({
      effective: Number((effective >> shift) & 0xffffffffn),
      permitted: Number((permitted >> shift) & 0xffffffffn),
      inheritable: Number((inheritable >> shift) & 0xffffffffn),
    });
    const data = encodeStruct(capUserData, [half(0n), half(32n)]);
    this.send('capset', SYS.capset, [this.put(header), this.put(data)], { usesScratch: true });
  }

  /** The signal job control had stopped the task with when cr seized it (SIGSTOP, SIGTSTP …); undefined if it was running. */
  get jobControlStop(): number | undefined {
    return this.ptrace.jobControlStop(this.pid);
  }

  /**
   * Makes the process stop by job control as soon as cr lets it go, as it was when it was saved:
   * with SIGSTOP, whatever stopped it then, since the kernel discards SIGTSTP, SIGTTIN and SIGTTOU
   * sent to an orphaned process group, which a restored process's often is.
   */
  stopOnRelease(): void {
    this.ptrace.signalProcess(this.pid, SIGSTOP);
  }

  /** The thread's `count` seccomp filters (Seccomp_filters of its status), oldest first (Ptrace.seccompFilters). */
  seccompFilters(count: number): SeccompFilter[] {
    return this.ptrace.seccompFilters(this.pid, count);
  }

  /**
   * Puts `filter` over the thread's seccomp filters (seccomp(SECCOMP_SET_MODE_FILTER)): it judges
   * the program's calls once cr lets the thread go, cr's own calls until then pass
   * (PTRACE_O_SUSPEND_SECCOMP). Threads it makes after this inherit the filter, as they would
   * have from the program. Needs CAP_SYS_ADMIN in the task or no_new_privs: give it before the
   * credentials.
   */
  installSeccompFilter(filter: SeccompFilter): void {
    this.suspendOwnSeccomp();
    // One put for the program and its sock_fprog after it: a program too large for the room
    // left would otherwise be moved to the start of the scratch area over the other.
    const program = this.put(Buffer.concat([filter.program, Buffer.alloc(structSize(sockFprog))]));
    const fprog = program + BigInt(filter.program.length);
    this.ptrace.writeMemory(this.pid, fprog, encodeStruct(sockFprog, { len: filter.program.length / SOCK_FILTER_SIZE, filter: program }));
    this.send('seccomp(SECCOMP_SET_MODE_FILTER)', SYS.seccomp, [SECCOMP_SET_MODE_FILTER, filter.log ? SECCOMP_FILTER_FLAG_LOG : 0, fprog], { usesScratch: true });
  }

  /** Puts the thread in seccomp's strict mode (read, write, exit and sigreturn only) once cr lets it go; see installSeccompFilter. */
  enterSeccompStrict(): void {
    this.suspendOwnSeccomp();
    this.send('seccomp(SECCOMP_SET_MODE_STRICT)', SYS.seccomp, [SECCOMP_SET_MODE_STRICT, 0, 0]);
  }

  /** A seized program's task is suspended from its stop on (Ptrace.stop); one cr made, before it gets a mode. */
  private suspendOwnSeccomp(): void {
    if (this.guarded || this.seccompSuspended) return;
    this.ptrace.suspendSeccomp(this.pid, SEED_OPTIONS);
    this.seccompSuspended = true;
  }

  registerRseq(address: bigint, size: number, signature: number): void {
    this.send('rseq', SYS.rseq, [address, size, 0, signature]);
  }

  unregisterRseq(address: bigint, size: number, signature: number): void {
    this.send('rseq(RSEQ_FLAG_UNREGISTER)', SYS.rseq, [address, size, RSEQ_FLAG_UNREGISTER, signature]);
  }

  private scratch(): bigint {
    return this.guarded?.outArea ?? this.workArea();
  }

  /**
   * cr's work area in a task cr made, mapped where the kernel finds room if it is not there yet:
   * the scratch area, then the batch code (readable, writable and executable: one mapping).
   */
  private workArea(): bigint {
    if (this.guarded) throw new Error('internal error: cr maps no work area into a live program');
    return (this.lender ?? this).areaFor(this);
  }

  /** The work area of this task (the lender) for `user`, itself or a borrower, once what anyone else held back that may read it is sent. */
  private areaFor(user: RemoteTask): bigint {
    if (user !== this) this.flush();
    if (this.borrower !== undefined && this.borrower !== user) this.borrower.flush();
    this.borrower = user === this ? undefined : user;
    if (this.workAreaAddress === undefined) {
      const at = this.callNow('mmap', SYS.mmap, [0, WORK_AREA_SIZE, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0]);
      this.ptrace.writeMemory(this.pid, at + BigInt(SCRATCH_SIZE), BATCH_CODE);
      this.workAreaAddress = at;
    }
    return this.workAreaAddress;
  }

  /** Where the work area is, if it is mapped: the lender's for a borrower. */
  private area(): bigint | undefined {
    return this.lender ? this.lender.workAreaAddress : this.workAreaAddress;
  }

  private workAreaIn(ranges: readonly AddressRange[] | undefined): boolean {
    const at = this.area();
    return at !== undefined && (ranges ?? []).some((r) => overlaps(r, { start: at, end: at + WORK_AREA_SIZE }));
  }

  /** Unmaps the work area; a borrower leaves it to its lender. */
  private dropWorkArea(): void {
    const at = this.workAreaAddress;
    if (this.lender || at === undefined) return;
    this.borrower?.flush();
    this.borrower = undefined;
    this.workAreaAddress = undefined;
    this.callNow('munmap', SYS.munmap, [at, WORK_AREA_SIZE]);
  }

  /**
   * The work area, mapped and moved (mremap) if need be to where none of `ranges` reaches and
   * nothing is mapped now; undefined if there is no such place.
   */
  private workAreaClearOf(ranges: readonly AddressRange[]): bigint | undefined {
    const at = this.workArea();
    if (!this.workAreaIn(ranges)) return at;
    // A borrower does not move its lender's area under it.
    if (this.lender) return undefined;
    const busy = [...readMappings(this.pid).map((m) => ({ start: m.start, end: m.end })), ...ranges];
    const to = placeBetween(busy, WORK_AREA_SIZE);
    if (to === undefined) return undefined;
    this.callNow('mremap', SYS.mremap, [at, WORK_AREA_SIZE, WORK_AREA_SIZE, MREMAP_MAYMOVE | MREMAP_FIXED, to]);
    this.workAreaAddress = to;
    return to;
  }
}

/**
 * Where `size` bytes fit with WORK_AREA_MARGIN free on both sides, none of `busy` touched, between
 * 4 GiB and the end of user space: the highest such place, or undefined.
 */
function placeBetween(busy: readonly AddressRange[], size: bigint): bigint | undefined {
  const merged: AddressRange[] = [];
  for (const r of [...busy].sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0))) {
    const last = merged[merged.length - 1];
    if (last && r.start <= last.end) last.end = r.end > last.end ? r.end : last.end;
    else merged.push({ ...r });
  }
  let above = TASK_SIZE;
  for (let i = merged.length - 1; i >= -1; i--) {
    const end = i >= 0 ? merged[i]!.end : 0n;
    const below = end > WORK_AREA_LOWEST ? end : WORK_AREA_LOWEST;
    if (above > below && above - below >= size + 2n * WORK_AREA_MARGIN) return above - WORK_AREA_MARGIN - size;
    if (i >= 0 && merged[i]!.start < above) above = merged[i]!.start;
    if (above <= WORK_AREA_LOWEST) return undefined;
  }
  return undefined;
}

/** A call held back that did not return what it had to (an mmap placed elsewhere). */
function unexpected(pid: number, name: string, expected: bigint, result: bigint): KernelError {
  return new KernelError(name, 17, `in PID ${pid}`, `returned 0x${result.toString(16)} instead of 0x${expected.toString(16)}`);
}

/**
 * Writes a return frame for a stopped task below its stack pointer, after checking that the task
 * has the code to run from, a stack with room for the frame, and no shadow stack. Nothing is
 * changed in the task when a check fails.
 */
function prepareReturnFrame(ptrace: Ptrace, pid: number, regs: Registers, layout: ProcessLayout): ReturnFrame & { sites: CodeSites } {
  if (SHADOW_STACK.test(readFileSync(`/proc/${pid}/status`, 'utf8'))) {
    throw new UnsupportedError(`PID ${pid} runs with a CET shadow stack, under which cr cannot run code in it safely`);
  }
  const known = layout.mappings !== undefined;
  layout.mappings ??= readMappings(pid);
  layout.sites ??= findCodeSites(layout.mappings, (start, length) => ptrace.readMemory(pid, start, length));
  const sites = layout.sites;
  if (!sites) {
    throw new UnsupportedError(`PID ${pid} maps no "syscall; ret" and no rt_sigreturn code (no libc or dynamic loader), which cr needs to run code in it safely`);
  }
  const frame = buildReturnFrame(pid, regs, ptrace.getSigmask(pid), ptrace.getXstate(pid), sites.sigreturn);
  const stackOf = (mappings: readonly Mapping[]) => mappings.find((v) => v.start <= regs.rsp - 1n && regs.rsp - 1n < v.end);
  const fits = (v: Mapping | undefined) => v !== undefined && frame.lowest >= v.start && (v.prot & 3) === 3;
  let stack = stackOf(layout.mappings);
  // Another thread, still running, may have mapped this one's stack since the mappings were read.
  if (known && !fits(stack)) stack = stackOf((layout.mappings = readMappings(pid)));
  if (!fits(stack)) {
    throw new TargetError(`PID ${pid}: its stack pointer 0x${regs.rsp.toString(16)} leaves no ${frame.bytes.length} writable bytes below it for cr's return frame`);
  }
  ptrace.writeMemory(pid, frame.lowest, frame.bytes);
  return { ...frame, sites };
}
