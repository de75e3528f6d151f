import 'reflect-metadata';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Kernel } from '../src/kernel/kernel.js';
import { TaskReads } from '../src/kernel/reads-across.js';
import { RemoteTask } from '../src/kernel/remote-task.js';
import { TASK_READS } from '../src/kernel/task-reads.js';

const kernel = new Kernel();
const SIGNALS = Array.from({ length: 64 }, (_, i) => i + 1).filter((s) => s !== 9 && s !== 19);
const PR_GET_TIMERSLACK = 30;
const PR_GET_CHILD_SUBREAPER = 37;

/**
 * `threads N`: a process of N threads. Each thread i has an alternate signal stack of
 * 16384 + 4096·i bytes and a timer slack of 1000 + i ns of its own; the process handles SIGUSR1,
 * ignores SIGTERM, is a child subreaper and has ITIMER_REAL armed (interval 1000 s). Every thread
 * counts, and the main thread writes all the counts as a line every 20 ms.
 */
const FIXTURE = `
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/time.h>
#include <unistd.h>
static volatile long counts[16];
static void handler(int s) { (void)s; }
static void own_state(long i) {
  stack_t ss = { .ss_sp = malloc(16384 + i * 4096), .ss_size = 16384 + i * 4096, .ss_flags = 0 };
  sigaltstack(&ss, NULL);
  prctl(PR_SET_TIMERSLACK, 1000 + i);
}
static void *worker(void *arg) {
  long i = (long)arg;
  own_state(i);
  for (;;) { counts[i]++; usleep(2000); }
  return NULL;
}
int main(int argc, char **argv) {
  int n = argc > 1 ? atoi(argv[1]) : 1;
  signal(SIGUSR1, handler);
  signal(SIGTERM, SIG_IGN);
  prctl(PR_SET_CHILD_SUBREAPER, 1);
  struct itimerval t = { .it_interval = { 1000, 0 }, .it_value = { 2000, 0 } };
  setitimer(ITIMER_REAL, &t, NULL);
  own_state(0);
  for (long i = 1; i < n; i++) { pthread_t th; pthread_create(&th, NULL, worker, (void *)i); }
  for (;;) {
    counts[0]++;
    for (int i = 0; i < n; i++) printf("%ld%c", counts[i], i + 1 < n ? ' ' : '\\n');
    fflush(stdout);
    usleep(20000);
  }
}
`;

let dir: string;
let binary: string;
let pids: number[] = [];

/** The fixture with `threads` threads, writing to `name`.out; started outside libuv, which would reap the ptrace stops. */
function start(name: string, threads: number): { pid: number; out: string } {
  const out = join(dir, `${name}.out`);
  const pid = Number(execFileSync('sh', ['-c', `${binary} ${threads} </dev/null >${out} 2>&1 & echo $!`], { encoding: 'utf8' }).trim());
  pids.push(pid);
  return { pid, out };
}

/** The counts of each thread in the last full line the process wrote. */
function counts(out: string): number[] {
  const lines = existsSync(out) ? readFileSync(out, 'utf8').split('\n').slice(0, -1) : [];
  return (lines.at(-1) ?? '').split(' ').filter(Boolean).map(Number);
}

/** Waits until every one of the process's `threads` threads has counted past `than`. */
async function counting(out: string, threads: number, than: readonly number[] = []): Promise<void> {
  for (let i = 0; i < 1500; i++) {
    const now = counts(out);
    if (now.length === threads && now.every((c, t) => c > (than[t] ?? 0) + 2)) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`${out}: the threads stopped counting (${counts(out).join(' ')})`);
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'cr-reads-across-'));
  writeFileSync(join(dir, 'state.c'), FIXTURE);
  binary = join(dir, 'state');
  const built = spawnSync('cc', ['-O2', '-Wall', '-pthread', '-o', binary, join(dir, 'state.c')], { encoding: 'utf8' });
  if (built.status !== 0) throw new Error(`cc state.c failed: ${built.stderr}`);
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

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

describe('reads made in many live tasks at once (RemoteTask.readAcross, TaskReads)', () => {
  it('give each process and each thread what one-by-one reads give, and every task runs on unharmed', async () => {
    const procs = [start('a', 1), start('b', 4), start('c', 1)];
    for (const [i, p] of procs.entries()) await counting(p.out, i === 1 ? 4 : 1);
    const seized = procs.map((p) => kernel.seizeThreads(p.pid));
    const before = procs.map((p) => counts(p.out));
    let processes: { dispositions: unknown[]; itimer: unknown; subreaper: number; own: { tid: number; altStack: unknown; slack: bigint; tidAddress: bigint }[] }[];
    let oneByOne: typeof processes;
    try {
      const reads = new TaskReads();
      const asked = seized.map((tasks) => ({
        own: tasks.map((t) => ({
          tid: t.pid,
          altStack: reads.add(t, TASK_READS.altStack()),
          slack: reads.add(t, TASK_READS.prctl('prctl(PR_GET_TIMERSLACK)', PR_GET_TIMERSLACK)),
          tidAddress: reads.add(t, TASK_READS.tidAddress()),
        })),
        // More than one scratch area holds (62 of 32 bytes): they take several rounds.
        dispositions: SIGNALS.map((s) => reads.addShared(tasks, TASK_READS.signalAction(s))),
        itimer: reads.addShared(tasks, TASK_READS.itimer(0)),
        subreaper: reads.addShared(tasks, TASK_READS.prctlInt('prctl(PR_GET_CHILD_SUBREAPER)', PR_GET_CHILD_SUBREAPER)),
      }));
      reads.run();
      processes = asked.map((a) => ({
        dispositions: a.dispositions.map((answer) => answer()),
        itimer: a.itimer(),
        subreaper: a.subreaper(),
        own: a.own.map((o) => ({ tid: o.tid, altStack: o.altStack(), slack: o.slack(), tidAddress: o.tidAddress() })),
      }));
      oneByOne = seized.map((tasks) => ({
        dispositions: SIGNALS.map((s) => tasks[0]!.getSignalAction(s)),
        itimer: tasks[0]!.getItimer(0),
        subreaper: tasks[0]!.prctlGetInt('prctl(PR_GET_CHILD_SUBREAPER)', PR_GET_CHILD_SUBREAPER),
        own: tasks.map((t) => ({ tid: t.pid, altStack: t.getAltStack(), slack: t.prctl('prctl(PR_GET_TIMERSLACK)', PR_GET_TIMERSLACK), tidAddress: t.tidAddress() })),
      }));
    } finally {
      for (const tasks of seized) for (const t of tasks) t.release();
    }
    // The itimer counts down between the two reads: compare its interval, and the rest whole.
    const withoutTimeLeft = (ps: typeof processes) => ps.map((p) => ({ ...p, itimer: (p.itimer as { intervalUs: bigint }).intervalUs }));
    expect(withoutTimeLeft(processes)).toEqual(withoutTimeLeft(oneByOne));
    const threaded = processes[1]!;
    expect(threaded.own.map((o) => (o.altStack as { size: bigint }).size).sort()).toEqual([16384n, 20480n, 24576n, 28672n]);
    expect(threaded.own.map((o) => o.slack).sort()).toEqual([1000n, 1001n, 1002n, 1003n]);
    expect(threaded.itimer).toMatchObject({ intervalUs: 1_000_000_000n });
    expect(threaded.subreaper).toBe(1);
    const handlerOf = (signal: number) => (threaded.dispositions[SIGNALS.indexOf(signal)] as { handler: bigint }).handler;
    expect(handlerOf(15)).toBe(1n); // SIG_IGN
    expect(handlerOf(10)).toBeGreaterThan(1n);
    expect(handlerOf(12)).toBe(0n);
    for (const [i, p] of procs.entries()) await counting(p.out, i === 1 ? 4 : 1, before[i]);
  });

  it('fail by name when a process dies meanwhile, and give the others their registers back: they run on', async () => {
    const procs = [start('d', 1), start('e', 2), start('f', 1)];
    for (const [i, p] of procs.entries()) await counting(p.out, i === 1 ? 2 : 1);
    const seized = procs.map((p) => kernel.seizeThreads(p.pid));
    const before = procs.map((p) => counts(p.out));
    try {
      process.kill(procs[2]!.pid, 'SIGKILL');
      const reads = new TaskReads();
      for (const tasks of seized) for (const s of SIGNALS) reads.addShared(tasks, TASK_READS.signalAction(s));
      expect(() => reads.run()).toThrow(new RegExp(`${procs[2]!.pid}`));
    } finally {
      for (const tasks of seized.slice(0, 2)) for (const t of tasks) t.release();
    }
    for (const [i, p] of procs.slice(0, 2).entries()) await counting(p.out, i === 1 ? 2 : 1, before[i]);
  });

  it('throw a failed read by its name and PID once every task is back where it was', async () => {
    const procs = [start('g', 2), start('h', 1)];
    for (const [i, p] of procs.entries()) await counting(p.out, i === 0 ? 2 : 1);
    const seized = procs.map((p) => kernel.seizeThreads(p.pid));
    const before = procs.map((p) => counts(p.out));
    try {
      const requests = seized.flat().flatMap((task) => [
        { task, read: TASK_READS.altStack() },
        ...(task.pid === procs[1]!.pid ? [{ task, read: TASK_READS.timerOverrun(12345) }] : []),
        { task, read: TASK_READS.tidAddress() },
      ]);
      expect(() => RemoteTask.readAcross(requests)).toThrow(new RegExp(`timer_getoverrun\\(12345\\)\\(in PID ${procs[1]!.pid}\\): EINVAL`));
      // Every task answers again as it did before.
      expect(RemoteTask.readAcross(seized.flat().map((task) => ({ task, read: TASK_READS.altStack() })))).toEqual(seized.flat().map((t) => t.getAltStack()));
    } finally {
      for (const tasks of seized) for (const t of tasks) t.release();
    }
    for (const [i, p] of procs.entries()) await counting(p.out, i === 0 ? 2 : 1, before[i]);
  });
});
