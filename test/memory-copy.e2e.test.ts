import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { checkpointAndKill, compileFixture, processState, restoreDetached, startFixture, tracerOf, waitFor, waitForLine } from './helpers/processes.js';
import { Cleanup, REPO, tempDir } from './helpers/cli.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

const PAGE = 4096;
const MIB = 1 << 20;

interface MmRecord {
  pages: { address: string; pages: number }[];
}

/** The dirtier fixture: DATA MiB of pseudo-random data, ZERO MiB written and cleared, UNTOUCHED MiB mapped and never touched, idle. */
async function dirtier(dir: string, data: number, zero: number, untouched: number) {
  const bin = compileFixture('dirtier', dir);
  const out = join(dir, 'out');
  const child = await startFixture(cleanup, bin, [String(data), String(zero), String(untouched), '0'], out);
  return { child, pid: child.pid!, out };
}

/** Has the fixture check every word of its memory (SIGUSR1): the data as generated, the zeros, the untouched part reading as zero. */
async function expectMemoryIntact(pid: number, out: string): Promise<void> {
  process.kill(pid, 'SIGUSR1');
  expect(await waitForLine(out, /^(same|DIFFERENT)/, 30_000)).toMatch(/^same [0-9]+$/);
}

const pagesBlob = (img: string, pid: number) => join(img, 'blobs', 'mm', String(pid), 'pages.bin');

describe('moving memory into the image', () => {
  it('saves the data of a process with cleared and never-touched mappings beside it, in no more disk space than the data, and it comes back word for word', async () => {
    const dir = cleanup.dir(tempDir());
    const { child, pid, out } = await dirtier(dir, 96, 32, 64);
    const img = join(dir, 'img');
    await checkpointAndKill(child, img);

    const record = (JSON.parse(readFileSync(join(img, 'records', 'mm', `${pid}.json`), 'utf8')) as { record: MmRecord }).record;
    const saved = record.pages.reduce((n, r) => n + r.pages, 0) * PAGE;
    const blob = statSync(pagesBlob(img, pid));
    expect(blob.size).toBe(saved);
    // The data and a few pages of stack and libc; the cleared and the untouched memory are left out.
    expect(saved).toBeGreaterThanOrEqual(96 * MIB);
    expect(saved).toBeLessThan(100 * MIB);
    // The disk space reserved for every present page (the cleared ones too) is given back once they are known to be zeros.
    expect(blob.blocks * 512).toBeLessThanOrEqual(saved + PAGE);

    await restoreDetached(cleanup, img, pid);
    await expectMemoryIntact(pid, out);
  });

  for (const signal of ['SIGINT', 'SIGKILL'] as const) {
    it(`${signal} to cr while it writes a live process's pages leaves the process running as it was, untraced, with the same descriptors`, async () => {
      const dir = cleanup.dir(tempDir());
      const { pid, out } = await dirtier(dir, 256, 0, 0);
      const fds = readdirSync(`/proc/${pid}/fd`).sort();
      const crProcess = spawn(process.execPath, [join(REPO, 'cli', 'bin', 'run.js'), 'checkpoint', String(pid), '-D', join(dir, 'img')], { stdio: 'ignore' });
      const ended = once(crProcess, 'exit');
      await waitFor(
        'cr to start writing the pages',
        () => (readdirSync(dir).some((name) => name.startsWith('.img.cr-partial-') && existsSync(pagesBlob(join(dir, name), pid))) ? true : undefined),
        30_000,
      );
      crProcess.kill(signal);
      await ended;
      expect(['S', 'R']).toContain(processState(pid));
      expect(tracerOf(pid)).toBe(0);
      expect(readdirSync(`/proc/${pid}/fd`).sort()).toEqual(fds);
      expect(readdirSync(dir).filter((name) => name.includes('img'))).toEqual(signal === 'SIGINT' ? [] : [expect.stringMatching(/^\.img\.cr-partial-/)]);
      await expectMemoryIntact(pid, out);
    });
  }
});
