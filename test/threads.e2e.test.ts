import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Kernel } from '@cr/core';
import { Cleanup, REPO, crJson, tempDir } from './helpers/cli.js';
import { loadImage, writeMutant } from './helpers/image-mutants.js';
import { checkpointAndRestore, startLogged } from './helpers/trees.js';
import { checkpointAndKill, compileFixture, crAsync, lines, processState, restoreDetached, sleep, startFixture, tracerOf, waitFor } from './helpers/processes.js';

const BIN = join(REPO, 'cli', 'bin', 'run.js');
const TGKILL = { name: 'tgkill', nr: 234 };
const cleanup = new Cleanup();
afterEach(() => cleanup.run());

let bin: string;
const fixture = (name: string) => join(bin, name);
beforeAll(() => {
  bin = tempDir('cr-threads-bin-');
  chmodSync(bin, 0o755);
  for (const name of ['threads', 'blocked', 'chain', 'zombie-leader', 'procstate']) compileFixture(name, bin, ['-pthread']);
});
afterAll(() => cleanup.dir(bin) && cleanup.run());

/** What /proc shows of each thread of `pid`, by thread id: its name, signal mask and queue, nice value, scheduling policy and CPU affinity. */
function threadsOf(pid: number): Map<number, { comm: string; blocked: string; pending: string; nice: string; policy: string; cpus: string }> {
  const tids = readdirSync(`/proc/${pid}/task`).map(Number);
  return new Map(
    tids.map((tid) => {
      const comm = readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim();
      const status = readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8');
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const [nice, policy] = [fields[16]!, fields[38]!];
      const field = (name: string) => new RegExp(`^${name}:\\s+(\\S+)`, 'm').exec(status)![1]!;
      return [tid, { comm, blocked: field('SigBlk'), pending: field('SigPnd'), nice, policy, cpus: field('Cpus_allowed_list') }];
    }),
  );
}

interface SavedThread {
  tid: number;
  rseq?: { address: string };
  clearChildTid: string;
  robustList: { head: string };
  altStack: { sp: string; size: string };
}

/** Checks what only the kernel knows of each thread against the image: rseq, exit futex, robust list, alternate stack. */
function expectKernelThreadState(pid: number, saved: readonly SavedThread[]): void {
  const kernel = new Kernel();
  const tasks = kernel.seizeThreads(pid);
  const others = tasks.slice(1);
  try {
    expect(others.map((t) => t.pid).sort()).toEqual(saved.map((t) => t.tid).sort());
    for (const task of others) {
      const thread = saved.find((t) => t.tid === task.pid)!;
      expect(task.rseqConfiguration()?.address).toBe(BigInt(thread.rseq!.address));
      expect(task.tidAddress()).toBe(BigInt(thread.clearChildTid));
      expect(kernel.robustList(task.pid).head).toBe(BigInt(thread.robustList.head));
      const alt = task.getAltStack();
      expect([alt.sp, alt.size]).toEqual([BigInt(thread.altStack.sp), BigInt(thread.altStack.size)]);
    }
  } finally {
    for (const task of tasks) task.release();
  }
}

/** The reports of threads.c, by thread number: the thread id each came from and the counts in order. */
function reports(out: string): Map<number, { tids: Set<number>; counts: number[] }> {
  const found = new Map<number, { tids: Set<number>; counts: number[] }>();
  for (const line of lines(out)) {
    const m = /^t(\d+) tid=(\d+) n=(\d+)$/.exec(line);
    if (!m) continue;
    const entry = found.get(Number(m[1])) ?? { tids: new Set(), counts: [] };
    entry.tids.add(Number(m[2]));
    entry.counts.push(Number(m[3]));
    found.set(Number(m[1]), entry);
  }
  return found;
}

/** Waits until each of the 16 threads has reported `more` counts beyond `from` (by thread number). */
function eachCounted(out: string, more: number, from = new Map<number, number>()): Promise<true> {
  return waitFor(`every thread to count ${more} more`, () => {
    const seen = reports(out);
    return seen.size === 16 && [...seen].every(([i, r]) => r.counts.length >= (from.get(i) ?? 0) + more) ? true : undefined;
  }, 20_000);
}

const countsSoFar = (out: string) => new Map([...reports(out)].map(([i, r]) => [i, r.counts.length]));

/**
 * Starts threads.c in a directory of its own, as root or as nobody, and waits until every thread
 * has counted `ticks` times.
 */
async function startCounting(ticks: number, as: 'root' | 'nobody' = 'root'): Promise<{ dir: string; out: string; child: ChildProcess; pid: number }> {
  const dir = cleanup.dir(tempDir());
  const out = join(dir, 'out.txt');
  const child =
    as === 'root'
      ? await startFixture(cleanup, fixture('threads'), [], out)
      : await startFixture(cleanup, 'setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', '--inh-caps=-all', fixture('threads')], out);
  await eachCounted(out, ticks);
  return { dir, out, child, pid: child.pid! };
}

describe('a multi-threaded process, checkpointed and restored with the same thread ids', () => {
  it('16 threads each counting in its own TLS carry on from their own counts, with their names, masks, own pending signals, nice values, policies, affinity, rseq, exit futex, robust list and alternate stack', async () => {
    const { dir, out, child, pid } = await startCounting(5);
    // Each thread gets the signal it blocks (pthread_kill): it stays queued for that thread alone.
    const kernel = new Kernel();
    for (const [tid, { blocked }] of threadsOf(pid)) {
      if (tid !== pid) kernel.syscall(TGKILL, [pid, tid, BigInt(`0x${blocked}`).toString(2).length]);
    }
    const before = threadsOf(pid);
    expect([...before.values()].filter((t) => t.pending !== '0000000000000000')).toHaveLength(16);
    expect(before.size).toBe(17);
    expect(new Set([...before.values()].map((t) => t.comm)).size).toBe(17);
    expect(new Set([...before.values()].map((t) => t.nice)).size).toBe(8);
    const SCHED_BATCH = '3';
    expect([...before.values()].filter((t) => t.policy === SCHED_BATCH)).toHaveLength(8);
    await checkpointAndKill(child, join(dir, 'img'));
    const { records } = crJson<{ records: Record<string, { threads?: SavedThread[] }> }>(['inspect', join(dir, 'img')]);
    const saved = records[`tasks:${pid}`]!.threads!;
    expect(saved.map((t) => t.tid).sort()).toEqual([...before.keys()].filter((tid) => tid !== pid).sort());
    // Half of the threads have an alternate signal stack.
    expect(saved.filter((t) => t.altStack.size !== '0x0')).toHaveLength(8);
    const counted = countsSoFar(out);

    await restoreDetached(cleanup, join(dir, 'img'), pid);
    await eachCounted(out, 5, counted);
    expect(threadsOf(pid)).toEqual(before);
    expectKernelThreadState(pid, saved);
    for (const [i, { tids, counts }] of reports(out)) {
      // One thread id per thread, before and after; every count once, in order: each thread
      // went on from its own TLS counter.
      expect(tids.size, `thread ${i}`).toBe(1);
      expect(before.has([...tids][0]!)).toBe(true);
      expect(counts).toEqual(counts.map((_, k) => k + 1));
    }
    // Not even an interrupted sleep failed: each thread's was rebuilt.
    expect(lines(out).filter((l) => /^(BROKEN|ERROR)/.test(l))).toEqual([]);
  });

  it('threads blocked in pthread_mutex_lock, pthread_cond_wait and pthread_join carry on; a robust mutex is still robust', async () => {
    const dir = cleanup.dir(tempDir());
    const out = join(dir, 'out.txt');
    const child = await startFixture(cleanup, fixture('blocked'), [], out);
    const pid = child.pid!;
    const FUTEX = '202';
    await waitFor('five threads in futex waits', () => {
      const calls = readdirSync(`/proc/${pid}/task`).map((tid) => readFileSync(`/proc/${pid}/task/${tid}/syscall`, 'utf8').split(' ')[0]);
      return calls.filter((nr) => nr === FUTEX).length === 5 ? true : undefined;
    });
    await checkpointAndKill(child, join(dir, 'img'));
    await restoreDetached(cleanup, join(dir, 'img'), pid);
    process.kill(pid, 'SIGUSR1');
    await waitFor('"done"', () => (lines(out).includes('done') ? true : undefined));
    expect(lines(out).slice(1).sort()).toEqual(['cond woken', 'done', 'joined 0 42', 'mutex acquired', 'robust EOWNERDEAD']);
  });

  it('threads that come and go while cr seizes the others are all caught, and the chain goes on after restore', async () => {
    const dir = cleanup.dir(tempDir());
    const out = join(dir, 'out.txt');
    const child = await startFixture(cleanup, fixture('chain'), [], out);
    const counts = () => lines(out).flatMap((l) => (/^links=\d+$/.test(l) ? [Number(l.slice(6))] : []));
    await waitFor('a few reports', () => (counts().length >= 3 ? true : undefined));
    await checkpointAndKill(child, join(dir, 'img'));
    const saved = counts();
    await restoreDetached(cleanup, join(dir, 'img'), child.pid!);
    await waitFor('five more reports', () => (counts().length >= saved.length + 5 ? true : undefined), 20_000);
    const after = counts().slice(saved.length);
    // New links were made after the restore, from the one that was running at the checkpoint.
    expect(after.at(-1)!).toBeGreaterThan(saved.at(-1)! + 100);
    expect(after).toEqual([...after].sort((a, b) => a - b));
    expect(lines(out).filter((l) => l.startsWith('ERROR'))).toEqual([]);
  });

  it('python3 threads computing carry on with what they computed', async () => {
    const dir = cleanup.dir(tempDir());
    const out = join(dir, 'out.txt');
    const child = await startFixture(cleanup, 'python3', [join(REPO, 'test/fixtures/thread-sums.py')], out);
    const sums = () => lines(out).flatMap((l) => {
      const m = /^t(\d) n=(\d+) s=(\d+)$/.exec(l);
      return m ? [{ i: Number(m[1]), n: BigInt(m[2]!), s: BigInt(m[3]!) }] : [];
    });
    const counted = (count: number) => waitFor(`${count} sums`, () => (sums().length >= count ? true : undefined), 20_000);
    await counted(20);
    await checkpointAndKill(child, join(dir, 'img'));
    const saved = sums().length;
    await restoreDetached(cleanup, join(dir, 'img'), child.pid!);
    await counted(saved + 40);
    for (let i = 0; i < 4; i++) {
      const mine = sums().filter((r) => r.i === i);
      expect(mine.map((r) => r.n)).toEqual(mine.map((_, k) => BigInt(k + 1)));
      // (i + 1) · (1² + … + n²), as each thread added it up.
      for (const { n, s } of mine) expect(s).toBe((BigInt(i + 1) * n * (n + 1n) * (2n * n + 1n)) / 6n);
    }
  });

  it('a restore that fails once threads exist removes them all; then the image of a process run as nobody restores with every thread as nobody', async () => {
    const { dir, child, pid } = await startCounting(2, 'nobody');
    const tids = [...threadsOf(pid).keys()];
    await checkpointAndKill(child, join(dir, 'img'));
    // The kernel refuses an rseq area that is not 32-byte aligned: the restore fails at the last
    // thread, after every other thread was made.
    writeMutant(loadImage(join(dir, 'img')), [{ layer: 'json', file: `records/tasks/${pid}.json`, path: ['record', 'threads', 15, 'rseq', 'address'], op: { set: '0x1008' } }], join(dir, 'bad'));
    const r = await crAsync(['restore', '-D', join(dir, 'bad'), '--detach']);
    cleanup.orphan(pid);
    expect(r.stderr).toMatch(/^cr: rseq\(in PID \d+\): EINVAL/);
    expect(r.status).toBe(1);
    expect(tids.filter((tid) => existsSync(`/proc/${tid}`))).toEqual([]);
    // The good image restores at once: nothing was left holding an id.
    await restoreDetached(cleanup, join(dir, 'img'), pid);
    expect([...threadsOf(pid).keys()].sort()).toEqual([...tids].sort());
    // Each thread was made while the process still had cr's credentials, then given its own.
    const uids = tids.map((tid) => /^Uid:\s+(.*)$/m.exec(readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8'))![1]);
    expect(new Set(uids)).toEqual(new Set(['65534\t65534\t65534\t65534']));
  });

  it('a thread with credentials of its own comes back with them, the main thread with its own', async () => {
    const dir = cleanup.dir(tempDir());
    const out = join(dir, 'out.txt');
    const child = await startFixture(cleanup, 'python3', [join(REPO, 'test/fixtures/thread-creds.py')], out);
    const pid = child.pid!;
    const uidsOf = () =>
      Object.fromEntries(readdirSync(`/proc/${pid}/task`).map((tid) => [tid, /^Uid:\s+(.*)$/m.exec(readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8'))![1]]));
    const before = uidsOf();
    expect(Object.values(before).sort()).toEqual(['0\t0\t0\t0', '65534\t65534\t65534\t65534']);
    await checkpointAndKill(child, join(dir, 'img'));
    await restoreDetached(cleanup, join(dir, 'img'), pid);
    expect(uidsOf()).toEqual(before);
  });

  it('a process whose main thread has exited comes back so: its main thread a zombie, its threads counting on from their counts', async () => {
    const dir = cleanup.dir(tempDir());
    const out = join(dir, 'out.txt');
    const child = await startFixture(cleanup, fixture('zombie-leader'), [], out);
    const pid = child.pid!;
    await waitFor('the main thread to exit', () => (processState(pid) === 'Z' ? true : undefined));
    const tids = readdirSync(`/proc/${pid}/task`).map(Number).sort((a, b) => a - b);
    await checkpointAndKill(child, join(dir, 'img'));
    const counted = lines(out).length;
    const last = (i: number) => Math.max(0, ...lines(out).filter((l) => l.startsWith(`t${i} `)).map((l) => Number(l.split('=')[1])));
    const before = [last(0), last(1)];
    await restoreDetached(cleanup, join(dir, 'img'), pid);
    await waitFor('both threads to count on', () => ([0, 1].every((i) => last(i) > before[i]! + 3) ? true : undefined));
    expect(processState(pid)).toBe('Z');
    expect(readdirSync(`/proc/${pid}/task`).map(Number).sort((a, b) => a - b)).toEqual(tids);
    expect(readFileSync(`/proc/${pid}/task/${pid}/stat`, 'utf8')).toMatch(/\) Z /);
    // Each thread goes on from its own count, with no gap or repeat.
    for (const i of [0, 1]) {
      const counts = lines(out).slice(counted).filter((l) => l.startsWith(`t${i} `)).map((l) => Number(l.split('=')[1]));
      expect(counts).toEqual(counts.map((_, k) => before[i]! + 1 + k));
    }
  });
});

describe('cr SIGKILLed while it holds a threaded process', () => {
  it('every thread goes on intact: its count, TLS, name and mask, untraced', async () => {
    const { dir, out, pid } = await startCounting(2);
    const before = threadsOf(pid);
    let killed = 0;
    for (let round = 0; round < 4; round++) {
      const cr: ChildProcess = cleanup.process(spawn(process.execPath, [BIN, 'checkpoint', String(pid), '-D', join(dir, `img-${round}`)], { stdio: 'ignore' }));
      const exited = once(cr, 'exit');
      // Some kills land while cr is still seizing the threads, some while it reads them.
      await waitFor('cr to hold a thread', () => (cr.exitCode !== null || tracerOf(pid) !== 0 || [...before.keys()].some((tid) => tracerOf(tid) !== 0) ? true : undefined), 20_000);
      await sleep(round * 15);
      cr.kill('SIGKILL');
      if ((await exited)[1] === 'SIGKILL') killed++;
      const from = countsSoFar(out);
      await eachCounted(out, 3, from);
      expect([...before.keys()].filter((tid) => tracerOf(tid) !== 0 || /[tT]/.test(processState(tid) ?? 'gone'))).toEqual([]);
      expect(threadsOf(pid)).toEqual(before);
    }
    expect(killed).toBeGreaterThan(2);
    // A checkpoint let finish lets every thread go on the same way.
    expect((await crAsync(['checkpoint', String(pid), '-D', join(dir, 'whole')])).status).toBe(0);
    await eachCounted(out, 3, countsSoFar(out));
    expect(threadsOf(pid)).toEqual(before);
    for (const [, { tids, counts }] of reports(out)) {
      expect(tids.size).toBe(1);
      expect(counts).toEqual(counts.map((_, k) => k + 1));
    }
    // A sleep interrupted as cr died ends early with EINTR (docs/safety.md), and the thread sleeps
    // the rest; nothing else may go wrong.
    expect(lines(out).filter((l) => l.startsWith('BROKEN') || (l.startsWith('ERROR') && !/ 4$/.test(l)))).toEqual([]);
  });
});

describe('what only syscalls inside a process show, read in all the threads of a tree at once', () => {
  it('a parent and its child of 4 threads each read back their own prctl values, interval timers, dispositions and each thread\'s timer slack and alternate stack after restore', async () => {
    const dir = cleanup.dir(tempDir());
    const out = join(dir, 'out.txt');
    const root = await startLogged(cleanup, fixture('procstate'), [], out);
    /** What process `k` read last, once each of its threads has read its own (no "0/0" left), and how many lines it had written. */
    const state = (k: number, after = 0) => {
      const mine = lines(out).filter((l) => l.startsWith(`p${k} `));
      const last = mine.at(-1);
      return mine.length > after && last && !/t\d:0\/0,/.test(last) ? { state: last.split(' ')[1]!, count: mine.length } : undefined;
    };
    const before = [await waitFor('the parent\'s threads to read their state', () => state(0)), await waitFor('the child\'s threads to read their state', () => state(1))];
    expect(before[0]!.state).toMatch(/pdeathsig:0,dumpable:1,subreaper:1,keepcaps:1,thp:0,itimers:3000\/4000\/5000,/);
    expect(before[1]!.state).toMatch(/pdeathsig:9,dumpable:0,subreaper:0,keepcaps:0,thp:1,itimers:3001\/4001\/5001,.*12:h:/);
    expect(before[1]!.state).toContain('t3:201003/30720,');
    await checkpointAndRestore(cleanup, root, join(dir, 'img'));
    const counted = before.map((_, k) => lines(out).filter((l) => l.startsWith(`p${k} `)).length);
    for (const k of [0, 1]) {
      const after = await waitFor(`process ${k} to read its state after restore`, () => state(k, counted[k]! + 1));
      expect(after.state).toBe(before[k]!.state);
    }
  });
});
