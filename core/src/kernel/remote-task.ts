import { readFileSync } from 'node:fs';
import { TargetError, UnsupportedError } from '../errors.js';
import { findCodeSites, SYSCALL_RET, type CodeSites } from './code-sites.js';
import { KernelError } from './kernel-error.js';
import { __WALL, IOV_MAX, type RemoteRange } from './libc.js';
import { setMmMap, type MmMap } from './mm-map.js';
import { readMappings } from './proc-maps.js';
import { stoppedSyscall, type StoppedSyscall } from './stopped-syscall.js';
import { BATCH_CODE, batchResults, batchTable, type BatchedCall } from './syscall-batch.js';
import { checkRemote, type Ptrace, type Registers, type RseqConfiguration } from './ptrace.js';
import { buildReturnFrame, OUT_AREA_SIZE, type ReturnFrame } from './return-frame.js';
import {
  F_GETFD,
  F_SETFD,
  O_CLOEXEC,
  MAP_ANONYMOUS,
  MAP_PRIVATE,
  MREMAP_FIXED,
  MREMAP_MAYMOVE,
  PROT_EXEC,
  PROT_READ,
  PR_GET_TID_ADDRESS,
  RSEQ_FLAG_UNREGISTER,
  PROT_WRITE,
  SIGSTOP,
  SYS,
  type RawSyscall,
} from './syscalls.js';
import { capUserData, capUserHeader, decodeStruct, encodeStruct, epollEvent, iovecs, itimerspec, itimerval, sigevent, kernelSigaction, rlimit64, stackT, structSize, u64, type Timeval } from './structs.js';

/** capset(2) with 64-bit capability sets. */
const _LINUX_CAPABILITY_VERSION_3 = 0x20080522;
const SCRATCH_SIZE = 64 * 1024;
/** Where a batch's table goes in the scratch area: its calls' memory arguments go below. */
const BATCH_TABLE_OFFSET = 16 * 1024;
const CODE_SIZE = 4096;
/** x86_64 CET: a task with a shadow stack would fault on the `ret` of a parked task. */
const SHADOW_STACK = /^x86_Thread_features:.*\bshstk\b/m;
const ALL_SIGNALS = 0xffffffffffffffffn;
const MADV_POPULATE_WRITE = 23;
const EINVAL = 22;
const ENOSYS = 38;
const RLIMIT_CORE = 4;
const u = (v: bigint | number) => BigInt.asUintN(64, BigInt(v));

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

/** What a POSIX timer does when it expires (struct sigevent): SIGEV_SIGNAL 0, SIGEV_NONE 1, SIGEV_THREAD_ID 4. */
export interface PosixTimerNotification {
  notify: number;
  signal: number;
  /** sigev_value, the 64 bits the signal carries. */
  value: bigint;
  /** The thread SIGEV_THREAD_ID signals. */
  tid: number;
}

interface Timespec {
  tv_sec: number | bigint;
  tv_nsec: number | bigint;
}
const nanoseconds = (t: Timespec) => BigInt(t.tv_sec) * 1_000_000_000n + BigInt(t.tv_nsec);

/** An alternate signal stack (stack_t). */
export interface AltStack {
  sp: bigint;
  flags: number;
  size: bigint;
}

/**
 * A task stopped under ptrace, and typed syscalls run inside it ("remote syscalls"). Arguments
 * that live in memory (a struct, a path) go through a scratch page cr maps into the task while it
 * needs one and removes again (`dropScratch`, `release`), so the task is left as it was.
 *
 * Every method throws a KernelError naming the syscall, the errno and the PID when the call fails.
 */
export class RemoteTask {
  private scratchAddress: bigint | undefined;
  /** The page of batch code (syscall-batch.ts), in a task cr made, while it is mapped. */
  private codeAddress: bigint | undefined;
  /** The blocked-signal mask the task gets back when it is let go. */
  private maskOnRelease: bigint;

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
  ) {
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
  static seize(ptrace: Ptrace, pid: number): RemoteTask {
    const regs = ptrace.stop(pid);
    let parked = false;
    try {
      const frame = prepareReturnFrame(ptrace, pid, regs);
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

  /** Runs syscall `nr` inside the task; a -errno result is thrown as a KernelError named `name`. */
  private call(name: string, nr: number, args: readonly (bigint | number)[] = []): bigint {
    return checkRemote(this.pid, name, this.ptrace.remoteSyscall(this.pid, nr, args.map(u)));
  }

  /** The FPU, SSE and AVX state (XSAVE area), exactly as the CPU saved it. */
  xstate(): Buffer {
    return this.ptrace.getXstate(this.pid);
  }

  setXstate(xstate: Buffer): void {
    this.ptrace.setXstate(this.pid, xstate);
  }

  /** The signals queued for the task (or, shared, for its process), each as its raw siginfo, left queued. */
  pendingSignals(shared: boolean): Buffer[] {
    return this.ptrace.peekSiginfo(this.pid, shared);
  }

  /** The rseq area the task registered, or undefined. */
  rseqConfiguration(): RseqConfiguration | undefined {
    return this.ptrace.rseqConfiguration(this.pid);
  }

  /**
   * Starts clock_nanosleep(clockId, 0, request, remain) inside the task and interrupts it at once,
   * as a signal would, leaving the kernel's restart block in the task; returns the raw result,
   * normally -ERESTART_RESTARTBLOCK. The registers are NOT put back: the caller sets them next.
   */
  interruptedSleep(clockId: number, request: bigint, remain: bigint): bigint {
    return this.ptrace.remoteSyscallInterrupted(this.pid, SYS.clock_nanosleep, [BigInt(clockId), 0n, request, remain]);
  }

  read(address: bigint, length: number): Buffer {
    return this.ptrace.readMemory(this.pid, address, length);
  }

  write(address: bigint, data: Uint8Array): void {
    this.ptrace.writeMemory(this.pid, address, data);
  }

  /** Copies `data` into the scratch page at `offset` and returns its address in the task. */
  put(data: Uint8Array, offset = 0): bigint {
    const size = this.guarded ? OUT_AREA_SIZE : SCRATCH_SIZE;
    if (offset + data.byteLength > size) throw new Error(`internal error: ${data.byteLength} bytes do not fit the scratch area`);
    const address = this.scratch() + BigInt(offset);
    this.write(address, data);
    return address;
  }

  /** Address of `offset` in the scratch page, for the kernel to fill. */
  scratchAt(offset: number): bigint {
    return this.scratch() + BigInt(offset);
  }

  /** Unmaps the scratch page and the batch code page, if they are mapped. */
  dropScratch(): void {
    if (this.codeAddress !== undefined) {
      const address = this.codeAddress;
      this.codeAddress = undefined;
      this.call('munmap', SYS.munmap, [address, CODE_SIZE]);
    }
    if (this.scratchAddress === undefined || this.guarded) return;
    const address = this.scratchAddress;
    this.scratchAddress = undefined;
    this.call('munmap', SYS.munmap, [address, SCRATCH_SIZE]);
  }

  /** The address space was replaced wholesale: the scratch and code pages are gone with it. */
  forgetAddressSpace(): void {
    this.scratchAddress = undefined;
    this.codeAddress = undefined;
    this.ptrace.forgetSyscallSite(this.pid);
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
    this.ptrace.setRegs(this.pid, regs);
  }

  // --- memory ---------------------------------------------------------------------------------

  mmap(address: bigint, length: bigint, prot: number, flags: number, fd = -1, offset = 0n): bigint {
    const at = this.call('mmap', SYS.mmap, [address, length, prot, flags, fd, offset]);
    if (address !== 0n && at !== address) throw new KernelError('mmap', 17, `in PID ${this.pid}, at 0x${address.toString(16)}`, `mapped at 0x${at.toString(16)} instead`);
    return at;
  }

  munmap(address: bigint, length: bigint): void {
    this.call('munmap', SYS.munmap, [address, length]);
  }

  mprotect(address: bigint, length: bigint, prot: number): void {
    this.call('mprotect', SYS.mprotect, [address, length, prot]);
  }

  /** Moves a mapping to exactly `to` (MREMAP_MAYMOVE | MREMAP_FIXED). */
  mremapTo(from: bigint, length: bigint, to: bigint): void {
    this.call('mremap', SYS.mremap, [from, length, length, MREMAP_MAYMOVE | MREMAP_FIXED, to]);
  }

  madvise(address: bigint, length: bigint, advice: number): void {
    this.call(`madvise(${advice})`, SYS.madvise, [address, length, advice]);
  }

  mlock(address: bigint, length: bigint): void {
    this.call('mlock2', SYS.mlock2, [address, length, 0]);
  }

  brk(address: bigint): bigint {
    return this.call('brk', SYS.brk, [address]);
  }

  shmat(shmid: number, address: bigint, flags: number): void {
    const at = this.call('shmat', SYS.shmat, [shmid, address, flags]);
    if (at !== address) throw new KernelError('shmat', 17, `in PID ${this.pid}, shm id ${shmid}`, `attached at 0x${at.toString(16)} instead of 0x${address.toString(16)}`);
  }

  // --- files ----------------------------------------------------------------------------------

  /** How many memory ranges one `startPreadv` takes: its iovecs must fit the scratch area. */
  iovecCapacity(): number {
    return Math.min(IOV_MAX, Math.floor((this.guarded ? OUT_AREA_SIZE : SCRATCH_SIZE) / structSize(iovecs(1))));
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
  startPopulateWrite(pidfd: number, ranges: readonly RemoteRange[]): { finish(): boolean } {
    const call = this.ptrace.startRemoteSyscall(this.pid, SYS.process_madvise, [pidfd, this.putIovecs(ranges), ranges.length, MADV_POPULATE_WRITE, 0].map(u));
    return {
      finish: () => {
        const result = call.finish();
        if (result === -BigInt(EINVAL) || result === -BigInt(ENOSYS)) return false;
        checkRemote(this.pid, 'process_madvise(MADV_POPULATE_WRITE)', result);
        return true;
      },
    };
  }

  /**
   * Starts preadv(2) in the task and returns while it runs (see Ptrace.startRemoteSyscall): the
   * task reads its descriptor `fd` from byte `position` on into `ranges` of its own memory, in
   * order, one copy from the page cache to where the bytes belong. Nothing else may be asked of
   * the task before `finish`, which returns how many bytes it read (fewer at the end of the file)
   * and throws a KernelError naming preadv, the errno and the PID when the call failed.
   */
  startPreadv(fd: number, ranges: readonly RemoteRange[], position: number): { finish(): number } {
    const call = this.ptrace.startRemoteSyscall(this.pid, SYS.preadv, [fd, this.putIovecs(ranges), ranges.length, position, 0].map(u));
    return { finish: () => Number(checkRemote(this.pid, 'preadv', call.finish())) };
  }

  /** `ranges` as struct iovecs in the scratch area, and their address there. */
  private putIovecs(ranges: readonly RemoteRange[]): bigint {
    if (ranges.length > this.iovecCapacity()) throw new Error(`internal error: ${ranges.length} iovecs, more than the ${this.iovecCapacity()} the scratch area holds`);
    return this.put(encodeStruct(iovecs(ranges.length), ranges.map((r) => ({ iov_base: r.address, iov_len: r.length }))));
  }


  /**
   * Copies file descriptor `localFd` of *this* process (cr) into the task, on the lowest free
   * number there, and returns that number. The two share one open file description, as after
   * dup(): cr opens a file with the flags the task needs, and hands it over.
   */
  pullFd(localFd: number): number {
    const fd = this.pullFdCloseOnExec(localFd);
    this.call('fcntl(F_SETFD)', SYS.fcntl, [fd, F_SETFD, 0]);
    return fd;
  }

  /**
   * Gives the task cr's descriptor `localFd` as exactly descriptor `fd` (pulled, then dup3 where
   * it landed elsewhere), close-on-exec or not. cr keeps its own copy: the caller closes it.
   */
  installFd(localFd: number, fd: number, closeOnExec: boolean): void {
    const pulled = this.pullFdCloseOnExec(localFd);
    if (pulled !== fd) {
      this.dup3(pulled, fd, closeOnExec ? O_CLOEXEC : 0);
      this.close(pulled);
    } else if (!closeOnExec) {
      this.fcntl(fd, F_SETFD, 0);
    }
  }

  /** pullFd, the descriptor left close-on-exec as pidfd_getfd always makes it: one remote syscall less where the caller sets the flag anyway. */
  private pullFdCloseOnExec(localFd: number): number {
    const pidfd = Number(this.call('pidfd_open', SYS.pidfd_open, [process.pid, 0]));
    try {
      return Number(this.call('pidfd_getfd', SYS.pidfd_getfd, [pidfd, localFd, 0]));
    } finally {
      this.call('close', SYS.close, [pidfd]);
    }
  }

  /** Whether the task has descriptor `fd` open. */
  hasFd(fd: number): boolean {
    return this.ptrace.remoteSyscall(this.pid, SYS.fcntl, [u(fd), u(F_GETFD)]) >= 0n;
  }

  close(fd: number): void {
    this.call('close', SYS.close, [fd]);
  }

  closeRange(first: number, last: number): void {
    this.call('close_range', SYS.close_range, [first, last, 0]);
  }

  dup3(oldFd: number, newFd: number, flags: number): void {
    this.call('dup3', SYS.dup3, [oldFd, newFd, flags]);
  }

  fcntl(fd: number, cmd: number, arg: number | bigint = 0): bigint {
    return this.call(`fcntl(${cmd})`, SYS.fcntl, [fd, cmd, arg]);
  }

  lseek(fd: number, offset: bigint, whence = 0): void {
    this.call('lseek', SYS.lseek, [fd, offset, whence]);
  }

  fchdir(fd: number): void {
    this.call('fchdir', SYS.fchdir, [fd]);
  }

  setns(fd: number, nstype: number): void {
    this.call('setns', SYS.setns, [fd, nstype]);
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
    const at = this.scratchAt(0);
    this.call(`rt_sigaction(${signal})`, SYS.rt_sigaction, [signal, 0, at, 8]);
    const a = decodeStruct<Record<keyof SignalAction, number | bigint>>(this.read(at, structSize(kernelSigaction)), kernelSigaction);
    return { handler: u64(a.handler), flags: u64(a.flags), restorer: u64(a.restorer), mask: u64(a.mask) };
  }

  setSignalAction(signal: number, action: SignalAction): void {
    this.call(`rt_sigaction(${signal})`, SYS.rt_sigaction, [signal, this.put(encodeStruct(kernelSigaction, action)), 0, 8]);
  }

  /**
   * Sets many dispositions at once: in a task cr made, in one round trip (see syscall-batch.ts);
   * in a live program's task, one by one.
   */
  setSignalActions(actions: ReadonlyMap<number, SignalAction>): void {
    if (this.guarded) {
      for (const [signal, action] of actions) this.setSignalAction(signal, action);
      return;
    }
    const size = structSize(kernelSigaction);
    this.batch(
      [...actions].map(([signal, action], i) => ({
        name: `rt_sigaction(${signal})`,
        nr: SYS.rt_sigaction,
        args: [BigInt(signal), this.put(encodeStruct(kernelSigaction, action), i * size), 0n, 8n],
      })),
    );
  }

  getAltStack(): AltStack {
    const at = this.scratchAt(0);
    this.call('sigaltstack', SYS.sigaltstack, [0, at]);
    const s = decodeStruct<{ ss_sp: number | bigint; ss_flags: number; ss_size: number | bigint }>(this.read(at, structSize(stackT)), stackT);
    return { sp: u64(s.ss_sp), flags: s.ss_flags, size: u64(s.ss_size) };
  }

  setAltStack(stack: AltStack): void {
    this.call('sigaltstack', SYS.sigaltstack, [this.put(encodeStruct(stackT, { ss_sp: stack.sp, ss_flags: stack.flags, ss_size: stack.size })), 0]);
  }

  /** Sets the mm bounds, auxv and exe link at once (PR_SET_MM_MAP); uses the scratch area. */
  setMmMap(map: MmMap): void {
    setMmMap(this, map);
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
    const at = this.scratchAt(0);
    this.call('prctl(PR_GET_TID_ADDRESS)', SYS.prctl, [PR_GET_TID_ADDRESS, at]);
    return this.read(at, 8).readBigUInt64LE();
  }

  setTidAddress(address: bigint): void {
    this.call('set_tid_address', SYS.set_tid_address, [address]);
  }

  /** Registers the thread's robust futex list (set_robust_list(2)); `length` is the size of its head. */
  setRobustList(head: bigint, length: bigint): void {
    this.call('set_robust_list', SYS.set_robust_list, [head, length]);
  }

  // --- process state --------------------------------------------------------------------------

  prctl(name: string, option: number, ...args: (bigint | number)[]): bigint {
    return this.call(name, SYS.prctl, [option, ...args]);
  }

  /** prctl that reports through an int the kernel writes (PR_GET_PDEATHSIG). */
  prctlGetInt(name: string, option: number): number {
    const at = this.scratchAt(0);
    this.call(name, SYS.prctl, [option, at]);
    return this.read(at, 4).readInt32LE();
  }

  setRlimit(resource: number, soft: bigint, hard: bigint): void {
    this.call(`prlimit64(${resource})`, SYS.prlimit64, [0, resource, this.put(encodeStruct(rlimit64, { rlim_cur: soft, rlim_max: hard })), 0]);
  }

  getRlimit(resource: number): { soft: bigint; hard: bigint } {
    const at = this.scratchAt(0);
    this.call(`prlimit64(${resource})`, SYS.prlimit64, [0, resource, 0, at]);
    const r = decodeStruct<{ rlim_cur: number | bigint; rlim_max: number | bigint }>(this.read(at, structSize(rlimit64)), rlimit64);
    return { soft: u64(r.rlim_cur), hard: u64(r.rlim_max) };
  }

  /** getitimer(2): the interval and the time left of one interval timer, in microseconds. */
  getItimer(which: number): ItimerValue {
    const at = this.scratchAt(0);
    this.call(`getitimer(${which})`, SYS.getitimer, [which, at]);
    const t = decodeStruct<Record<'it_interval' | 'it_value', Timeval>>(this.read(at, structSize(itimerval)), itimerval);
    const us = (tv: Timeval) => BigInt(tv.tv_sec) * 1_000_000n + BigInt(tv.tv_usec);
    return { intervalUs: us(t.it_interval), valueUs: us(t.it_value) };
  }

  setItimer(which: number, timer: ItimerValue): void {
    const tv = (us: bigint): Timeval => ({ tv_sec: us / 1_000_000n, tv_usec: us % 1_000_000n });
    const b = encodeStruct(itimerval, { it_interval: tv(timer.intervalUs), it_value: tv(timer.valueUs) });
    this.call(`setitimer(${which})`, SYS.setitimer, [which, this.put(b), 0]);
  }

  /** timer_gettime(2) of the task's POSIX timer `id`: the time to its next expiry and its interval, in nanoseconds. */
  timerGettime(id: number): PosixTimerSetting {
    const at = this.scratchAt(0);
    this.call(`timer_gettime(${id})`, SYS.timer_gettime, [id, at]);
    const t = decodeStruct<Record<'it_interval' | 'it_value', Timespec>>(this.read(at, structSize(itimerspec)), itimerspec);
    return { valueNs: nanoseconds(t.it_value), intervalNs: nanoseconds(t.it_interval) };
  }

  /** timer_getoverrun(2): the expirations of timer `id` its last signal stood for, beyond the one. */
  timerGetoverrun(id: number): number {
    return Number(this.call(`timer_getoverrun(${id})`, SYS.timer_getoverrun, [id]));
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
    const idAt = this.put(new Uint8Array(new Int32Array([id]).buffer), structSize(sigevent));
    this.call(`timer_create(${id})`, SYS.timer_create, [clockId, this.put(event), idAt]);
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
    this.call('setpriority', SYS.setpriority, [0, 0, BigInt.asUintN(64, BigInt(nice))]);
  }

  setScheduler(policy: number, priority: number): void {
    const b = Buffer.alloc(4);
    b.writeInt32LE(priority);
    this.call('sched_setscheduler', SYS.sched_setscheduler, [0, policy, this.put(b)]);
  }

  /** sched_setaffinity(2) with a CPU mask, lowest CPU in the lowest bit of the first byte. */
  setAffinity(mask: Buffer): void {
    this.call('sched_setaffinity', SYS.sched_setaffinity, [0, mask.length, this.put(mask)]);
  }

  umask(mask: number): number {
    return Number(this.call('umask', SYS.umask, [mask]));
  }

  personality(value: number): void {
    this.call('personality', SYS.personality, [value]);
  }

  setsid(): void {
    this.call('setsid', SYS.setsid);
  }

  setpgid(pgid: number): void {
    this.call('setpgid', SYS.setpgid, [0, pgid]);
  }

  setGroups(groups: readonly number[]): void {
    const b = Buffer.alloc(Math.max(4, groups.length * 4));
    groups.forEach((g, i) => b.writeUInt32LE(g, i * 4));
    this.call('setgroups', SYS.setgroups, [groups.length, this.put(b)]);
  }

  setresgid(real: number, effective: number, saved: number): void {
    this.call('setresgid', SYS.setresgid, [real, effective, saved]);
  }

  setresuid(real: number, effective: number, saved: number): void {
    this.call('setresuid', SYS.setresuid, [real, effective, saved]);
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
    this.call('capset', SYS.capset, [this.put(header), this.put(data, 64)]);
  }

  registerRseq(address: bigint, size: number, signature: number): void {
    this.call('rseq', SYS.rseq, [address, size, 0, signature]);
  }

  unregisterRseq(address: bigint, size: number, signature: number): void {
    this.call('rseq(RSEQ_FLAG_UNREGISTER)', SYS.rseq, [address, size, RSEQ_FLAG_UNREGISTER, signature]);
  }

  /**
   * Runs `calls` in the task in one round trip (syscall-batch.ts), their memory arguments already
   * put in the scratch area below BATCH_TABLE_OFFSET; a failed call throws a KernelError naming it.
   * Only in a task cr made: the code page it maps goes with the scratch area.
   */
  private batch(calls: readonly BatchedCall[]): void {
    const table = batchTable(calls, this.pid, SYS.tkill, SIGSTOP);
    const at = this.put(table, BATCH_TABLE_OFFSET);
    this.ptrace.runUntilSelfStop(this.pid, this.batchCode(), { r12: at, r13: BigInt(calls.length + 1) });
    batchResults(this.read(at, table.length), calls.length).forEach((result, i) => checkRemote(this.pid, calls[i]!.name, result));
  }

  private batchCode(): bigint {
    if (this.codeAddress === undefined) {
      const at = this.mmap(0n, BigInt(CODE_SIZE), PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS);
      this.write(at, BATCH_CODE);
      this.codeAddress = at;
    }
    return this.codeAddress;
  }

  private scratch(): bigint {
    this.scratchAddress ??= this.guarded?.outArea;
    this.scratchAddress ??= this.mmap(0n, BigInt(SCRATCH_SIZE), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
    return this.scratchAddress;
  }
}

/**
 * Writes a return frame for a stopped task below its stack pointer, after checking that the task
 * has the code to run from, a stack with room for the frame, and no shadow stack. Nothing is
 * changed in the task when a check fails.
 */
function prepareReturnFrame(ptrace: Ptrace, pid: number, regs: Registers): ReturnFrame & { sites: CodeSites } {
  if (SHADOW_STACK.test(readFileSync(`/proc/${pid}/status`, 'utf8'))) {
    throw new UnsupportedError(`PID ${pid} runs with a CET shadow stack, under which cr cannot run code in it safely`);
  }
  const mappings = readMappings(pid);
  const sites = findCodeSites(mappings, (start, length) => ptrace.readMemory(pid, start, length));
  if (!sites) {
    throw new UnsupportedError(`PID ${pid} maps no "syscall; ret" and no rt_sigreturn code (no libc or dynamic loader), which cr needs to run code in it safely`);
  }
  const frame = buildReturnFrame(pid, regs, ptrace.getSigmask(pid), ptrace.getXstate(pid), sites.sigreturn);
  const stack = mappings.find((v) => v.start <= regs.rsp - 1n && regs.rsp - 1n < v.end);
  if (!stack || frame.lowest < stack.start || (stack.prot & 3) !== 3) {
    throw new TargetError(`PID ${pid}: its stack pointer 0x${regs.rsp.toString(16)} leaves no ${frame.bytes.length} writable bytes below it for cr's return frame`);
  }
  ptrace.writeMemory(pid, frame.lowest, frame.bytes);
  return { ...frame, sites };
}
