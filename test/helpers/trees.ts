import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import type { Cleanup } from './cli.js';
import { crAsync, lines, restoreImage, waitForLine, waitGone } from './processes.js';

/** A process's parent, process group and session. */
export interface Links {
  ppid: number;
  pgid: number;
  sid: number;
}

/** What /proc says of a process: its parent, group and session. */
export function links(pid: number): Links {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const [ppid, pgid, sid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ').slice(1, 4).map(Number) as [number, number, number];
  return { ppid, pgid, sid };
}

/** The children of `pid`. */
export function childrenOf(pid: number): number[] {
  return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
}

/** Every process below `pid`, parents first. */
export function descendants(pid: number): number[] {
  return childrenOf(pid).flatMap((c) => [c, ...descendants(c)]);
}

/** Starts `command` with its stdout and stderr appended to `out`, and waits for its "ready" line. */
export async function startLogged(cleanup: Cleanup, command: string, args: string[], out: string): Promise<ChildProcess> {
  const fd = openSync(out, 'a');
  try {
    const child = cleanup.process(spawn(command, args, { stdio: ['ignore', fd, fd] }));
    await waitForLine(out, /^ready/);
    return child;
  } finally {
    closeSync(fd);
  }
}

/** The objects an image's manifest lists. */
export function manifestObjects(img: string): { type: string; id: string; record?: string; parents: string[] }[] {
  return JSON.parse(readFileSync(join(img, 'manifest.json'), 'utf8')).objects;
}

/**
 * Checkpoints the tree of `root` with --kill, waits until every process of it is gone, restores it
 * detached, and registers every restored process for cleanup. Returns the saved PIDs with their
 * links as the image recorded them, which the restored tree must have again.
 */
export async function checkpointAndRestore(cleanup: Cleanup, root: ChildProcess, img: string, extra: readonly string[] = []): Promise<Map<number, Links>> {
  const exited = once(root, 'exit');
  const saved = await crAsync(['checkpoint', String(root.pid), '-D', img, '--kill', ...extra]);
  expect(saved.stderr).toBe('');
  expect(saved.status).toBe(0);
  await exited;
  const before = new Map(
    manifestObjects(img)
      .filter((o) => o.type === 'tasks')
      .map((o) => {
        const { record } = JSON.parse(readFileSync(join(img, o.record!), 'utf8')) as { record: { ppid: number; pgid: number; sid: number } };
        return [Number(o.id), { ppid: record.ppid, pgid: record.pgid, sid: record.sid }];
      }),
  );
  for (const pid of before.keys()) await waitGone(pid);
  const restored = await restoreImage(img);
  cleanup.add(async () => {
    // All at once, then one wait: PID 1 reaps the orphans slowly, but reaps them together.
    for (const pid of before.keys()) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Gone already.
      }
    }
    await Promise.all([...before.keys()].map((pid) => waitGone(pid)));
  });
  expect(restored.stderr).toBe('');
  expect(restored.status).toBe(0);
  for (const pid of before.keys()) expect(restored.stdout).toContain(`tasks:${pid} running as PID ${pid}`);
  return before;
}

/** The restored processes have their parents again; the root's parent is cr's, now gone (so a subreaper or PID 1). */
export function expectSameLinks(before: Map<number, Links>, root: number, fields: readonly ('ppid' | 'pgid' | 'sid')[] = ['ppid']): void {
  for (const [pid, was] of before) {
    const now = links(pid);
    for (const field of fields) if (pid !== root || field !== 'ppid') expect({ pid, [field]: now[field] }).toEqual({ pid, [field]: was[field] });
  }
}

/** The lines of `out` that match `pattern`. */
export const linesMatching = (out: string, pattern: RegExp) => lines(out).filter((l) => pattern.test(l));


/**
 * Ends a running `tree server` (a child of this process) the quick way: on SIGUSR1 it kills and
 * reaps its workers itself, then exits; orphaned workers would wait for PID 1, which reaps slowly.
 * Registered last, so that it runs first.
 */
export function endServerFirst(cleanup: Cleanup, root: ChildProcess): void {
  cleanup.add(async () => {
    if (root.exitCode !== null || root.signalCode !== null) return;
    const exited = once(root, 'exit');
    process.kill(root.pid!, 'SIGUSR1');
    await exited;
  });
}
