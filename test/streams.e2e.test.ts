import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, existsSync, openSync, readFileSync, readSync, readdirSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Cleanup, REPO, crJson, tempDir, type CliResult } from './helpers/cli.js';
import { compileFixture, crAsync, processState, restoreDetached, startFixture, tracerOf, waitFor, waitForLine } from './helpers/processes.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());
let bin: string;
beforeAll(() => {
  bin = tempDir('cr-stream-bin-');
  compileFixture('heap', bin);
});
afterAll(() => cleanup.dir(bin) && cleanup.run());

const CR = `${process.execPath} ${join(REPO, 'cli', 'bin', 'run.js')}`;

/** Runs a shell pipeline of cr commands; resolves with the status of its last command and its stderr. */
function pipeline(command: string): Promise<CliResult> {
  return new Promise((ok, fail) => {
    const child = spawn('bash', ['-o', 'pipefail', '-c', command], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('error', fail);
    child.once('close', (code) => ok({ status: code ?? -1, stdout, stderr }));
  });
}

/**
 * A perl program holding some 16 MB of text, which compresses well: on SIGUSR1 it prints the
 * text's length and checksum, which must be those it had before the checkpoint.
 */
const TEXT_HOLDER = `$| = 1;
my $s = join("", map { "line $_ of a text that compresses well\\n" } 1 .. 400_000);
$SIG{USR1} = sub { printf "answer %d %s\\n", length($s), unpack("%32C*", $s) };
printf "ready %d %s\\n", length($s), unpack("%32C*", $s);
sleep 1 while 1;`;

interface FileEntry {
  size: number;
  digest: string;
  compression?: { algorithm: string; size: number; frames: number[] };
}
const manifestOf = (img: string) => JSON.parse(readFileSync(join(img, 'manifest.json'), 'utf8')) as { formatVersion: number; files: Record<string, FileEntry> };
const blobsOf = (img: string) => Object.entries(manifestOf(img).files).filter(([rel]) => rel.startsWith('blobs/'));

describe('cr checkpoint --stream | cr restore --stream', () => {
  it('moves a process with 8 MiB of heap through a pipe; it carries on with the same memory', async () => {
    const dir = cleanup.dir(tempDir());
    const out = join(dir, 'out.txt');
    const child = await startFixture(cleanup, join(bin, 'heap'), ['8'], out);
    const sum = (await waitForLine(out, /^ready/)).split(' ')[1];
    const exited = once(child, 'exit');
    const r = await pipeline(`${CR} checkpoint ${child.pid} --stream --kill | ${CR} restore --stream --detach`);
    cleanup.orphan(child.pid!);
    expect(r.stderr).toMatch(new RegExp(`^checkpointed PID ${child.pid} into standard output \\(frozen for \\d+ ms, then killed\\)\n`));
    expect(r.status).toBe(0);
    expect(r.stdout).toContain(`restored 5 object(s) from standard input\n  tasks:${child.pid} running as PID ${child.pid}`);
    await exited;
    process.kill(child.pid!, 'SIGUSR1');
    expect(await waitForLine(out, /^(same|DIFFERENT)/, 30_000)).toBe(`same ${sum}`);
  });

  it('a reader that closes early: the --kill checkpoint fails with one cr: line, and the process runs on untouched', async () => {
    const dir = cleanup.dir(tempDir());
    const out = join(dir, 'out.txt');
    const child = await startFixture(cleanup, join(bin, 'heap'), ['8'], out);
    const sum = (await waitForLine(out, /^ready/)).split(' ')[1];
    const r = await pipeline(`${CR} checkpoint ${child.pid} --stream --kill | head -c 4096 > /dev/null`);
    expect(r.stderr).toBe('cr: cannot write the image stream: the other end of the pipe closed before the whole image went through\n');
    expect(r.status).toBe(4);
    expect(child.exitCode).toBeNull();
    await waitFor('the process to run again', () => (processState(child.pid!) !== 't' && tracerOf(child.pid!) === 0 ? true : undefined));
    process.kill(child.pid!, 'SIGUSR1');
    expect(await waitForLine(out, /^(same|DIFFERENT)/)).toBe(`same ${sum}`);
  });

  it('the spool of a cr killed with SIGKILL is removed by the next stream', async () => {
    const tmp = cleanup.dir(tempDir());
    const env = { ...process.env, TMPDIR: tmp };
    const spools = () => readdirSync(tmp).filter((name) => name.startsWith('cr-stream-'));
    // A restore whose stream never ends holds its spool until it is killed.
    const stuck = spawn('bash', ['-c', `sleep 600 | exec ${CR} restore --stream`], { cwd: REPO, env, stdio: 'ignore', detached: true });
    cleanup.add(() => {
      try {
        process.kill(-stuck.pid!, 'SIGKILL');
      } catch {
        // Already gone: the test killed it.
      }
    });
    const [abandoned] = await waitFor('the restore to make its spool', () => (spools().length === 1 ? spools() : undefined), 60_000);
    expect(abandoned).toMatch(/^cr-stream-\d+-/);
    const exited = once(stuck, 'exit');
    process.kill(-stuck.pid!, 'SIGKILL');
    await exited;
    expect(spools()).toEqual([abandoned]);
    const next = await pipeline(`TMPDIR=${tmp} ${CR} restore --stream < /dev/null`);
    expect(next.stderr).toMatch(/^cr: /);
    expect(spools()).toEqual([]);
  });

  it('a stream cut short is refused before anything is restored, naming what is missing', async () => {
    const dir = cleanup.dir(tempDir());
    const out = join(dir, 'out.txt');
    const child = await startFixture(cleanup, join(bin, 'heap'), ['1'], out);
    const whole = join(dir, 'image.tar');
    const saved = await pipeline(`${CR} checkpoint ${child.pid} -D - > ${whole}`);
    expect(saved.status, saved.stderr).toBe(0);
    // A tar listing of it: the image's files, manifest last.
    const names = await pipeline(`tar -tf ${whole}`);
    expect(names.stdout.trim().split('\n').slice(-2)).toEqual(['manifest.json', 'manifest.sha256']);
    const cut = join(dir, 'cut.tar');
    const length = readFileSync(whole).byteLength;
    copyPrefix(whole, cut, length - 3000);
    const r = await pipeline(`${CR} restore --stream --detach < ${cut}`);
    expect(r.stderr).toBe('cr: cannot read the image stream: it ended before the end of the archive (the writer stopped early)\n');
    expect(r.status).toBe(4);
    expect(child.exitCode).toBeNull();
  });
});

describe('--compress', () => {
  for (const algorithm of ['zstd', 'lz4']) {
    it(`${algorithm}: a perl program's memory is stored compressed, cr inspect reads it, and the restored program has its text`, async () => {
      const dir = cleanup.dir(tempDir());
      const out = join(dir, 'out.txt');
      const img = join(dir, 'img');
      const child = await startFixture(cleanup, 'perl', ['-e', TEXT_HOLDER], out);
      const expected = (await waitForLine(out, /^ready/)).replace('ready', 'answer');
      const exited = once(child, 'exit');
      const saved = await crAsync(['checkpoint', String(child.pid), '-D', img, '--kill', '--compress', algorithm]);
      expect(saved.stderr).toBe('');
      expect(saved.status).toBe(0);
      await exited;

      const manifest = manifestOf(img);
      expect(manifest.formatVersion).toBe(2);
      const blobs = blobsOf(img);
      expect(blobs.length).toBeGreaterThan(0);
      for (const [, entry] of blobs) expect(entry.compression?.algorithm).toBe(algorithm);
      const data = blobs.reduce((n, [, e]) => n + e.size, 0);
      const stored = blobs.reduce((n, [, e]) => n + e.compression!.size, 0);
      expect(data).toBeGreaterThan(16e6);
      expect(stored).toBeLessThan(data / 4);

      // cr inspect checks every digest, which means decompressing every blob.
      const inspected = crJson<{ manifest: { formatVersion: number }; problems: string[] }>(['inspect', img]);
      expect(inspected.problems).toEqual([]);
      expect(inspected.manifest.formatVersion).toBe(2);

      await restoreDetached(cleanup, img, child.pid!);
      process.kill(child.pid!, 'SIGUSR1');
      expect(await waitForLine(out, /^answer/, 30_000)).toBe(expected);
    });
  }

  it('a compressed blob that was tampered with is refused by name before anything is restored', async () => {
    const dir = cleanup.dir(tempDir());
    const out = join(dir, 'out.txt');
    const img = join(dir, 'img');
    const child = await startFixture(cleanup, 'perl', ['-e', TEXT_HOLDER], out);
    const saved = await crAsync(['checkpoint', String(child.pid), '-D', img, '--compress', 'zstd']);
    expect(saved.status, saved.stderr).toBe(0);
    const [rel, entry] = blobsOf(img).find(([, e]) => e.compression!.frames.length > 1)!;
    // The second frame's magic number: a frame that is no zstd frame at all.
    const path = join(img, rel);
    flipByte(path, entry.compression!.frames[0]!);
    const inspected = await crAsync(['inspect', img]);
    expect(inspected.stdout).toContain(`${path} is corrupt: frame 2 of ${entry.compression!.frames.length} is not valid zstd data`);
    expect(inspected.status).toBe(4);
    child.kill('SIGKILL');
    await once(child, 'exit');
    const restored = await crAsync(['restore', '-D', img, '--detach']);
    expect(restored.stderr).toContain(`${path} is corrupt: frame 2 of ${entry.compression!.frames.length} is not valid zstd data`);
    expect(restored.stderr.trim().split('\n').every((line) => line.startsWith('cr: '))).toBe(true);
    expect(restored.status).toBe(4);
    expect(existsSync(`/proc/${child.pid}`)).toBe(false);
  });
});

function copyPrefix(from: string, to: string, length: number): void {
  const data = Buffer.alloc(length);
  const input = openSync(from, 'r');
  const output = openSync(to, 'w');
  try {
    readSync(input, data, 0, length, 0);
    writeSync(output, data);
  } finally {
    closeSync(input);
    closeSync(output);
  }
}

function flipByte(path: string, position: number): void {
  const fd = openSync(path, 'r+');
  try {
    const byte = Buffer.alloc(1);
    readSync(fd, byte, 0, 1, position);
    byte[0]! ^= 0xff;
    writeSync(fd, byte, 0, 1, position);
  } finally {
    closeSync(fd);
  }
}
