import { once } from 'node:events';
import { existsSync, readFileSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Cleanup, tempDir } from './helpers/cli.js';
import { compileFixture, crAsync, lines, processState, sleep, waitFor, waitGone } from './helpers/processes.js';
import { checkpointAndRestore, descendants, expectSameLinks, linesMatching, links, manifestObjects, startLogged } from './helpers/trees.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

let bin: string;
let tree: string;
beforeAll(() => {
  bin = tempDir('cr-tree-bin-');
  tree = compileFixture('tree', bin);
});
afterAll(() => cleanup.dir(bin) && cleanup.run());

describe('process trees, checkpointed and restored with the same PIDs and parents', () => {
  it('a forking server: every worker counts on without a gap, and the parent reaps its workers after restore', async () => {
    const dir = cleanup.dir(tempDir());
    const out = join(dir, 'out.txt');
    const root = await startLogged(cleanup, tree, ['server', '3'], out);
    await waitFor('the workers to count', () => (linesMatching(out, /^w 2 /).length >= 3 ? true : undefined));
    const before = await checkpointAndRestore(cleanup, root, join(dir, 'img'));
    const workers = [...before.keys()].filter((pid) => pid !== root.pid);
    expect(workers).toHaveLength(3);
    const counted = lines(out).length;
    await waitFor('every worker to count on', () => (workers.every((w) => lines(out).slice(counted).some((l) => l.startsWith('w ') && l.split(' ')[2] === String(w))) ? true : undefined));
    expectSameLinks(before, root.pid!, ['ppid', 'pgid', 'sid']);
    // Each worker's counts, and the parent's, run on with no gap or repeat; the workers still see their parent.
    for (let i = 0; i < 3; i++) {
      const mine = lines(out).filter((l) => l.startsWith(`w ${i} `)).map((l) => l.split(' '));
      expect(mine.map((f) => Number(f[4]))).toEqual(mine.map((_, k) => k + 1));
      expect(new Set(mine.map((f) => `${f[2]} ${f[3]}`))).toEqual(new Set([`${workers[i]} ${root.pid}`]));
    }
    const parent = lines(out).filter((l) => l.startsWith('p ')).map((l) => Number(l.split(' ')[2]));
    expect(parent).toEqual(parent.map((_, k) => k + 1));
    process.kill(root.pid!, 'SIGUSR1');
    await waitFor('the parent to reap its workers', () => (linesMatching(out, /^reaped /).length === 3 ? true : undefined));
    expect(lines(out).filter((l) => /^(reaped|ERROR)/.test(l))).toEqual(workers.map((w) => `reaped ${w} signal 15`));
  });

  it('zombies come back, and their parent reaps them with their exit status after restore', async () => {
    const dir = cleanup.dir(tempDir());
    const out = join(dir, 'out.txt');
    const root = await startLogged(cleanup, tree, ['zombies'], out);
    const kids = descendants(root.pid!);
    expect(kids.map((k) => processState(k))).toEqual(['Z', 'Z', 'Z']);
    await checkpointAndRestore(cleanup, root, join(dir, 'img'));
    expect(kids.map((k) => [processState(k), links(k).ppid])).toEqual(kids.map(() => ['Z', root.pid]));
    process.kill(root.pid!, 'SIGUSR1');
    await waitFor('the parent to reap them', () => (linesMatching(out, /^(reaped|ERROR)/).length === 3 ? true : undefined));
    expect(lines(out).filter((l) => /^(reaped|ERROR)/.test(l))).toEqual([`reaped ${kids[0]} exit 3`, `reaped ${kids[1]} exit 5`, `reaped ${kids[2]} signal 15`]);
  });

  it('an open file shared across fork keeps one offset, which both processes move on', async () => {
    const dir = cleanup.dir(tempDir());
    const out = join(dir, 'out.txt');
    const file = join(dir, 'shared.txt');
    const root = await startLogged(cleanup, tree, ['offset', file], out);
    await waitFor('a few turns', () => (linesMatching(out, /^offset C /).length >= 5 ? true : undefined));
    await checkpointAndRestore(cleanup, root, join(dir, 'img'));
    const turns = linesMatching(out, /^offset /).length;
    await waitFor('ten more turns', () => (linesMatching(out, /^offset /).length >= turns + 10 ? true : undefined));
    // Had the restore split the description, each would write at its own offset, over the other's lines.
    const written = readFileSync(file, 'utf8').split('\n').filter(Boolean);
    expect(written.length).toBeGreaterThanOrEqual(turns + 10);
    written.forEach((line, i) => expect(line).toBe(`${i % 2 === 0 ? 'C' : 'P'} ${String(Math.floor(i / 2) + 1).padStart(13, '0')}`));
    const offsets = lines(out).filter((l) => l.startsWith('offset ')).map((l) => Number(l.split(' ')[2]));
    expect(offsets).toEqual(offsets.map((_, i) => (i + 1) * 16));
  });

  it('a restore that fails once the tree exists kills every process it made', async () => {
    const dir = cleanup.dir(tempDir());
    const out = join(dir, 'out.txt');
    const file = join(dir, 'shared.txt');
    const root = await startLogged(cleanup, tree, ['offset', file], out);
    const child = descendants(root.pid!)[0]!;
    cleanup.orphan(child);
    const img = join(dir, 'img');
    const exited = once(root, 'exit');
    expect((await crAsync(['checkpoint', String(root.pid), '-D', img, '--kill'])).status).toBe(0);
    await exited;
    await waitGone(child);
    // The open file is gone: found only when its descriptor is given back, after both processes exist.
    unlinkSync(file);
    const r = await crAsync(['restore', '-D', img, '--detach']);
    expect(r.status).toBe(5);
    expect(r.stderr).toMatch(new RegExp(`^cr: cannot restore fd 3 of PID ${root.pid}: ${file} cannot be opened again \\(ENOENT\\)`));
    expect([root.pid!, child].map((pid) => existsSync(`/proc/${pid}`))).toEqual([false, false]);
  });

  it('a session leader with jobs in their own process groups: same sessions and groups, and a signal to a group reaches just its members', async () => {
    const dir = cleanup.dir(tempDir());
    const out = join(dir, 'out.txt');
    const root = await startLogged(cleanup, tree, ['session'], out);
    const before = await checkpointAndRestore(cleanup, root, join(dir, 'img'));
    expectSameLinks(before, root.pid!, ['ppid', 'pgid', 'sid']);
    const groups = new Set([...before.values()].map((l) => l.pgid));
    expect(groups.size).toBe(3);
    expect([...before.values()].every((l) => l.sid === root.pid)).toBe(true);
    const job1 = [...before].find(([pid, l]) => l.pgid === pid && pid !== root.pid && [...before.values()].filter((o) => o.pgid === pid).length === 2)![0];
    process.kill(-job1, 'SIGUSR1');
    await waitFor('both members of job 1 to answer', () => (linesMatching(out, /^usr1 /).length === 2 ? true : undefined));
    await sleep(200);
    expect(lines(out).filter((l) => l.startsWith('usr1 ')).map((l) => l.split(' ')[1]).sort()).toEqual(['job1', 'job1-child']);
    process.kill(-root.pid!, 'SIGUSR1');
    await waitFor('the leader and its child to answer', () => (linesMatching(out, /^usr1 leader/).length === 2 ? true : undefined));
  });

  it('a session and a group whose leaders exited (orphaned groups under a subreaper) come back through helpers with the leaders\' PIDs', async () => {
    const dir = cleanup.dir(tempDir());
    const out = join(dir, 'out.txt');
    const root = await startLogged(cleanup, tree, ['orphans'], out);
    const [sessionLeader, groupLeader] = lines(out)[0]!.split(' ').slice(1).map(Number) as [number, number];
    const before = await checkpointAndRestore(cleanup, root, join(dir, 'img'));
    expectSameLinks(before, root.pid!, ['ppid', 'pgid', 'sid']);
    // The helpers are gone (reaped by their parent), their groups are not.
    expect([sessionLeader, groupLeader].map((pid) => processState(pid))).toEqual([undefined, undefined]);
    process.kill(-sessionLeader, 'SIGUSR1');
    process.kill(-groupLeader, 'SIGUSR1');
    await waitFor('both orphans to answer', () => (linesMatching(out, /^usr1 /).length === 2 ? true : undefined));
    await sleep(200);
    expect(linesMatching(out, /^usr1 /).map((l) => l.split(' ')[1]).sort()).toEqual(['group-orphan', 'session-orphan']);
  });

  it('a producer | consumer pipeline with data in the pipe carries on with no line lost or repeated', async () => {
    const dir = cleanup.dir(tempDir());
    const out = join(dir, 'out.txt');
    const root = await startLogged(cleanup, 'sh', ['-c', `${tree} producer | ${tree} consumer`], out);
    await waitFor('the consumer to get going', () => (linesMatching(out, /^got /).length >= 3 ? true : undefined));
    const img = join(dir, 'img');
    const before = await checkpointAndRestore(cleanup, root, img);
    expect(before.size).toBe(3);
    expectSameLinks(before, root.pid!);
    expect(manifestObjects(img).find((o) => o.type === 'pipes')?.parents).toHaveLength(2);
    const got = linesMatching(out, /^got /).length;
    await waitFor('the consumer to read on', () => (linesMatching(out, /^got /).length >= got + 5 ? true : undefined));
    expect(lines(out).filter((l) => l.startsWith('ERROR'))).toEqual([]);
    const numbers = lines(out).filter((l) => l.startsWith('got ')).map((l) => Number(l.split(' ')[1]));
    expect(numbers).toEqual(numbers.map((_, i) => (i + 1) * 100));
  });

});
