import 'reflect-metadata';
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Kernel } from '../src/kernel/kernel.js';
import { PAGE_SIZE } from '../src/kernel/pagemap.js';
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '../src/kernel/syscalls.js';

const kernel = new Kernel();
let pid: number;

beforeAll(() => {
  // Not a child libuv knows of: it would reap the ptrace stops.
  pid = Number(execFileSync('sh', ['-c', 'sleep 600 </dev/null >/dev/null 2>&1 & echo $!'], { encoding: 'utf8' }).trim());
});

afterAll(() => {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // Gone already.
  }
});

describe('present pages (PAGEMAP_SCAN)', () => {
  it('a mapping with more runs than the kernel reports in one round: each run once, in order', async () => {
    const runs = 1500;
    const task = kernel.seize(pid);
    try {
      const length = BigInt(2 * runs * PAGE_SIZE);
      const base = task.mmapAnywhere(length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
      try {
        const written = Array.from({ length: runs }, (_, i) => ({ address: base + BigInt(2 * i * PAGE_SIZE), pages: 1 }));
        await kernel.memory.write(pid, written, (async function* () {
          yield Buffer.alloc(runs * PAGE_SIZE, 1);
        })());
        expect(kernel.pageRuns(pid, base, base + length, 'present')).toEqual(written);
      } finally {
        task.munmap(base, length);
      }
    } finally {
      task.release();
    }
  });
});
