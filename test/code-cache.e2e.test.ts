import { spawnSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, readFileSync, readdirSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Cleanup, REPO, tempDir } from './helpers/cli.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

/** A copy of the built CLI, with the repository's node_modules, so that its code cache starts empty and is its own. */
function copyOfCli(): { bin: string; cacheDir: string } {
  const dir = cleanup.dir(tempDir('cr-code-cache-'));
  const cli = join(dir, 'cli');
  for (const part of ['bin', 'dist', 'package.json', 'oclif.manifest.json']) {
    cpSync(join(REPO, 'cli', part), join(cli, part), { recursive: true, filter: (source) => !source.endsWith('code-cache') });
  }
  symlinkSync(join(REPO, 'node_modules'), join(dir, 'node_modules'));
  return { bin: join(cli, 'bin', 'run.js'), cacheDir: join(cli, 'dist', 'bundle', 'code-cache') };
}

function cr(bin: string, ...args: string[]) {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const cacheFile = (dir: string, word: string) => join(dir, `${word}-${process.version}-${process.arch}.bin`);

describe('the bundle', () => {
  it('is pure ASCII, as the loader reads it (as latin1; test/inspect-views.e2e.test.ts sees an escaped arrow come out whole)', () => {
    const bundle = readFileSync(join(REPO, 'cli', 'dist', 'bundle', 'cr.cjs'));
    expect(bundle.findIndex((byte) => byte >= 0x80)).toBe(-1);
  });
});

describe('commands that make no kernel call', () => {
  it('load no native addon: koffi and xxhash are loaded at their first use', () => {
    const dir = cleanup.dir(tempDir('cr-addons-'));
    const report = join(dir, 'report.cjs');
    writeFileSync(report, "process.on('exit', () => process.stderr.write(`addons: ${Object.keys(require.cache).filter((f) => f.endsWith('.node')).join(' ') || 'none'}\\n`));\n");
    for (const args of [['types'], ['--help'], ['checkpoint', '--help'], ['inspect', '--help']]) {
      const r = spawnSync(process.execPath, ['-r', report, join(REPO, 'cli', 'bin', 'run.js'), ...args], { encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      expect(r.stderr, args.join(' ')).toContain('addons: none\n');
    }
  });
});

describe("the bundle's code cache", () => {
  it('is written by the first run of a command that succeeds, and used by the next', () => {
    const { bin, cacheDir } = copyOfCli();
    expect(existsSync(cacheDir)).toBe(false);
    const first = cr(bin, 'types');
    expect(first.status, first.stderr).toBe(0);
    const file = cacheFile(cacheDir, 'types');
    expect(statSync(file).size).toBeGreaterThan(100_000);
    const written = statSync(file).mtimeMs;

    const second = cr(bin, 'types');
    expect(second).toEqual(first);
    // Accepted by V8, so not written again.
    expect(statSync(file).mtimeMs).toBe(written);
    expect(readdirSync(cacheDir)).toEqual([`types-${process.version}-${process.arch}.bin`]);
  });

  it('is not written by a command that fails', () => {
    const { bin, cacheDir } = copyOfCli();
    const failed = cr(bin, 'checkpoint');
    expect(failed.status).toBe(2);
    expect(failed.stderr).toMatch(/^cr: /);
    expect(existsSync(cacheFile(cacheDir, 'checkpoint'))).toBe(false);
  });

  it('that V8 refuses (damaged, or from another build) costs only the compile, and is written anew', () => {
    const { bin, cacheDir } = copyOfCli();
    const expected = cr(bin, 'types');
    const file = cacheFile(cacheDir, 'types');
    writeFileSync(file, 'not a code cache');
    const again = cr(bin, 'types');
    expect(again).toEqual(expected);
    expect(statSync(file).size).toBeGreaterThan(100_000);
  });

  it('that others can write is not run, but replaced by one only its owner can write', () => {
    const { bin, cacheDir } = copyOfCli();
    const expected = cr(bin, 'types');
    const file = cacheFile(cacheDir, 'types');
    expect(statSync(file).mode & 0o022).toBe(0);
    chmodSync(file, 0o666);
    const before = statSync(file).ino;
    expect(cr(bin, 'types')).toEqual(expected);
    expect(statSync(file).ino).not.toBe(before);
    expect(statSync(file).mode & 0o022).toBe(0);
  });
});
