import type { Mapping } from './proc-maps.js';

/** Instruction sequences cr runs inside a task without writing any code into it. */
export const SYSCALL_RET = Buffer.from([0x0f, 0x05, 0xc3]);
/** glibc's, musl's and Go's signal restorer: `mov $15, %rax; syscall` (rt_sigreturn). */
const SIGRETURN_MOV_RAX = Buffer.from([0x48, 0xc7, 0xc0, 0x0f, 0x00, 0x00, 0x00, 0x0f, 0x05]);
/** The same with the shorter `mov $15, %eax` encoding. */
const SIGRETURN_MOV_EAX = Buffer.from([0xb8, 0x0f, 0x00, 0x00, 0x00, 0x0f, 0x05]);
export const SIGRETURN = [SIGRETURN_MOV_RAX, SIGRETURN_MOV_EAX];

/** Where the sequences cr needs are in one task's executable mappings. */
export interface CodeSites {
  /** `syscall; ret`: runs one syscall, then returns through the word at the stack pointer. */
  syscallRet: bigint;
  /** A signal restorer: rt_sigreturn through the frame at the stack pointer. */
  sigreturn: bigint;
}

/**
 * Finds the code sites in the executable mappings of a task, reading them with `read`. The
 * dynamic loader and libc come first (every dynamically linked program maps both, and they are
 * small), then the rest; a statically linked program has its own copies in its text. Undefined
 * if some sequence is nowhere (then cr cannot run code in the task safely; see docs/safety.md).
 */
export function findCodeSites(mappings: readonly Mapping[], read: (start: bigint, length: number) => Buffer): CodeSites | undefined {
  const executable = mappings.filter((v) => (v.prot & 4) !== 0 && (v.prot & 1) !== 0 && !v.path.startsWith('[v'));
  const rank = (v: Mapping) => (/\/ld-linux[^/]*$/.test(v.path) ? 0 : /\/libc[.-][^/]*$/.test(v.path) ? 1 : 2);
  let syscallRet: bigint | undefined;
  let sigreturn: bigint | undefined;
  for (const vma of [...executable].sort((a, b) => rank(a) - rank(b))) {
    const code = read(vma.start, Number(vma.end - vma.start));
    syscallRet ??= offsetOf(code, [SYSCALL_RET], vma.start);
    sigreturn ??= offsetOf(code, SIGRETURN, vma.start);
    if (syscallRet !== undefined && sigreturn !== undefined) return { syscallRet, sigreturn };
  }
  return undefined;
}

function offsetOf(code: Buffer, patterns: readonly Buffer[], base: bigint): bigint | undefined {
  for (const pattern of patterns) {
    const at = code.indexOf(pattern);
    if (at >= 0) return base + BigInt(at);
  }
  return undefined;
}
