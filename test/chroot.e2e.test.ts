import { mkdirSync, readlinkSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Cleanup, tempDir } from './helpers/cli.js';
import { checkpointAndKill, compileFixture, crAsync, lines, restoreDetached, startFixture, waitFor } from './helpers/processes.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

let bin: string;
beforeAll(() => {
  bin = tempDir('cr-chroot-bin-');
  compileFixture('chroot', bin);
});
afterAll(() => cleanup.dir(bin) && cleanup.run());

/** A jail (with /sub and a /marker file) and a file outside it, in a new directory. */
function jail(): { dir: string; root: string; outside: string } {
  const dir = cleanup.dir(tempDir());
  const root = join(dir, 'jail');
  mkdirSync(join(root, 'sub'), { recursive: true });
  writeFileSync(join(root, 'marker'), 'in the jail\n');
  const outside = join(dir, 'outside.txt');
  writeFileSync(outside, 'outside\n');
  return { dir, root, outside };
}

/** The fixture's next tick after the first `from` lines of `out`, without its number. */
function nextTick(out: string, from: number): Promise<string> {
  return waitFor('a tick', () => lines(out).slice(from).find((l) => l.startsWith('tick '))?.replace(/^tick \d+ /, ''));
}

describe('a chrooted process, checkpointed with --kill and restored', () => {
  it('comes back in its root, with its working directory under it and a file it opened outside it', async () => {
    const { dir, root, outside } = jail();
    const out = join(dir, 'out.txt');
    const child = await startFixture(cleanup, join(bin, 'chroot'), [root, outside], out);
    const pid = child.pid!;
    expect(await nextTick(out, 0)).toBe('cwd=/sub marker=in the jail outside=outside');
    const dry = await crAsync(['checkpoint', String(pid), '--dry-run']);
    expect(dry.status, dry.stderr).toBe(0);

    await checkpointAndKill(child, join(dir, 'img'));
    await restoreDetached(cleanup, join(dir, 'img'), pid);
    expect(readlinkSync(`/proc/${pid}/root`)).toBe(root);
    expect(readlinkSync(`/proc/${pid}/cwd`)).toBe(join(root, 'sub'));
    expect(await nextTick(out, lines(out).length)).toBe('cwd=/sub marker=in the jail outside=outside');
  });

  it('a root that is gone is refused before anything is restored', async () => {
    const { dir, root, outside } = jail();
    const out = join(dir, 'out.txt');
    const child = await startFixture(cleanup, join(bin, 'chroot'), [root, outside], out);
    const pid = child.pid!;
    await checkpointAndKill(child, join(dir, 'img'));
    const moved = `${root}.moved`;
    renameSync(root, moved);
    const r = await crAsync(['restore', '-D', join(dir, 'img'), '--detach']);
    expect(r.stderr).toBe(`cr: cannot restore PID ${pid}: its root directory (chroot) ${root} no longer exists or is not a directory; recreate it\n`);
    expect(r.status).toBe(5);
    renameSync(moved, root);
    await restoreDetached(cleanup, join(dir, 'img'), pid);
    expect(readlinkSync(`/proc/${pid}/root`)).toBe(root);
  });

  it('a unix socket on a path inside the jail is refused by name, for now', async () => {
    const { dir, root, outside } = jail();
    const out = join(dir, 'out.txt');
    const child = await startFixture(cleanup, join(bin, 'chroot'), [root, outside, 'listen'], out);
    const pid = child.pid!;
    const dry = await crAsync(['checkpoint', String(pid), '--dry-run']);
    expect(dry.stderr).toMatch(new RegExp(`PID ${pid}: fd (\\d+) is a unix stream socket on the path /sock of a process chrooted in ${root}, which cr cannot restore yet; leave it out with --exclude unix-sockets:fd=\\1`));
    expect(dry.status).toBe(7);
  });
});
