import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { afterAll, beforeAll } from 'vitest';

/**
 * A process for the engine's tests with fake plugins to name as their target: a child that
 * sleeps, started before the file's tests and killed after them. The test process itself will
 * not do: cr refuses the process it runs in.
 */
export function targetProcess(): { readonly pid: number } {
  let child: ChildProcess | undefined;
  beforeAll(() => {
    child = spawn('sleep', ['1000'], { stdio: 'ignore' });
  });
  afterAll(async () => {
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, 'exit');
    child.kill('SIGKILL');
    await exited;
  });
  return {
    get pid() {
      return child!.pid!;
    },
  };
}
