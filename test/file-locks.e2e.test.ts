import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Cleanup, tempDir } from './helpers/cli.js';
import { checkpointAndKill, compileFixture, crAsync, lines, restoreDetached, startFixture, waitFor, waitForLine } from './helpers/processes.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

let bin: string;
beforeAll(() => {
  bin = tempDir('cr-locks-bin-');
  compileFixture('locks', bin);
});
afterAll(() => cleanup.dir(bin) && cleanup.run());

/** The locks fdinfo shows on each of the process's descriptors: kind, mode, type and range, by fd. */
function locksOf(pid: number): Record<string, string[]> {
  const found: Record<string, string[]> = {};
  for (const fd of readdirSync(`/proc/${pid}/fdinfo`)) {
    const locks = readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('lock:'))
      // Drop the lock's number, its owner's pid and the inode: what is left must come back as it was.
      .map((l) => l.replace(/^lock:\s+\d+:\s+/, '').replace(/\s+-?\d+\s+[0-9a-f]+:[0-9a-f]+:\d+\s+/, ' ').replace(/\s+/g, ' '));
    if (locks.length > 0) found[fd] = locks;
  }
  return found;
}

/** Whether another process can take each lock the fixture should hold: every answer must be "held". */
function probe(dir: string, ranges: { file: string; how: 'flock' | 'lockf'; start?: number; length?: number }[]): string[] {
  const script = `
import fcntl, json, sys
out = []
for p in json.loads(sys.argv[1]):
    with open(sys.argv[2] + '/' + p['file'], 'r+') as f:
        try:
            if p['how'] == 'flock':
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            else:
                fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB, p['length'], p['start'])
            out.append('free')
        except BlockingIOError:
            out.append('held')
print(' '.join(out))
`;
  const r = spawnSync('python3', ['-c', script, JSON.stringify(ranges), dir], { encoding: 'utf8' });
  expect(r.stderr).toBe('');
  return r.stdout.trim().split(' ');
}

const PROBES = [
  { file: 'flock', how: 'flock' },
  { file: 'posix', how: 'lockf', start: 15, length: 1 },
  { file: 'posix', how: 'lockf', start: 5000, length: 1 },
  { file: 'ofd', how: 'lockf', start: 2, length: 1 },
] as const;

describe('file locks', () => {
  it('a flock (and its dup), fcntl record locks, an OFD lock and a lease are held again after restore, and the program can let go of its own', async () => {
    const dir = cleanup.dir(tempDir());
    const out = join(dir, 'out.txt');
    const child = await startFixture(cleanup, join(bin, 'locks'), [dir], out);
    await waitForLine(out, /^ready$/);
    const pid = child.pid!;
    const before = locksOf(pid);
    expect(Object.values(before).flat().sort()).toEqual(
      ['FLOCK ADVISORY WRITE 0 EOF', 'FLOCK ADVISORY WRITE 0 EOF', 'LEASE ACTIVE READ 0 EOF', 'OFDLCK ADVISORY WRITE 0 4', 'POSIX ADVISORY READ 100 EOF', 'POSIX ADVISORY WRITE 10 29'].sort(),
    );
    expect(probe(dir, [...PROBES])).toEqual(['held', 'held', 'held', 'held']);

    const saved = await checkpointAndKill(child, join(dir, 'img'));
    expect(saved).toContain(`file-locks:${pid}`);
    // The program is gone, and its locks with it.
    expect(probe(dir, [...PROBES])).toEqual(['free', 'free', 'free', 'free']);

    await restoreDetached(cleanup, join(dir, 'img'), pid);
    expect(locksOf(pid)).toEqual(before);
    expect(probe(dir, [...PROBES])).toEqual(['held', 'held', 'held', 'held']);
    process.kill(pid, 'SIGUSR1');
    await waitFor('the program to let go of bytes 10-29', () => (lines(out).includes('released 0') ? true : undefined));
    expect(probe(dir, [{ file: 'posix', how: 'lockf', start: 15, length: 1 }])).toEqual(['free']);
  });

  it('a lock someone else took meanwhile fails the restore by name, and nothing is left running', async () => {
    const dir = cleanup.dir(tempDir());
    const out = join(dir, 'out.txt');
    const child = await startFixture(cleanup, join(bin, 'locks'), [dir], out);
    await waitForLine(out, /^ready$/);
    const pid = child.pid!;
    await checkpointAndKill(child, join(dir, 'img'));
    // The lock is on the open file the shell hands on to sleep: the process spawned holds it itself, and no child outlives its kill.
    const holder = cleanup.process(spawn('sh', ['-c', 'exec 9>"$1" && flock -x 9 && exec sleep 600', 'sh', join(dir, 'flock')], { stdio: 'ignore' }));
    await waitFor('flock(1) to hold the file', () => (probe(dir, [PROBES[0]])[0] === 'held' ? true : undefined));
    const r = await crAsync(['restore', '-D', join(dir, 'img'), '--detach']);
    expect(r.stderr).toMatch(new RegExp(`^cr: cannot take back the write flock lock on fd \\d+ of PID ${pid}: another process holds a conflicting lock on that file`));
    expect(r.status).toBe(5);
    expect(existsSync(`/proc/${pid}`)).toBe(false);
    holder.kill();
  });
});
