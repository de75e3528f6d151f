import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { RemoteTask, type SignalAction } from '@cr/core';
import { Libc, Ptrace } from '@cr/core/engine';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Cleanup, REPO, tempDir } from './helpers/cli.js';

const SYS_read = 0;
const SYS_mmap = 9;
const SYS_munmap = 11;
const SYS_getpid = 39;

const ptrace = new Ptrace(new Libc());
const cleanup = new Cleanup();
afterEach(() => cleanup.run());

let dir: string;
let ticker: string;
beforeAll(() => {
  dir = tempDir('cr-ptrace-');
  ticker = join(dir, 'ticker');
  const built = spawnSync('cc', ['-O2', '-Wall', '-o', ticker, join(REPO, 'test/fixtures/ticker.c')], { encoding: 'utf8' });
  if (built.status !== 0) throw new Error(`cc failed: ${built.stderr}`);
});
afterAll(() => spawnSync('rm', ['-rf', dir]));

const sleep = (ms: number) => new Promise((ok) => setTimeout(ok, ms));

/**
 * Starts the ticker through a shell that exits at once, so the ticker is not our child: libuv
 * must not reap the stops ptrace reports. Its stdin is opened read-write: opening a fifo that
 * way does not wait for a writer, so the shell cannot block on it.
 */
async function startTicker(mode: string, out: string, stdin = '/dev/null'): Promise<number> {
  const pid = cleanup.orphan(Number(execFileSync('sh', ['-c', `${ticker} ${mode} > ${out} 2>&1 0<> ${stdin} & echo $!`], { encoding: 'utf8' }).trim()));
  for (let i = 0; i < 500 && !(existsSync(out) && readFileSync(out, 'utf8').includes('ready')); i++) await sleep(20);
  return pid;
}

/** The ticks printed once there are at least `count` (or after 20 s); fails on any "ERROR" line. */
async function ticks(out: string, count: number): Promise<number[]> {
  const read = () => readFileSync(out, 'utf8').trim().split('\n').slice(1);
  for (let i = 0; i < 1000 && read().length < count; i++) await sleep(20);
  const lines = read();
  expect(lines.filter((l) => l.startsWith('ERROR'))).toEqual([]);
  return lines.map(Number);
}

/** Stops the task, runs real syscalls inside it, checks what they did, and lets it go. */
function exerciseRemoteSyscalls(pid: number): void {
  const regs = ptrace.stop(pid);
  try {
    expect(ptrace.remoteSyscall(pid, SYS_getpid)).toBe(BigInt(pid));
    const page = ptrace.remoteSyscallChecked(pid, SYS_mmap, 'mmap', [0n, 4096n, 3n, 0x22n, -1n, 0n]);
    const bytes = Buffer.from('written into the stopped task');
    ptrace.writeMemory(pid, page, bytes);
    expect(ptrace.readMemory(pid, page, bytes.length)).toEqual(bytes);
    expect(readFileSync(`/proc/${pid}/maps`, 'utf8')).toContain(page.toString(16));
    expect(ptrace.remoteSyscall(pid, SYS_munmap, [page, 4096n])).toBe(0n);
    expect(ptrace.remoteSyscall(pid, SYS_read, [9999n, 0n, 0n])).toBe(-9n);
    expect(() => ptrace.remoteSyscallChecked(pid, SYS_read, 'read', [9999n, 0n, 0n])).toThrowError(/read\(in PID \d+\): EBADF \(bad file descriptor\)/i);
    expect(ptrace.getRegs(pid)).toEqual(regs);
  } finally {
    ptrace.detach(pid);
  }
}

describe('ptrace layer: stop a task, run syscalls inside it, let it carry on', () => {
  it('a task asleep in nanosleep wakes up on time and counts on', async () => {
    const out = join(dir, 'nanosleep.out');
    const pid = await startTicker('nanosleep', out);
    await sleep(500);
    exerciseRemoteSyscalls(pid);
    const seen = await ticks(out, 5);
    expect(seen.length).toBeGreaterThanOrEqual(5);
    expect(seen).toEqual(seen.map((_, i) => i + 1));
  });

  it('a task in pause() still wakes on its signal', async () => {
    const out = join(dir, 'pause.out');
    const pid = await startTicker('pause', out);
    process.kill(pid, 'SIGUSR1');
    expect(await ticks(out, 1)).toEqual([1]);
    exerciseRemoteSyscalls(pid);
    process.kill(pid, 'SIGUSR1');
    expect(await ticks(out, 2)).toEqual([1, 2]);
    process.kill(pid, 'SIGUSR1');
    expect(await ticks(out, 3)).toEqual([1, 2, 3]);
  });

  it('a task blocked in read() gets the bytes written after it was released', async () => {
    const out = join(dir, 'read.out');
    const fifo = join(dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    const pid = await startTickerWithWriter(fifo, out);
    exerciseRemoteSyscalls(pid);
    writeSync(pipe!, 'bc');
    expect(await ticks(out, 3)).toEqual([1, 2, 3]);
  });
});

describe('a batch of syscalls in a task cr holds (what restore uses for signal dispositions)', () => {
  it('runs every call in one stop, each checked by name, and leaves no page and no stop behind', async () => {
    const out = join(dir, 'batch.out');
    const pid = await startTicker('nanosleep', out);
    const mapsBefore = readFileSync(`/proc/${pid}/maps`, 'utf8');
    const SIGUSR2 = 12;
    const SIGWINCH = 28;
    const SIGRTMIN_2 = 36;
    const SA_RESTART = 0x10000000n;
    const SA_RESTORER = 0x04000000n;
    const wanted = new Map<number, SignalAction>([
      [SIGUSR2, { handler: 1n, flags: SA_RESTART, restorer: 0n, mask: 1n << 14n }],
      [SIGWINCH, { handler: 0n, flags: SA_RESTART | SA_RESTORER, restorer: 0x1000n, mask: 0n }],
      [SIGRTMIN_2, { handler: 1n, flags: 0n, restorer: 0n, mask: (1n << 9n) | (1n << 63n) }],
    ]);
    const task = new RemoteTask(pid, ptrace, ptrace.stop(pid));
    try {
      task.setSignalActions(wanted);
      for (const [signal, action] of wanted) expect(task.getSignalAction(signal)).toEqual(action);
      // SIGKILL's disposition cannot be set: the call fails, and says which it was.
      expect(() => task.setSignalActions(new Map([[SIGUSR2, wanted.get(SIGUSR2)!], [9, wanted.get(SIGUSR2)!]]))).toThrowError(/rt_sigaction\(9\)\(in PID \d+\): EINVAL/);
    } finally {
      task.release();
    }
    expect(readFileSync(`/proc/${pid}/maps`, 'utf8')).toBe(mapsBefore);
    const ignored = BigInt(`0x${/^SigIgn:\s*([0-9a-f]+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]}`);
    expect(ignored & ((1n << BigInt(SIGUSR2 - 1)) | (1n << BigInt(SIGRTMIN_2 - 1)))).toBe((1n << BigInt(SIGUSR2 - 1)) | (1n << BigInt(SIGRTMIN_2 - 1)));
    // The SIGSTOP that ended each batch was never let through: the task counts on.
    const seen = await ticks(out, 5);
    expect(seen).toEqual(seen.map((_, i) => i + 1));
  });
});

let pipe: number | undefined;
/** The ticker reading from a fifo: after the first byte it is blocked in read(). */
async function startTickerWithWriter(fifo: string, out: string): Promise<number> {
  const pid = await startTicker('read', out, fifo);
  pipe = openSync(fifo, 'w');
  cleanup.add(() => {
    closeSync(pipe!);
    pipe = undefined;
  });
  writeSync(pipe, 'a');
  await ticks(out, 1);
  return pid;
}
