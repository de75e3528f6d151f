import { once } from 'node:events';
import { spawn } from 'node:child_process';
import { O_RDWR } from 'node:constants';
import { chownSync, closeSync, existsSync, openSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Kernel } from '@cr/core';
import { Cleanup, REPO, crJson, tempDir } from './helpers/cli.js';
import { checkpointAndKill, compileFixture, crAsync, lines, restoreDetached, startFixture, waitFor, waitForLine, waitGone } from './helpers/processes.js';

const BIN = join(REPO, 'cli', 'bin', 'run.js');
const shared = new Cleanup();

let bin: string;
const fixture = (name: string) => join(bin, name);
beforeAll(() => {
  bin = tempDir('cr-pipes-shmem-bin-');
  for (const name of ['pipecount', 'fifo', 'memfd', 'shmanon']) compileFixture(name, bin);
});
afterAll(() => shared.dir(bin) && shared.run());

/** A test with its own Cleanup, run however it ends: the tests of this file run at once. */
const cleaned = (test: (cleanup: Cleanup) => Promise<void>) => async () => {
  const cleanup = new Cleanup();
  try {
    await test(cleanup);
  } finally {
    await cleanup.run();
  }
};

/** Like the python3 program of docs/processes.md, faster: a counter in a sealed memfd it maps, squares in shared anonymous memory. */
const PYTHON_SHM = `import fcntl, mmap, os, struct, time
fd = os.memfd_create('counter', os.MFD_ALLOW_SEALING)
os.ftruncate(fd, 8)
fcntl.fcntl(fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW)
count = mmap.mmap(fd, 8)
squares = mmap.mmap(-1, 1 << 20, flags=mmap.MAP_SHARED)
print('ready', flush=True)
while True:
    n = struct.unpack('q', count[:8])[0] + 1
    count[:8] = struct.pack('q', n)
    squares[n * 8:(n + 1) * 8] = struct.pack('q', n * n)
    total = sum(struct.unpack('q', squares[i * 8:(i + 1) * 8])[0] for i in range(n + 1))
    print(n, total, os.readlink(f'/proc/self/fd/{fd}').removesuffix(' (deleted)'), fcntl.fcntl(fd, fcntl.F_GET_SEALS), flush=True)
    time.sleep(0.2)
`;

interface Tick {
  n: bigint;
  sum: bigint;
  nonblock: boolean;
}

/** The "tick N sum S" lines pipecount wrote, each checked: S is the sum of the squares up to N. */
function ticks(path: string): Tick[] {
  return lines(path)
    .map((l) => /^tick (\d+) sum (\d+)( nonblock=1)?$/.exec(l))
    .filter((m) => m !== null)
    .map((m) => {
      const n = BigInt(m[1]!);
      expect(BigInt(m[2]!), `tick ${n}`).toBe((n * (n + 1n) * (2n * n + 1n)) / 6n);
      return { n, sum: BigInt(m[2]!), nonblock: m[3] !== undefined };
    });
}

/** Waits for `count` more ticks than `after` in `path`, and checks they follow it one by one, non-blocking. */
async function carriesOn(path: string, after: bigint, count = 10): Promise<void> {
  const seen = await waitFor(`${count} ticks after tick ${after} in ${path}`, () => {
    const t = ticks(path);
    return t.length >= count ? t : undefined;
  });
  expect(seen.map((t) => t.n)).toEqual(seen.map((_, i) => after + 1n + BigInt(i)));
  expect(seen.every((t) => t.nonblock)).toBe(true);
}

/**
 * Checkpoints a fixture without stopping it, lets the running program answer SIGUSR1 (it exits
 * then), restores the image and asks the restored program the same: both answers must be equal.
 */
async function sameAnswerAfterRestore(
  cleanup: Cleanup,
  name: string,
  args: string[],
  answer: RegExp,
  hooks: { started?: (dir: string) => void; beforeRestore?: (dir: string) => void } = {},
): Promise<{ answer: string; saved: string; img: string; pid: number; dir: string }> {
  const dir = cleanup.dir(tempDir());
  const out = join(dir, 'out.txt');
  const img = join(dir, 'img');
  const child = await startFixture(cleanup, fixture(name), args.map((a) => a.replace('DIR', dir)), out);
  hooks.started?.(dir);
  const saved = await crAsync(['checkpoint', String(child.pid), '-D', img]);
  expect(saved.stderr).toBe('');
  const exited = once(child, 'exit');
  process.kill(child.pid!, 'SIGUSR1');
  const first = await waitForLine(out, answer);
  await exited;
  hooks.beforeRestore?.(dir);
  await restoreDetached(cleanup, img, child.pid!);
  process.kill(child.pid!, 'SIGUSR1');
  await waitFor('the restored program to answer', () => (lines(out).filter((l) => answer.test(l)).length === 2 ? true : undefined));
  expect(lines(out).filter((l) => answer.test(l))).toEqual([first, first]);
  return { answer: first, saved: saved.stdout, img, pid: child.pid!, dir };
}

describe.concurrent('pipes that lead outside the process', () => {
  it('`fixture | cat`: stdout, a pipe to cat, carries on into the pipe cr restore writes to (`cr restore | cat`), still non-blocking', cleaned(async (cleanup) => {
    const dir = cleanup.dir(tempDir());
    const [err, out, out2] = ['err', 'out', 'out2'].map((f) => join(dir, f));
    const shell = cleanup.process(spawn('sh', ['-c', `${fixture('pipecount')} 1 nonblock 2>>${err} | cat >>${out}`], { stdio: 'ignore' }));
    const pid = cleanup.orphan(Number((await waitForLine(err, /^ready/)).split(' ')[1]));
    await waitFor('ten ticks', () => (ticks(out).length >= 10 ? true : undefined));
    const shellDone = once(shell, 'exit');
    const saved = await crAsync(['checkpoint', String(pid), '-D', join(dir, 'img'), '--kill']);
    expect(saved.stderr).toBe('');
    expect(saved.stdout).toContain(`files:${pid}:1`);
    // Its end gone, cat read the rest and ended, and the shell with it.
    await shellDone;
    await waitGone(pid);
    const last = ticks(out).at(-1)!.n;
    cleanup.process(spawn('sh', ['-c', `${process.execPath} ${BIN} restore -D ${join(dir, 'img')} --detach | cat >>${out2}`], { stdio: 'ignore' }));
    await carriesOn(out2, last);
  }));

  it('a pipe whose writer had closed it comes back with its bytes, then end of file, and needs no --inherit-fd', cleaned(async (cleanup) => {
    const dir = cleanup.dir(tempDir());
    const out = join(dir, 'out');
    // The read end is fd 3 or above; the write end is closed once the bytes are in, as a finished command substitution leaves it.
    const program = [
      'import os, signal',
      'signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})',
      'r, w = os.pipe()',
      "os.write(w, b'left in the pipe')",
      'os.close(w)',
      "print('ready', r, flush=True)",
      'signal.sigwait({signal.SIGUSR1})',
      "data = b''",
      'while True:',
      '    chunk = os.read(r, 4096)',
      '    if not chunk: break',
      '    data += chunk',
      "print('read', data.decode(), 'then EOF', flush=True)",
    ].join('\n');
    const child = await startFixture(cleanup, 'python3', ['-c', program], out);
    const exited = once(child, 'exit');
    const saved = await crAsync(['checkpoint', String(child.pid), '-D', join(dir, 'img'), '--kill']);
    expect(saved.stderr).toBe('');
    expect(saved.status).toBe(0);
    await exited;
    await restoreDetached(cleanup, join(dir, 'img'), child.pid!);
    process.kill(child.pid!, 'SIGUSR1');
    expect(await waitForLine(out, /^read /)).toBe('read left in the pipe then EOF');
  }));

  it('fd 5, a pipe whose reader is another process, is refused at restore without --inherit-fd and carries on into that pipe with it', cleaned(async (cleanup) => {
    const dir = cleanup.dir(tempDir());
    const [log, out] = ['log', 'out'].map((f) => join(dir, f));
    const [read, write] = new Kernel().pipes.create({ data: Buffer.alloc(0), capacity: 65536 }, 'the test pipe');
    // The test keeps the write end too, so that cat does not see the end of its input while the program is away.
    cleanup.add(() => closeSync(write));
    const outFd = openSync(out, 'a');
    const cat = cleanup.process(spawn('cat', [], { stdio: [read, outFd, 'ignore'] }));
    closeSync(outFd);
    closeSync(read);
    const logFd = openSync(log, 'a');
    const child = cleanup.process(spawn(fixture('pipecount'), ['5', 'nonblock'], { stdio: ['ignore', logFd, logFd, 'ignore', 'ignore', write] }));
    closeSync(logFd);
    await waitFor('ten ticks', () => (ticks(out).length >= 10 ? true : undefined));
    const img = join(dir, 'img');
    const exited = once(child, 'exit');
    const saved = await crAsync(['checkpoint', String(child.pid), '-D', img, '--kill']);
    expect(saved.status, saved.stderr).toBe(0);
    expect(saved.stderr).toMatch(new RegExp(`^cr: warning: PID ${child.pid}: fd 5(, \\d+)* is the write end of pipe:\\[\\d+\\], whose read end is outside the checkpoint; restore will need --inherit-fd 5=PATH\n$`));
    expect(saved.stdout).toMatch(new RegExp(`pipes:${child.pid}:\\d+`));
    await exited;
    await waitFor('cat to have read everything', () => (ticks(out).length > 0 && lines(out).at(-1)!.startsWith('tick') ? true : undefined));
    const last = ticks(out).at(-1)!.n;

    const refused = await crAsync(['restore', '-D', img, '--detach']);
    expect(refused.status, refused.stderr).toBe(5);
    expect(refused.stderr).toMatch(/^cr: cannot restore fd 5(, \d+)* of PID \d+: the write end of pipe:\[\d+\], whose read end was outside the checkpoint; give it with --inherit-fd 5=PATH/);
    expect(existsSync(`/proc/${child.pid}`)).toBe(false);

    const before = lines(out).length;
    await restoreDetached(cleanup, img, child.pid!, ['--inherit-fd', `5=/proc/${cat.pid}/fd/0`]);
    await waitFor('ten more ticks', () => (lines(out).length >= before + 10 ? true : undefined));
    // One read of a file the program goes on writing to.
    const seen = ticks(out);
    expect(seen.slice(-10).every((t) => t.nonblock)).toBe(true);
    expect(seen.map((t) => t.n)).toEqual(seen.map((_, i) => 1n + BigInt(i)));
    expect(seen.some((t) => t.n === last + 1n)).toBe(true);
  }));
});

describe.concurrent('named pipes', () => {
  it('a named pipe opened three ways comes back by path, made again with its mode and owner, with its 70000 bytes, capacity and flags', cleaned(async (cleanup) => {
    const { answer, saved, dir } = await sameAnswerAfterRestore(cleanup, 'fifo', ['DIR/ff'], /^fifo /, {
      started: (d) => chownSync(join(d, 'ff'), 1234, 5678),
      // Gone at restore: made again.
      beforeRestore: (d) => rmSync(join(d, 'ff')),
    });
    expect(saved).toMatch(/fifos:\d+:3/);
    // Read without draining: the program that ran on found all its bytes, as the restored one does.
    expect(answer).toMatch(/^fifo got=70000 sum=\d+ nonblock=1 capacity=131072 works=1 abc$/);
    const st = statSync(join(dir, 'ff'));
    expect([st.isFIFO(), st.mode & 0o7777, st.uid, st.gid]).toEqual([true, 0o640, 1234, 5678]);
  }));
});

describe.concurrent('named pipes held elsewhere', () => {
  it('a named pipe another process keeps open comes back with the bytes it still holds, not written twice', cleaned(async (cleanup) => {
    const dir = cleanup.dir(tempDir());
    const out = join(dir, 'out.txt');
    const path = join(dir, 'ff');
    const child = await startFixture(cleanup, fixture('fifo'), [path], out);
    // Another holder of the named pipe: its bytes live on in it while the program is away.
    const held = openSync(path, O_RDWR);
    cleanup.add(() => closeSync(held));
    await checkpointAndKill(child, join(dir, 'img'));
    await restoreDetached(cleanup, join(dir, 'img'), child.pid!);
    process.kill(child.pid!, 'SIGUSR1');
    expect(await waitForLine(out, /^fifo /)).toMatch(/^fifo got=70000 sum=\d+ nonblock=1 capacity=131072 works=1 abc$/);
  }));
});

describe.concurrent('shared memory', () => {
  it('memfds come back as memfds with their name, size, contents, seals and offset, mapped where they were, fd and mapping one object', cleaned(async (cleanup) => {
    const { answer, saved } = await sameAnswerAfterRestore(cleanup, 'memfd', [], /^memfd /);
    expect(answer).toMatch(
      /^memfd link=\/memfd:cr-buf \(deleted\) map=\/memfd:cr-buf \(deleted\) size=12388 seals=6 offset=777 sum=(\d+) mapsum=\1 shared=1 grow-refused=1 \| ro map=\/memfd:cr-ro \(deleted\) seals=14 sum=\d+ write-refused=1$/,
    );
    // fd 3, its dup fd 6 and the mapping lead to one object; the sealed memfd is another.
    expect(saved.match(/shmem:\d+/g)).toHaveLength(2);
    expect(saved).toMatch(/memfd:\d+:3, memfd:\d+:4/);
  }));

  it('a python3 program keeps counting in a sealed memfd it maps and in shared anonymous memory', cleaned(async (cleanup) => {
    const dir = cleanup.dir(tempDir());
    const script = join(dir, 'shm.py');
    const out = join(dir, 'out.txt');
    writeFileSync(script, PYTHON_SHM);
    const child = await startFixture(cleanup, 'python3', [script], out);
    await waitFor('three counts', () => (lines(out).length >= 4 ? true : undefined));
    await checkpointAndKill(child, join(dir, 'img'));
    const before = lines(out).length;
    await restoreDetached(cleanup, join(dir, 'img'), child.pid!);
    await waitFor('three more counts', () => (lines(out).length >= before + 3 ? true : undefined));
    const counts = lines(out).slice(1).map((l) => l.split(' '));
    // n, the sum of the squares up to n read back from shared memory, the memfd's name and seals.
    expect(counts.map(([n, total, link, seals]) => [Number(n), Number(total), link, seals])).toEqual(
      counts.map((_, i) => [i + 1, ((i + 1) * (i + 2) * (2 * i + 3)) / 6, '/memfd:counter', '6']),
    );
  }));

  it('shared anonymous memory comes back shared, with the pages the process no longer had mapped', cleaned(async (cleanup) => {
    const { answer, img, pid } = await sameAnswerAfterRestore(cleanup, 'shmanon', [], /^shared /);
    expect(answer).toMatch(/^shared sum=\d+ perms=rw-s path=\/dev\/zero \(deleted\) written=1$/);
    const { records } = crJson<{ records: Record<string, { kind?: string; regions?: { length: number }[] }> }>(['inspect', img]);
    const shmem = Object.entries(records).find(([key]) => key.startsWith('shmem:'))![1];
    expect(shmem.kind).toBe('anonymous');
    // Every page of the object (all 64 were read or written), though 16 were no longer in the page table (MADV_DONTNEED).
    expect(shmem.regions!.reduce((sum, r) => sum + r.length, 0)).toBe(64 * 4096);
    expect(records[`mm:${pid}`]).toBeDefined();
  }));
});
