import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, existsSync, linkSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, Kernel, TargetError } from '@cr/core';
import { adviceFileOf, adviceFileProblem, advisersOf, assertMayAdvise, pruneAdvice, readAdvice, removeAdvice, writeAdvice } from '@cr/core/engine';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

/** Another user, whose processes and files these tests make. */
const OTHER = 64_124;
const kernel = new Kernel();

let base: string;
let dir: string;
let victim: string;
const children: ChildProcess[] = [];
beforeEach(() => {
  base = mkdtempSync(join(tmpdir(), 'cr-advice-unit-'));
  dir = join(base, 'advice');
  victim = join(base, 'victim');
  writeFileSync(victim, 'root-owned, must stay as it is\n');
});
afterEach(async () => {
  for (const child of children.splice(0)) {
    const exited = new Promise((ok) => child.once('exit', ok));
    child.kill('SIGKILL');
    await exited;
  }
  rmSync(base, { recursive: true, force: true });
});

/** A process to advise about, running as `uid`. */
async function target(uid = 0): Promise<number> {
  const child = spawn('sleep', ['60'], { uid, gid: uid, stdio: 'ignore' });
  children.push(child);
  await new Promise((ok) => child.once('spawn', ok));
  return child.pid!;
}

const victimIntact = () => expect(readFileSync(victim, 'utf8')).toBe('root-owned, must stay as it is\n');

describe('the advice directory', () => {
  it('is sticky and world-writable, with a private directory per user; root makes the user\'s and gives it to them', async () => {
    const pid = await target(OTHER);
    const file = writeAdvice(dir, kernel, pid, { exclude: ['ipc-ns'] });
    expect(file).toBe(join(dir, String(OTHER), `${pid}-${kernel.procfs.stat(pid).startTime}.json`));
    expect(file).toBe(adviceFileOf(dir, kernel, pid));
    const mode = (p: string) => statSync(p).mode & 0o7777;
    expect([mode(dir), statSync(dir).uid]).toEqual([0o1777, 0]);
    expect([mode(join(dir, '0')), statSync(join(dir, '0')).uid]).toEqual([0o700, 0]);
    expect([mode(join(dir, String(OTHER))), statSync(join(dir, String(OTHER))).uid]).toEqual([0o700, OTHER]);
    expect(readAdvice(dir, kernel, pid)).toEqual({ advice: { file, advice: { exclude: ['ipc-ns'] } }, warnings: [] });
    expect(readdirSync(join(dir, String(OTHER)))).toEqual([`${pid}-${kernel.procfs.stat(pid).startTime}.json`]);
  });

  it('advice a process gave itself, in its own user\'s directory, is read', async () => {
    const pid = await target(OTHER);
    writeAdvice(dir, kernel, pid, {});
    const file = adviceFileOf(dir, kernel, pid);
    writeFileSync(file, '{"exclude": ["uts-ns"]}');
    chownSync(file, OTHER, OTHER);
    expect(readAdvice(dir, kernel, pid)).toEqual({ advice: { file, advice: { exclude: ['uts-ns'] } }, warnings: [] });
  });

  it('no directory, no advice, no warning', async () => {
    expect(readAdvice(dir, kernel, await target())).toEqual({ warnings: [] });
  });
});

describe('advice another user could have written is ignored with a warning', () => {
  const ignored = (file: string, why: string) => ({ warnings: [`advice ${file} ignored: ${why}`] });

  it('a file of another user in root\'s directory', async () => {
    const pid = await target();
    const file = writeAdvice(dir, kernel, pid, { exclude: ['mm'] });
    chownSync(file, OTHER, OTHER);
    expect(readAdvice(dir, kernel, pid)).toEqual(ignored(file, `it belongs to uid ${OTHER}, not to root; remove it`));
  });

  it('a directory another user made under root\'s name, before root did', async () => {
    const pid = await target();
    mkdirSync(dir, { mode: 0o1777 });
    chmodSync(dir, 0o1777);
    mkdirSync(join(dir, '0'));
    chownSync(join(dir, '0'), OTHER, OTHER);
    const file = adviceFileOf(dir, kernel, pid);
    writeFileSync(file, '{"exclude": ["mm"]}');
    chownSync(file, OTHER, OTHER);
    expect(readAdvice(dir, kernel, pid)).toEqual(ignored(file, `${join(dir, '0')} belongs to uid ${OTHER}, not to root; remove it`));
    // Writing there is refused, naming the directory; reading never fails.
    expect(() => writeAdvice(dir, kernel, pid, {})).toThrow(TargetError);
    expect(() => writeAdvice(dir, kernel, pid, {})).toThrow(`the advice directory ${join(dir, '0')} belongs to uid ${OTHER}, not to root; remove it (rm -r ${join(dir, '0')}), and cr makes it again`);
  });

  it('symlinks at the file, the user\'s directory or the advice directory are never followed', async () => {
    const pid = await target(OTHER);
    const file = writeAdvice(dir, kernel, pid, {});
    rmSync(file);
    writeFileSync(join(base, 'elsewhere.json'), '{"exclude": ["mm"]}');
    symlinkSync(join(base, 'elsewhere.json'), file);
    expect(readAdvice(dir, kernel, pid)).toEqual(ignored(file, 'it is a symlink; remove it'));

    rmSync(join(dir, String(OTHER)), { recursive: true });
    symlinkSync(base, join(dir, String(OTHER)));
    expect(readAdvice(dir, kernel, pid)).toEqual(ignored(file, `${join(dir, String(OTHER))} is a symlink or not a directory`));
    expect(() => writeAdvice(dir, kernel, pid, {})).toThrow(`the advice directory ${join(dir, String(OTHER))} is a symlink or not a directory`);

    rmSync(dir, { recursive: true });
    symlinkSync(base, dir);
    expect(readAdvice(dir, kernel, pid).warnings).toEqual([`advice ${file} ignored: ${dir} is a symlink or not a directory`]);
  });

  it('a file others can write, a hard link, a FIFO (read without blocking)', async () => {
    const pid = await target();
    const file = writeAdvice(dir, kernel, pid, {});
    chmodSync(file, 0o666);
    expect(readAdvice(dir, kernel, pid)).toEqual(ignored(file, 'it is writable by others (mode 0666); remove it'));
    chmodSync(file, 0o644);
    linkSync(file, join(base, 'second-link'));
    expect(readAdvice(dir, kernel, pid)).toEqual(ignored(file, 'it has 2 hard links, so it may be another file\'s; remove it'));
    rmSync(file);
    execFileSync('mkfifo', [file]);
    expect(readAdvice(dir, kernel, pid)).toEqual(ignored(file, 'it is not a regular file; remove it'));
  });

  it('an advice directory others can write and is not sticky, or that another user owns', async () => {
    const pid = await target();
    const file = writeAdvice(dir, kernel, pid, {});
    chmodSync(dir, 0o777);
    expect(readAdvice(dir, kernel, pid)).toEqual(ignored(file, `${dir} is writable by others and not sticky (mode 0777); remove it, and cr advise makes it again`));
    chmodSync(dir, 0o1777);
    chownSync(dir, OTHER, OTHER);
    expect(readAdvice(dir, kernel, pid).warnings[0]).toBe(`advice ${file} ignored: ${dir} belongs to uid ${OTHER}, not to root; remove it, and cr advise makes it again`);
    expect(() => writeAdvice(dir, kernel, pid, {})).toThrow(`the advice directory ${dir} belongs to uid ${OTHER}, not to root`);
  });

  it('which files count as safe, from their stat alone', () => {
    const st = (over: Partial<{ uid: number; mode: number; nlink: number; size: number; file: boolean }>) => {
      const s = { uid: 0, mode: 0o100644, nlink: 1, size: 10, file: true, ...over };
      return { ...s, isFile: () => s.file } as unknown as import('node:fs').Stats;
    };
    expect(adviceFileProblem(st({}), [0])).toBeUndefined();
    expect(adviceFileProblem(st({ uid: 7 }), [0, 7])).toBeUndefined();
    expect(adviceFileProblem(st({ uid: 7 }), [0])).toBe('belongs to uid 7, not to root');
    expect(adviceFileProblem(st({ file: false }), [0])).toBe('is not a regular file');
    expect(adviceFileProblem(st({ nlink: 3 }), [0])).toBe('has 3 hard links, so it may be another file\'s');
    expect(adviceFileProblem(st({ size: 2 << 20 }), [0])).toBe('is larger than 1048576 bytes');
    expect(adviceFileProblem(st({ mode: 0o100620 }), [0])).toBe('is writable by its group (mode 0620)');
  });
});

describe('writing advice where another user can write', () => {
  it('a symlink planted at the temporary name is removed, not written through', async () => {
    const pid = await target(OTHER);
    writeAdvice(dir, kernel, pid, {});
    const partial = join(dir, String(OTHER), `.${pid}.${process.pid}.partial`);
    symlinkSync(victim, partial);
    const file = writeAdvice(dir, kernel, pid, { exclude: ['uts-ns'] });
    victimIntact();
    expect(existsSync(partial)).toBe(false);
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual({ exclude: ['uts-ns'] });
  });

  it('a symlink or a hard link planted at the final name is replaced, not written through', async () => {
    const pid = await target(OTHER);
    const file = writeAdvice(dir, kernel, pid, {});
    rmSync(file);
    symlinkSync(victim, file);
    writeAdvice(dir, kernel, pid, { exclude: ['ipc-ns'] });
    victimIntact();
    expect(lstatSync(file).isFile()).toBe(true);
    rmSync(file);
    linkSync(victim, file);
    writeAdvice(dir, kernel, pid, { exclude: ['ipc-ns'] });
    victimIntact();
    expect(statSync(victim).nlink).toBe(1);
  });

  it('advice its rightful author wrote badly is an error naming the file (exit 3)', async () => {
    const pid = await target();
    const file = writeAdvice(dir, kernel, pid, {});
    writeFileSync(file, '{"exclude": "mm"}');
    expect(() => readAdvice(dir, kernel, pid)).toThrow(ConfigError);
    expect(() => readAdvice(dir, kernel, pid)).toThrow(`invalid advice in ${file}`);
  });
});

describe('who may advise', () => {
  it('root about anyone, a user about processes that run wholly as that user', async () => {
    const mine = await target(OTHER);
    const roots = await target();
    expect(advisersOf(kernel, mine)).toEqual([0, OTHER]);
    expect(advisersOf(kernel, roots)).toEqual([0]);
    expect(() => assertMayAdvise(kernel, mine, 0)).not.toThrow();
    expect(() => assertMayAdvise(kernel, mine, OTHER)).not.toThrow();
    expect(() => assertMayAdvise(kernel, roots, OTHER)).toThrow(
      new TargetError(`PID ${roots} runs as uid 0/0/0 (real/effective/saved); only root may advise about it, not uid ${OTHER}; run cr advise as root`),
    );
    expect(() => assertMayAdvise(kernel, mine, OTHER + 1)).toThrow(/only root or uid 64124 may advise about it, not uid 64125/);
  });
});

describe('removing and pruning', () => {
  it('removes a process\'s advice, and the advice of processes that are gone in every user\'s directory', async () => {
    const pid = await target(OTHER);
    const file = writeAdvice(dir, kernel, pid, {});
    const gone = join(dir, String(OTHER), `${pid}-1.json`);
    const goneRoot = join(dir, '0', '999999999-1.json');
    writeFileSync(gone, '{}');
    writeFileSync(goneRoot, '{}');
    symlinkSync(victim, join(dir, '0', '999999998-1.json'));
    expect(pruneAdvice(dir, kernel).sort()).toEqual([join(dir, '0', '999999998-1.json'), goneRoot, gone].sort());
    victimIntact();
    expect(existsSync(file)).toBe(true);
    expect(removeAdvice(dir, kernel, pid)).toBe(true);
    expect(removeAdvice(dir, kernel, pid)).toBe(false);
    expect(existsSync(file)).toBe(false);
  });
});
