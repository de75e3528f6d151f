import 'reflect-metadata';
import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ImageError } from '../src/errors.js';
import { Kernel } from '../src/kernel/kernel.js';
import { PAGE_SIZE } from '../src/kernel/pagemap.js';
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '../src/kernel/syscalls.js';
import { fillFromFile, type FilePageRun } from '../src/kernel/file-into-task.js';
import type { RemoteRange } from '../src/kernel/libc.js';
import type { RemoteTask } from '../src/kernel/remote-task.js';

const kernel = new Kernel();
const PAGES = 64;
const GETPID = { name: 'getpid', nr: 39 };

let dir: string;
let pid: number;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'cr-file-into-task-'));
  // Not a child libuv knows of: it would reap the ptrace stops.
  pid = Number(execFileSync('sh', ['-c', 'sleep 600 </dev/null >/dev/null 2>&1 & echo $!'], { encoding: 'utf8' }).trim());
});

afterAll(() => {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // Gone already.
  }
  rmSync(dir, { recursive: true, force: true });
});

/** A file of `pages` pages, page i filled with the byte i + 1. */
function pageFile(name: string, pages: number): string {
  const path = join(dir, name);
  writeFileSync(path, Buffer.concat(Array.from({ length: pages }, (_, i) => Buffer.alloc(PAGE_SIZE, i + 1))));
  return path;
}

const fds = () => readdirSync(`/proc/${pid}/fd`).sort();

/** Seizes the sleeper, maps `pages` fresh pages in it, and runs `body` with the task and their address; leaves it as it was. */
async function withMapping(body: (task: RemoteTask, base: bigint) => Promise<void>, pages = PAGES): Promise<void> {
  const task = kernel.seize(pid);
  try {
    const base = task.mmapAnywhere(BigInt(pages * PAGE_SIZE), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
    try {
      await body(task, base);
    } finally {
      task.munmap(base, BigInt(pages * PAGE_SIZE));
    }
  } finally {
    task.release();
  }
}

/** What `fill` gives, its path and descriptor, closed afterwards. */
async function withFile(path: string, body: (file: { fd: number; path: string }) => Promise<void>): Promise<void> {
  const fd = openSync(path, 'r');
  try {
    await body({ fd, path });
  } finally {
    closeSync(fd);
  }
}

describe('a stopped task reading its pages from a file itself (TaskMemory.fillFromFile)', () => {
  it('reads runs from where they are in the file, in more calls than its scratch area holds ranges, read-only pages through cr; nothing else is touched', async () => {
    const path = pageFile('pages', PAGES);
    const before = fds();
    await withMapping(async (task, base) => {
      // Every other page of the first 48 (more ranges than a seized task's scratch area takes at once), then page 60 read-only.
      const runs: FilePageRun[] = Array.from({ length: 24 }, (_, i) => ({ address: base + BigInt(2 * i * PAGE_SIZE), pages: 1, position: 2 * i * PAGE_SIZE }));
      runs.push({ address: base + BigInt(60 * PAGE_SIZE), pages: 2, position: 60 * PAGE_SIZE });
      task.mprotect(base + BigInt(60 * PAGE_SIZE), BigInt(PAGE_SIZE), PROT_READ);
      const alongside: number[] = [];
      const bytes = readFileSync(path);
      await withFile(path, (file) =>
        kernel.memory.fillFromFile(task, file, runs, (async function* () {
          for (let i = 0; i < PAGES; i += 8) {
            alongside.push(i);
            yield bytes.subarray(i * PAGE_SIZE, (i + 8) * PAGE_SIZE);
          }
        })()),
      );
      expect(task.iovecCapacity()).toBeLessThan(24);
      // The companion stream was read to its end.
      expect(alongside).toEqual([0, 8, 16, 24, 32, 40, 48, 56]);
      const written = new Set(runs.flatMap((r) => Array.from({ length: r.pages }, (_, k) => Number(r.address - base) / PAGE_SIZE + k)));
      // Before reading: a read of a page never touched could map the zero page there.
      const present = kernel.pageRuns(pid, base, base + BigInt(PAGES * PAGE_SIZE), 'present');
      expect(present.flatMap((r) => Array.from({ length: r.pages }, (_, k) => Number(r.address - base) / PAGE_SIZE + k))).toEqual([...written].sort((a, b) => a - b));
      const memory = kernel.memory.readRun(pid, { address: base, pages: PAGES });
      for (let i = 0; i < PAGES; i++) expect(memory[i * PAGE_SIZE], `page ${i}`).toBe(written.has(i) ? i + 1 : 0);
    });
    expect(fds()).toEqual(before);
  });

  it('a file shorter than its runs: an ImageError naming the file, the position and the address where the read stopped; the task goes on', async () => {
    const path = pageFile('short', 10);
    const before = fds();
    await withMapping(async (task, base) => {
      const fill = withFile(path, (file) => kernel.memory.fillFromFile(task, file, [{ address: base, pages: 16, position: 0 }]));
      await expect(fill).rejects.toThrow(ImageError);
      await expect(fill).rejects.toThrow(
        `${path} is truncated: PID ${pid} read only ${10 * PAGE_SIZE} of ${16 * PAGE_SIZE} bytes at position 0 of it, stopping at 0x${(base + BigInt(10 * PAGE_SIZE)).toString(16)}, where its memory was to be restored`,
      );
      expect(task.syscall(GETPID)).toBe(BigInt(pid));
    });
    expect(fds()).toEqual(before);
  });

  it('a failure of the stream read alongside fails the fill once the task is done with its read; the task goes on', async () => {
    const path = pageFile('pages', PAGES);
    const before = fds();
    let closed = false;
    await withMapping(async (task, base) => {
      const failing = (async function* () {
        try {
          yield Buffer.alloc(PAGE_SIZE);
          throw new ImageError('the digest does not match');
        } finally {
          closed = true;
        }
      })();
      const fill = withFile(path, (file) => kernel.memory.fillFromFile(task, file, [{ address: base, pages: PAGES, position: 0 }], failing));
      await expect(fill).rejects.toThrow('the digest does not match');
      expect(task.syscall(GETPID)).toBe(BigInt(pid));
    });
    expect(closed).toBe(true);
    expect(fds()).toEqual(before);
  });
  it('shares a large fill with cr on the real kernel: whatever cr took are whole pieces from the start of the file, and every page is right', async () => {
    // 40 MiB: a piece of 32 MiB, then one of 8 MiB, which the task takes first. Whether cr gets to the first piece before the
    // task is done with the second depends on the machine's load, so either is right here; the split itself is checked below.
    const pages = 40 * 256;
    const path = pageFile('large', pages);
    const bytes = readFileSync(path);
    const before = fds();
    await withMapping(async (task, base) => {
      const mem = openSync(`/proc/${pid}/mem`, 'r+');
      const written: { position: number; length: number }[] = [];
      try {
        await withFile(path, (file) =>
          fillFromFile(task, file, [{ address: base, pages, position: 0 }], {
            chunks: (async function* () {
              for (let at = 0; at < bytes.length; at += 1 << 20) yield bytes.subarray(at, at + (1 << 20));
            })(),
            write: (data: Uint8Array, ranges: readonly RemoteRange[]) => {
              written.push({ position: Number(ranges[0]!.address - base), length: data.byteLength });
              let at = 0;
              for (const r of ranges) {
                writeSync(mem, data, at, r.length, Number(r.address));
                at += r.length;
              }
            },
          }),
        );
      } finally {
        closeSync(mem);
      }
      expect(written.map((w) => w.position)).toEqual(written.map((_, i) => i << 20));
      expect([0, 32 << 20]).toContain(written.reduce((sum, w) => sum + w.length, 0));
      const memory = kernel.memory.readRun(pid, { address: base, pages });
      for (let i = 0; i < pages; i++) expect(memory[i * PAGE_SIZE], `page ${i}`).toBe((i + 1) & 0xff);
    }, pages);
    expect(fds()).toEqual(before);
  });
});

/**
 * A task whose every call runs until cr has polled it `pollsPerCall` times, reading from `file`
 * into `memory` (addresses are offsets in it) when it ends: how far cr gets while the task works
 * is then the test's to choose, as it is not on a real machine.
 */
function scriptedTask(file: Uint8Array, memory: Uint8Array, pollsPerCall: number, capacity: number) {
  const calls: { call: 'populate' | 'preadv'; position?: number }[] = [];
  const running = <T>(end: () => T) => {
    let polls = 0;
    let result: T | undefined;
    const finish = () => (result ??= end());
    return { poll: () => (++polls >= pollsPerCall ? finish() : undefined), finish };
  };
  const task = {
    pid: 4242,
    iovecCapacity: () => capacity,
    pullFd: () => 100,
    ownPidfd: () => 101,
    close: () => undefined,
    startPopulateWrite: (_pidfd: number, ranges: readonly RemoteRange[]) => {
      calls.push({ call: 'populate' });
      return running(() => ranges.length > 0);
    },
    startPreadv: (_fd: number, ranges: readonly RemoteRange[], position: number) => {
      calls.push({ call: 'preadv', position });
      return running(() => {
        let at = position;
        for (const r of ranges) {
          memory.set(file.subarray(at, at + r.length), Number(r.address));
          at += r.length;
        }
        return at - position;
      });
    },
  } satisfies Pick<RemoteTask, 'pid' | 'iovecCapacity' | 'pullFd' | 'ownPidfd' | 'close' | 'startPopulateWrite' | 'startPreadv'>;
  return { task: task as unknown as RemoteTask, calls };
}

describe('how cr and the task share a fill (fillFromFile, with a scripted task)', () => {
  // Eight runs of one page each, at addresses apart, two ranges per call: four pieces of two pages each.
  const runs: FilePageRun[] = Array.from({ length: 8 }, (_, i) => ({ address: BigInt(2 * i * PAGE_SIZE), pages: 1, position: i * PAGE_SIZE }));
  const file = Buffer.concat(Array.from({ length: 8 }, (_, i) => Buffer.alloc(PAGE_SIZE, i + 1)));

  async function fill(pollsPerCall: number) {
    const memory = new Uint8Array(16 * PAGE_SIZE);
    const { task, calls } = scriptedTask(file, memory, pollsPerCall, 2);
    const crWrote: number[] = [];
    await fillFromFile(task, { fd: 3, path: '/img/pages' }, runs, {
      chunks: (async function* () {
        for (let at = 0; at < file.length; at += PAGE_SIZE) yield file.subarray(at, at + PAGE_SIZE);
      })(),
      write: (data, ranges) => {
        let at = 0;
        for (const r of ranges) {
          crWrote.push(Number(r.address) / (2 * PAGE_SIZE));
          memory.set(data.subarray(at, at + r.length), Number(r.address));
          at += r.length;
        }
      },
    });
    for (let i = 0; i < 8; i++) expect(memory[2 * i * PAGE_SIZE], `run ${i}`).toBe(i + 1);
    return { crWrote, taskRead: calls.filter((c) => c.call === 'preadv').map((c) => c.position! / PAGE_SIZE) };
  }

  it('a slow task: it takes pieces from the end, cr from the start, until they meet, and no run is written twice', async () => {
    const { crWrote, taskRead } = await fill(3);
    // The task read the last two pieces (runs 6–7, then 4–5); cr wrote runs 0–3 meanwhile, as it read them.
    expect(taskRead).toEqual([6, 4]);
    expect(crWrote).toEqual([0, 1, 2, 3]);
  });

  it('a task done with each call before cr looks: it reads every piece, cr only reads the stream to its end', async () => {
    const { crWrote, taskRead } = await fill(1);
    expect(crWrote).toEqual([]);
    expect(taskRead).toEqual([6, 4, 2, 0]);
  });
});
