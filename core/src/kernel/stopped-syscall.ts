import type { Registers } from './ptrace.js';
import { SYS } from './syscalls.js';

/** A syscall the layer knows by name (the keys of SYS). */
export type SyscallName = keyof typeof SYS;

/** The syscall a task was in when cr stopped it, read from its registers at the stop. */
export interface StoppedSyscall {
  /** Its name, when the layer knows the number. */
  name: SyscallName | undefined;
  nr: number;
  /** The six argument registers, in order (rdi, rsi, rdx, r10, r8, r9). */
  args: readonly bigint[];
  /** What rax held: a negative errno such as -ERESTART_RESTARTBLOCK when the stop interrupted it. */
  result: bigint;
}

const NAMES = new Map(Object.entries(SYS).map(([name, nr]) => [nr as number, name as SyscallName]));

/** The syscall `regs` were stopped in, or undefined when the task was not in one (orig_rax -1). */
export function stoppedSyscall(regs: Registers): StoppedSyscall | undefined {
  const nr = BigInt.asIntN(64, regs.orig_rax);
  if (nr < 0n) return undefined;
  return { name: NAMES.get(Number(nr)), nr: Number(nr), args: [regs.rdi, regs.rsi, regs.rdx, regs.r10, regs.r8, regs.r9], result: BigInt.asIntN(64, regs.rax) };
}
