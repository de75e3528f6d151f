import { once } from 'node:events';
import { existsSync, readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Cleanup, tempDir } from './helpers/cli.js';
import { compileFixture, crAsync, seedLaunchers, startFixture, waitFor, waitForLine, waitGone } from './helpers/processes.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

let bin: string;
beforeAll(() => {
  bin = tempDir('cr-restore-memory-bin-');
  compileFixture('scattered', bin);
  compileFixture('heap', bin);
});
afterAll(() => cleanup.dir(bin) && cleanup.run());

/** The scattered fixture (or `fixture`) with `mib` MiB of heap, checkpointed with --kill (and `extra`): its image, PID, output and sum. */
async function checkpointed(mib: number, extra: string[] = [], fixture = 'scattered') {
  const dir = cleanup.dir(tempDir());
  const out = join(dir, 'out.txt');
  const child = await startFixture(cleanup, join(bin, fixture), [String(mib)], out);
  const sum = (await waitForLine(out, /^ready/)).split(' ')[1]!;
  const img = join(dir, 'img');
  const exited = once(child, 'exit');
  const r = await crAsync(['checkpoint', String(child.pid), '-D', img, '--kill', ...extra]);
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  await exited;
  await waitGone(child.pid!);
  return { img, pid: child.pid!, out, sum, pages: join(img, 'blobs', 'mm', String(child.pid), 'pages.bin') };
}

/** Restores detached with -vv and returns cr's debug lines about the mm object. */
async function restoreVerbose(img: string, pid: number): Promise<string[]> {
  // Registered first: a restore that fails may have left the process running.
  cleanup.orphan(pid);
  const r = await crAsync(['restore', '-D', img, '--detach', '-vv']);
  expect(r.status, r.stderr).toBe(0);
  expect(r.stdout).toContain(`tasks:${pid} running as PID ${pid}`);
  return r.stderr.split('\n').filter((l) => l.startsWith('cr: debug: ') && l.includes('page(s)'));
}

/** The restored fixture checks its memory: every sum as before, no never-touched page resident, all of them zeros. */
async function expectSameMemory(heap: { pid: number; out: string; sum: string }): Promise<void> {
  process.kill(heap.pid, 'SIGUSR1');
  expect(await waitForLine(heap.out, /^(same|DIFFERENT)/, 30_000)).toBe(`same ${heap.sum} resident=0 zeros=1`);
}


describe('restored memory is read into place by the restored process itself', () => {
  it('a random heap, sparse mappings with gaps between them, read-only and PROT_NONE pages come back; never-touched pages stay untouched', async () => {
    const heap = await checkpointed(64);
    const debug = await restoreVerbose(heap.img, heap.pid);
    expect(debug).toContainEqual(expect.stringMatching(new RegExp(`pages: \\d+ page\\(s\\) read by PID ${heap.pid} itself from ${heap.pages}$`)));
    await expectSameMemory(heap);
  });

  it('the pages of a blob under 2 MiB are written by cr instead (fewer round trips), with the same result', async () => {
    const heap = await checkpointed(1, [], 'heap');
    expect(statSync(heap.pages).size).toBeLessThan(2 << 20);
    const debug = await restoreVerbose(heap.img, heap.pid);
    expect(debug).toContainEqual(expect.stringMatching(new RegExp(`pages: \\d+ page\\(s\\) written into PID ${heap.pid} by cr \\(the blob is under 2 MiB\\)$`)));
    process.kill(heap.pid, 'SIGUSR1');
    expect(await waitForLine(heap.out, /^(same|DIFFERENT)/, 30_000)).toBe(`same ${heap.sum}`);
  });

  it('a compressed image is decompressed and written by cr instead, with the same result', async () => {
    const heap = await checkpointed(8, ['--compress', 'zstd']);
    const debug = await restoreVerbose(heap.img, heap.pid);
    expect(debug).toContainEqual(expect.stringMatching(new RegExp(`pages: \\d+ page\\(s\\) written into PID ${heap.pid} by cr \\(the blob is stored compressed\\)$`)));
    await expectSameMemory(heap);
  });

  it('a blob whose digest does not match, found while the process reads it, fails the restore: no process, no launcher left', async () => {
    const heap = await checkpointed(16);
    // Near the end: the process has read most of the blob into place when the digest check gets there.
    const bytes = readFileSync(heap.pages);
    bytes[bytes.length - 3 * 4096] ^= 0xff;
    writeFileSync(heap.pages, bytes);
    const before = seedLaunchers();
    const r = await crAsync(['restore', '-D', heap.img, '--detach']);
    cleanup.orphan(heap.pid);
    expect(r.status).toBe(4);
    expect(r.stderr).toBe(`cr: ${heap.pages} is corrupt: its digest does not match the manifest\n`);
    expect(existsSync(`/proc/${heap.pid}`)).toBe(false);
    await waitFor('no launcher left behind', () => (seedLaunchers().every((p) => before.includes(p)) ? true : undefined), 5000);
  });

  it('a truncated blob is refused before anything is restored: no process, no launcher left', async () => {
    const heap = await checkpointed(16);
    const size = statSync(heap.pages).size;
    truncateSync(heap.pages, size - 4096);
    const before = seedLaunchers();
    const r = await crAsync(['restore', '-D', heap.img, '--detach']);
    cleanup.orphan(heap.pid);
    expect(r.status).toBe(4);
    expect(r.stderr).toBe(`cr: ${heap.pages} is truncated: ${size - 4096} of ${size} bytes\n`);
    expect(existsSync(`/proc/${heap.pid}`)).toBe(false);
    await waitFor('no launcher left behind', () => (seedLaunchers().every((p) => before.includes(p)) ? true : undefined), 5000);
  });
});
