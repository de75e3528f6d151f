import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Cleanup, tempDir } from './helpers/cli.js';
import { checkpointAndKill, compileFixture, lines, restoreDetached, sleep, startFixture, waitFor } from './helpers/processes.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

let bin: string;
beforeAll(() => {
  bin = tempDir('cr-timers-bin-');
  compileFixture('posixtimer', bin, ['-lrt']);
});
afterAll(() => cleanup.dir(bin) && cleanup.run());

/** Asks the fixture for a report and returns it once printed: "ticks N id=… timerid=… value=… none=…". */
async function report(pid: number, out: string): Promise<{ ticks: number; rest: string }> {
  const before = lines(out).length;
  process.kill(pid, 'SIGUSR1');
  const line = await waitFor('a report', () => lines(out).slice(before).find((l) => l.startsWith('ticks ')));
  const [, ticks, rest] = /^ticks (\d+) (.*)$/.exec(line)!;
  return { ticks: Number(ticks), rest: rest! };
}

/** Reports until the fixture has counted at least `ticks` signals (the timer runs every 50 ms). */
async function reportWith(pid: number, out: string, ticks: number): Promise<{ ticks: number; rest: string }> {
  for (let tries = 0; ; tries++) {
    const r = await report(pid, out);
    if (r.ticks >= ticks) return r;
    if (tries === 100) throw new Error(`the timer does not signal: ${r.ticks} ticks, waiting for ${ticks}`);
    await sleep(100);
  }
}

describe('POSIX timers, checkpointed with --kill and restored', () => {
  it('a periodic timer goes on signalling with the same timer id and value, and a SIGEV_NONE timer keeps its time left', async () => {
    const dir = cleanup.dir(tempDir());
    const out = join(dir, 'out.txt');
    const child = await startFixture(cleanup, join(bin, 'posixtimer'), [], out);
    const first = await reportWith(child.pid!, out, 3);
    expect(first.rest).toBe('id=1 timerid=1 value=777 none=1000s');
    const saved = await checkpointAndKill(child, join(dir, 'img'));
    expect(saved).toContain(`posix-timers:${child.pid}`);
    await restoreDetached(cleanup, join(dir, 'img'), child.pid!);
    expect(readFileSync(`/proc/${child.pid}/timers`, 'utf8')).toMatch(/^ID: 1\nsignal: 35\/0*309\nnotify: signal\/pid\.\d+\nClockID: 1$/m);
    const after = await report(child.pid!, out);
    expect(after.ticks).toBeGreaterThanOrEqual(first.ticks);
    const again = await reportWith(child.pid!, out, after.ticks + 5);
    expect(again.rest).toBe('id=1 timerid=1 value=777 none=1000s');
  });
});
