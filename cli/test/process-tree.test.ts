import type { TasksRecord } from '@cr/plugin-tasks';
import { describe, expect, it } from 'vitest';
import { processTree } from '../src/image/process-tree.js';

const task = (pid: number, ppid: number, comm: string): TasksRecord => ({ pid, ppid, comm, credentials: { uids: [1000, 1001, 1001, 1001] } }) as unknown as TasksRecord;

describe('processTree', () => {
  it('puts each process under its saved parent, by PID; a process whose parent was not saved is a root', () => {
    const tree = processTree([task(30, 10, 'worker'), task(10, 1, 'server'), task(20, 10, 'worker'), task(40, 20, 'helper'), task(50, 7, 'other')]);
    const shape = (nodes: ReturnType<typeof processTree>): unknown[] => nodes.map((n) => [n.pid, n.comm, n.uid, ...(n.children.length > 0 ? [shape(n.children)] : [])]);
    expect(shape(tree)).toEqual([
      [10, 'server', 1001, [[20, 'worker', 1001, [[40, 'helper', 1001]]], [30, 'worker', 1001]]],
      [50, 'other', 1001],
    ]);
  });

  it('shows processes whose parents lead back to themselves as roots, each once', () => {
    const tree = processTree([task(10, 20, 'a'), task(20, 10, 'b'), task(30, 20, 'c'), task(40, 40, 'self')]);
    expect(tree.map((n) => [n.pid, n.children.map((c) => c.pid)])).toEqual([[10, []], [20, [30]], [40, []]]);
  });
});
