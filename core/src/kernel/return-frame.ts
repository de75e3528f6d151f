import { ffi } from './ffi.js';
import { declareStruct, stackT } from './structs.js';
import { TargetError } from '../errors.js';
import type { Registers } from './ptrace.js';
import { SYS } from './syscalls.js';

/**
 * A signal frame that cr writes below a stopped task's stack pointer before it runs anything
 * inside the task, so that the kernel itself can put the task back if cr dies (SIGKILL) at any
 * moment. While cr works in the task, the task's registers point at a `ret` whose return address
 * is an `rt_sigreturn` instruction sequence: a task let go in that state (the kernel detaches the
 * tracees of a tracer that died) returns through rt_sigreturn(2), which restores the general
 * registers, the FPU/SSE/AVX state and the signal mask the frame holds, exactly as it does after
 * a signal handler. See docs/safety.md.
 */


/** struct sigcontext of x86_64, as rt_sigreturn reads it. */
const sigcontext = declareStruct('cr_sigcontext_64', (koffi) => ({
  r8: 'uint64_t',
  r9: 'uint64_t',
  r10: 'uint64_t',
  r11: 'uint64_t',
  r12: 'uint64_t',
  r13: 'uint64_t',
  r14: 'uint64_t',
  r15: 'uint64_t',
  di: 'uint64_t',
  si: 'uint64_t',
  bp: 'uint64_t',
  bx: 'uint64_t',
  dx: 'uint64_t',
  ax: 'uint64_t',
  cx: 'uint64_t',
  sp: 'uint64_t',
  ip: 'uint64_t',
  flags: 'uint64_t',
  cs: 'uint16_t',
  gs: 'uint16_t',
  fs: 'uint16_t',
  ss: 'uint16_t',
  err: 'uint64_t',
  trapno: 'uint64_t',
  oldmask: 'uint64_t',
  cr2: 'uint64_t',
  fpstate: 'uint64_t',
  reserved1: koffi.array('uint64_t', 8),
}));

const ucontext = declareStruct('cr_ucontext', {
  uc_flags: 'uint64_t',
  uc_link: 'uint64_t',
  uc_stack: stackT,
  uc_mcontext: sigcontext,
  uc_sigmask: 'uint64_t',
});

/** struct _fpx_sw_bytes: tells rt_sigreturn that an XSAVE area, not only FXSAVE, follows. */
const fpxSwBytes = declareStruct('cr_fpx_sw_bytes', (koffi) => ({
  magic1: 'uint32_t',
  extended_size: 'uint32_t',
  xfeatures: 'uint64_t',
  xstate_size: 'uint32_t',
  padding: koffi.array('uint32_t', 7),
}));

const UC_FP_XSTATE = 0x1n;
const UC_SIGCONTEXT_SS = 0x2n;
const UC_STRICT_RESTORE_SS = 0x4n;
/**
 * An invalid sigaltstack mode: rt_sigreturn's restore of uc_stack then fails with EINVAL, which
 * the kernel ignores, so the task's alternate signal stack stays exactly as it is.
 */
const SS_LEAVE_UNCHANGED = 3;
const FP_XSTATE_MAGIC1 = 0x46505853;
const FP_XSTATE_MAGIC2 = 0x46505845;
/**
 * The software-reserved bytes of the FXSAVE area: ptrace puts XCR0 (the enabled features) in
 * their first word, a signal frame puts struct _fpx_sw_bytes there.
 */
const SW_BYTES_OFFSET = 464;
/** Where the XSAVE header starts; an area shorter than header + 64 bytes is not one. */
const XSAVE_HEADER_END = 576;
/** The x86_64 ABI lets signal handlers and the kernel clobber memory this far below rsp only. */
const RED_ZONE = 128n;
/** Bytes cr may use for the results of remote syscalls (a sigaction, an rlimit …). */
export const OUT_AREA_SIZE = 256;

const ERESTARTSYS = -512n;
const ERESTARTNOINTR = -513n;
const ERESTARTNOHAND = -514n;
const ERESTART_RESTARTBLOCK = -516n;
const EINTR = -4n;
const SYSCALL_INSN_LENGTH = 2n;

/** Where the parts of a frame go in the task, and the bytes to write there. */
export interface ReturnFrame {
  /** The stack pointer for code run inside the task: its first word is the return address. */
  readonly stackPointer: bigint;
  /** Scratch memory for what remote syscalls write back (OUT_AREA_SIZE bytes). */
  readonly outArea: bigint;
  /** The lowest address cr writes; everything from here up to the red zone is cr's. */
  readonly lowest: bigint;
  /** Everything to write at `lowest`, in one piece. */
  readonly bytes: Buffer;
}

/**
 * The registers a task stopped by cr must return with when it resumes through rt_sigreturn,
 * which disables the kernel's syscall restart: a syscall the freeze interrupted is restarted here
 * the way the kernel restarts it when no handler runs, and one that would restart through its
 * restart block (nanosleep, poll …) fails with EINTR, because rt_sigreturn discards that block.
 */
export function resumeRegisters(regs: Registers): Registers {
  if (BigInt.asIntN(64, regs.orig_rax) < 0n) return regs;
  switch (BigInt.asIntN(64, withoutRestartBlock(regs).rax)) {
    case ERESTARTSYS:
    case ERESTARTNOINTR:
    case ERESTARTNOHAND:
      return { ...regs, rax: regs.orig_rax, rip: regs.rip - SYSCALL_INSN_LENGTH };
    case ERESTART_RESTARTBLOCK:
      return { ...regs, rax: BigInt.asUintN(64, EINTR) };
    default:
      return regs;
  }
}

/**
 * `regs` with an interrupted poll() that has no timeout (a negative one) marked as restarting from
 * the start (ERESTARTNOHAND): poll always restarts through its restart block, which a restored
 * task or rt_sigreturn does not have, so it would fail with EINTR, which programs that wait
 * forever rarely expect (util-linux `script` ends on it); without a timeout the same call again
 * is the same wait. A poll with a timeout keeps its restart block (the time left is unknown).
 */
export function withoutRestartBlock(regs: Registers): Registers {
  const timeout = BigInt.asIntN(32, regs.rdx);
  if (BigInt.asIntN(64, regs.rax) !== ERESTART_RESTARTBLOCK || BigInt.asIntN(64, regs.orig_rax) !== BigInt(SYS.poll) || timeout >= 0n) return regs;
  return { ...regs, rax: BigInt.asUintN(64, ERESTARTNOHAND) };
}

/**
 * Lays out a return frame below `regs.rsp` (past the red zone): the out area, the XSAVE area
 * (64-byte aligned, closed by FP_XSTATE_MAGIC2 as the kernel expects), the ucontext, and the
 * word below it holding `restorer`, the address of a `mov $15, %rax; syscall` sequence.
 */
export function buildReturnFrame(pid: number, regs: Registers, sigmask: bigint, xstate: Buffer, restorer: bigint): ReturnFrame {
  if (xstate.length < XSAVE_HEADER_END) {
    throw new TargetError(`PID ${pid}: the kernel reported an XSAVE area of ${xstate.length} bytes; cr cannot build a safe frame for it`);
  }
  const xstateSize = xstate.length;
  const outArea = regs.rsp - RED_ZONE - BigInt(OUT_AREA_SIZE);
  const fpstate = (outArea - BigInt(xstateSize + 4)) & ~63n;
  const koffi = ffi();
  const uc = (fpstate - BigInt(koffi.sizeof(ucontext))) & ~15n;
  const stackPointer = uc - 8n;
  const back = resumeRegisters(regs);

  const bytes = Buffer.alloc(Number(regs.rsp - RED_ZONE - stackPointer));
  const at = (address: bigint) => Number(address - stackPointer);
  bytes.writeBigUInt64LE(restorer, 0);
  koffi.encode(bytes, at(uc), ucontext, {
    uc_flags: UC_FP_XSTATE | UC_SIGCONTEXT_SS | UC_STRICT_RESTORE_SS,
    uc_link: 0n,
    uc_stack: { ss_sp: 0n, ss_flags: SS_LEAVE_UNCHANGED, ss_size: 0n },
    uc_mcontext: {
      r8: back.r8,
      r9: back.r9,
      r10: back.r10,
      r11: back.r11,
      r12: back.r12,
      r13: back.r13,
      r14: back.r14,
      r15: back.r15,
      di: back.rdi,
      si: back.rsi,
      bp: back.rbp,
      bx: back.rbx,
      dx: back.rdx,
      ax: back.rax,
      cx: back.rcx,
      sp: back.rsp,
      ip: back.rip,
      flags: back.eflags,
      cs: Number(back.cs),
      gs: Number(back.gs),
      fs: Number(back.fs),
      ss: Number(back.ss),
      err: 0n,
      trapno: 0n,
      oldmask: 0n,
      cr2: 0n,
      fpstate,
      reserved1: new Array(8).fill(0n),
    },
    uc_sigmask: sigmask,
  });
  xstate.copy(bytes, at(fpstate), 0, xstateSize);
  koffi.encode(bytes, at(fpstate) + SW_BYTES_OFFSET, fpxSwBytes, {
    magic1: FP_XSTATE_MAGIC1,
    extended_size: xstateSize + 4,
    xfeatures: xstate.readBigUInt64LE(SW_BYTES_OFFSET),
    xstate_size: xstateSize,
    padding: new Array(7).fill(0),
  });
  bytes.writeUInt32LE(FP_XSTATE_MAGIC2, at(fpstate) + xstateSize);
  return { stackPointer, outArea, lowest: stackPointer, bytes };
}
