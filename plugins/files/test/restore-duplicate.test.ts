import { describe, expect, it } from 'vitest';
import { KernelError, TargetError, type RemoteTask, type RestoreContext } from '@cr/core';
import { restoreFd } from '../src/restore.js';
import type { FilesRecord } from '../src/record.js';

const EBADF = 9;
const duplicate = { kind: 'duplicate', fd: 2, of: 1, closeOnExec: false } as unknown as FilesRecord;

/** A task whose dup3 fails with `errno`, and which has the descriptors of `open`; it counts the round trips asked of it. */
function taskWhere(errno: number | undefined, open: readonly number[]) {
  const asked: string[] = [];
  const task = {
    pid: 4242,
    dup3(oldFd: number, newFd: number) {
      asked.push(`dup3(${oldFd}, ${newFd})`);
      if (errno !== undefined) throw new KernelError('dup3', errno, 'in PID 4242');
    },
    hasFd(fd: number) {
      asked.push(`hasFd(${fd})`);
      return open.includes(fd);
    },
  };
  return { task: task as unknown as RemoteTask, asked };
}

describe('a descriptor that shares its open file with another of its process', () => {
  it('comes back with one dup3 and nothing else asked of the task', async () => {
    const { task, asked } = taskWhere(undefined, [1]);
    await restoreFd(task, duplicate, {} as RestoreContext, []);
    expect(asked).toEqual(['dup3(1, 2)']);
  });

  it('whose other descriptor is not in the image fails naming it and the selector that includes it', async () => {
    const { task } = taskWhere(EBADF, []);
    await expect(restoreFd(task, duplicate, {} as RestoreContext, [])).rejects.toThrow(
      new TargetError('cannot restore fd 2 of PID 4242: it shares its open file with fd 1, which is not in the image; include files:fd=1'),
    );
  });

  it("fails with dup3's own error when the other descriptor is there", async () => {
    const { task } = taskWhere(EBADF, [1]);
    await expect(restoreFd(task, duplicate, {} as RestoreContext, [])).rejects.toThrow(KernelError);
  });
});
