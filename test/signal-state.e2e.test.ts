import { once } from 'node:events';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Cleanup, tempDir } from './helpers/cli.js';
import { compileFixture, crAsync, lines, restoreDetached, startFixture, waitFor, waitForLine } from './helpers/processes.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

let bin: string;
beforeAll(() => {
  bin = cleanup.dir(tempDir('cr-sigstate-bin-'));
  compileFixture('sigstate', bin);
});
afterAll(() => cleanup.run());

const answers = (out: string) => lines(out).filter((l) => /^(same|DIFFERENT)/.test(l));

describe('signal dispositions and resource limits, as the program itself reads them', () => {
  it('are left as they were by a checkpoint, and come back exactly (handlers, SIG_IGN and SIG_DFL with flags and masks, lowered limits)', async () => {
    const dir = cleanup.dir(tempDir());
    const out = join(dir, 'out.txt');
    const img = join(dir, 'img');
    const child = await startFixture(cleanup, join(bin, 'sigstate'), [], out);
    // The SA_RESETHAND handler ran once before the checkpoint: SIGALRM is SIG_DFL with flags now.
    expect(await waitForLine(out, /^ready/)).toMatch(/ fired=1$/);
    const saved = await crAsync(['checkpoint', String(child.pid), '-D', img]);
    expect(saved.stderr).toBe('');
    expect(saved.status).toBe(0);
    process.kill(child.pid!, 'SIGUSR1');
    await waitFor('the program to compare', () => (answers(out).length === 1 ? true : undefined));
    expect(answers(out)).toEqual(['same 1']);
    const exited = once(child, 'exit');
    child.kill('SIGKILL');
    await exited;
    await restoreDetached(cleanup, img, child.pid!);
    process.kill(child.pid!, 'SIGUSR1');
    await waitFor('the restored program to compare', () => (answers(out).length === 2 ? true : undefined));
    expect(answers(out)).toEqual(['same 1', 'same 1']);
  });
});
