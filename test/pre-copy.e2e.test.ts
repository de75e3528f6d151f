import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync, readdirSync, renameSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { checkpointAndKill, compileFixture, crAsync, processState, restoreDetached, startFixture, waitFor, waitForLine } from './helpers/processes.js';
import { Cleanup, REPO, crJson, tempDir } from './helpers/cli.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

const PAGE = 4096;
const MIB = 1 << 20;

interface PageRun {
  address: string;
  pages: number;
  stale?: true;
}
interface MmRecord {
  pages: PageRun[];
  precopied?: { blob: string; runs: PageRun[] }[];
  fromParent?: PageRun[];
}
interface Result {
  frozenMs: number;
  phases: Record<string, number>;
  preCopy?: { rounds: { copied: number; ms: number }[] };
}

const pagesOf = (runs: readonly PageRun[]) => runs.reduce((n, r) => n + r.pages, 0);

function mmRecord(img: string, pid: number): MmRecord {
  return (JSON.parse(readFileSync(join(img, 'records', 'mm', `${pid}.json`), 'utf8')) as { record: MmRecord }).record;
}

/** Bytes of the blobs of one object of the image, by blob name. */
function blobSizes(img: string, key: string): Record<string, number> {
  const manifest = JSON.parse(readFileSync(join(img, 'manifest.json'), 'utf8')) as { objects: { key: string; blobs?: Record<string, string> }[] };
  const blobs = manifest.objects.find((o) => o.key === key)!.blobs ?? {};
  return Object.fromEntries(Object.entries(blobs).map(([name, rel]) => [name, statSync(join(img, rel)).size]));
}

/** What the process shows of cr's work: whether a mapping is still registered for write-protection ("uw"), and its descriptors. */
function traces(pid: number): { uffdWp: boolean; fds: string[] } {
  const smaps = readFileSync(`/proc/${pid}/smaps`, 'utf8');
  return { uffdWp: /^VmFlags:.* uw\b/m.test(smaps), fds: readdirSync(`/proc/${pid}/fd`).sort() };
}

/** Has the fixture check every word of its memory (SIGUSR1) and expects it to find all as it must be. */
async function expectMemoryIntact(pid: number, out: string): Promise<void> {
  process.kill(pid, 'SIGUSR1');
  expect(await waitForLine(out, /^(same|DIFFERENT)/, 30_000)).toMatch(/^same [0-9]+$/);
}

async function dirtier(dir: string, args: string[]) {
  const bin = compileFixture('dirtier', dir);
  const out = join(dir, 'out');
  const child = await startFixture(cleanup, bin, args, out);
  return { child, pid: child.pid!, out };
}

describe('cr checkpoint --pre-copy', () => {
  it('copies a mostly idle 256 MiB process while it runs, freezes it only for what it wrote meanwhile, and the restored memory is exact', async () => {
    const dir = cleanup.dir(tempDir());
    const { child, pid, out } = await dirtier(dir, ['256', '0', '0', '4']);
    const img = join(dir, 'img');
    const result = JSON.parse(await checkpointAndKill(child, img, ['--pre-copy', '--json'])) as Result;
    const rounds = result.preCopy!.rounds;
    expect(rounds.length).toBeGreaterThan(0);
    expect(rounds[0]!.copied).toBeGreaterThanOrEqual((256 * MIB) / PAGE);
    expect(result.phases['pre-copy']).toBeGreaterThan(0);

    const record = mmRecord(img, pid);
    const frozenPages = pagesOf(record.pages);
    const preCopied = (record.precopied ?? []).reduce((n, round) => n + pagesOf(round.runs.filter((x) => !x.stale)), 0);
    expect(record.precopied!.map((round) => round.blob)).toEqual(rounds.map((_, i) => `precopy-${i}`));
    // What was copied while frozen is what the program wrote during the last round: a small part.
    expect(frozenPages).toBeLessThan((frozenPages + preCopied) / 10);
    expect(preCopied).toBeGreaterThanOrEqual((256 * MIB) / PAGE - frozenPages);
    const [view] = crJson<{ processes: { mappings: { savedPages: number }[] }[] }>(['inspect', 'mems', img]).processes;
    expect(view!.mappings.reduce((n, m) => n + m.savedPages, 0)).toBe(frozenPages + preCopied);
    // The write-protection is cr's: the mappings are saved with the VmFlags the program gave them.
    expect(readFileSync(join(img, 'records', 'mm', `${pid}.json`), 'utf8')).not.toContain('"uw"');

    await restoreDetached(cleanup, img, pid);
    await expectMemoryIntact(pid, out);
  });

  it('--pre-copy=N runs at most N rounds; the process carries on without the tracking, and the image restores', async () => {
    const dir = cleanup.dir(tempDir());
    const { pid, out } = await dirtier(dir, ['64', '0', '0', '64']);
    const before = traces(pid);
    const img = join(dir, 'img');
    const r = await crAsync(['checkpoint', String(pid), '-D', img, '--pre-copy=2', '--json']);
    expect(r.status, r.stderr).toBe(0);
    expect((JSON.parse(r.stdout) as Result).preCopy!.rounds.length).toBeLessThanOrEqual(2);
    expect(traces(pid)).toEqual({ ...before, uffdWp: false });

    const usage = await crAsync(['checkpoint', String(pid), '-D', join(dir, 'other'), '--pre-copy-rounds', '3']);
    expect(usage.status).toBe(2);
    expect(usage.stderr).toMatch(/pre-copy/);

    await expectMemoryIntact(pid, out);
    await waitFor(`PID ${pid} to exit`, () => (processState(pid) === undefined || processState(pid) === 'Z' ? true : undefined));
    await restoreDetached(cleanup, img, pid);
    process.kill(pid, 'SIGUSR1');
    await waitFor('the restored program to check its memory', () => (readFileSync(out, 'utf8').match(/^same /gm)?.length === 2 ? true : undefined), 30_000);
    expect(readFileSync(out, 'utf8')).not.toMatch(/DIFFERENT/);
  });

  for (const signal of ['SIGINT', 'SIGKILL'] as const) {
    it(`${signal} to cr in the middle of a pre-copy leaves the process running as it was, untracked, and no image`, async () => {
      const dir = cleanup.dir(tempDir());
      const { pid, out } = await dirtier(dir, ['256', '0', '0', '4']);
      const before = traces(pid);
      const img = join(dir, 'img');
      const crProcess = spawn(process.execPath, [join(REPO, 'cli', 'bin', 'run.js'), 'checkpoint', String(pid), '-D', img, '--pre-copy'], { stdio: 'ignore' });
      const ended = once(crProcess, 'exit');
      await waitFor('the pre-copy to write-protect the memory', () => (traces(pid).uffdWp ? true : undefined), 30_000);
      crProcess.kill(signal);
      await ended;
      await waitFor('the write-protection to be gone', () => (traces(pid).uffdWp ? undefined : true), 10_000);
      expect(traces(pid)).toEqual(before);
      expect(['S', 'R']).toContain(processState(pid));
      expect(readdirSync(dir).filter((name) => name.includes('img'))).toEqual(signal === 'SIGINT' ? [] : [expect.stringMatching(/^\.img\.cr-partial-/)]);
      await expectMemoryIntact(pid, out);
    });
  }
});

describe('cr checkpoint --parent (incremental images)', () => {
  it('saves only the pages changed since the parent, and a chain of three images restores exactly', async () => {
    const dir = cleanup.dir(tempDir());
    const { child, pid, out } = await dirtier(dir, ['64', '0', '0', '1']);
    const [img1, img2, img3] = ['img1', 'img2', 'img3'].map((name) => join(dir, name));
    for (const [img, extra] of [[img1, []], [img2, ['--parent', img1]]] as const) {
      const r = await crAsync(['checkpoint', String(pid), '-D', img, ...extra]);
      expect(r.status, r.stderr).toBe(0);
    }
    const full = blobSizes(img1, `mm:${pid}`).pages!;
    expect(full).toBeGreaterThan(64 * MIB);
    expect(blobSizes(img2, `mm:${pid}`).pages!).toBeLessThan(full / 10);
    expect(pagesOf(mmRecord(img2, pid).fromParent!)).toBeGreaterThan((60 * MIB) / PAGE);
    const manifest = JSON.parse(readFileSync(join(img2, 'manifest.json'), 'utf8')) as { formatVersion: number; parent: { path: string } };
    expect(manifest).toMatchObject({ formatVersion: 3, parent: { path: img1 } });

    await checkpointAndKill(child, img3, ['--parent', img2, '--pre-copy']);
    expect(pagesOf(mmRecord(img3, pid).fromParent!)).toBeGreaterThan((32 * MIB) / PAGE);

    // Without its grandparent the image is refused before any process is made.
    renameSync(img1, `${img1}.away`);
    const refused = await crAsync(['restore', '-D', img3, '--detach']);
    expect(refused.status).not.toBe(0);
    expect(refused.stderr).toMatch(new RegExp(`^cr: .*${img1}`));
    expect(existsSync(`/proc/${pid}`)).toBe(false);
    renameSync(`${img1}.away`, img1);

    await restoreDetached(cleanup, img3, pid);
    await expectMemoryIntact(pid, out);
  });

  it('a parent that is no image, or one of another process, is refused before the process is touched', async () => {
    const dir = cleanup.dir(tempDir());
    const { pid, out } = await dirtier(dir, ['4', '0', '0', '1']);
    const other = await dirtier(cleanup.dir(tempDir()), ['4', '0', '0', '1']);
    const otherImg = join(dir, 'other');
    expect((await crAsync(['checkpoint', String(other.pid), '-D', otherImg])).status).toBe(0);
    const before = traces(pid);
    for (const [parent, message] of [
      [otherImg, `is an image of PID ${other.pid}, not of PID ${pid}`],
      [join(dir, 'nothing'), 'no image at'],
    ] as const) {
      const r = await crAsync(['checkpoint', String(pid), '-D', join(dir, 'img'), '--parent', parent, '--pre-copy']);
      expect(r.status).not.toBe(0);
      expect(r.stderr).toContain(message);
      expect(r.stderr).toMatch(/^cr: /);
      expect(traces(pid)).toEqual(before);
      expect(existsSync(join(dir, 'img'))).toBe(false);
    }
    await expectMemoryIntact(pid, out);
  });
});

describe('what is left out of an image', () => {
  it('zero pages and pages never touched are not saved, and restore as zeros without being faulted in', async () => {
    const dir = cleanup.dir(tempDir());
    const { child, pid, out } = await dirtier(dir, ['16', '32', '64', '0']);
    const img = join(dir, 'img');
    await checkpointAndKill(child, img);
    const saved = blobSizes(img, `mm:${pid}`).pages!;
    // The 16 MiB of data and its bookkeeping, libc's and the stack's pages; not the 96 MiB of zeros.
    expect(saved).toBeGreaterThanOrEqual(16 * MIB);
    expect(saved).toBeLessThan(17 * MIB);

    await restoreDetached(cleanup, img, pid);
    const rss = Number(/^VmRSS:\s+([0-9]+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024;
    expect(rss).toBeLessThan(32 * MIB);
    await expectMemoryIntact(pid, out);
  });
});
