import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Cleanup, tempDir } from './helpers/cli.js';
import { compileFixture, crAsync, lines, processState, sleep, tracerOf, waitFor } from './helpers/processes.js';
import { checkpointAndRestore, childrenOf, descendants, endServerFirst, expectSameLinks, linesMatching, startLogged } from './helpers/trees.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

let bin: string;
let tree: string;
beforeAll(() => {
  bin = tempDir('cr-tree-bin-');
  tree = compileFixture('tree', bin);
});
afterAll(() => cleanup.dir(bin) && cleanup.run());

describe('real programs that fork, checkpointed and restored as trees', () => {
  it("a real bash loop piped into cat goes on appending to its log", async () => {
    const dir = cleanup.dir(tempDir());
    const log = join(dir, 'log');
    const out = join(dir, 'out.txt');
    const root = await startLogged(cleanup, 'bash', ['-c', `echo ready; while :; do date +%s%N; sleep 0.1; done | cat >> ${log}`], out);
    await waitFor('a few lines', () => (lines(log).length >= 5 ? true : undefined));
    const img = join(dir, 'img');
    const before = await checkpointAndRestore(cleanup, root, img);
    // The subshell running the loop and cat are the same processes, children of the same bash (a
    // `sleep` or `date` saved with them, below the subshell, may have finished since: only bash's
    // own children are read, never theirs).
    const children = childrenOf(root.pid!);
    expect(children).toHaveLength(2);
    for (const pid of children) expect(before.get(pid)?.ppid).toBe(root.pid);
    const count = lines(log).length;
    await waitFor('the loop to append on', () => (lines(log).length >= count + 5 ? true : undefined));
    const stamps = lines(log).map(Number);
    expect(stamps.every((s, i) => i === 0 || s > stamps[i - 1]!)).toBe(true);
  });

  it('perl with a forked child: both count on', async () => {
    const dir = cleanup.dir(tempDir());
    const out = join(dir, 'out.txt');
    const script = '$| = 1; print "ready\\n"; my $kid = fork(); my $who = $kid ? "parent" : "child"; for (my $n = 1; ; $n++) { print "$who $$ ", getppid(), " $n\\n"; select(undef, undef, undef, 0.05) }';
    const root = await startLogged(cleanup, 'perl', ['-e', script], out);
    await waitFor('both to count', () => (linesMatching(out, /^child /).length >= 3 ? true : undefined));
    const before = await checkpointAndRestore(cleanup, root, join(dir, 'img'));
    const count = lines(out).length;
    await waitFor('both to count on', () => (['parent', 'child'].every((w) => lines(out).slice(count).some((l) => l.startsWith(w))) ? true : undefined));
    expectSameLinks(before, root.pid!);
    for (const who of ['parent', 'child']) {
      const mine = lines(out).filter((l) => l.startsWith(`${who} `)).map((l) => Number(l.split(' ')[3]));
      expect(mine).toEqual(mine.map((_, i) => i + 1));
    }
  });
  it('python3 multiprocessing: a pool of two workers, its threads, pipes and POSIX semaphores (deleted /dev/shm files) carry on', async () => {
    const dir = cleanup.dir(tempDir());
    const out = join(dir, 'out.txt');
    const script = [
      'import multiprocessing as mp, time',
      'def square(x): return x * x',
      "if __name__ == '__main__':",
      '    with mp.Pool(2) as pool:',
      "        print('ready', flush=True)",
      '        n = 0',
      '        while True:',
      '            n += 1',
      "            print('pool', n, sum(pool.map(square, range(n))), flush=True)",
      '            time.sleep(0.05)',
    ].join('\n');
    const root = await startLogged(cleanup, 'python3', ['-c', script], out);
    await waitFor('the pool to answer', () => (linesMatching(out, /^pool /).length >= 3 ? true : undefined));
    for (const pid of descendants(root.pid!)) cleanup.orphan(pid);
    const before = await checkpointAndRestore(cleanup, root, join(dir, 'img'));
    // The pool's parent goes first (cleanups run last registered first): it would replace killed workers.
    for (const pid of [...before.keys()].filter((p) => p !== root.pid)) cleanup.orphan(pid);
    cleanup.orphan(root.pid!);
    expect(before.size).toBe(3);
    const count = linesMatching(out, /^pool /).length;
    await waitFor('the pool to answer again', () => (linesMatching(out, /^pool /).length >= count + 5 ? true : undefined), 30_000);
    expectSameLinks(before, root.pid!);
    // Each answer is the sum of the squares below n, counted with no gap or repeat.
    const answers = linesMatching(out, /^pool /).map((l) => l.split(' ').slice(1).map(Number));
    expect(answers).toEqual(answers.map((_, i) => [i + 1, (i * (i + 1) * (2 * i + 1)) / 6]));
  });
});

describe('freezing a tree', () => {
  it('SIGKILL of cr at any moment of the freeze leaves every process of the tree running, untraced and counting', async () => {
    const dir = cleanup.dir(tempDir());
    const out = join(dir, 'out.txt');
    const root = await startLogged(cleanup, tree, ['server', '4'], out);
    const pids = [root.pid!, ...descendants(root.pid!)];
    for (const pid of pids.slice(1)) cleanup.orphan(pid);
    endServerFirst(cleanup, root);
    for (const delay of [150, 250, 350, 450, 550, 700]) {
      const cr = spawn(process.execPath, [join(import.meta.dirname, '..', 'cli', 'bin', 'run.js'), 'checkpoint', String(root.pid), '-D', join(dir, `img-${delay}`)], { stdio: 'ignore' });
      const exited = once(cr, 'exit');
      await sleep(delay);
      cr.kill('SIGKILL');
      await exited;
      await waitFor('every process to run untraced', () => (pids.every((pid) => tracerOf(pid) === 0 && processState(pid) !== 't') ? true : undefined));
      const counted = lines(out).length;
      await waitFor('every process to count on', () => {
        const fresh = lines(out).slice(counted);
        return pids.every((pid) => fresh.some((l) => l.split(' ')[pid === root.pid ? 1 : 2] === String(pid))) ? true : undefined;
      });
    }
    for (let i = 0; i < 4; i++) {
      const mine = lines(out).filter((l) => l.startsWith(`w ${i} `)).map((l) => Number(l.split(' ')[4]));
      expect(mine).toEqual(mine.map((_, k) => k + 1));
    }
  });

  it('refuses what it cannot restore by name, and leaves the tree running: --no-tree with children, a subtree left out', async () => {
    const dir = cleanup.dir(tempDir());
    const out = join(dir, 'out.txt');
    const root = await startLogged(cleanup, tree, ['server', '2'], out);
    const [first] = descendants(root.pid!).map((pid) => cleanup.orphan(pid));
    endServerFirst(cleanup, root);
    const alone = await crAsync(['checkpoint', String(root.pid), '-D', join(dir, 'a'), '--no-tree']);
    expect(alone.status).toBe(7);
    expect(alone.stderr).toMatch(new RegExp(`^cr: PID ${root.pid} \\(tree\\) has child processes \\(\\d+, \\d+\\); --no-tree checkpoints a process alone`));
    const subtree = await crAsync(['checkpoint', String(root.pid), '-D', join(dir, 'b'), '--exclude', `tasks:subtree=${first}`]);
    expect(subtree.status).toBe(7);
    expect(subtree.stderr).toContain(`cr: tasks:${first} is left out (exclude by object tasks subtree=${first}), but tasks:${root.pid} is saved and is its parent`);
    // The whole tree, selected by its root's subtree, can be left out; and single processes selected by comm.
    const plan = await crAsync(['checkpoint', String(root.pid), '--dry-run', '--json', '--exclude', `tasks:subtree=${root.pid}`]);
    const decisions = JSON.parse(plan.stdout).objects.filter((o: { type: string }) => o.type === 'tasks').map((o: { policy: { decision: string } }) => o.policy.decision);
    expect(decisions).toEqual(['exclude', 'exclude', 'exclude']);
    const counted = lines(out).length;
    await waitFor('the tree to count on', () => (lines(out).slice(counted).filter((l) => l.startsWith('w ')).length >= 4 ? true : undefined));
    expect([root.pid!, ...descendants(root.pid!)].every((pid) => tracerOf(pid) === 0)).toBe(true);
  });

  it('refuses a child that shares its address space and signal handlers with its parent (CLONE_VM | CLONE_SIGHAND), by name', async () => {
    const dir = cleanup.dir(tempDir());
    const out = join(dir, 'out.txt');
    const root = await startLogged(cleanup, tree, ['clonevm'], out);
    const child = cleanup.orphan(descendants(root.pid!)[0]!);
    // The parent first, so that PID 1 (not a parent that never waits) gets the child.
    cleanup.add(() => void root.kill('SIGKILL'));
    const refused = await crAsync(['checkpoint', String(root.pid), '-D', join(dir, 'img')]);
    expect(refused.status).toBe(7);
    expect(refused.stderr).toBe(
      `cr: PID ${root.pid} (tree) shares its memory with its child PID ${child} (tree), as after vfork() or clone(CLONE_VM); cr cannot checkpoint two processes in one address space yet: checkpoint once the child has called exec or exited\n`,
    );
    expect([root.pid!, child].map((pid) => [tracerOf(pid), processState(pid)])).toEqual([
      [0, 'S'],
      [0, 'S'],
    ]);
  });

  it('refuses a parent waiting in vfork for its child, by name, without stopping either', async () => {
    const dir = cleanup.dir(tempDir());
    const out = join(dir, 'out.txt');
    const root = await startLogged(cleanup, tree, ['vfork'], out);
    const child = await waitFor('the vfork child', () => descendants(root.pid!)[0]);
    cleanup.orphan(child);
    const refused = await crAsync(['checkpoint', String(root.pid), '-D', join(dir, 'img')]);
    expect(refused.status).toBe(7);
    expect(refused.stderr).toBe(
      `cr: PID ${root.pid} (tree) shares its memory with its child PID ${child} (tree), as after vfork() or clone(CLONE_VM); cr cannot checkpoint two processes in one address space yet: checkpoint once the child has called exec or exited\n`,
    );
    expect([root.pid!, child].map((pid) => [tracerOf(pid), processState(pid)])).toEqual([
      [0, 'D'],
      [0, 'S'],
    ]);
  });
});
