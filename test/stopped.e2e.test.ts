import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Cleanup, tempDir } from './helpers/cli.js';
import { checkpointAndKill, compileFixture, crAsync, lines, processState, restoreDetached, startFixture, tracerOf, waitFor } from './helpers/processes.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

let bin: string;
beforeAll(() => {
  bin = tempDir('cr-stopped-bin-');
  compileFixture('ticker', bin);
});
afterAll(() => cleanup.dir(bin) && cleanup.run());

/** The ticker's last count. */
const lastCount = (out: string) => Math.max(0, ...lines(out).filter((l) => /^\d+$/.test(l)).map(Number));

/**
 * Starts the ticker in a new directory, lets it count once, and stops it with SIGSTOP (the kernel
 * discards SIGTSTP sent to an orphaned process group, as the test runner's may be); returns once
 * job control has it stopped (state T).
 */
async function stoppedTicker(): Promise<{ dir: string; out: string; child: ChildProcess; pid: number }> {
  const dir = cleanup.dir(tempDir());
  const out = join(dir, 'out.txt');
  const child = await startFixture(cleanup, join(bin, 'ticker'), ['nanosleep'], out);
  const pid = child.pid!;
  await waitFor('a count', () => (lastCount(out) >= 1 ? true : undefined));
  process.kill(pid, 'SIGSTOP');
  await waitFor(`PID ${pid} to stop`, () => (processState(pid) === 'T' ? true : undefined));
  return { dir, out, child, pid };
}

/** The `stopped` field of the image's tasks record of `pid`. */
const savedStop = (img: string, pid: number) => (JSON.parse(readFileSync(join(img, 'records', 'tasks', `${pid}.json`), 'utf8')) as { record: { stopped?: number } }).record.stopped;

describe('a process stopped by job control (state T)', () => {
  it('is checkpointed and left stopped, untraced, as it was; it counts on when continued', async () => {
    const { dir, out, pid } = await stoppedTicker();
    const r = await crAsync(['checkpoint', String(pid), '-D', join(dir, 'img')]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(savedStop(join(dir, 'img'), pid)).toBe(19);
    expect(processState(pid)).toBe('T');
    expect(tracerOf(pid)).toBe(0);
    const stoppedAt = lastCount(out);
    process.kill(pid, 'SIGCONT');
    await waitFor('it to count on', () => (lastCount(out) > stoppedAt + 2 ? true : undefined));
    expect(lines(out).filter((l) => l.startsWith('ERROR'))).toEqual([]);
  });

  it('comes back stopped after --kill and restore, and counts on from its count when continued', async () => {
    const { dir, out, child, pid } = await stoppedTicker();
    await checkpointAndKill(child, join(dir, 'img'));
    expect(savedStop(join(dir, 'img'), pid)).toBe(19);
    const stoppedAt = lastCount(out);
    await restoreDetached(cleanup, join(dir, 'img'), pid);
    await waitFor('the restored process to stop', () => (processState(pid) === 'T' ? true : undefined));
    expect(lastCount(out)).toBe(stoppedAt);
    process.kill(pid, 'SIGCONT');
    await waitFor('it to count on', () => (lastCount(out) > stoppedAt + 2 ? true : undefined));
    expect(lines(out).filter((l) => /^\d+$/.test(l)).map(Number).slice(-3)).toEqual([lastCount(out) - 2, lastCount(out) - 1, lastCount(out)]);
  });
});
