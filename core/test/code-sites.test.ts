import { describe, expect, it } from 'vitest';
import { findCodeSites, SIGRETURN, SYSCALL_RET } from '../src/kernel/code-sites.js';
import type { Mapping } from '../src/kernel/proc-maps.js';

const PAGE = 4096;

/** A loader's text with `syscall; ret` and a libc's with the rt_sigreturn restorer, at offsets of their own. */
function file(inode: number, pattern: Buffer, at: number): { inode: number; bytes: Buffer } {
  const bytes = Buffer.alloc(4 * PAGE, 0x90);
  pattern.copy(bytes, at);
  return { inode, bytes };
}
const loader = file(101, SYSCALL_RET, 0x1234);
const libc = file(102, SIGRETURN[0]!, 0x2345);

/** A process mapping both files at `base` and `base` + 16 pages, and the reads `findCodeSites` makes of it. */
function processAt(base: bigint, memory = new Map<bigint, Buffer>()): { mappings: Mapping[]; read: (start: bigint, length: number) => Buffer; reads: number[] } {
  const map = (start: bigint, f: { inode: number; bytes: Buffer }, path: string): Mapping => {
    memory.set(start, Buffer.from(f.bytes));
    return { start, end: start + BigInt(f.bytes.length), prot: 5, shared: false, offset: 0n, device: '08:01', inode: f.inode, path };
  };
  const mappings = [map(base, loader, '/lib64/ld-linux-x86-64.so.2'), map(base + 16n * BigInt(PAGE), libc, '/lib64/libc.so.6')];
  const reads: number[] = [];
  const read = (start: bigint, length: number) => {
    reads.push(length);
    const [at, bytes] = [...memory].find(([s, b]) => s <= start && start < s + BigInt(b.length))!;
    return bytes.subarray(Number(start - at), Number(start - at) + length);
  };
  return { mappings, read, reads };
}

describe('code sites (findCodeSites)', () => {
  it('are found by reading the code of the loader and libc, then, in a process mapping the same files elsewhere, by checking a few bytes', () => {
    const first = processAt(0x7f0000000000n);
    expect(findCodeSites(first.mappings, first.read)).toEqual({ syscallRet: 0x7f0000000000n + 0x1234n, sigreturn: 0x7f0000010000n + 0x2345n });
    expect(Math.max(...first.reads)).toBe(4 * PAGE);

    const second = processAt(0x7e0000000000n);
    expect(findCodeSites(second.mappings, second.read)).toEqual({ syscallRet: 0x7e0000000000n + 0x1234n, sigreturn: 0x7e0000010000n + 0x2345n });
    // No file's code is read again: only the bytes of each sequence where it was found before.
    expect(Math.max(...second.reads)).toBeLessThanOrEqual(SIGRETURN[0]!.length);
  });

  it('are looked for again where the bytes a process has at the known place differ', () => {
    const memory = new Map<bigint, Buffer>();
    const third = processAt(0x7d0000000000n, memory);
    // This process's private copy of the loader's page has other bytes at the known place, and the sequence further on.
    const text = memory.get(0x7d0000000000n)!;
    text.fill(0x90, 0x1234, 0x1237);
    SYSCALL_RET.copy(text, 0x3000);
    expect(findCodeSites(third.mappings, third.read)).toEqual({ syscallRet: 0x7d0000000000n + 0x3000n, sigreturn: 0x7d0000010000n + 0x2345n });
  });
});
