import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, mkdirSync, openSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cleanup, REPO, tempDir } from './helpers/cli.js';
import { compileFixture, sleep, tracerOf, waitForLine } from './helpers/processes.js';

const BIN = join(REPO, 'cli', 'bin', 'run.js');
const cleanup = new Cleanup();
let dir: string;
let pid: number;

beforeAll(async () => {
  dir = tempDir('cr-image-path-');
  const out = join(dir, 'out');
  const fd = openSync(out, 'a');
  try {
    pid = cleanup.process(spawn(compileFixture('proof', dir), [], { stdio: ['pipe', fd, fd] })).pid!;
  } finally {
    closeSync(fd);
  }
  await waitForLine(out, /^ready/);
  writeFileSync(join(dir, 'a-file'), 'not a directory\n');
  mkdirSync(join(dir, 'full'));
  writeFileSync(join(dir, 'full', 'old'), 'something\n');
});
afterAll(async () => {
  await cleanup.run();
  cleanup.dir(dir);
  await cleanup.run();
});

/** Runs a checkpoint of the target, watching all along that it is never put under ptrace. */
async function checkpointWatched(imageDir: string): Promise<{ status: number | null; stderr: string; traced: boolean }> {
  const child = spawn(process.execPath, [BIN, 'checkpoint', String(pid), '-D', imageDir], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = once(child, 'exit');
  let traced = false;
  while (child.exitCode === null && child.signalCode === null) {
    traced ||= tracerOf(pid) !== 0;
    await sleep(1);
  }
  const [status] = await exited;
  return { status, stderr, traced };
}

describe('a bad image path is refused before the target is touched', () => {
  it.each([
    ['under procfs', '/proc/nope/img', /is on procfs \(\/proc\)/],
    ['under sysfs', '/sys/kernel/img', /is on sysfs \(\/sys\/kernel\)/],
    ['a device', '/dev/null', /\/dev\/null exists and is not a directory/],
    ['a regular file', 'a-file', /a-file exists and is not a directory/],
    ['below a regular file', 'a-file/img', /cannot create the directory .*a-file.*|is not a directory/],
    ['a directory that holds something', 'full', /full is not empty/],
  ])('%s (%s)', async (_what, path, message) => {
    const imageDir = path.startsWith('/') ? path : join(dir, path);
    const r = await checkpointWatched(imageDir);
    expect(r.status).toBe(4);
    expect(r.stderr).toMatch(/^cr: [^\n]+\n$/);
    expect(r.stderr).toMatch(message);
    expect(r.traced).toBe(false);
    expect(readdirSync(dir).filter((n) => n.includes('.cr-partial-'))).toEqual([]);
  });

  it('missing parent directories are made, one by one, private', async () => {
    const r = await checkpointWatched(join(dir, 'new', 'deeper', 'img'));
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(readdirSync(join(dir, 'new', 'deeper', 'img'))).toContain('manifest.json');
  });
});
