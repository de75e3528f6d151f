import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Cleanup, cr, startUntilReady, tempDir } from './helpers/cli.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

/** A process the bad invocations name; none of them may touch it. */
const bystander = new Cleanup();
let pid: string;
let dir: string;
beforeAll(() => {
  pid = String(bystander.process(spawn('sleep', ['1000'])).pid);
  dir = bystander.dir(tempDir());
});
afterAll(() => bystander.run());

/** Each is refused as a usage error before anything is touched: [what is wrong, arguments, a word the message must hold]. */
const BAD: [string, () => string[], string][] = [
  ['unknown flag', () => ['checkpoint', pid, '--bogus'], '--bogus'],
  ['unknown command', () => ['frob'], 'frob'],
  ['unknown top-level flag', () => ['--bogus'], '--bogus'],
  ['PID not an integer', () => ['checkpoint', 'abc'], 'abc'],
  ['PID below 1', () => ['checkpoint', '0'], '0'],
  ['missing required flag', () => ['restore'], 'images-dir'],
  ['flag without its value', () => ['restore', '-D'], '--images-dir'],
  ['exclusive flags', () => ['checkpoint', pid, '--kill', '--dry-run'], '--kill'],
  ['missing argument', () => ['inspect'], 'DIR'],
  ['unexpected argument', () => ['inspect', 'a', 'b'], 'b'],
  ['missing -D', () => ['checkpoint', pid], '-D'],
  ['PID and --ipc-ns together', () => ['checkpoint', pid, '--ipc-ns', '5', '--dry-run'], 'not both'],
  ['config file that does not exist', () => ['checkpoint', pid, '--dry-run', '--config', join(dir, 'nope.json')], 'nope.json'],
  ['directory that does not exist', () => ['unpin', join(dir, 'nope')], 'nope'],
  ['profile without its value', () => ['config', '--profile'], '--profile'],
  ['unknown type', () => ['checkpoint', pid, '--dry-run', '--exclude', 'sysvipc-shn'], 'sysvipc-shn'],
  ['unknown attribute', () => ['checkpoint', pid, '--dry-run', '--exclude', 'sysvipc-shm:kye=1'], 'select them by id'],
  ['fd not a number', () => ['checkpoint', pid, '--dry-run', '--exclude', 'files:fd=abc'], 'fd must be an unsigned integer'],
  ['key not a number', () => ['checkpoint', pid, '--dry-run', '--exclude', 'sysvipc:key=zz'], 'key must be an unsigned 32-bit IPC key'],
  ['key above 32 bits', () => ['checkpoint', pid, '--dry-run', '--include', 'sysvipc-shm:key=0x100000000'], '0x100000000'],
  ['key in its signed form', () => ['checkpoint', pid, '--dry-run', '--include', 'sysvipc-shm:key=-865664020'], 'write 0xcc6703ec'],
  ['namespace kind that does not exist', () => ['checkpoint', pid, '--dry-run', '--exclude', 'namespaces:kind=utz'], 'one of uts'],
  ['empty selection', () => ['checkpoint', pid, '--dry-run', '--exclude', ','], 'at least one'],
  ['selector with --only', () => ['checkpoint', pid, '--dry-run', '--only', 'files:fd=1'], '--only'],
  ['advice of an unknown attribute', () => ['advise', pid, '--exclude', 'tasks:name=x'], 'select them by pid'],
  ['fd beyond what a process can have', () => ['restore', '-D', dir, '--inherit-fd', '99999999999=/dev/null'], '99999999999'],
  ['fd not a number in --inherit-fd', () => ['restore', '-D', dir, '--inherit-fd', 'x=/dev/null'], 'N=PATH'],
  ['the same fd inherited twice', () => ['restore', '-D', dir, '--inherit-fd', '1=/dev/null', '--inherit-fd', '1=/tmp/x'], 'already given'],
  ['mapping by an unknown attribute', () => ['restore', '-D', dir, '--map-external', 'sysvipc-shm:kye=1=id=2'], 'kye'],
  ['mapping to an ill-typed value', () => ['restore', '-D', dir, '--map-external', 'sysvipc-shm:id=1=key=zz'], 'key must be'],
];

describe('bad invocations: one cr: line on stderr and exit 2, or with --json one JSON error on stdout', () => {
  it.each(BAD)('%s', (_what, args, word) => {
    const r = cr(args());
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^cr: [^\n]+\n$/);
    expect(r.stderr).toContain(word);
    expect(r.status, r.stderr).toBe(2);

    const json = cr([...args(), '--json']);
    expect(json.stderr).toBe('');
    expect(json.status).toBe(2);
    expect(JSON.parse(json.stdout)).toEqual({
      error: { name: 'CrError', message: r.stderr.slice('cr: '.length, -1), exitCode: 2 },
      warnings: [],
    });
  });

  it('left the process they named alone, and wrote nothing', () => {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    expect(status).toMatch(/^State:\s+S/m);
    expect(status).toMatch(/^TracerPid:\s+0$/m);
    expect(readdirSync(dir)).toEqual([]);
  });
});

describe('--json prints one document whatever happens', () => {
  it('cr inspect --json of a corrupt image: one document with the error and the problems found', async () => {
    const holder = await startUntilReady('unshare', ['--ipc', 'sh', '-c', 'echo ready; exec sleep 1000'], cleanup);
    const img = join(cleanup.dir(tempDir()), 'img');
    expect(cr(['checkpoint', '--ipc-ns', String(holder.pid), '-D', img]).status).toBe(0);
    const record = readdirSync(join(img, 'records', 'ipc-ns'))[0]!;
    const path = join(img, 'records', 'ipc-ns', record);
    writeFileSync(path, readFileSync(path, 'utf8').replace('"sysctls"', '"sysctlz"'));

    const r = cr(['inspect', img, '--json']);
    expect(r.status).toBe(4);
    const document = JSON.parse(r.stdout) as { error: { exitCode: number; message: string }; problems: string[]; manifest: object };
    expect(document.error).toEqual({ name: 'CrError', message: `image ${img} failed verification`, exitCode: 4 });
    expect(document.problems.join('\n')).toContain(record);
    expect(document.manifest).toBeDefined();
    expect(existsSync(img)).toBe(true);
  });
});
