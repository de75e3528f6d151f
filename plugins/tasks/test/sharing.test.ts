import type { Kernel, SharedTable } from '@cr/core';
import { describe, expect, it } from 'vitest';
import { tableSharing, type SharingTask } from '../src/sharing.js';

/**
 * A kernel whose processes hold the tables `tables` gives them (a table is a number; equal numbers
 * are one table), compared as kcmp(2) does: by an order, 0 when they are one.
 */
function kernelWith(tables: Record<number, Partial<Record<SharedTable, number>>>): Kernel {
  const table = (pid: number, kind: SharedTable) => tables[pid]?.[kind] ?? pid * 100;
  const compareTables = (a: number, b: number, kind: SharedTable) => Math.sign(table(a, kind) - table(b, kind)) as -1 | 0 | 1;
  return {
    compareTables,
    sharedBetween: (a: number, b: number) => (['vm', 'files', 'fs', 'sighand'] as const).filter((kind) => compareTables(a, b, kind) === 0),
  } as unknown as Kernel;
}

const task = (pid: number, ppid: number): SharingTask => ({ pid, ppid, comm: `p${pid}` });

describe('tables shared between the processes of a tree', () => {
  it('finds what each child shares with its parent, among processes that share nothing', () => {
    // 10 → 11 (CLONE_FILES), 10 → 12 (fork), 11 → 13 (CLONE_FILES | CLONE_FS)
    const kernel = kernelWith({ 10: { files: 1, fs: 5 }, 11: { files: 1, fs: 5 }, 13: { files: 1, fs: 5 }, 12: {} });
    const tree = [task(10, 1), task(11, 10), task(12, 10), task(13, 11)];
    const { shares, refusals } = tableSharing(kernel, tree);
    expect(refusals).toEqual([]);
    expect(Object.fromEntries(shares)).toEqual({ 10: [], 11: ['files', 'fs'], 12: [], 13: ['files', 'fs'] });
  });

  it('refuses a table two siblings share without their parent, and signal handlers shared at all', () => {
    const kernel = kernelWith({ 11: { files: 7 }, 12: { files: 7, sighand: 3 }, 13: { sighand: 3 } });
    const tree = [task(10, 1), task(11, 10), task(12, 10), task(13, 12)];
    expect(tableSharing(kernel, tree).refusals).toEqual([
      'PID 12 (p12) shares its fd table (CLONE_FILES) with PID 11 (p11), not with its parent PID 10; cr restores a table shared only by a parent and the children it made with clone()',
      'PID 13 (p13) shares its signal handlers (CLONE_SIGHAND) with PID 12 (p12); CLONE_SIGHAND comes with CLONE_VM (one address space for two processes), which cr cannot restore',
    ]);
  });

  it("refuses a root that shares a table with its parent, which is not saved", () => {
    const kernel = kernelWith({ 1: { fs: 9 }, 10: { fs: 9 } });
    expect(tableSharing(kernel, [task(10, 1)]).refusals).toEqual([
      'PID 10 (p10) shares its working directory, root and umask (CLONE_FS) with its parent PID 1, which is not checkpointed; checkpoint the parent with it',
    ]);
  });
});
