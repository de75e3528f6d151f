import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Cleanup, REPO, tempDir } from './helpers/cli.js';
import { checkpointAndKill, compileFixture, fifo, lines, restoreDetached, startFixture, tracerOf, waitFor, waitForLine, waitGone } from './helpers/processes.js';

const BIN = join(REPO, 'cli', 'bin', 'run.js');

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

let bin: string;
beforeAll(() => {
  bin = tempDir('cr-seccomp-bin-');
  compileFixture('seccomp', bin, ['-pthread']);
});
afterAll(() => cleanup.dir(bin) && cleanup.run());

/** cr run under a seccomp filter that allows everything, as in a container's default profile. */
function sandboxed(args: string[]) {
  return spawnSync(join(bin, 'seccomp'), ['sandbox', process.execPath, BIN, ...args], { encoding: 'utf8', env: process.env });
}

/** Seccomp mode and filter count of each thread of `pid`, by thread id. */
function seccompOf(pid: number): Record<number, string> {
  const tids = readdirSync(`/proc/${pid}/task`);
  return Object.fromEntries(
    tids.map((tid) => {
      const status = readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8');
      return [Number(tid), `${/^Seccomp:\s+(\d+)/m.exec(status)![1]}/${/^Seccomp_filters:\s+(\d+)/m.exec(status)![1]}`];
    }),
  );
}

/** The fixture's next line from `who` ("main", "thread", "child") after the first `from` lines of `out`. */
function nextReport(out: string, who: string, from: number): Promise<string> {
  return waitFor(`a report of ${who}`, () => lines(out).slice(from).find((l) => l.startsWith(`${who} `))?.replace(/^\w+ \d+ /, ''));
}

describe('seccomp, checkpointed with --kill and restored', () => {
  it("filters come back in their order, with their flags, shared by the threads that shared them and inherited by a child; cr's own calls pass them, and they judge the program's again", async () => {
    const dir = cleanup.dir(tempDir());
    const out = join(dir, 'out.txt');
    const child = await startFixture(cleanup, join(bin, 'seccomp'), ['filter'], out);
    const pid = child.pid!;
    const forked = await waitFor('the forked child', () => Number(readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim()) || undefined);
    cleanup.orphan(forked);
    await waitForLine(out, /^child /);
    const before = { main: seccompOf(pid), child: seccompOf(forked) };
    // The main thread has filters A and B, the other thread A alone (TSYNC), the child both.
    expect(Object.values(before.main).sort()).toEqual(['2/1', '2/2']);
    expect(Object.values(before.child)).toEqual(['2/2']);

    await checkpointAndKill(child, join(dir, 'img'));
    await waitGone(forked);
    await restoreDetached(cleanup, join(dir, 'img'), pid);
    expect(seccompOf(pid)).toEqual(before.main);
    expect(seccompOf(forked)).toEqual(before.child);
    const from = lines(out).length;
    // B answers getsid after A: the filters are in their order.
    expect(await nextReport(out, 'main', from)).toBe('getsid=22 getpgid=0');
    expect(await nextReport(out, 'thread', from)).toBe('getsid=11 getpgid=0');
    expect(await nextReport(out, 'child', from)).toBe('getsid=22 getpgid=0');

    // A TSYNC filter is let through only when the other thread's filters are the main thread's own ancestors.
    process.kill(pid, 'SIGUSR1');
    expect(await waitForLine(out, /^tsync=/)).toBe('tsync=0');
    const synced = lines(out).length;
    expect(await nextReport(out, 'thread', synced)).toBe('getsid=22 getpgid=33');
    expect(Object.values(seccompOf(pid))).toEqual(['2/3', '2/3']);

    // mmap kills the process: B's action applies to the program again once cr let it go.
    process.kill(pid, 'SIGUSR2');
    await waitGone(pid);
    expect(lines(out)).not.toContain('mmap survived');
  });

  it('a cr under seccomp itself refuses, and lets the program go at once: the kernel would not let it suspend the filters', async () => {
    const dir = cleanup.dir(tempDir());
    const out = join(dir, 'out.txt');
    const child = await startFixture(cleanup, join(bin, 'seccomp'), ['filter'], out);
    const pid = child.pid!;
    cleanup.orphan(await waitFor('the forked child', () => Number(readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim()) || undefined));
    // Its parent goes first (cleanup runs last to first), so that the child is not left a zombie nobody reaps.
    cleanup.add(() => void child.kill('SIGKILL'));
    const refusal = `PID ${pid} (seccomp) runs under seccomp (mode 2), and so does cr: the kernel lets only a cr outside any seccomp sandbox work inside it`;
    const dry = sandboxed(['checkpoint', String(pid), '--dry-run']);
    expect(dry.stderr).toContain(refusal);
    expect(dry.status).toBe(7);
    // A checkpoint finds it when it stops the process, and lets it go at once.
    const real = sandboxed(['checkpoint', String(pid), '-D', join(dir, 'img')]);
    expect(real.stderr).toBe(
      `cr: PID ${pid} runs under seccomp, and the kernel does not let cr suspend it while cr works in the process (ptrace(PTRACE_O_SUSPEND_SECCOMP): EPERM): run cr as root with CAP_SYS_ADMIN, outside any seccomp sandbox\n`,
    );
    expect(real.status).toBe(7);
    expect(existsSync(join(dir, 'img'))).toBe(false);
    expect(tracerOf(pid)).toBe(0);
    const from = lines(out).length;
    expect(await nextReport(out, 'main', from)).toBe('getsid=22 getpgid=0');
  });

  it('strict mode comes back: the program goes on reading and writing, and any other call kills it; a cr under seccomp refuses to restore it', async () => {
    const dir = cleanup.dir(tempDir());
    const out = join(dir, 'out.txt');
    const fifoPath = join(dir, 'in');
    const input = fifo(fifoPath, cleanup);
    const child = await startFixture(cleanup, join(bin, 'seccomp'), ['strict'], out, input);
    const pid = child.pid!;
    writeSync(input, 'a');
    await waitForLine(out, /^got a$/);
    expect(seccompOf(pid)).toEqual({ [pid]: '1/0' });

    await checkpointAndKill(child, join(dir, 'img'));
    // A cr under seccomp could not suspend it while it works in the process: refused before anything is restored.
    const refused = sandboxed(['restore', '-D', join(dir, 'img'), '--detach', '--inherit-fd', `0=${fifoPath}`]);
    expect(refused.stderr).toBe(
      `cr: cannot restore PID ${pid}: it ran under seccomp (strict mode), and cr runs under seccomp itself, so the kernel would not let cr suspend it while cr works in the process; run cr restore outside any seccomp sandbox\n`,
    );
    expect(refused.status).toBe(7);
    expect(existsSync(`/proc/${pid}`)).toBe(false);
    await restoreDetached(cleanup, join(dir, 'img'), pid, ['--inherit-fd', `0=${fifoPath}`]);
    expect(seccompOf(pid)).toEqual({ [pid]: '1/0' });
    writeSync(input, 'b');
    await waitForLine(out, /^got b$/);
    writeSync(input, 'q');
    await waitForLine(out, /^got q$/);
    await waitGone(pid);
  });
});
