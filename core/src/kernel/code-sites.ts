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

/** A sequence found in a mapped file: the file (device and inode) and where in it. */
interface FileSite {
  kind: keyof CodeSites;
  device: string;
  inode: number;
  fileOffset: bigint;
  pattern: Buffer;
}

/**
 * Where the sequences were found in files before: the processes of a tree map the same loader and
 * libc, so each after the first checks the few bytes there instead of reading those files' code.
 */
const knownSites: FileSite[] = [];

/**
 * Finds the code sites in the executable mappings of a task, reading them with `read`. Where a
 * sequence was found before in a file this task maps too, its bytes are checked there first.
 * Otherwise the dynamic loader and libc come first (every dynamically linked program maps both,
 * and they are small), then the rest; a statically linked program has its own copies in its text.
 * Undefined if some sequence is nowhere (then cr cannot run code in the task safely; see
 * docs/safety.md).
 */
export function findCodeSites(mappings: readonly Mapping[], read: (start: bigint, length: number) => Buffer): CodeSites | undefined {
  const executable = mappings.filter((v) => (v.prot & 4) !== 0 && (v.prot & 1) !== 0 && !v.path.startsWith('[v'));
  let syscallRet = knownSite('syscallRet', executable, read);
  let sigreturn = knownSite('sigreturn', executable, read);
  if (syscallRet !== undefined && sigreturn !== undefined) return { syscallRet, sigreturn };
  const rank = (v: Mapping) => (/\/ld-linux[^/]*$/.test(v.path) ? 0 : /\/libc[.-][^/]*$/.test(v.path) ? 1 : 2);
  for (const vma of [...executable].sort((a, b) => rank(a) - rank(b))) {
    const code = read(vma.start, Number(vma.end - vma.start));
    syscallRet ??= siteIn(vma, code, 'syscallRet', [SYSCALL_RET]);
    sigreturn ??= siteIn(vma, code, 'sigreturn', SIGRETURN);
    if (syscallRet !== undefined && sigreturn !== undefined) return { syscallRet, sigreturn };
  }
  return undefined;
}

/** The address of a sequence of `kind` found before in a file one of `executable` maps, if its bytes are there. */
function knownSite(kind: keyof CodeSites, executable: readonly Mapping[], read: (start: bigint, length: number) => Buffer): bigint | undefined {
  for (const site of knownSites) {
    if (site.kind !== kind) continue;
    const vma = executable.find((v) => v.inode === site.inode && v.device === site.device && v.offset <= site.fileOffset && site.fileOffset + BigInt(site.pattern.length) <= v.offset + (v.end - v.start));
    if (!vma) continue;
    const address = vma.start + (site.fileOffset - vma.offset);
    if (read(address, site.pattern.length).equals(site.pattern)) return address;
  }
  return undefined;
}

/** The address of the first of `patterns` in `code`, the contents of `vma`, remembered when `vma` maps a file. */
function siteIn(vma: Mapping, code: Buffer, kind: keyof CodeSites, patterns: readonly Buffer[]): bigint | undefined {
  for (const pattern of patterns) {
    const at = code.indexOf(pattern);
    if (at < 0) continue;
    const site = { kind, device: vma.device, inode: vma.inode, fileOffset: vma.offset + BigInt(at), pattern };
    const known = knownSites.some((k) => k.kind === kind && k.device === site.device && k.inode === site.inode && k.fileOffset === site.fileOffset);
    if (vma.inode !== 0 && !known) knownSites.push(site);
    return vma.start + BigInt(at);
  }
  return undefined;
}
