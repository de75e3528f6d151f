import { Kernel, KernelError } from '@cr/core';
import { afterEach, describe, expect, it } from 'vitest';
import { Cleanup, startUntilReady } from './helpers/cli.js';

const kernel = new Kernel();
const cleanup = new Cleanup();
afterEach(() => cleanup.run());

const GETPID = { name: 'getpid', nr: 39 };
const CLOSE = { name: 'close', nr: 3 };
const UNAME = { name: 'uname', nr: 63 };

describe('a syscall the kernel layer lacks (the escape hatch of docs/plugins.md)', () => {
  it('runs in cr, with integer and memory arguments, and fails with the errno named', () => {
    expect(kernel.syscall(GETPID)).toBe(BigInt(process.pid));
    const utsname = Buffer.alloc(6 * 65);
    expect(kernel.syscall(UNAME, [utsname])).toBe(0n);
    expect(utsname.toString('utf8', 0, 5)).toBe('Linux');
    const err = (() => {
      try {
        kernel.syscall(CLOSE, [987_654], 'fd 987654');
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(KernelError);
    expect((err as KernelError).code).toBe('EBADF');
    expect((err as Error).message).toMatch(/^close\(fd 987654\): EBADF /);
  });

  it('runs inside a seized task, which goes on unchanged', async () => {
    const child = await startUntilReady('sh', ['-c', 'echo ready; exec sleep 60'], cleanup);
    const pid = child.pid!;
    const task = kernel.seize(pid);
    try {
      expect(task.syscall(GETPID)).toBe(BigInt(pid));
      expect(() => task.syscall(CLOSE, [987_654])).toThrowError(new RegExp(`^close\\(in PID ${pid}\\): EBADF `));
    } finally {
      task.release();
    }
    expect(child.exitCode).toBeNull();
  });
});
