import { copyFileSync, existsSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Cleanup, tempDir } from './helpers/cli.js';
import { checkpointAndKill, compileFixture, crAsync, lines, restoreDetached, startFixture, waitFor } from './helpers/processes.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

let bin: string;
let built: string;
beforeAll(() => {
  bin = tempDir('cr-deleted-bin-');
  built = compileFixture('deleted-maps', bin);
});
afterAll(() => cleanup.dir(bin) && cleanup.run());

/** A copy of the fixture to run (it deletes its own executable) and a 12 KiB data file it maps, in a new directory. */
function setUp(): { dir: string; program: string; data: string } {
  const dir = cleanup.dir(tempDir());
  const program = join(dir, 'program');
  copyFileSync(built, program);
  const data = join(dir, 'data');
  writeFileSync(data, Buffer.from(Array.from({ length: 3 * 4096 }, (_, i) => (i * 7) & 0xff)));
  return { dir, program, data };
}

/** The fixture's next tick after the first `from` lines of `out`, without its number. */
function nextTick(out: string, from: number): Promise<string> {
  return waitFor('a tick', () => lines(out).slice(from).find((l) => l.startsWith('tick '))?.replace(/^tick \d+ /, ''));
}

/** The paths /proc/PID/maps shows for the process's file mappings, in order. */
const mappedPaths = (pid: number) => readFileSync(`/proc/${pid}/maps`, 'utf8').split('\n').map((l) => l.split(/\s+/).slice(5).join(' ')).filter((p) => p.startsWith('/'));

describe('files deleted while mapped or running, checkpointed with --kill and restored', () => {
  it('a deleted executable and a deleted data file come back deleted at their paths, with their contents and the private copy the program wrote', async () => {
    const { dir, program, data } = setUp();
    const out = join(dir, 'out.txt');
    const child = await startFixture(cleanup, program, [data], out);
    const pid = child.pid!;
    const before = await nextTick(out, 0);
    expect(before).toMatch(/^private=\d+ shared=\d+ byte=X$/);
    expect(readlinkSync(`/proc/${pid}/exe`)).toBe(`${program} (deleted)`);
    const paths = mappedPaths(pid);
    expect(paths).toContain(`${data} (deleted)`);
    await checkpointAndKill(child, join(dir, 'img'));
    await restoreDetached(cleanup, join(dir, 'img'), pid);
    expect(readlinkSync(`/proc/${pid}/exe`)).toBe(`${program} (deleted)`);
    expect(mappedPaths(pid)).toEqual(paths);
    expect(await nextTick(out, lines(out).length)).toBe(before);
    // Made again and unlinked: nothing is left at the paths.
    expect(existsSync(program) || existsSync(data)).toBe(false);
  });

  it("where another file took a deleted file's name, it comes back unnamed in that directory, and the other file stays", async () => {
    const { dir, program, data } = setUp();
    const out = join(dir, 'out.txt');
    const child = await startFixture(cleanup, program, [data], out);
    const pid = child.pid!;
    const before = await nextTick(out, 0);
    await checkpointAndKill(child, join(dir, 'img'));
    writeFileSync(data, 'a new file\n');
    await restoreDetached(cleanup, join(dir, 'img'), pid);
    expect(await nextTick(out, lines(out).length)).toBe(before);
    expect(readFileSync(data, 'utf8')).toBe('a new file\n');
  });

  it('a deleted file mapped shared and writable is refused by name; the program runs on', async () => {
    const { dir, program, data } = setUp();
    const out = join(dir, 'out.txt');
    const child = await startFixture(cleanup, program, [data, 'shared-writable'], out);
    const r = await crAsync(['checkpoint', String(child.pid), '-D', join(dir, 'img')]);
    expect(r.stderr).toMatch(new RegExp(`^cr: PID ${child.pid}: mapping 0x[0-9a-f]+-0x[0-9a-f]+ is a shared writable mapping of the deleted file ${data}, which cr cannot checkpoint yet\\n$`));
    expect(r.status).toBe(7);
    expect(child.exitCode).toBe(null);
  });
});
