import { once } from 'node:events';
import { appendFileSync, chmodSync, closeSync, copyFileSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, readlinkSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Kernel } from '@cr/core';
import { Cleanup, crJson, nsenter, tempDir } from './helpers/cli.js';
import { checkpointAndKill, compileFixture, crAsync, fifo, lines, processState, restoreDetached, seedLaunchers, sleep, startFixture, waitFor, waitForLine } from './helpers/processes.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

let bin: string;
const fixture = (name: string) => join(bin, name);
beforeAll(() => {
  bin = tempDir('cr-proc-bin-');
  // Fixtures also run as nobody.
  chmodSync(bin, 0o755);
  for (const name of ['counter', 'heap', 'signals', 'files', 'sleeper', 'shmuser', 'madvise', 'deleted', 'selfpipe', 'eventfds', 'ticker']) compileFixture(name, bin);
});
afterAll(() => cleanup.dir(bin) && cleanup.run());

const numbers = (path: string) => lines(path).filter((l) => /^\d+$/.test(l)).map(Number);

describe('a single-threaded process, checkpointed and restored with the same PID', () => {
  it('a counter appending to a file carries on with no gap or repeat', async () => {
    const dir = cleanup.dir(tempDir());
    const out = join(dir, 'out.txt');
    const child = await startFixture(cleanup, fixture('counter'), [], out);
    await waitFor('ten ticks', () => (numbers(out).length >= 10 ? true : undefined));
    await checkpointAndKill(child, join(dir, 'img'));
    const before = numbers(out).length;
    await restoreDetached(cleanup, join(dir, 'img'), child.pid!);
    await waitFor('ten more ticks', () => (numbers(out).length >= before + 10 ? true : undefined));
    expect(lines(out).filter((l) => l.startsWith('ERROR'))).toEqual([]);
    const seen = numbers(out);
    expect(seen).toEqual(seen.map((_, i) => i + 1));
    expect(readFileSync(`/proc/${child.pid}/comm`, 'utf8').trim()).toBe('counter');
    // glibc's rseq area is registered again, where it was.
    const { records } = crJson<{ records: Record<string, { rseq?: { address: string } }> }>(['inspect', join(dir, 'img')]);
    const task = new Kernel().seize(child.pid!);
    try {
      expect(task.rseqConfiguration()?.address).toBe(BigInt(records[`tasks:${child.pid}`]!.rseq!.address));
    } finally {
      task.release();
    }
  });

  it('256 MiB of random heap data come back unchanged', async () => {
    const dir = cleanup.dir(tempDir());
    const out = join(dir, 'out.txt');
    const child = await startFixture(cleanup, fixture('heap'), ['256'], out);
    const sum = (await waitForLine(out, /^ready/)).split(' ')[1];
    await checkpointAndKill(child, join(dir, 'img'));
    await restoreDetached(cleanup, join(dir, 'img'), child.pid!);
    process.kill(child.pid!, 'SIGUSR1');
    expect(await waitForLine(out, /^(same|DIFFERENT)/, 30_000)).toBe(`same ${sum}`);
  });

  it('pipes whose both ends it holds come back with the bytes queued in them, their capacity and flags', async () => {
    const dir = cleanup.dir(tempDir());
    const out = join(dir, 'out.txt');
    const child = await startFixture(cleanup, fixture('selfpipe'), [], out);
    const sum = (await waitForLine(out, /^ready/)).split(' ')[1];
    const expected = `self=wake-up 1 nonblock=1 cloexec=1 drained=1 capacity=1048576 big=${sum} works=1`;
    const saved = await crAsync(['checkpoint', String(child.pid), '-D', join(dir, 'img')]);
    expect(saved.stdout).toMatch(/pipes:\d+:\d+, pipes:\d+:\d+/);
    // Reading the pipes took nothing out of them: the program that ran on finds its bytes.
    const exited = once(child, 'exit');
    process.kill(child.pid!, 'SIGUSR1');
    expect(await waitForLine(out, /^self=/)).toBe(expected);
    await exited;
    await restoreDetached(cleanup, join(dir, 'img'), child.pid!);
    process.kill(child.pid!, 'SIGUSR1');
    await waitFor('the restored program to answer', () => (lines(out).filter((l) => l.startsWith('self=')).length === 2 ? true : undefined));
    expect(lines(out).filter((l) => l.startsWith('self='))).toEqual([expected, expected]);
  });

  it('an eventfd (and its dup), a signalfd and a timerfd come back with their counter, mask, timer and flags', async () => {
    const dir = cleanup.dir(tempDir());
    const out = join(dir, 'out.txt');
    const child = await startFixture(cleanup, fixture('eventfds'), [], out);
    const saved = await checkpointAndKill(child, join(dir, 'img'));
    expect(saved).toMatch(/eventfd:\d+:3, .*signalfd:\d+:4, .*timerfd:\d+:5/);
    await restoreDetached(cleanup, join(dir, 'img'), child.pid!);
    process.kill(child.pid!, 'SIGUSR1');
    expect(await waitForLine(out, /^eventfd=/)).toBe('eventfd=5 nonblock=1 signalfd=12 cloexec=1 timerfd=1');
  });

  it('a file deleted with its directory comes back deleted at its path, with its owner, mode and contents', async () => {
    const dir = cleanup.dir(tempDir());
    const out = join(dir, 'out.txt');
    const child = await startFixture(cleanup, fixture('deleted'), [dir], out);
    const link = readlinkSync(`/proc/${child.pid}/fd/3`);
    expect(link).toBe(`${dir}/sub/f (deleted)`);
    await checkpointAndKill(child, join(dir, 'img'));
    await restoreDetached(cleanup, join(dir, 'img'), child.pid!);
    expect(readlinkSync(`/proc/${child.pid}/fd/3`)).toBe(link);
    // The directory made for the moment is gone again.
    expect(existsSync(join(dir, 'sub'))).toBe(false);
    process.kill(child.pid!, 'SIGUSR1');
    expect(await waitForLine(out, /^contents=/)).toBe('contents=kept contents uid=1234 gid=5678 mode=640');
  });

  it('every mapping comes back with the same VmFlags: madvise advice, and the accounting of RELRO parts', async () => {
    const dir = cleanup.dir(tempDir());
    const out = join(dir, 'out.txt');
    const child = await startFixture(cleanup, fixture('madvise'), [], out);
    const layout = () =>
      readFileSync(`/proc/${child.pid}/smaps`, 'utf8')
        .split('\n')
        .filter((l) => /^[0-9a-f]+-[0-9a-f]+ /.test(l) || l.startsWith('VmFlags:'))
        .map((l) => (l.startsWith('VmFlags:') ? l.slice('VmFlags:'.length).trim() : l.split(' ')[0]))
        .join('\n');
    const before = layout();
    expect(before).toMatch(/\bwf\b/);
    await checkpointAndKill(child, join(dir, 'img'));
    await restoreDetached(cleanup, join(dir, 'img'), child.pid!);
    expect(layout()).toBe(before);
  });

  it('pages that hold only zeros are not saved, and come back as zeros', async () => {
    const dir = cleanup.dir(tempDir());
    const out = join(dir, 'out.txt');
    const child = await startFixture(cleanup, fixture('heap'), ['16', '128'], out);
    const sum = (await waitForLine(out, /^ready/)).split(' ')[1];
    await checkpointAndKill(child, join(dir, 'img'));
    // 16 MiB of data and 128 MiB of cleared heap: the image holds the data and little else.
    const pages = statSync(join(dir, 'img', 'blobs', 'mm', String(child.pid), 'pages.bin')).size;
    expect(pages).toBeGreaterThanOrEqual(16 << 20);
    expect(pages).toBeLessThan(24 << 20);
    await restoreDetached(cleanup, join(dir, 'img'), child.pid!);
    process.kill(child.pid!, 'SIGUSR1');
    expect(await waitForLine(out, /^(same|DIFFERENT)/, 30_000)).toBe(`same ${sum}`);
  });

  it('signal handlers, a blocked and pending signal, and the alternate signal stack stay in effect', async () => {
    const dir = cleanup.dir(tempDir());
    const out = join(dir, 'out.txt');
    const child = await startFixture(cleanup, fixture('signals'), [], out);
    process.kill(child.pid!, 'SIGUSR1');
    await waitForLine(out, /^usr1 1 usr2-pending=0$/);
    // Blocked: it stays pending, and must still be pending after the restore.
    process.kill(child.pid!, 'SIGUSR2');
    await checkpointAndKill(child, join(dir, 'img'));
    await restoreDetached(cleanup, join(dir, 'img'), child.pid!);
    process.kill(child.pid!, 'SIGUSR1');
    await waitForLine(out, /^usr1 2 /);
    process.kill(child.pid!, 'SIGTERM');
    await waitForLine(out, /^term /);
    expect(lines(out).slice(1)).toEqual(['usr1 1 usr2-pending=0', 'usr1 2 usr2-pending=1', 'term on-altstack=1']);
  });

  it('files at their offsets, O_APPEND, a dup, a deleted file, a directory, /dev/null and file mappings', async () => {
    const dir = cleanup.dir(tempDir());
    const data = join(dir, 'data');
    mkdirSync(data);
    writeFileSync(join(data, 'input.txt'), '0123456789abcdefghijklmnopqrstuvwxyz');
    writeFileSync(join(data, 'priv.bin'), 'p'.repeat(4096));
    writeFileSync(join(data, 'shared.bin'), 's'.repeat(4096));
    const out = join(dir, 'out.txt');
    const child = await startFixture(cleanup, fixture('files'), [data], out);
    await checkpointAndKill(child, join(dir, 'img'));
    // The log grew while the program was gone: O_APPEND writes land at the end, not at the old offset.
    writeFileSync(join(data, 'log.txt'), 'before\nwhile away\n');
    await restoreDetached(cleanup, join(dir, 'img'), child.pid!);
    process.kill(child.pid!, 'SIGUSR1');
    await waitForLine(out, /^shared=/);
    expect(lines(out).slice(1)).toEqual(['input=abcdefghij', 'tmp=contents', 'dir=0123', 'null=1 cloexec=1', 'private=Xp', 'shared=YZ']);
    expect(readFileSync(join(data, 'log.txt'), 'utf8')).toBe('before\nwhile away\nafter\n');
    expect(readFileSync(join(data, 'priv.bin'), 'utf8')).toBe('p'.repeat(4096));
    expect(readFileSync(join(data, 'shared.bin'), 'utf8').slice(0, 3)).toBe('YZs');
  });
});

describe('credentials', () => {
  it('a process of another user comes back as that user, with no capabilities', async () => {
    const dir = cleanup.dir(tempDir());
    chmodSync(dir, 0o755);
    const out = join(dir, 'out.txt');
    writeFileSync(out, '');
    chmodSync(out, 0o666);
    const child = await startFixture(cleanup, 'setpriv', ['--reuid=65534', '--regid=65534', '--groups=65533', '--inh-caps=-all', fixture('counter')], out);
    const creds = () => readFileSync(`/proc/${child.pid}/status`, 'utf8').split('\n').filter((l) => /^(Uid|Gid|Groups|CapEff|CapPrm):/.test(l));
    const before = creds();
    expect(before).toContain('Uid:\t65534\t65534\t65534\t65534');
    await checkpointAndKill(child, join(dir, 'img'));
    const ticks = numbers(out).length;
    await restoreDetached(cleanup, join(dir, 'img'), child.pid!);
    expect(creds()).toEqual(before);
    await waitFor('more ticks', () => (numbers(out).length > ticks + 3 ? true : undefined));
    expect(numbers(out)).toEqual(numbers(out).map((_, i) => i + 1));
  });
});

describe('scheduling and timers', () => {
  it('nice value, CPU affinity and an armed interval timer (setitimer) are back', async () => {
    const dir = cleanup.dir(tempDir());
    const out = join(dir, 'out.txt');
    const script = join(dir, 'alarm.py');
    writeFileSync(
      script,
      'import os, signal, time\n' +
        'signal.signal(signal.SIGALRM, lambda *_: print("alarm", flush=True))\n' +
        'os.nice(7)\nos.sched_setaffinity(0, {0})\nsignal.setitimer(signal.ITIMER_REAL, 0.2, 0.2)\n' +
        'print("ready", flush=True)\nwhile True: time.sleep(0.1)\n',
    );
    const child = await startFixture(cleanup, 'python3', [script], out);
    const sched = () => {
      const stat = readFileSync(`/proc/${child.pid}/stat`, 'utf8');
      const nice = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16];
      const cpus = readFileSync(`/proc/${child.pid}/status`, 'utf8').match(/^Cpus_allowed_list:\s*(\S+)/m)![1];
      return { nice, cpus };
    };
    expect(sched()).toEqual({ nice: '7', cpus: '0' });
    await checkpointAndKill(child, join(dir, 'img'));
    const { record } = JSON.parse(readFileSync(join(dir, 'img', 'records', 'tasks', `${child.pid}.json`), 'utf8'));
    expect(record.itimers).toEqual([expect.objectContaining({ which: 'real', intervalUs: '200000' })]);
    const alarmsBefore = lines(out).filter((l) => l === 'alarm').length;
    await restoreDetached(cleanup, join(dir, 'img'), child.pid!);
    expect(sched()).toEqual({ nice: '7', cpus: '0' });
    // The timer keeps firing in the restored process: more alarms than the original had seen.
    await waitFor('an alarm after restore', () => (lines(out).filter((l) => l === 'alarm').length > alarmsBefore + 1 ? true : undefined), 20_000);
  });
});

describe('a process in its own namespaces', () => {
  it('comes back inside new UTS and IPC namespaces, with its SysV segment attached and its queue', async () => {
    const dir = cleanup.dir(tempDir());
    const out = join(dir, 'out.txt');
    const child = await startFixture(cleanup, 'unshare', ['--uts', '--ipc', 'sh', '-c', `hostname boxed; exec ${fixture('shmuser')}`], out);
    const host = readFileSync('/proc/sys/kernel/hostname', 'utf8').trim();
    await checkpointAndKill(child, join(dir, 'img'));
    const r = await crAsync(['restore', '-D', join(dir, 'img'), '--detach']);
    cleanup.orphan(child.pid!);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/sysvipc-shm:\d+/);
    expect(r.stdout).toMatch(/sysvipc-msg:\d+/);
    // New namespaces, not the host's: the host keeps its name.
    expect(readlinkSync(`/proc/${child.pid}/ns/uts`)).not.toBe(readlinkSync('/proc/self/ns/uts'));
    expect(readlinkSync(`/proc/${child.pid}/ns/ipc`)).not.toBe(readlinkSync('/proc/self/ns/ipc'));
    expect(readFileSync('/proc/sys/kernel/hostname', 'utf8').trim()).toBe(host);
    process.kill(child.pid!, 'SIGUSR1');
    expect(await waitForLine(out, /^shm=/)).toBe('shm=before nattch=1 dest=0 host=boxed msg=7:queued');
  });

  it('a segment it removed while attached (SHM_DEST) comes back attached and marked for destruction, with its id', async () => {
    const dir = cleanup.dir(tempDir());
    const out = join(dir, 'out.txt');
    const child = await startFixture(cleanup, 'unshare', ['--uts', '--ipc', 'sh', '-c', `hostname boxed; exec ${fixture('shmuser')} rmid`], out);
    const pid = child.pid!;
    const segments = () => nsenter(['--ipc', '-t', String(pid), 'cat', '/proc/sysvipc/shm']).split('\n').slice(1).filter(Boolean);
    const before = segments();
    expect(before).toHaveLength(1);
    await checkpointAndKill(child, join(dir, 'img'));
    await restoreDetached(cleanup, join(dir, 'img'), pid);
    const after = segments();
    // key, shmid, perms (SHM_DEST is 01000) and size, as /proc/sysvipc/shm lists them.
    const identity = (line: string) => line.trim().split(/\s+/).slice(0, 4);
    expect(after.map(identity)).toEqual(before.map(identity));
    expect(identity(after[0]!)[2]).toBe('1600');
    process.kill(pid, 'SIGUSR1');
    expect(await waitForLine(out, /^shm=/)).toBe('shm=before nattch=1 dest=1 host=boxed msg=7:queued');
  });
});

describe('syscalls interrupted by the checkpoint restart as the kernel would restart them', () => {
  it('a checkpoint that lets the program run on leaves a nanosleep that asked for no remainder to sleep on: no EINTR', async () => {
    const dir = cleanup.dir(tempDir());
    const out = join(dir, 'out.txt');
    // It sleeps 200 ms between ticks, so a freeze almost always lands in nanosleep(&ts, NULL).
    await startFixture(cleanup, fixture('ticker'), ['nanosleep'], out);
    const pid = Number(lines(out)[0]!.split(' ')[1]);
    for (let i = 0; i < 3; i++) {
      const r = await crAsync(['checkpoint', String(pid), '-D', join(dir, `img${i}`)]);
      expect(r.status, r.stderr).toBe(0);
    }
    const after = numbers(out).length;
    await waitFor('three more ticks', () => (numbers(out).length >= after + 3 ? true : undefined));
    expect(lines(out).filter((l) => l.startsWith('ERROR'))).toEqual([]);
  });

  it('a relative nanosleep sleeps the time that was left, then returns 0', async () => {
    const dir = cleanup.dir(tempDir());
    const out = join(dir, 'out.txt');
    // Long enough that cr, however slow to start on a busy machine, freezes it mid-sleep.
    const child = await startFixture(cleanup, fixture('sleeper'), ['nanosleep', '10000'], out);
    await checkpointAndKill(child, join(dir, 'img'));
    const { record } = JSON.parse(readFileSync(join(dir, 'img', 'records', 'tasks', `${child.pid}.json`), 'utf8'));
    const leftMs = Number(record.restartSleep.remainingNs) / 1e6;
    expect(leftMs).toBeGreaterThan(0);
    expect(leftMs).toBeLessThan(10_000);
    const restoredAt = Date.now();
    await restoreDetached(cleanup, join(dir, 'img'), child.pid!);
    const woke = await waitForLine(out, /^(slept|ERROR)/, 30_000);
    // EINTR or an early return would show here; a wake can come late on a busy machine, never early.
    expect(woke).toMatch(/^slept \d+$/);
    expect(Number(woke.split(' ')[1])).toBeGreaterThanOrEqual(10_000);
    expect(Date.now() - restoredAt).toBeGreaterThanOrEqual(leftMs - 50);
  });

  it('pause() goes on waiting, and wakes on a signal', async () => {
    const dir = cleanup.dir(tempDir());
    const out = join(dir, 'out.txt');
    const child = await startFixture(cleanup, fixture('sleeper'), ['pause'], out);
    await checkpointAndKill(child, join(dir, 'img'));
    await restoreDetached(cleanup, join(dir, 'img'), child.pid!);
    await sleep(300);
    expect(lines(out)).toEqual([`ready ${child.pid}`]);
    process.kill(child.pid!, 'SIGUSR1');
    expect(await waitForLine(out, /^woke/)).toBe('woke');
  });

  it('a poll() with no timeout goes on waiting (not EINTR), and returns when its descriptor is readable', async () => {
    const dir = cleanup.dir(tempDir());
    const out = join(dir, 'out.txt');
    const before = fifo(join(dir, 'before'), cleanup);
    const child = await startFixture(cleanup, fixture('sleeper'), ['poll'], out, before);
    await waitFor('the fixture to wait in poll', () => (readFileSync(`/proc/${child.pid}/syscall`, 'utf8').startsWith('7 ') ? true : undefined));
    await checkpointAndKill(child, join(dir, 'img'));
    const after = fifo(join(dir, 'after'), cleanup);
    const r = await crAsync(['restore', '-D', join(dir, 'img'), '--detach'], { stdin: after });
    cleanup.orphan(child.pid!);
    expect(r.status, r.stderr).toBe(0);
    await sleep(300);
    expect(lines(out)).toEqual([`ready ${child.pid}`]);
    writeSync(after, 'x');
    expect(await waitForLine(out, /^(polled|ERROR)/)).toBe('polled 1 1');
  });

  it('a blocking read on stdin (a pipe) reads what is written to the restoring cr\'s stdin', async () => {
    const dir = cleanup.dir(tempDir());
    const out = join(dir, 'out.txt');
    const before = fifo(join(dir, 'before'), cleanup);
    const child = await startFixture(cleanup, fixture('sleeper'), ['read'], out, before);
    await checkpointAndKill(child, join(dir, 'img'));
    const after = fifo(join(dir, 'after'), cleanup);
    const r = await crAsync(['restore', '-D', join(dir, 'img'), '--detach'], { stdin: after });
    cleanup.orphan(child.pid!);
    expect(r.status, r.stderr).toBe(0);
    // cr has exited; the restored program reads from the pipe cr had as stdin, shell-job style.
    writeSync(after, 'hello\n');
    expect(await waitForLine(out, /^(read |ERROR)/)).toBe('read hello');
  });
});

describe('real interpreters', () => {
  const PYTHON = `
import sys, time
state = {"n": 0, "total": 0, "names": []}
print("ready", flush=True)
while True:
    state["n"] += 1
    state["total"] += state["n"]
    state["names"].append("item%d" % state["n"])
    print(state["n"], state["total"], len(state["names"]), flush=True)
    time.sleep(0.05)
`;
  const PERL = `
$| = 1; my %seen; my ($n, $total) = (0, 0);
print "ready\\n";
while (1) { $n++; $total += $n; $seen{"item$n"} = 1; print "$n $total ", scalar(keys %seen), "\\n"; select(undef, undef, undef, 0.05); }
`;
  for (const [name, command, script] of [
    ['python3', 'python3', PYTHON],
    ['perl', 'perl', PERL],
  ] as const) {
    it(`a ${name} program keeps the state in its variables`, async () => {
      const dir = cleanup.dir(tempDir());
      const out = join(dir, 'out.txt');
      const file = join(dir, 'program');
      writeFileSync(file, script);
      const child = await startFixture(cleanup, command, [file], out);
      const ticks = () => lines(out).slice(1).map((l) => l.split(' ').map(Number));
      await waitFor('ten ticks', () => (ticks().length >= 10 ? true : undefined));
      await checkpointAndKill(child, join(dir, 'img'));
      const before = ticks().length;
      await restoreDetached(cleanup, join(dir, 'img'), child.pid!);
      await waitFor('ten more ticks', () => (ticks().length >= before + 10 ? true : undefined));
      const seen = ticks();
      expect(seen).toEqual(seen.map((_, i) => [i + 1, ((i + 1) * (i + 2)) / 2, i + 1]));
    });
  }
});

describe('checkpoint leaves the program running', () => {
  it('the program carries on; a copy restored after it was killed carries on from the checkpoint', async () => {
    const dir = cleanup.dir(tempDir());
    const out = join(dir, 'out.txt');
    const child = await startFixture(cleanup, fixture('counter'), [], out);
    await waitFor('five ticks', () => (numbers(out).length >= 5 ? true : undefined));
    const atLeast = numbers(out).length;
    const r = await crAsync(['checkpoint', String(child.pid), '-D', join(dir, 'img')]);
    expect(r.status, r.stderr).toBe(0);
    const atMost = numbers(out).length;
    // Still running, not stopped, and still counting.
    expect(processState(child.pid!)).toMatch(/^[RS]$/);
    await waitFor('five more ticks', () => (numbers(out).length >= atMost + 5 ? true : undefined));
    const exited = once(child, 'exit');
    child.kill('SIGKILL');
    await exited;
    const original = numbers(out);
    expect(original).toEqual(original.map((_, i) => i + 1));

    await restoreDetached(cleanup, join(dir, 'img'), child.pid!);
    await waitFor('five ticks of the copy', () => (numbers(out).length >= original.length + 5 ? true : undefined));
    const copy = numbers(out).slice(original.length);
    expect(copy[0]).toBeGreaterThan(atLeast);
    expect(copy[0]).toBeLessThanOrEqual(atMost + 1);
    expect(copy).toEqual(copy.map((_, i) => copy[0]! + i));
  });
});

describe('edge cases', () => {
  it('a process running the program cr launches its seeds from (sleep) comes back too', async () => {
    const dir = cleanup.dir(tempDir());
    const child = cleanup.process(spawn('sleep', ['1000'], { stdio: 'ignore' }));
    await waitFor('sleep to run', () => (processState(child.pid!) === 'S' ? true : undefined));
    await checkpointAndKill(child, join(dir, 'img'));
    await restoreDetached(cleanup, join(dir, 'img'), child.pid!);
    expect(readFileSync(`/proc/${child.pid}/cmdline`, 'utf8')).toBe('sleep\u00001000\u0000');
    expect(readlinkSync(`/proc/${child.pid}/exe`)).toMatch(/\/sleep$/);
  });

  it('--kill leaves a process alone that the policy left out', async () => {
    const dir = cleanup.dir(tempDir());
    const child = cleanup.process(spawn('sleep', ['1000'], { stdio: 'ignore' }));
    await waitFor('sleep to run', () => (processState(child.pid!) === 'S' ? true : undefined));
    const r = await crAsync(['checkpoint', String(child.pid), '-D', join(dir, 'img'), '--kill', '--exclude', 'tasks']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).not.toContain('then killed');
    expect(processState(child.pid!)).toBe('S');
  });
});

describe('bad input: a clear error, and nothing lost', () => {
  it('a process holding a socket is refused, naming the fd, and keeps running unharmed; excluding the fd lets it through', async () => {
    const dir = cleanup.dir(tempDir());
    const out = join(dir, 'out.txt');
    const fd = openSync(out, 'a');
    const child = cleanup.process(spawn(fixture('counter'), [], { stdio: ['ignore', fd, fd, 'pipe'] }));
    closeSync(fd);
    await waitFor('five ticks', () => (numbers(out).length >= 5 ? true : undefined));
    const refused = await crAsync(['checkpoint', String(child.pid), '-D', join(dir, 'img')]);
    expect(refused.status).toBe(7);
    // node's 'pipe' is a unix socketpair whose other end node holds.
    expect(refused.stderr).toMatch(new RegExp(`PID ${child.pid}: fd 3 is a unix stream socket connected to an unnamed socket \\(socket:\\[\\d+\\]\\), outside the checkpointed processes`));
    expect(refused.stderr).toContain('--exclude unix-sockets:fd=3');
    expect(existsSync(join(dir, 'img'))).toBe(false);
    expect(processState(child.pid!)).toMatch(/^[RS]$/);
    const after = numbers(out).length;
    await waitFor('five more ticks', () => (numbers(out).length >= after + 5 ? true : undefined));
    expect(numbers(out)).toEqual(numbers(out).map((_, i) => i + 1));

    await checkpointAndKill(child, join(dir, 'img'), ['--exclude', 'unix-sockets:fd=3']);
    await restoreDetached(cleanup, join(dir, 'img'), child.pid!);
    expect(readdirSync(`/proc/${child.pid}/fd`).sort()).toEqual(['0', '1', '2']);
  });

  it('a PID still taken at restore is refused, and the running process is left alone', async () => {
    const dir = cleanup.dir(tempDir());
    const out = join(dir, 'out.txt');
    const child = await startFixture(cleanup, fixture('counter'), [], out);
    expect((await crAsync(['checkpoint', String(child.pid), '-D', join(dir, 'img')])).status).toBe(0);
    const r = await crAsync(['restore', '-D', join(dir, 'img'), '--detach']);
    expect(r.status).toBe(5);
    expect(r.stderr).toContain(`cannot restore PID ${child.pid}: it is taken by a running process (counter)`);
    const now = numbers(out).length;
    await waitFor('more ticks', () => (numbers(out).length > now ? true : undefined));
  });

  it('a corrupt memory image is found before the process runs: no process, nothing left behind', async () => {
    const dir = cleanup.dir(tempDir());
    const out = join(dir, 'out.txt');
    const child = await startFixture(cleanup, fixture('heap'), ['16'], out);
    await checkpointAndKill(child, join(dir, 'img'));
    const pages = join(dir, 'img', 'blobs', 'mm', String(child.pid), 'pages.bin');
    const bytes = readFileSync(pages);
    bytes[bytes.length - 100] ^= 0xff;
    writeFileSync(pages, bytes);
    const launchers = seedLaunchers();
    const r = await crAsync(['restore', '-D', join(dir, 'img'), '--detach']);
    expect(r.status).toBe(4);
    expect(r.stderr).toContain(`${pages} is corrupt`);
    expect(existsSync(`/proc/${child.pid}`)).toBe(false);
    // Another test file's restore may have a launcher alive for a moment; ours must not stay.
    await waitFor('no launcher left behind', () => (seedLaunchers().every((p) => launchers.includes(p)) ? true : undefined), 5000);
  });

  it('a mapped file that changed since the checkpoint is refused before anything is created', async () => {
    const dir = cleanup.dir(tempDir());
    const out = join(dir, 'out.txt');
    const program = join(dir, 'counter');
    copyFileSync(fixture('counter'), program);
    const child = await startFixture(cleanup, program, [], out);
    await checkpointAndKill(child, join(dir, 'img'));
    appendFileSync(program, 'changed');
    const r = await crAsync(['restore', '-D', join(dir, 'img'), '--detach']);
    expect(r.status).toBe(5);
    expect(r.stderr).toContain(`${program} changed since the checkpoint`);
    expect(existsSync(`/proc/${child.pid}`)).toBe(false);
  });
});

describe('shell jobs', () => {
  it('without --detach cr waits, the program writes to cr\'s stdout, and cr exits with its status', async () => {
    const dir = cleanup.dir(tempDir());
    const child = cleanup.process(spawn(fixture('sleeper'), ['pause'], { stdio: ['ignore', 'pipe', 'ignore'] }));
    await once(child.stdout!, 'data');
    await checkpointAndKill(child, join(dir, 'img'));
    const restored = crAsync(['restore', '-D', join(dir, 'img')]);
    cleanup.orphan(child.pid!);
    await waitFor('the restored process', () => (processState(child.pid!) === 'S' ? true : undefined));
    process.kill(child.pid!, 'SIGUSR1');
    const r = await restored;
    expect(r.stdout).toBe('woke\n');
    expect(r.stderr).toContain(`tasks:${child.pid} running as PID ${child.pid}`);
    expect(r.status).toBe(0);
  });
});

describe('stdio that pointed outside the checkpoint', () => {
  it('--inherit-fd gives the restored program a file the user names instead', async () => {
    const dir = cleanup.dir(tempDir());
    const child = cleanup.process(spawn(fixture('counter'), [], { stdio: ['ignore', 'pipe', 'ignore'] }));
    await once(child.stdout!, 'data');
    await checkpointAndKill(child, join(dir, 'img'));
    const out = join(dir, 'out.txt');
    const typo = await crAsync(['restore', '-D', join(dir, 'img'), '--detach', '--inherit-fd', `7=${out}`]);
    expect(typo.stderr).toMatch(/^cr: --inherit-fd 7=\S+: no descriptor 7 of the image pointed outside the checkpoint \(those that did: (\d+, )*1\b.*\); leave it out or give one of those\n$/);
    expect(typo.status).toBe(2);
    expect(existsSync(`/proc/${child.pid}`)).toBe(false);
    await restoreDetached(cleanup, join(dir, 'img'), child.pid!, ['--inherit-fd', `1=${out}`]);
    await waitFor('ticks in the named file', () => (numbers(out).length >= 5 ? true : undefined));
    const seen = numbers(out);
    expect(seen).toEqual(seen.map((_, i) => seen[0]! + i));
    const bad = await crAsync(['restore', '-D', join(dir, 'img'), '--inherit-fd', 'one=out.txt']);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('--inherit-fd one=out.txt: expected N=PATH');
  });
});

