import { spawn } from 'node:child_process';
import { O_NOCTTY, O_RDWR } from 'node:constants';
import { once } from 'node:events';
import { closeSync, openSync, readFileSync, readSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Kernel } from '@cr/core';
import { Cleanup, REPO, tempDir, type CliResult } from './helpers/cli.js';
import { checkpointAndKill, compileFixture, crAsync, lines, restoreDetached, startFixture, waitFor, waitForLine, waitGone } from './helpers/processes.js';
import { checkpointAndRestore, descendants, startLogged } from './helpers/trees.js';

const shared = new Cleanup();
let pty: string;
beforeAll(() => {
  const bin = shared.dir(tempDir('cr-ttys-bin-'));
  pty = compileFixture('pty', bin);
});
afterAll(() => shared.run());

/** A test with its own Cleanup, run however it ends. */
const cleaned = (test: (cleanup: Cleanup) => Promise<void>) => async () => {
  const cleanup = new Cleanup();
  try {
    await test(cleanup);
  } finally {
    await cleanup.run();
  }
};

/** The "tick N …" lines of `out` as [N, rest], with no "broken" line anywhere. */
function ticks(out: string): [number, string][] {
  expect(lines(out).filter((l) => l.startsWith('broken'))).toEqual([]);
  return lines(out)
    .map((l) => /^tick (\d+) (.*)$/.exec(l))
    .filter((m) => m !== null)
    .map((m) => [Number(m[1]), m[2]!]);
}

/** Waits for `more` ticks beyond the last one now, and checks that every tick so far follows the one before. */
async function ticksOn(out: string, more = 5): Promise<[number, string][]> {
  const last = ticks(out).at(-1)?.[0] ?? 0;
  await waitFor(`${more} more ticks in ${out}`, () => ((ticks(out).at(-1)?.[0] ?? 0) >= last + more ? true : undefined), 20_000);
  const all = ticks(out);
  expect(all.map(([n]) => n)).toEqual(all.map((_, i) => i + 1));
  return all;
}

/** Field `n` (1-based, as proc(5) counts) of /proc/PID/stat. */
function statField(pid: number, n: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[n - 3]);
}

/** The state letter of /proc/PID/stat (R, S, T for stopped, t for stopped by a tracer …). */
function processState(pid: number): string {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
}

/** The pty record of an image, parsed. */
function ptyRecord(img: string, index: number): Record<string, unknown> {
  return JSON.parse(readFileSync(join(img, 'records', 'ttys', `${index}.json`), 'utf8')).record;
}

// One test at a time: pty indexes are allocated lowest-free, machine-wide, so a test that frees one
// (a checkpoint with --kill) would see a concurrent test's new pty take it before its restore.
describe('pseudo-terminals whose master is in the checkpoint', () => {
  it('openpty() with custom termios and window size: the output the master had not read comes back, byte for byte, and the settings stay', cleaned(async (cleanup) => {
    const dir = cleanup.dir(tempDir());
    const out = join(dir, 'out');
    const child = await startFixture(cleanup, pty, ['echo'], out);
    await ticksOn(out, 3);
    // Left running (the master's unread output is taken out and written back), then moved.
    const left = await crAsync(['checkpoint', String(child.pid), '-D', join(dir, 'img1')]);
    expect(left.stderr).toBe('');
    await ticksOn(out, 3);
    const img = join(dir, 'img');
    const saved = await checkpointAndKill(child, img);
    expect(saved).toMatch(/ttys:\d+/);
    const index = Number(/ttys:(\d+)/.exec(saved)![1]);
    expect(ptyRecord(img, index)).toMatchObject({ kind: 'pty', winsize: { rows: 33, cols: 111 }, locked: false, packet: false });
    await waitGone(child.pid!);
    await restoreDetached(cleanup, img, child.pid!);
    const all = await ticksOn(out, 5);
    expect(new Set(all.map(([, rest]) => rest))).toEqual(new Set(['rows 33 cols 111 raw 1']));
  }));

  it('packet mode with an exclusive slave, and a lone locked master whose slave was never opened, come back as they were, with the same index; an index taken meanwhile is refused by name', cleaned(async (cleanup) => {
    const dir = cleanup.dir(tempDir());
    for (const mode of ['packet', 'lonely']) {
      const out = join(dir, `${mode}.out`);
      const img = join(dir, mode);
      const child = await startFixture(cleanup, pty, [mode], out);
      const before = (await ticksOn(out, 3)).at(-1)![1];
      const saved = await checkpointAndKill(child, img);
      await waitGone(child.pid!);
      if (mode === 'lonely') await refusedWhileTaken(img, Number(/ttys:(\d+)/.exec(saved)![1]), child.pid!);
      await restoreDetached(cleanup, img, child.pid!);
      const after = await ticksOn(out, 5);
      expect(new Set(after.map(([, rest]) => rest))).toEqual(new Set([before]));
    }
    expect(ticks(join(dir, 'packet.out')).at(-1)![1]).toBe('packet 1 excl 1');
    expect(ticks(join(dir, 'lonely.out')).at(-1)![1]).toMatch(/^pts \/dev\/pts\/\d+ locked 1$/);
  }));

  it('a session leader gets its controlling terminal back with its foreground group, and ^C typed into the master interrupts that group', cleaned(async (cleanup) => {
    const dir = cleanup.dir(tempDir());
    const out = join(dir, 'out');
    const root = await startLogged(cleanup, pty, ['session'], out);
    const [leader, worker] = descendants(root.pid!) as [number, number];
    process.kill(root.pid!, 'SIGUSR1');
    await waitForLine(out, /^sigint 1$/);
    const ttyNr = statField(leader, 7);
    await checkpointAndRestore(cleanup, root, join(dir, 'img'));
    expect(statField(leader, 7)).toBe(ttyNr);
    expect(statField(leader, 8)).toBe(worker);
    const seen = lines(out).length;
    await waitFor('the leader to report', () => (lines(out).slice(seen).some((l) => l.startsWith('leader ')) ? true : undefined));
    expect(lines(out).slice(seen).find((l) => l.startsWith('leader '))).toMatch(new RegExp(`^leader \\d+ fg ${worker} sid ${leader}$`));
    process.kill(root.pid!, 'SIGUSR1');
    await waitForLine(out, /^sigint 2$/);
  }));

  it('python3 pty.fork() running bash: bash keeps its terminal as controlling terminal, and its new commands see it', cleaned(async (cleanup) => {
    const dir = cleanup.dir(tempDir());
    const out = join(dir, 'out');
    const program = join(dir, 'ptyfork.py');
    // While `hold` exists bash only sleeps: a checkpoint that froze a ps it had running (its
    // descriptors on /proc) would be refused.
    const hold = join(dir, 'hold');
    writeFileSync(
      program,
      `import os, pty
pid, master = pty.fork()
if pid == 0:
    os.execvp('bash', ['bash', '-c', 'i=0; held=0; while true; do if [ -e ${hold} ]; then [ $held = 1 ] || echo held; held=1; sleep 0.05; continue; fi; held=0; i=$((i+1)); echo "tick $i $(stty size) $(tty) $(ps -o tpgid= -p $$)"; sleep 0.05; done'])
print('ready', flush=True)
buf = b''
while True:
    buf += os.read(master, 1024)
    while b'\\n' in buf:
        line, buf = buf.split(b'\\n', 1)
        print(line.decode().rstrip('\\r'), flush=True)
`,
    );
    const root = await startLogged(cleanup, 'python3', [program], out);
    await ticksOn(out, 3);
    const [bash] = descendants(root.pid!) as [number];
    writeFileSync(hold, '');
    await waitForLine(out, /^held$/);
    await checkpointAndRestore(cleanup, root, join(dir, 'img'));
    unlinkSync(hold);
    const after = await ticksOn(out, 5);
    expect(after.at(-1)![1]).toMatch(new RegExp(`^0 0 /dev/pts/\\d+ +${bash}$`));
    expect(statField(bash, 8)).toBe(bash);
  }));
});

describe('data queued in a pty, both ways', () => {
  /**
   * cr ARGS…, SIGKILLed if it has not returned within `ms` (generous, the machine is shared),
   * which fails the test: a checkpoint that hangs must fail this test, never hang the suite.
   */
  async function crWithin(cleanup: Cleanup, args: string[], ms = 40_000): Promise<CliResult> {
    const child = cleanup.process(spawn(process.execPath, [join(REPO, 'cli', 'bin', 'run.js'), ...args], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] }));
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    let hung = false;
    const timer = setTimeout(() => {
      hung = true;
      child.kill('SIGKILL');
    }, ms);
    const [code] = (await once(child, 'close')) as [number | null];
    clearTimeout(timer);
    expect(hung, `cr ${args.join(' ')} did not return within ${ms} ms`).toBe(false);
    return { status: code ?? -1, stdout, stderr };
  }

  /**
   * Starts `pty ARGS…` and checkpoints it while its queues are full, `left` times leaving it
   * running (each takes them out and gives them back); then, when `restored`, once more with
   * --kill and restores it. Lets it read its queues then: its report lines after the signal.
   */
  async function queuedAcross(cleanup: Cleanup, args: string[], report: RegExp, count: number, left: number, restored: boolean): Promise<string[]> {
    const dir = cleanup.dir(tempDir());
    const out = join(dir, 'out');
    const child = await startFixture(cleanup, pty, args, out);
    await waitForLine(out, /^waiting 2$/);
    for (let n = 1; n <= left; n++) {
      const r = await crWithin(cleanup, ['checkpoint', String(child.pid), '-D', join(dir, `left${n}`)]);
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      expect(processState(child.pid!), 'the process is not left stopped').not.toMatch(/^[tT]$/);
    }
    if (restored) {
      const img = join(dir, 'img');
      const exited = once(child, 'exit');
      const r = await crWithin(cleanup, ['checkpoint', String(child.pid), '-D', img, '--kill']);
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      await exited;
      await waitGone(child.pid!);
      await restoreDetached(cleanup, img, child.pid!);
    }
    process.kill(child.pid!, 'SIGUSR1');
    await waitFor(`${count} report lines in ${out}`, () => (lines(out).filter((l) => report.test(l) || l.startsWith('broken')).length >= count || lines(out).some((l) => l.startsWith('broken')) ? true : undefined), 20_000);
    return lines(out).filter((l) => report.test(l) || l.startsWith('broken'));
  }

  describe.each(['packet', 'plain'])('%s mode: 10000 bytes the master had not read (more than its line discipline holds) and 3000 typed bytes the slave had not read', (mode) => {
    it('are still there, each once, in order, for the process left running by two checkpoints in a row', cleaned(async (cleanup) => {
      expect(await queuedAcross(cleanup, ['backlog', mode], /^(output|input) /, 2, 2, false)).toEqual(['output 10000 ok', 'input 3000 ok']);
    }));

    it('come back, each once, in order, after two checkpoints that left it running and one with --kill', cleaned(async (cleanup) => {
      expect(await queuedAcross(cleanup, ['backlog', mode], /^(output|input) /, 2, 2, true)).toEqual(['output 10000 ok', 'input 3000 ok']);
    }));
  });

  it('canonical mode with echo: typed lines (one ended by ^D, one ^D alone) and a half-typed line come back as they were, the half line still being edited, and their echo is not repeated', cleaned(async (cleanup) => {
    expect(await queuedAcross(cleanup, ['canon'], /^(lines|echo) /, 2, 2, true)).toEqual(['lines ok', 'echo 34 ok']);
  }));
});

describe('a terminal whose master is outside', () => {
  it('fd 5 on a terminal whose master is outside, the controlling terminal of the session the process leads: warnings at checkpoint, refused at restore without --inherit-fd, given again with it (as no controlling terminal)', cleaned(async (cleanup) => {
    const dir = cleanup.dir(tempDir());
    const out = join(dir, 'out');
    const kernel = new Kernel();
    const master = openSync('/dev/ptmx', O_RDWR | O_NOCTTY);
    cleanup.add(() => closeSync(master));
    const index = kernel.ttys.index(master, 'the test');
    kernel.ttys.setLocked(master, false, 'the test');
    const slave = kernel.ttys.openSlave(master, 2, 'the test');
    const outFd = openSync(out, 'a');
    const child = cleanup.process(
      spawn('python3', ['-c', "import fcntl, os, termios, time\nos.setsid()\nfcntl.ioctl(5, termios.TIOCSCTTY, 0)\nprint('ready', flush=True)\nn = 0\nwhile True:\n    n += 1\n    os.write(5, b'tick %d\\n' % n)\n    time.sleep(0.05)\n"], {
        stdio: ['ignore', outFd, outFd, 'ignore', 'ignore', slave],
      }),
    );
    closeSync(outFd);
    closeSync(slave);
    await waitForLine(out, /^ready/);
    const exited = once(child, 'exit');
    const img = join(dir, 'img');
    const saved = await crAsync(['checkpoint', String(child.pid), '-D', img, '--kill']);
    expect(saved.status).toBe(0);
    expect(saved.stderr).toContain(`fd 5 is /dev/pts/${index}, a terminal whose master is outside the checkpoint; restore will need --inherit-fd 5=PATH`);
    expect(saved.stderr).toContain(`PID ${child.pid} leads a session whose controlling terminal (device 136:${index}) is outside the checkpoint; the restored session has no controlling terminal`);
    await exited;
    await waitGone(child.pid!);
    const refused = await crAsync(['restore', '-D', img, '--detach']);
    expect(refused.status).not.toBe(0);
    expect(refused.stderr).toContain('give a terminal with --inherit-fd 5=PATH');
    const drained = drain(kernel, master);
    await restoreDetached(cleanup, img, child.pid!, ['--inherit-fd', `5=/dev/pts/${index}`]);
    let seen = '';
    await waitFor('ticks on the terminal again', () => {
      seen += drain(kernel, master);
      return (seen.match(/tick \d+/g) ?? []).length >= 3 ? true : undefined;
    });
    const resumed = Number(/tick (\d+)/.exec(seen)![1]);
    expect(resumed).toBeGreaterThan(Number([...drained.matchAll(/tick (\d+)/g)].at(-1)?.[1] ?? 0));
    expect(statField(child.pid!, 7)).toBe(0);
  }));
});

/** Restoring `img` while another terminal holds pty `index` is refused by name, and leaves no process `pid`. */
async function refusedWhileTaken(img: string, index: number, pid: number): Promise<void> {
  const taken = new Kernel().ttys.openPty(index, 'the test');
  try {
    const r = await crAsync(['restore', '-D', img, '--detach']);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain(`/dev/pts/${index} is in use by another terminal`);
    expect(() => process.kill(pid, 0)).toThrow();
  } finally {
    closeSync(taken);
  }
}

/** What the test's own master can read now, without waiting. */
function drain(kernel: Kernel, master: number): string {
  let text = '';
  for (let n = kernel.ttys.readable(master, 'the test'); n > 0; n = kernel.ttys.readable(master, 'the test')) {
    const buf = Buffer.alloc(n);
    text += buf.subarray(0, readSync(master, buf, 0, n, null)).toString();
  }
  return text;
}
