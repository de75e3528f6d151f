import 'reflect-metadata';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Libc, type RemoteRange } from '../src/kernel/libc.js';
import { Kernel } from '../src/kernel/kernel.js';
import { pageRuns, PAGE_SIZE, type PageRun } from '../src/kernel/pagemap.js';
import { PageScans } from '../src/kernel/pagemap-scan.js';
import { readVmas, type Vma } from '../src/kernel/proc-maps.js';
import { TaskMemory } from '../src/kernel/task-memory.js';

/**
 * A process with six pages of its own, each filled with its index: pages 0, 1, 4 and 5 are
 * read-write, page 2 PROT_NONE and page 3 read-only, the two that process_vm_readv/writev cannot
 * reach and /proc/PID/mem must. It also maps its own executable privately and writes to the first
 * page of that mapping only. It prints both addresses, then waits.
 */
const FIXTURE = `
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
int main(int argc, char **argv) {
  (void)argc;
  long page = sysconf(_SC_PAGESIZE);
  unsigned char *p = mmap(NULL, 6 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  for (int i = 0; i < 6; i++) memset(p + i * page, i + 1, page);
  mprotect(p + 2 * page, page, PROT_NONE);
  mprotect(p + 3 * page, page, PROT_READ);
  int fd = open(argv[0], O_RDONLY);
  unsigned char *f = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  f[0] ^= 1;
  printf("ready %p %p\\n", (void *)p, (void *)f);
  fflush(stdout);
  pause();
  return 0;
}
`;

let dir: string;
let child: ChildProcess;
let pid: number;
let anon: bigint;
let file: bigint;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cr-task-memory-'));
  writeFileSync(join(dir, 'pages.c'), FIXTURE);
  const built = spawnSync('cc', ['-O2', '-Wall', '-o', join(dir, 'pages'), join(dir, 'pages.c')], { encoding: 'utf8' });
  if (built.status !== 0) throw new Error(`cc pages.c failed: ${built.stderr}`);
  child = spawn(join(dir, 'pages'), [], { stdio: ['ignore', 'pipe', 'inherit'] });
  const line = await new Promise<string>((ok, fail) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('\n')) ok(out);
    });
    child.once('exit', () => fail(new Error(`the fixture exited early: ${out}`)));
  });
  const [, a, f] = line.trim().split(' ');
  pid = child.pid!;
  anon = BigInt(a!);
  file = BigInt(f!);
});

afterAll(async () => {
  if (child && child.exitCode === null && child.signalCode === null) {
    const exited = new Promise((ok) => child.once('exit', ok));
    child.kill('SIGKILL');
    await exited;
  }
  rmSync(dir, { recursive: true, force: true });
});

const page = (value: number) => Buffer.alloc(PAGE_SIZE, value);
const expected = (values: readonly number[]) => Buffer.concat(values.map(page));

async function readAll(memory: TaskMemory, runs: readonly PageRun[], stopped?: readonly Vma[], from = pid): Promise<Buffer> {
  const chunks: Buffer[] = [];
  // Copied: the two buffers of the stream are reused.
  for await (const chunk of memory.read(from, runs, { stopped })) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks);
}

/** The real Libc, counting the bytes process_vm_readv copies, and its calls on libuv's pool. */
class CountingLibc extends Libc {
  pinned = 0;
  onPool = 0;

  override async processVmReadAsync(target: number, local: Uint8Array, remote: readonly RemoteRange[]): Promise<number> {
    this.onPool++;
    const copied = await super.processVmReadAsync(target, local, remote);
    this.pinned += copied;
    return copied;
  }

  override processVmRead(target: number, local: Uint8Array, remote: readonly RemoteRange[]): number {
    const copied = super.processVmRead(target, local, remote);
    this.pinned += copied;
    return copied;
  }
}

/** The mappings of `pid` that hold part of [start, end), each as a run of pages cut to that range. */
function runsByMapping(vmas: readonly Vma[], start: bigint, end: bigint): PageRun[] {
  return vmas
    .filter((v) => v.start < end && v.end > start)
    .map((v) => {
      const from = v.start > start ? v.start : start;
      const to = v.end < end ? v.end : end;
      return { address: from, pages: Number((to - from) / BigInt(PAGE_SIZE)) };
    });
}

/** Runs `body` with `pids` stopped (SIGSTOP, waited for in /proc), and lets them go on after. */
async function whileStopped<T>(pids: readonly number[], body: () => Promise<T>): Promise<T> {
  for (const p of pids) process.kill(p, 'SIGSTOP');
  for (const p of pids) while (!/\) T /.test(readFileSync(`/proc/${p}/stat`, 'utf8'))) await new Promise((ok) => setTimeout(ok, 5));
  try {
    return await body();
  } finally {
    for (const p of pids) process.kill(p, 'SIGCONT');
  }
}

async function* pieces(data: Buffer, size: number): AsyncGenerator<Uint8Array> {
  for (let off = 0; off < data.length; off += size) yield data.subarray(off, Math.min(off + size, data.length));
}

describe('pageRuns', () => {
  it('finds present anonymous pages, PROT_NONE and read-only ones included, as one run', () => {
    expect(pageRuns(pid, anon, anon + 6n * BigInt(PAGE_SIZE), 'present')).toEqual([{ address: anon, pages: 6 }]);
  });

  it('finds only the written pages of a private file mapping as private copies', () => {
    const end = file + 2n * BigInt(PAGE_SIZE);
    expect(pageRuns(pid, file, end, 'private-copies')).toEqual([{ address: file, pages: 1 }]);
    expect(pageRuns(pid, file, end, 'present').map((r) => r.address)).toEqual([file]);
  });

  it('PAGEMAP_SCAN finds the same pages, for several mappings with one open of the pagemap', () => {
    const anonEnd = anon + 6n * BigInt(PAGE_SIZE);
    const fileEnd = file + 2n * BigInt(PAGE_SIZE);
    const scans = new PageScans(new Libc(), pid);
    try {
      expect(scans.present(anon, anonEnd)).toEqual(pageRuns(pid, anon, anonEnd, 'present'));
      expect(scans.privateCopies(file, fileEnd)).toEqual(pageRuns(pid, file, fileEnd, 'private-copies'));
    } finally {
      scans.close();
    }
    const ranges = [
      { start: anon, end: anonEnd, selection: 'present' as const },
      { start: file, end: fileEnd, selection: 'private-copies' as const },
    ];
    expect(new Kernel().pageRunsOf(pid, ranges)).toEqual(ranges.map((r) => pageRuns(pid, r.start, r.end, r.selection)));
  });
});

describe('TaskMemory', () => {
  // After beforeAll: the address is known only then.
  const all = (): PageRun[] => [{ address: anon, pages: 6 }];

  it('reads every page, also those the process cannot read itself', async () => {
    expect((await readAll(new TaskMemory(), all())).equals(expected([1, 2, 3, 4, 5, 6]))).toBe(true);
  });

  it('reads runs split over small chunks and many ranges, in order', async () => {
    // One page per run, in reverse order, through 2-page chunks: several ranges per call, and the
    // unreadable pages land at the start, the middle and the end of chunks.
    const runs = [5, 4, 3, 2, 1, 0].map((i) => ({ address: anon + BigInt(i * PAGE_SIZE), pages: 1 }));
    expect((await readAll(new TaskMemory(undefined, 2 * PAGE_SIZE), runs)).equals(expected([6, 5, 4, 3, 2, 1]))).toBe(true);
  });

  it('writes every page, also those the process cannot write itself, from chunks of any size', async () => {
    const memory = new TaskMemory(undefined, 2 * PAGE_SIZE);
    const data = expected([11, 12, 13, 14, 15, 16]);
    await memory.write(pid, all(), pieces(data, 5000));
    expect((await readAll(memory, all())).equals(data)).toBe(true);
    // Back as they were, through runs of one and two pages.
    const runs = [{ address: anon, pages: 2 }, { address: anon + 2n * BigInt(PAGE_SIZE), pages: 1 }, { address: anon + 3n * BigInt(PAGE_SIZE), pages: 3 }];
    await memory.write(pid, runs, pieces(expected([1, 2, 3, 4, 5, 6]), 3 * PAGE_SIZE + 1));
    expect((await readAll(memory, all())).equals(expected([1, 2, 3, 4, 5, 6]))).toBe(true);
  });

  it('refuses a source longer or shorter than the runs', async () => {
    const memory = new TaskMemory();
    await expect(memory.write(pid, [{ address: anon, pages: 1 }], pieces(Buffer.alloc(PAGE_SIZE + 1, 1), PAGE_SIZE))).rejects.toThrow(/1 bytes more than the 4096 expected/);
    await expect(memory.write(pid, [{ address: anon, pages: 1 }], pieces(Buffer.alloc(PAGE_SIZE - 1, 1), PAGE_SIZE))).rejects.toThrow(/bytes where 4096 were expected/);
    // The page written by the refused attempts is restored.
    await memory.write(pid, [{ address: anon, pages: 1 }], pieces(page(1), PAGE_SIZE));
  });

  it('names /proc/PID/mem and the address when a page is not mapped at all', async () => {
    const unmapped = [{ address: 0x1000n, pages: 1 }];
    await expect(readAll(new TaskMemory(), unmapped)).rejects.toThrow(new RegExp(`/proc/${pid}/mem.*0x1000`));
  });

  it('fails the stream, not the process, when a page read ahead is not mapped', async () => {
    const runs = [{ address: anon, pages: 1 }, { address: 0x1000n, pages: 1 }];
    const seen: number[] = [];
    const slowly = async () => {
      for await (const chunk of new TaskMemory(undefined, PAGE_SIZE).read(pid, runs)) {
        seen.push(chunk[0]!);
        // Busy with the first chunk while the second one fails.
        await new Promise((ok) => setTimeout(ok, 50));
      }
    };
    await expect(slowly()).rejects.toThrow(/0x1000/);
    expect(seen).toEqual([1]);
  });

  it.each([
    ['at once, as a read this small is', undefined, 0],
    ["on libuv's pool, as a larger read is", 0, 2],
  ])('reads the mappings of a stopped process with process_vm_readv, and a page it cannot read itself through /proc/PID/mem (%s)', async (_how, readNowMax, onPool) => {
    const libc = new CountingLibc();
    const end = anon + 6n * BigInt(PAGE_SIZE);
    const data = await whileStopped([pid], async () => {
      const vmas = readVmas(pid);
      // mprotect made four mappings of the six pages: 0-1, 2 (PROT_NONE), 3 (read-only), 4-5.
      expect(runsByMapping(vmas, anon, end).map((r) => r.pages)).toEqual([2, 1, 1, 2]);
      return readAll(new TaskMemory(libc, undefined, readNowMax), runsByMapping(vmas, anon, end), vmas);
    });
    expect(data.equals(expected([1, 2, 3, 4, 5, 6]))).toBe(true);
    expect(libc.pinned).toBe(5 * PAGE_SIZE);
    expect(libc.onPool).toBe(onPool);
  });

  it('leaves the process running and its memory as it was', async () => {
    // Just continued (whileStopped), it runs for a moment on its way back into pause().
    const state = () => readFileSync(`/proc/${pid}/stat`, 'utf8');
    for (let i = 0; i < 1000 && /\) R /.test(state()); i++) await new Promise((ok) => setTimeout(ok, 10));
    expect(state()).toMatch(/\) S /);
  });
});

/**
 * A parent and its child sharing 64 pages copy-on-write since the fork: each prints its PID and
 * the pages' address, then waits.
 */
const FORKED = `
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
int main(void) {
  long page = sysconf(_SC_PAGESIZE);
  unsigned char *p = mmap(NULL, 64 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  for (int i = 0; i < 64; i++) memset(p + i * page, i + 1, page);
  setvbuf(stdout, NULL, _IONBF, 0);
  if (fork() == 0) {
    printf("child %d %p\\n", getpid(), (void *)p);
    pause();
    return 0;
  }
  printf("parent %d %p\\n", getpid(), (void *)p);
  pause();
  return 0;
}
`;

describe('TaskMemory of a process sharing pages with its child', () => {
  let forked: ChildProcess;
  let parent: number;
  let childPid: number;
  let shared: bigint;

  beforeAll(async () => {
    writeFileSync(join(dir, 'forked.c'), FORKED);
    const built = spawnSync('cc', ['-O2', '-Wall', '-o', join(dir, 'forked'), join(dir, 'forked.c')], { encoding: 'utf8' });
    if (built.status !== 0) throw new Error(`cc forked.c failed: ${built.stderr}`);
    forked = spawn(join(dir, 'forked'), [], { stdio: ['ignore', 'pipe', 'inherit'] });
    const lines = await new Promise<string[]>((ok, fail) => {
      let out = '';
      forked.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        const done = out.split('\n').filter(Boolean);
        if (done.length === 2) ok(done);
      });
      forked.once('exit', () => fail(new Error(`the fixture exited early: ${out}`)));
    });
    const words = Object.fromEntries(lines.map((l) => l.split(' ')).map(([who, p, a]) => [who!, { pid: Number(p), address: BigInt(a!) }]));
    parent = words.parent!.pid;
    childPid = words.child!.pid;
    shared = words.parent!.address;
  });

  afterAll(async () => {
    if (childPid) process.kill(childPid, 'SIGKILL');
    if (forked && forked.exitCode === null && forked.signalCode === null) {
      const exited = new Promise((ok) => forked.once('exit', ok));
      forked.kill('SIGKILL');
      await exited;
    }
  });

  it('reads pages shared copy-on-write through /proc/PID/mem, so that the kernel does not copy them', async () => {
    const libc = new CountingLibc();
    const end = shared + 64n * BigInt(PAGE_SIZE);
    const sharedBytes = () => readVmas(parent).find((v) => v.start <= shared && shared < v.end)!.sharedResident;
    expect(sharedBytes()).toBe(64 * PAGE_SIZE);
    const data = await whileStopped([parent, childPid], async () => {
      const vmas = readVmas(parent);
      return readAll(new TaskMemory(libc), runsByMapping(vmas, shared, end), vmas, parent);
    });
    expect(data.equals(Buffer.concat(Array.from({ length: 64 }, (_, i) => page(i + 1))))).toBe(true);
    expect(libc.pinned).toBe(0);
    expect(sharedBytes()).toBe(64 * PAGE_SIZE);
  });
});
