import { closeSync, openSync, readFileSync, readSync, writeSync } from 'node:fs';
import { TargetError, UnsupportedError } from '../errors.js';
import { KernelError } from './kernel-error.js';
import { Libc, WNOHANG, __WALL } from './libc.js';
import { Procfs, threadIds } from './procfs.js';
import { decodeStruct, encodeStruct, peeksiginfoArgs, rseqConfiguration, seccompMetadata, structSize, u64 } from './structs.js';
import { SECCOMP_FILTER_FLAG_LOG, SIGSTOP } from './syscalls.js';

const PTRACE_CONT = 7;
const PTRACE_GETREGS = 12;
const PTRACE_SETREGS = 13;
export const PTRACE_DETACH = 17;
const PTRACE_SYSCALL = 24;
const PTRACE_GETEVENTMSG = 0x4201;
const PTRACE_GETREGSET = 0x4204;
const PTRACE_SETREGSET = 0x4205;
export const PTRACE_SEIZE = 0x4206;
export const PTRACE_INTERRUPT = 0x4207;
const PTRACE_PEEKSIGINFO = 0x4209;
const PTRACE_GETSIGMASK = 0x420a;
const PTRACE_SETSIGMASK = 0x420b;
const PTRACE_SECCOMP_GET_FILTER = 0x420c;
const PTRACE_SECCOMP_GET_METADATA = 0x420d;
const PTRACE_GET_RSEQ_CONFIGURATION = 0x420f;
const PTRACE_PEEKSIGINFO_SHARED = 1;
const NT_X86_XSTATE = 0x202;
/** Large enough for every xstate layout x86_64 CPUs have today (AMX included). */
const XSTATE_MAX = 16384;
const SIGINFO_SIZE = 128;
/** How long cr waits for a task to stop before it gives up on it. */
const STOP_TIMEOUT_MS = 10_000;
/** Polls of waitpid before the wait starts to sleep between polls: a few hundred microseconds. */
const SPIN_ROUNDS = 300;
/** How often the end of a long remote syscall (startRemoteSyscall), or a stop not seen while spinning, is looked for. */
const LONG_CALL_POLL_MS = 0.1;
/** Atomics.wait on this is a synchronous sleep: ptrace must stay on the JS thread. */
const SLEEPER = new Int32Array(new SharedArrayBuffer(4));

const PTRACE_SETOPTIONS = 0x4200;
export const PTRACE_O_TRACESYSGOOD = 1;
export const PTRACE_O_TRACEFORK = 2;
export const PTRACE_O_TRACECLONE = 8;
/** The kernel kills the tracee when its tracer dies: for tasks cr creates at restore. */
export const PTRACE_O_EXITKILL = 0x100000;
/** What a task cr makes for a restore is traced with: its threads and children are attached from their start, and die with cr. */
export const SEED_OPTIONS = PTRACE_O_TRACESYSGOOD | PTRACE_O_TRACECLONE | PTRACE_O_TRACEFORK | PTRACE_O_EXITKILL;
/** The task's seccomp filters or strict mode do not apply while cr traces it (needs CAP_SYS_ADMIN, and a cr not under seccomp itself). */
export const PTRACE_O_SUSPEND_SECCOMP = 0x200000;
const SIGTRAP = 5;
/** The signals that stop a process (SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU). */
const STOP_SIGNALS = new Set([19, 20, 21, 22]);
/** The ptrace event of a group-stop or an interrupt of a seized task. */
const PTRACE_EVENT_STOP = 128;
const SYSCALL_STOP = SIGTRAP | 0x80;

/** x86_64 struct user_regs_struct, in order (the tasks record names them too). */
export const REGISTER_NAMES = [
  'r15', 'r14', 'r13', 'r12', 'rbp', 'rbx', 'r11', 'r10', 'r9', 'r8', 'rax', 'rcx', 'rdx', 'rsi', 'rdi',
  'orig_rax', 'rip', 'cs', 'eflags', 'rsp', 'ss', 'fs_base', 'gs_base', 'ds', 'es', 'fs', 'gs',
] as const;
export type RegisterName = (typeof REGISTER_NAMES)[number];
/** General registers as unsigned 64-bit values. */
export type Registers = Record<RegisterName, bigint>;
const REGS_SIZE = REGISTER_NAMES.length * 8;
/** Where each register is in struct user_regs_struct. */
const REG = Object.fromEntries(REGISTER_NAMES.map((name, i) => [name, i * 8])) as Record<RegisterName, number>;

/** The rseq area a task registered (PTRACE_GET_RSEQ_CONFIGURATION). */
export interface RseqConfiguration {
  address: bigint;
  size: number;
  signature: number;
  flags: number;
}

/** What a remote syscall returned, and the event message if it created a task (clone3). */
export interface RemoteResult {
  value: bigint;
  eventMessage?: number;
}

/** A remote syscall the task is running (Ptrace.startRemoteSyscall). */
export interface RunningSyscall {
  /** Waits for the call to end and returns its raw result (a negative errno on failure). */
  finish(): bigint;
  /** The raw result if the call has ended (then as `finish`), undefined while it runs: a look, no wait. */
  poll(): bigint | undefined;
}

/** One task's remote syscalls for Ptrace.remoteSyscallsAcross, made in order. */
export interface SyscallChain {
  pid: number;
  calls: readonly { nr: number; args: readonly bigint[] }[];
}

/**
 * A chain under way: the registers to give back, and where the task is. `parked`: stopped with no
 * call of cr's under way (before the first, at the exit stop of the last); `entering`: heading for
 * its syscall-entry stop; `exiting`: moved on from it, heading for the exit stop.
 */
interface ChainState extends SyscallChain {
  saved: Buffer;
  stage: 'parked' | 'entering' | 'exiting';
  results: bigint[];
}

const unsigned = (v: bigint) => BigInt.asUintN(64, v);

/** Bytes of one classic BPF instruction (struct sock_filter). */
export const SOCK_FILTER_SIZE = 8;

/** One seccomp filter of a thread, as installed (see Ptrace.seccompFilters). */
export interface SeccompFilter {
  program: Buffer;
  log: boolean;
}

/**
 * ptrace, as cr uses it: seize and stop a task without a signal it could see, read and write
 * its registers and memory, and run syscalls inside it ("remote syscalls").
 *
 * Ptrace belongs to the *thread* that attached: call every method from the JS thread, and only
 * on tasks that libuv did not spawn (it would reap their stops otherwise).
 */
export class Ptrace {
  private readonly syscallSites = new Map<number, bigint>();
  /** The stop signal of each task seized in a job-control stop (see leaveJobControlStop). */
  private readonly jobControlStops = new Map<number, number>();
  /** The stack pointer remote syscalls run with, for tasks that have a return frame (see useCallSite). */
  private readonly callStacks = new Map<number, bigint>();
  /** /proc/PID/mem of each task cr holds, opened once: a checkpoint reads it dozens of times. */
  private readonly memFds = new Map<number, number>();

  constructor(private readonly libc: Libc) {}

  /**
   * Seizes and stops `pid` without a signal it could see, and returns its registers. A task
   * stopped inside a blocking syscall shows orig_rax = the syscall and rax = -ERESTART*: the
   * kernel decides on the way back to user space whether it restarts or fails with EINTR.
   */
  stop(pid: number, options = PTRACE_O_TRACESYSGOOD): Registers {
    this.libc.ptrace(PTRACE_SEIZE, pid, 0, options, 'ptrace(PTRACE_SEIZE)');
    try {
      this.libc.ptrace(PTRACE_INTERRUPT, pid, 0, 0, 'ptrace(PTRACE_INTERRUPT)');
      const stopSignal = this.leaveJobControlStop(pid, this.waitStop(pid));
      if (stopSignal !== undefined) this.jobControlStops.set(pid, stopSignal);
      // Stopped, it cannot turn seccomp on any more; until cr lets it go, its filters must not judge cr's calls in it.
      if (new Procfs().status(pid).seccomp !== 0) this.suspendSeccomp(pid, options);
      return this.getRegs(pid);
    } catch (err) {
      this.detachQuietly(pid);
      throw err;
    }
  }

  /**
   * Sets `options` and PTRACE_O_SUSPEND_SECCOMP on a task cr traces: its seccomp mode and filters
   * stay, and apply again once cr lets it go (or dies). The kernel allows it only to a tracer with
   * CAP_SYS_ADMIN that is not under seccomp itself.
   */
  suspendSeccomp(pid: number, options: number): void {
    try {
      this.setOptions(pid, options | PTRACE_O_SUSPEND_SECCOMP);
    } catch (err) {
      if (!(err instanceof KernelError) || err.code !== 'EPERM') throw err;
      throw new UnsupportedError(
        `PID ${pid} runs under seccomp, and the kernel does not let cr suspend it while cr works in the process (ptrace(PTRACE_O_SUSPEND_SECCOMP): EPERM): run cr as root with CAP_SYS_ADMIN, outside any seccomp sandbox`,
      );
    }
  }

  /**
   * A task stopped by job control (SIGSTOP, Ctrl-Z's SIGTSTP …: state T) reports that stop first,
   * and a stop signal about to be delivered is reported before it takes effect: such a task is let
   * run on, still traced (the signal delivered as it would have been), and traps at once on cr's
   * interrupt, so that cr can run calls in it. It is stopped again the moment cr lets it go, or
   * dies: the kernel puts a detached tracee of a stopped process back into the stop. Returns the
   * stop signal; undefined for a task that was not stopping.
   */
  private leaveJobControlStop(pid: number, status: number): number | undefined {
    let stopSignal: number | undefined;
    for (let reported = status; ; reported = this.waitStop(pid)) {
      const signal = (reported >> 8) & 0xff;
      const event = reported >> 16;
      if (!STOP_SIGNALS.has(signal) || (event !== 0 && event !== PTRACE_EVENT_STOP)) return stopSignal;
      if (event === 0) {
        // Delivered as it would have been: it stops the process, or is discarded (a terminal stop signal in an orphaned group).
        this.libc.ptrace(PTRACE_CONT, pid, 0, signal, 'ptrace(PTRACE_CONT)');
        continue;
      }
      // Once let run on from the stop, the next is cr's interrupt, which the kernel reports with the stop signal while the process is stopped.
      if (stopSignal !== undefined) return stopSignal;
      stopSignal = signal;
      this.libc.ptrace(PTRACE_CONT, pid, 0, 0, 'ptrace(PTRACE_CONT)');
    }
  }

  /** Sends `signal` to process `pid` (kill(2)): for a task cr holds, it is taken once cr lets the task go. */
  signalProcess(pid: number, signal: number): void {
    this.libc.kill(pid, signal);
  }

  /** The signal that stopped a task cr seized while job control had it stopped (see leaveJobControlStop); undefined for any other. */
  jobControlStop(pid: number): number | undefined {
    return this.jobControlStops.get(pid);
  }

  /** Sets the ptrace options of a task cr traces (PTRACE_O_*). */
  setOptions(pid: number, options: number): void {
    this.libc.ptrace(PTRACE_SETOPTIONS, pid, 0, options, 'ptrace(PTRACE_SETOPTIONS)');
  }

  /**
   * Points the stopped task at syscall `nr` with `args`, to be made when it next runs (when cr
   * lets it go): for a task whose last act is that call (a restored zombie's exit).
   */
  callOnRelease(pid: number, nr: number, args: readonly bigint[]): void {
    this.enterRemote(pid, this.rawRegs(pid), nr, args);
  }

  /** Waits for the first stop of a task that was attached automatically (PTRACE_O_TRACECLONE). */
  waitNewChild(pid: number): void {
    this.waitStop(pid);
  }

  /**
   * Lets a stopped task go with the registers it has now. The interrupt first marks a signal as
   * pending, so that on its way out the kernel runs its own syscall-restart logic on those
   * registers: an interrupted pause() or read() restarts, or returns EINTR if a handler ran in
   * between, exactly as without cr. (Rewriting the registers to restart unconditionally loses
   * a signal that arrives between the release and the restart.)
   */
  detach(pid: number): void {
    this.libc.ptrace(PTRACE_INTERRUPT, pid, 0, 0, 'ptrace(PTRACE_INTERRUPT)');
    this.libc.ptrace(PTRACE_DETACH, pid, 0, 0, 'ptrace(PTRACE_DETACH)');
    this.forget(pid);
  }

  /**
   * Kills a traced process, every thread of it, and waits until the kernel reports each thread
   * cr traces gone. The other threads come first: the kernel reports a leader's death only once
   * its other threads are reaped, and a traced thread waits for its tracer to reap it.
   */
  kill(pid: number): void {
    const tids = threadIds(pid).reverse();
    for (const tid of tids) this.forget(tid);
    try {
      this.libc.kill(pid, 9);
    } catch {
      return;
    }
    for (const tid of tids) this.reapKilled(tid);
  }

  private reapKilled(tid: number): void {
    try {
      for (;;) {
        const { status } = this.libc.waitpid(tid, __WALL);
        if ((status & 0x7f) !== 0x7f) return;
        // A stop reported before the kill took effect: let it go on to die.
        this.libc.ptrace(PTRACE_CONT, tid, 0, 0, 'ptrace(PTRACE_CONT)');
      }
    } catch {
      // Not ours to wait for (not traced by cr, or already reaped): it is gone either way.
    }
  }

  getRegs(pid: number): Registers {
    const buf = this.rawRegs(pid);
    return Object.fromEntries(REGISTER_NAMES.map((name, i) => [name, buf.readBigUInt64LE(i * 8)])) as Registers;
  }

  setRegs(pid: number, regs: Registers): void {
    const buf = Buffer.alloc(REGS_SIZE);
    REGISTER_NAMES.forEach((name, i) => buf.writeBigUInt64LE(unsigned(regs[name]), i * 8));
    this.setRawRegs(pid, buf);
  }

  /**
   * struct user_regs_struct as the kernel gives it: remote syscalls save, change and put back a
   * few words of it, without turning all 27 into BigInts and back (most of a call's own cost).
   */
  private rawRegs(pid: number): Buffer {
    const buf = Buffer.alloc(REGS_SIZE);
    this.libc.ptrace(PTRACE_GETREGS, pid, 0, buf, 'ptrace(PTRACE_GETREGS)');
    return buf;
  }

  private setRawRegs(pid: number, buf: Buffer): void {
    this.libc.ptrace(PTRACE_SETREGS, pid, 0, buf, 'ptrace(PTRACE_SETREGS)');
  }

  /** The FPU, SSE and AVX state (XSAVE area) of a stopped task, exactly as the CPU saved it. */
  getXstate(pid: number): Buffer {
    const buf = Buffer.alloc(XSTATE_MAX);
    const used = this.libc.ptraceIov(PTRACE_GETREGSET, pid, NT_X86_XSTATE, buf, 'ptrace(PTRACE_GETREGSET, NT_X86_XSTATE)');
    return buf.subarray(0, used);
  }

  setXstate(pid: number, xstate: Buffer): void {
    this.libc.ptraceIov(PTRACE_SETREGSET, pid, NT_X86_XSTATE, xstate, 'ptrace(PTRACE_SETREGSET, NT_X86_XSTATE)');
  }

  /**
   * The signals queued for a stopped task, each as its raw 128-byte siginfo, without removing
   * them: the thread's own queue, or (shared) the process-wide one.
   */
  peekSiginfo(pid: number, shared: boolean): Buffer[] {
    const found: Buffer[] = [];
    const batch = 32;
    for (;;) {
      const args = encodeStruct(peeksiginfoArgs, { off: found.length, flags: shared ? PTRACE_PEEKSIGINFO_SHARED : 0, nr: batch });
      const buf = Buffer.alloc(batch * SIGINFO_SIZE);
      const n = this.libc.ptrace(PTRACE_PEEKSIGINFO, pid, args, buf, 'ptrace(PTRACE_PEEKSIGINFO)');
      for (let i = 0; i < n; i++) found.push(Buffer.from(buf.subarray(i * SIGINFO_SIZE, (i + 1) * SIGINFO_SIZE)));
      if (n < batch) return found;
    }
  }

  /** The task's blocked-signal mask. */
  getSigmask(pid: number): bigint {
    const buf = Buffer.alloc(8);
    this.libc.ptrace(PTRACE_GETSIGMASK, pid, 8, buf, 'ptrace(PTRACE_GETSIGMASK)');
    return buf.readBigUInt64LE();
  }

  /** Sets the blocked-signal mask of a stopped task without it running: nothing is delivered now. */
  setSigmask(pid: number, mask: bigint): void {
    const buf = Buffer.alloc(8);
    buf.writeBigUInt64LE(mask);
    this.libc.ptrace(PTRACE_SETSIGMASK, pid, 8, buf, 'ptrace(PTRACE_SETSIGMASK)');
  }

  /** The rseq area registered by the task, or undefined if it registered none. */
  rseqConfiguration(pid: number): RseqConfiguration | undefined {
    const buf = Buffer.alloc(structSize(rseqConfiguration));
    this.libc.ptrace(PTRACE_GET_RSEQ_CONFIGURATION, pid, buf.length, buf, 'ptrace(PTRACE_GET_RSEQ_CONFIGURATION)');
    const c = decodeStruct<{ rseq_abi_pointer: number | bigint; rseq_abi_size: number; signature: number; flags: number }>(buf, rseqConfiguration);
    const address = u64(c.rseq_abi_pointer);
    if (address === 0n) return undefined;
    return { address, size: c.rseq_abi_size, signature: c.signature, flags: c.flags };
  }

  /**
   * The seccomp filters of stopped thread `tid`, `count` of them (Seccomp_filters of its status),
   * oldest first: each as the classic BPF program it was installed with (struct sock_filter
   * array), and whether it logs its actions (SECCOMP_FILTER_FLAG_LOG). The kernel counts them
   * from the oldest: PTRACE_SECCOMP_GET_FILTER with 0 gives the first one installed.
   */
  seccompFilters(tid: number, count: number): SeccompFilter[] {
    return Array.from({ length: count }, (_, index) => {
      const instructions = this.libc.ptrace(PTRACE_SECCOMP_GET_FILTER, tid, index, 0, `ptrace(PTRACE_SECCOMP_GET_FILTER, ${index})`);
      const program = Buffer.alloc(instructions * SOCK_FILTER_SIZE);
      this.libc.ptrace(PTRACE_SECCOMP_GET_FILTER, tid, index, program, `ptrace(PTRACE_SECCOMP_GET_FILTER, ${index})`);
      const metadata = encodeStruct(seccompMetadata, { filter_off: index, flags: 0 });
      this.libc.ptrace(PTRACE_SECCOMP_GET_METADATA, tid, metadata.length, metadata, `ptrace(PTRACE_SECCOMP_GET_METADATA, ${index})`);
      const { flags } = decodeStruct<{ flags: number | bigint }>(metadata, seccompMetadata);
      return { program, log: (u64(flags) & BigInt(SECCOMP_FILTER_FLAG_LOG)) !== 0n };
    });
  }

  /** Reads the stopped task's memory through /proc/PID/mem (read-only pages included); user
   * addresses fit in 47 bits, so they are exact as file positions. */
  readMemory(pid: number, address: bigint, length: number): Buffer {
    const buf = Buffer.alloc(length);
    const n = readSync(this.memFd(pid), buf, 0, length, Number(address));
    if (n !== length) throw new TargetError(`PID ${pid}: only ${n} of ${length} bytes readable at 0x${address.toString(16)}`);
    return buf;
  }

  writeMemory(pid: number, address: bigint, data: Uint8Array): void {
    const n = writeSync(this.memFd(pid), data, 0, data.byteLength, Number(address));
    if (n !== data.byteLength) throw new TargetError(`PID ${pid}: only ${n} of ${data.byteLength} bytes writable at 0x${address.toString(16)}`);
  }

  /**
   * Runs syscall `nr` inside the stopped task and returns its raw result (a negative errno on
   * failure). The task's registers are put back afterwards; its memory is not touched, because
   * the `syscall` instruction used is one the vdso already contains.
   */
  remoteSyscall(pid: number, nr: number, args: readonly bigint[] = []): bigint {
    return this.remoteSyscallWithEvent(pid, nr, args).value;
  }

  /** Like remoteSyscall, but a negative result is thrown as a KernelError naming the call. */
  remoteSyscallChecked(pid: number, nr: number, name: string, args: readonly bigint[] = []): bigint {
    return checkRemote(pid, name, this.remoteSyscall(pid, nr, args));
  }

  /**
   * A remote syscall that may stop with a ptrace event on the way (clone3 under
   * PTRACE_O_TRACECLONE): the event's message (the new PID) is returned with the result.
   */
  remoteSyscallWithEvent(pid: number, nr: number, args: readonly bigint[] = []): RemoteResult {
    const saved = this.rawRegs(pid);
    this.enterRemote(pid, saved, nr, args);
    try {
      this.stepToSyscallStop(pid);
      let eventMessage: number | undefined;
      this.libc.ptrace(PTRACE_SYSCALL, pid, 0, 0, 'ptrace(PTRACE_SYSCALL)');
      let status = this.waitStop(pid);
      if (status >> 16 !== 0) {
        eventMessage = this.eventMessage(pid);
        this.libc.ptrace(PTRACE_SYSCALL, pid, 0, 0, 'ptrace(PTRACE_SYSCALL)');
        status = this.waitStop(pid);
      }
      this.assertSyscallStop(pid, status);
      return { value: this.rawRegs(pid).readBigInt64LE(REG.rax), ...(eventMessage === undefined ? {} : { eventMessage }) };
    } finally {
      this.setRawRegs(pid, saved);
    }
  }

  /**
   * Remote syscalls in several stopped tasks at once: each task's `calls` in order, all tasks side
   * by side. Every task is started on its first call; then each is moved on from its syscall-entry
   * stop, and each exit stop is collected and the task started at once on its next call. A task
   * runs its call while cr serves the others, so a call costs far less than remoteSyscall's round
   * trip. Returns each task's raw results, in the order of `chains` and of its calls. Whatever
   * fails, every task that was started is brought to the end of its call and gets its registers
   * back before the error is thrown.
   */
  remoteSyscallsAcross(chains: readonly SyscallChain[]): bigint[][] {
    const running: ChainState[] = [];
    try {
      for (const chain of chains) {
        const state: ChainState = { ...chain, saved: this.rawRegs(chain.pid), stage: 'parked', results: [] };
        running.push(state);
        if (chain.calls.length > 0) this.startChained(state);
      }
      for (;;) {
        const active = running.filter((c) => c.stage !== 'parked');
        if (active.length === 0) break;
        for (const c of active) this.moveOnFromEntry(c);
        for (const c of active) {
          this.assertSyscallStop(c.pid, this.waitStop(c.pid));
          c.stage = 'parked';
          c.results.push(this.rawRegs(c.pid).readBigInt64LE(REG.rax));
          if (c.results.length < c.calls.length) this.startChained(c);
        }
      }
      return running.map((c) => c.results);
    } catch (err) {
      for (const c of running) this.settleAfterFailure(c);
      throw err;
    } finally {
      for (const c of running) {
        try {
          this.setRawRegs(c.pid, c.saved);
        } catch {
          // Gone, or still running after a failure: its return frame puts it back (return-frame.ts).
        }
      }
    }
  }

  /** Starts the next call of a chain of remoteSyscallsAcross: the task heads for its syscall-entry stop. */
  private startChained(c: ChainState): void {
    const { nr, args } = c.calls[c.results.length]!;
    this.enterRemote(c.pid, c.saved, nr, args);
    this.libc.ptrace(PTRACE_SYSCALL, c.pid, 0, 0, 'ptrace(PTRACE_SYSCALL)');
    c.stage = 'entering';
  }

  private moveOnFromEntry(c: ChainState): void {
    this.assertSyscallStop(c.pid, this.waitStop(c.pid));
    c.stage = 'exiting';
    this.libc.ptrace(PTRACE_SYSCALL, c.pid, 0, 0, 'ptrace(PTRACE_SYSCALL)');
  }

  /** Brings a task of a failed remoteSyscallsAcross to the end of the call it is in, if it can still get there. */
  private settleAfterFailure(c: ChainState): void {
    try {
      if (c.stage === 'entering') this.moveOnFromEntry(c);
      if (c.stage === 'exiting') this.assertSyscallStop(c.pid, this.waitStop(c.pid));
    } catch {
      // It exited, or stopped otherwise: nothing more to wait for.
    }
    c.stage = 'parked';
  }

  /**
   * Runs the stopped task from `entry`, with the registers `set` changed, until it stops itself
   * with SIGSTOP (see syscall-batch.ts), which is swallowed: cr never lets it through. Its
   * registers are put back; a stop of any other kind is a TargetError.
   */
  runUntilSelfStop(pid: number, entry: bigint, set: Partial<Registers>): void {
    const saved = this.rawRegs(pid);
    const regs = Buffer.from(saved);
    for (const [name, value] of Object.entries(set) as [RegisterName, bigint][]) regs.writeBigUInt64LE(unsigned(value), REG[name]);
    regs.writeBigUInt64LE(unsigned(entry), REG.rip);
    regs.writeBigUInt64LE(unsigned(-1n), REG.orig_rax);
    this.setRawRegs(pid, regs);
    try {
      this.libc.ptrace(PTRACE_CONT, pid, 0, 0, 'ptrace(PTRACE_CONT)');
      const status = this.waitStop(pid);
      if (status >> 16 !== 0 || ((status >> 8) & 0xff) !== SIGSTOP) {
        throw new TargetError(`PID ${pid} stopped with status 0x${status.toString(16)} while running cr's batch of syscalls, not by the SIGSTOP that ends it`);
      }
    } finally {
      this.setRawRegs(pid, saved);
    }
  }

  /**
   * Starts syscall `nr` inside the stopped task and returns while the task runs it, so that cr can
   * work meanwhile (the task runs on another CPU). Nothing else may be asked of the task until
   * `finish` has waited for the call's end, which puts its registers back and returns the raw
   * result; `finish` must be called whatever happens in between. It looks for the end every
   * LONG_CALL_POLL_MS, sleeping in between: such a call takes milliseconds.
   */
  startRemoteSyscall(pid: number, nr: number, args: readonly bigint[] = []): RunningSyscall {
    const saved = this.rawRegs(pid);
    this.enterRemote(pid, saved, nr, args);
    try {
      this.stepToSyscallStop(pid);
      this.libc.ptrace(PTRACE_SYSCALL, pid, 0, 0, 'ptrace(PTRACE_SYSCALL)');
    } catch (err) {
      this.setRawRegs(pid, saved);
      throw err;
    }
    let result: bigint | undefined;
    const end = (status: number) => {
      try {
        this.assertSyscallStop(pid, status);
        result = this.rawRegs(pid).readBigInt64LE(REG.rax);
        return result;
      } finally {
        this.setRawRegs(pid, saved);
      }
    };
    return {
      finish: () => result ?? end(this.waitStop(pid, LONG_CALL_POLL_MS)),
      poll: () => {
        if (result !== undefined) return result;
        const status = this.stopNow(pid);
        return status === undefined ? undefined : end(status);
      },
    };
  }

  /**
   * Starts a blocking syscall inside the task and interrupts it at once, as a signal would: the
   * kernel leaves what it needs to restart the call (its restart block) in the task, and returns
   * the raw result, normally -ERESTART_RESTARTBLOCK. Used to rebuild an interrupted nanosleep.
   * The task's registers are NOT put back: the caller sets the ones it wants next.
   */
  remoteSyscallInterrupted(pid: number, nr: number, args: readonly bigint[]): bigint {
    this.enterRemote(pid, this.rawRegs(pid), nr, args);
    this.stepToSyscallStop(pid);
    this.libc.ptrace(PTRACE_SYSCALL, pid, 0, 0, 'ptrace(PTRACE_SYSCALL)');
    this.libc.ptrace(PTRACE_INTERRUPT, pid, 0, 0, 'ptrace(PTRACE_INTERRUPT)');
    this.assertSyscallStop(pid, this.waitStop(pid));
    return this.rawRegs(pid).readBigInt64LE(REG.rax);
  }

  /**
   * Runs the remote syscalls of `pid` at `site`, a `syscall; ret` sequence, with the stack pointer
   * at `stack`, whose first word returns into the task's return frame (see return-frame.ts).
   */
  useCallSite(pid: number, site: bigint, stack: bigint): void {
    this.syscallSites.set(pid, site);
    this.callStacks.set(pid, stack);
  }

  /**
   * Has the new thread `tid` run its remote syscalls where its thread group's `leader` runs them,
   * if cr knows where that is: they share one address space, vdso included, which saves reading
   * the thread's maps and searching its vdso again.
   */
  shareSyscallSite(leader: number, tid: number): void {
    const site = this.syscallSites.get(leader);
    if (site !== undefined && !this.callStacks.has(leader)) this.syscallSites.set(tid, site);
  }

  /** Forgets the cached address of the vdso's `syscall` instruction (after the vdso moved). */
  forgetSyscallSite(pid: number): void {
    this.syscallSites.delete(pid);
  }

  private memFd(pid: number): number {
    let fd = this.memFds.get(pid);
    if (fd === undefined) {
      fd = openSync(`/proc/${pid}/mem`, 'r+');
      this.memFds.set(pid, fd);
    }
    return fd;
  }

  /** Drops what cr kept about a task it no longer holds. */
  private forget(pid: number): void {
    this.syscallSites.delete(pid);
    this.jobControlStops.delete(pid);
    this.callStacks.delete(pid);
    const fd = this.memFds.get(pid);
    if (fd !== undefined) closeSync(fd);
    this.memFds.delete(pid);
  }

  /** Sets the registers of a call of syscall `nr` with `args` on top of `saved` (which stays as it is). */
  private enterRemote(pid: number, saved: Buffer, nr: number, args: readonly bigint[]): void {
    const regs = Buffer.from(saved);
    const [rdi = 0n, rsi = 0n, rdx = 0n, r10 = 0n, r8 = 0n, r9 = 0n] = args;
    const set = (at: number, v: bigint) => regs.writeBigUInt64LE(unsigned(v), at);
    set(REG.rax, BigInt(nr));
    set(REG.rdi, rdi);
    set(REG.rsi, rsi);
    set(REG.rdx, rdx);
    set(REG.r10, r10);
    set(REG.r8, r8);
    set(REG.r9, r9);
    set(REG.rip, this.syscallSite(pid));
    const stack = this.callStacks.get(pid);
    if (stack !== undefined) set(REG.rsp, stack);
    set(REG.orig_rax, -1n);
    this.setRawRegs(pid, regs);
  }

  private eventMessage(pid: number): number {
    const buf = Buffer.alloc(8);
    this.libc.ptrace(PTRACE_GETEVENTMSG, pid, 0, buf, 'ptrace(PTRACE_GETEVENTMSG)');
    return Number(buf.readBigUInt64LE());
  }

  private stepToSyscallStop(pid: number): void {
    this.libc.ptrace(PTRACE_SYSCALL, pid, 0, 0, 'ptrace(PTRACE_SYSCALL)');
    this.assertSyscallStop(pid, this.waitStop(pid));
  }

  private assertSyscallStop(pid: number, status: number): void {
    if (((status >> 8) & 0xffff) !== SYSCALL_STOP) {
      throw new TargetError(`PID ${pid} stopped with status 0x${status.toString(16)} while running a remote syscall, not at a syscall stop`);
    }
  }

  /**
   * Waits for the task's next stop, for at most STOP_TIMEOUT_MS: a task in uninterruptible sleep
   * (a hung NFS mount, a device) does not stop, and cr must not hang with it. Stops after a
   * remote syscall come within microseconds, so the wait spins briefly before it sleeps; then it
   * looks every LONG_CALL_POLL_MS. (Sleeps that grew to 10 ms overshot the 1-5 ms stops of a new
   * child or a batch of writes: restoring 100 processes took 843 ms against 702, 100 threads 168
   * against 120, medians taking turns.) For a call known to take a while, `pollMs` makes it sleep
   * that long between looks from the start, leaving the CPU to the task (and overshooting its end
   * by no more than that).
   */
  private waitStop(pid: number, pollMs?: number): number {
    const deadline = performance.now() + STOP_TIMEOUT_MS;
    for (let round = 0; ; round++) {
      const status = this.stopNow(pid);
      if (status !== undefined) return status;
      if (performance.now() > deadline) {
        const { state } = new Procfs().stat(pid);
        throw new TargetError(`PID ${pid} did not stop within ${STOP_TIMEOUT_MS / 1000} s (state ${state}${state === 'D' ? ', uninterruptible sleep' : ''}); try again when it is not blocked in the kernel`);
      }
      if (pollMs !== undefined) Atomics.wait(SLEEPER, 0, 0, pollMs);
      else if (round >= SPIN_ROUNDS) Atomics.wait(SLEEPER, 0, 0, LONG_CALL_POLL_MS);
    }
  }

  /** The wait status of the task's stop if it has stopped, undefined if it has not yet; a task that exited instead is a TargetError. */
  private stopNow(pid: number): number | undefined {
    const { pid: reported, status } = this.libc.waitpid(pid, __WALL | WNOHANG);
    if (reported !== pid) return undefined;
    if ((status & 0xff) !== 0x7f) throw new TargetError(`PID ${pid} exited while cr was stopping it (wait status 0x${status.toString(16)})`);
    return status;
  }

  /** Address of a `syscall` instruction (0f 05) in the task's vdso. */
  private syscallSite(pid: number): bigint {
    const cached = this.syscallSites.get(pid);
    if (cached !== undefined) return cached;
    const line = readFileSync(`/proc/${pid}/maps`, 'utf8').split('\n').find((l) => l.endsWith('[vdso]'));
    if (!line) throw new TargetError(`PID ${pid} has no [vdso] mapping to run remote syscalls from`);
    const [start, end] = line.split(' ')[0]!.split('-').map((h) => BigInt(`0x${h}`)) as [bigint, bigint];
    const code = this.readMemory(pid, start, Number(end - start));
    const offset = code.indexOf(Buffer.from([0x0f, 0x05]));
    if (offset < 0) throw new TargetError(`PID ${pid}: no syscall instruction found in its vdso`);
    const site = start + BigInt(offset);
    this.syscallSites.set(pid, site);
    return site;
  }

  private detachQuietly(pid: number): void {
    try {
      this.detach(pid);
    } catch {
      // Not attached, or already gone: nothing to let go of.
    }
  }
}

/** A remote syscall's raw result, or a KernelError naming the call when it is -errno. */
export function checkRemote(pid: number, name: string, result: bigint): bigint {
  if (result < 0n && result > -4096n) throw new KernelError(name, Number(-result), `in PID ${pid}`);
  return result;
}
