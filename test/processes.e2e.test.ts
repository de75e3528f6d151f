import { once } from 'node:events';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Cleanup, tempDir } from './helpers/cli.js';
import { compileFixture, crAsync, lines, processState, sleep, startFixture, waitFor, waitForLine } from './helpers/processes.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

let bin: string;
const fixture = (name: string) => join(bin, name);
beforeAll(() => {
  bin = tempDir('cr-proc-bin-');
  for (const name of ['counter', 'heap', 'signals', 'files', 'sleeper']) compileFixture(name, bin);
});
afterAll(() => cleanup.dir(bin) && cleanup.run());

/** Checkpoints `child` with --kill and waits until it is gone, so that its PID is free again. */
async function checkpointAndKill(child: ChildProcess, img: string, extra: string[] = []): Promise<void> {
  const exited = once(child, 'exit');
  const r = await crAsync(['checkpoint', String(child.pid), '-D', img, '--kill', ...extra]);
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  await exited;
}

/** Restores an image detached and registers the restored process for cleanup. */
async function restoreDetached(img: string, pid: number, extra: string[] = []): Promise<void> {
  const r = await crAsync(['restore', '-D', img, '--detach', ...extra]);
  cleanup.orphan(pid);
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  expect(r.stdout).toContain(`tasks:${pid} running as PID ${pid}`);
}

const numbers = (path: string) => lines(path).filter((l) => /^\d+$/.test(l)).map(Number);

describe('a single-threaded process, checkpointed and restored with the same PID', () => {
  it('a counter appending to a file carries on with no gap or repeat', async () => {
    const dir = cleanup.dir(tempDir());
    const out = join(dir, 'out.txt');
    const child = await startFixture(cleanup, fixture('counter'), [], out);
    await waitFor('ten ticks', () => (numbers(out).length >= 10 ? true : undefined));
    await checkpointAndKill(child, join(dir, 'img'));
    const before = numbers(out).length;
    await restoreDetached(join(dir, 'img'), child.pid!);
    await waitFor('ten more ticks', () => (numbers(out).length >= before + 10 ? true : undefined));
    expect(lines(out).filter((l) => l.startsWith('ERROR'))).toEqual([]);
    const seen = numbers(out);
    expect(seen).toEqual(seen.map((_, i) => i + 1));
    expect(readFileSync(`/proc/${child.pid}/comm`, 'utf8').trim()).toBe('counter');
  });

  it('256 MiB of random heap data come back unchanged', async () => {
    const dir = cleanup.dir(tempDir());
    const out = join(dir, 'out.txt');
    const child = await startFixture(cleanup, fixture('heap'), ['256'], out);
    const sum = (await waitForLine(out, /^ready/)).split(' ')[1];
    await checkpointAndKill(child, join(dir, 'img'));
    await restoreDetached(join(dir, 'img'), child.pid!);
    process.kill(child.pid!, 'SIGUSR1');
    expect(await waitForLine(out, /^(same|DIFFERENT)/, 30_000)).toBe(`same ${sum}`);
  });

  it('signal handlers, a blocked and pending signal, and the alternate signal stack stay in effect', async () => {
    const dir = cleanup.dir(tempDir());
    const out = join(dir, 'out.txt');
    const child = await startFixture(cleanup, fixture('signals'), [], out);
    process.kill(child.pid!, 'SIGUSR1');
    await waitForLine(out, /^usr1 1 usr2-pending=0$/);
    // Blocked: it stays pending, and must still be pending after the restore.
    process.kill(child.pid!, 'SIGUSR2');
    await checkpointAndKill(child, join(dir, 'img'));
    await restoreDetached(join(dir, 'img'), child.pid!);
    process.kill(child.pid!, 'SIGUSR1');
    await waitForLine(out, /^usr1 2 /);
    process.kill(child.pid!, 'SIGTERM');
    await waitForLine(out, /^term /);
    expect(lines(out).slice(1)).toEqual(['usr1 1 usr2-pending=0', 'usr1 2 usr2-pending=1', 'term on-altstack=1']);
  });

  it('files at their offsets, O_APPEND, a dup, a deleted file, a directory, /dev/null and file mappings', async () => {
    const dir = cleanup.dir(tempDir());
    const data = join(dir, 'data');
    mkdirSync(data);
    writeFileSync(join(data, 'input.txt'), '0123456789abcdefghijklmnopqrstuvwxyz');
    writeFileSync(join(data, 'priv.bin'), 'p'.repeat(4096));
    writeFileSync(join(data, 'shared.bin'), 's'.repeat(4096));
    const out = join(dir, 'out.txt');
    const child = await startFixture(cleanup, fixture('files'), [data], out);
    await checkpointAndKill(child, join(dir, 'img'));
    // The log grew while the program was gone: O_APPEND writes land at the end, not at the old offset.
    writeFileSync(join(data, 'log.txt'), 'before\nwhile away\n');
    await restoreDetached(join(dir, 'img'), child.pid!);
    process.kill(child.pid!, 'SIGUSR1');
    await waitForLine(out, /^shared=/);
    expect(lines(out).slice(1)).toEqual(['input=abcdefghij', 'tmp=contents', 'dir=0123', 'null=1 cloexec=1', 'private=Xp', 'shared=YZ']);
    expect(readFileSync(join(data, 'log.txt'), 'utf8')).toBe('before\nwhile away\nafter\n');
    expect(readFileSync(join(data, 'priv.bin'), 'utf8')).toBe('p'.repeat(4096));
    expect(readFileSync(join(data, 'shared.bin'), 'utf8').slice(0, 3)).toBe('YZs');
  });
});
