import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Cleanup, REPO, tempDir } from './helpers/cli.js';
import { checkpointAndKill, crAsync, lines, restoreDetached, startFixture, waitFor, waitForLine, waitGone } from './helpers/processes.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

/** Asks the fixture for a report and returns it once printed, without its "report " prefix. */
async function report(pid: number, out: string): Promise<string> {
  const before = lines(out).length;
  process.kill(pid, 'SIGUSR1');
  return waitFor('a report', () => lines(out).slice(before).find((l) => l.startsWith('report '))?.slice('report '.length));
}

const childOf = (pid: number) => waitFor('the child', () => Number(readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim()) || undefined);

describe('pidfds, checkpointed with --kill and restored', () => {
  it('one of a child refers to the restored child, which the parent signals, waits for and reaps through it; one of a reaped child still shows it ended', async () => {
    const dir = cleanup.dir(tempDir());
    const out = join(dir, 'out.txt');
    const parent = await startFixture(cleanup, 'python3', [join(REPO, 'test/fixtures/pidfds.py')], out);
    const pid = parent.pid!;
    const child = cleanup.orphan(await childOf(pid));
    expect(await report(pid, out)).toBe(`child=${child} running=True reaped=-1 ended=True`);
    const saved = await checkpointAndKill(parent, join(dir, 'img'));
    expect(saved).toContain(`pidfds:${pid}:`);
    await waitGone(child);
    await restoreDetached(cleanup, join(dir, 'img'), pid);
    expect(await report(pid, out)).toBe(`child=${child} running=True reaped=-1 ended=True`);
    process.kill(pid, 'SIGUSR2');
    expect(await waitForLine(out, /^ended /)).toBe('ended signal=15');
    await waitGone(child);
  });

  it('one of a process outside the checkpoint is refused by name; the program runs on', async () => {
    const dir = cleanup.dir(tempDir());
    const out = join(dir, 'out.txt');
    const holder = await startFixture(cleanup, 'python3', ['-c', `import os, signal\nfd = os.pidfd_open(os.getppid())\nprint(f"ready {os.getpid()} {fd}", flush=True)\nsignal.pause()`], out);
    const fd = Number(lines(out)[0]!.split(' ')[2]);
    const r = await crAsync(['checkpoint', String(holder.pid), '-D', join(dir, 'img')]);
    expect(r.stderr).toBe(
      `cr: PID ${holder.pid}: fd ${fd} is a pidfd of PID ${process.pid}, which is not checkpointed with it, so cr cannot make it refer to that process again; checkpoint a tree that holds PID ${process.pid}, or leave it out with --exclude pidfds:fd=${fd}\n`,
    );
    expect(r.status).toBe(7);
    expect(holder.exitCode).toBe(null);
  });
});
