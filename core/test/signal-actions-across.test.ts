import 'reflect-metadata';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Kernel } from '../src/kernel/kernel.js';
import { RemoteTask } from '../src/kernel/remote-task.js';

const kernel = new Kernel();
const SIGNALS = Array.from({ length: 64 }, (_, i) => i + 1).filter((s) => s !== 9 && s !== 19);
let dir: string;
let pids: number[] = [];

/**
 * A python process with dispositions of its own (`setup`), writing a line every 20 ms to `out`;
 * started outside libuv, which would reap the ptrace stops.
 */
function start(name: string, setup: string): { pid: number; out: string } {
  const script = join(dir, `${name}.py`);
  const out = join(dir, `${name}.out`);
  writeFileSync(
    script,
    ['import signal, sys, time', 'def h(*a): pass', setup, `f = open(${JSON.stringify(out)}, 'a', buffering=1)`, 'f.write("ready\\n")', 'n = 0', 'while True:', '    n += 1; f.write(f"{n}\\n"); time.sleep(0.02)'].join('\n'),
  );
  const pid = Number(execFileSync('sh', ['-c', `python3 ${script} </dev/null >/dev/null 2>&1 & echo $!`], { encoding: 'utf8' }).trim());
  pids.push(pid);
  return { pid, out };
}

const count = (out: string) => (existsSync(out) ? readFileSync(out, 'utf8').split('\n').filter(Boolean).length : 0);

async function lines(out: string, atLeast: number): Promise<number> {
  for (let i = 0; i < 1500; i++) {
    const n = count(out);
    if (n >= atLeast) return n;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`${out} stayed below ${atLeast} lines`);
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'cr-actions-across-'));
  return () => rmSync(dir, { recursive: true, force: true });
});

afterEach(() => {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Gone already.
    }
  }
  pids = [];
});

describe('signal dispositions read in many live processes at once (RemoteTask.getSignalActionsOf)', () => {
  it('are what each process has, read one by one, and every process runs on unharmed', async () => {
    const procs = [
      start('a', 'signal.signal(signal.SIGUSR1, h); signal.signal(signal.SIGTERM, signal.SIG_IGN)'),
      start('b', 'signal.signal(signal.SIGUSR2, h); signal.signal(signal.SIGRTMIN + 3, h)'),
      start('c', 'signal.signal(signal.SIGHUP, signal.SIG_IGN)'),
    ];
    for (const p of procs) await lines(p.out, 2);
    const tasks = procs.map((p) => kernel.seize(p.pid));
    let together: ReturnType<typeof RemoteTask.getSignalActionsOf>;
    let oneByOne: ReturnType<typeof RemoteTask.getSignalActionsOf>;
    try {
      together = RemoteTask.getSignalActionsOf(tasks, SIGNALS);
      oneByOne = tasks.map((t) => SIGNALS.map((s) => t.getSignalAction(s)));
    } finally {
      for (const t of tasks) t.release();
    }
    expect(together).toEqual(oneByOne);
    const handlerOf = (i: number, signal: number) => together[i]![SIGNALS.indexOf(signal)]!.handler;
    expect(handlerOf(0, 15)).toBe(1n); // SIG_IGN
    expect(handlerOf(0, 10)).toBeGreaterThan(1n);
    expect(handlerOf(1, 10)).toBe(0n);
    expect(handlerOf(1, 37)).toBeGreaterThan(1n);
    expect(handlerOf(2, 1)).toBe(1n);
    for (const p of procs) await lines(p.out, count(p.out) + 5);
  });

  it('fail by name when a process dies meanwhile, and give the others their registers back: they run on', async () => {
    const procs = [start('d', ''), start('e', ''), start('f', '')];
    for (const p of procs) await lines(p.out, 2);
    const tasks = procs.map((p) => kernel.seize(p.pid));
    try {
      process.kill(procs[2]!.pid, 'SIGKILL');
      expect(() => RemoteTask.getSignalActionsOf(tasks, SIGNALS)).toThrow(new RegExp(`${procs[2]!.pid}`));
    } finally {
      for (const t of tasks.slice(0, 2)) t.release();
    }
    for (const p of procs.slice(0, 2)) await lines(p.out, count(p.out) + 5);
  });
});
