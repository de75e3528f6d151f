import { mkdirSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Cleanup, tempDir } from './helpers/cli.js';
import { compileFixture, crAsync, lines, waitFor, waitForLine } from './helpers/processes.js';
import { checkpointAndRestore, descendants, linesMatching, manifestObjects, startLogged } from './helpers/trees.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

let bin: string;
beforeAll(() => {
  bin = tempDir('cr-tree-sharing-bin-');
  for (const name of ['shared-tables', 'sharedmem', 'cowshare']) compileFixture(name, bin);
});
afterAll(() => cleanup.dir(bin) && cleanup.run());

/** Starts `shared-tables MODE` with two paths of its own, and checkpoints and restores its tree. */
async function restoredPair(mode: 'files' | 'fs'): Promise<{ out: string; parent: number; child: number; paths: [string, string]; img: string }> {
  const dir = realpathSync(cleanup.dir(tempDir()));
  const out = join(dir, 'out.txt');
  const paths: [string, string] = [join(dir, 'of-child'), join(dir, 'of-parent')];
  for (const path of paths) {
    if (mode === 'files') writeFileSync(path, 'x');
    else mkdirSync(path);
  }
  const root = await startLogged(cleanup, join(bin, 'shared-tables'), [mode, ...paths], out);
  const child = cleanup.orphan(descendants(root.pid!)[0]!);
  const img = join(dir, 'img');
  await checkpointAndRestore(cleanup, root, img);
  return { out, parent: root.pid!, child, paths, img };
}

const sharesWithParent = (img: string, pid: number) =>
  (JSON.parse(readFileSync(join(img, manifestObjects(img).find((o) => o.type === 'tasks' && o.id === String(pid))!.record!), 'utf8')) as { record: { sharesWithParent?: string[] } }).record.sharesWithParent;

describe('tables a parent and child made by clone() share', () => {
  it('CLONE_FILES: one fd table after restore; a file one process opens, the other has', async () => {
    const { out, parent, child, paths, img } = await restoredPair('files');
    expect(sharesWithParent(img, child)).toEqual(['files']);
    process.kill(child, 'SIGUSR1');
    await waitForLine(out, /^parent sees fd 42 /);
    process.kill(parent, 'SIGUSR1');
    await waitForLine(out, /^child sees fd 43 /);
    expect(lines(out).filter((l) => l.includes(' sees '))).toEqual([`parent sees fd 42 ${paths[0]}`, `child sees fd 43 ${paths[1]}`]);
  });

  it('CLONE_FS: one working directory after restore; a chdir by one process moves the other', async () => {
    const { out, parent, child, paths, img } = await restoredPair('fs');
    expect(sharesWithParent(img, child)).toEqual(['fs']);
    process.kill(child, 'SIGUSR1');
    await waitFor('both to be in the child\'s directory', () => (['parent', 'child'].every((who) => lines(out).includes(`${who} cwd ${paths[0]}`)) ? true : undefined));
    process.kill(parent, 'SIGUSR1');
    await waitFor('both to be in the parent\'s directory', () => (['parent', 'child'].every((who) => lines(out).includes(`${who} cwd ${paths[1]}`)) ? true : undefined));
  });
});

/** The counts of `name` ("anon" or "memfd") in the order they were printed, with who printed each. */
const turns = (out: string, name: string) => linesMatching(out, new RegExp(`^${name} `)).map((l) => l.split(' ').slice(1));

describe('memory shared between the processes of a tree', () => {
  it('shared anonymous memory and a memfd mapped by parent and child stay shared: each still sees what the other writes', async () => {
    const dir = cleanup.dir(tempDir());
    const out = join(dir, 'out.txt');
    const root = await startLogged(cleanup, join(bin, 'sharedmem'), [], out);
    cleanup.orphan(descendants(root.pid!)[0]!);
    await waitFor('a few turns', () => (turns(out, 'memfd').length >= 6 ? true : undefined));
    await checkpointAndRestore(cleanup, root, join(dir, 'img'));
    const before = lines(out).length;
    // Each turn is handed over through memory: no turns after restore unless it is still shared.
    await waitFor('twenty more turns of each', () => (['anon', 'memfd'].every((name) => turns(out, name).length >= before / 2 + 20) ? true : undefined));
    for (const name of ['anon', 'memfd']) {
      const seen = turns(out, name);
      expect(seen.map(([, n]) => Number(n))).toEqual(seen.map((_, i) => i + 1));
      expect(seen.map(([who]) => who)).toEqual(seen.map((_, i) => (i % 2 === 0 ? 'parent' : 'child')));
    }
  });
});

/** A field of /proc/PID/smaps_rollup, in KiB. */
const rollup = (pid: number, field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'))![1]);

/** The cowshare fixture: a parent with 64 MiB touched and 4 children that only read it; `expected` is its sum. */
async function startCowshare() {
  const dir = cleanup.dir(tempDir());
  const out = join(dir, 'out.txt');
  const root = await startLogged(cleanup, join(bin, 'cowshare'), [], out);
  const children = descendants(root.pid!);
  for (const child of children) cleanup.orphan(child);
  return { dir, out, root, children, expected: lines(out)[0]!.split(' ')[1] };
}

describe('private memory a parent and its children share copy-on-write after fork', () => {
  it('stays shared after restore: 64 MiB read by 4 children are not copied into each, and each still sums them right', async () => {
    const { dir, out, root, children, expected } = await startCowshare();
    expect(children).toHaveLength(4);
    await checkpointAndRestore(cleanup, root, join(dir, 'img'));
    for (const child of children) {
      // Each child's copy of the 64 MiB would be private to it, dirty, had the restore written it.
      expect({ child, privateDirtyKiB: rollup(child, 'Private_Dirty') < 8 * 1024 }).toEqual({ child, privateDirtyKiB: true });
      expect(rollup(child, 'Shared_Dirty')).toBeGreaterThan(60 * 1024);
      process.kill(child, 'SIGUSR1');
    }
    await waitFor('every child to sum', () => (linesMatching(out, /^child /).length === 4 ? true : undefined), 30_000);
    expect(new Set(linesMatching(out, /^child /).map((l) => l.split(' ')[3]))).toEqual(new Set([expected]));
  });

  it('a checkpoint that leaves the tree running does not copy what parent and children share: their memory stays the same size', async () => {
    const { dir, out, root, children, expected } = await startCowshare();
    const tree = [root.pid!, ...children];
    const pss = () => tree.reduce((sum, pid) => sum + rollup(pid, 'Pss'), 0);
    const before = pss();
    const r = await crAsync(['checkpoint', String(root.pid), '-D', join(dir, 'img')]);
    expect(r.status, r.stderr).toBe(0);
    // Reading pages that pin them would have given each process its own copy of the 64 MiB.
    expect(pss() - before).toBeLessThan(8 * 1024);
    for (const child of children) process.kill(child, 'SIGUSR1');
    await waitFor('every child to sum', () => (linesMatching(out, /^child /).length === 4 ? true : undefined), 30_000);
    expect(new Set(linesMatching(out, /^child /).map((l) => l.split(' ')[3]))).toEqual(new Set([expected]));
  });

  it('with --pre-copy, whose pages are not all in one blob, each child is restored whole and sums right', async () => {
    const { dir, out, root, children, expected } = await startCowshare();
    await checkpointAndRestore(cleanup, root, join(dir, 'img'), ['--pre-copy']);
    for (const child of children) process.kill(child, 'SIGUSR1');
    await waitFor('every child to sum', () => (linesMatching(out, /^child /).length === 4 ? true : undefined), 30_000);
    expect(new Set(linesMatching(out, /^child /).map((l) => l.split(' ')[3]))).toEqual(new Set([expected]));
  });
});
