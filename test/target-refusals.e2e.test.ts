import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Cleanup, REPO, tempDir } from './helpers/cli.js';
import { compileFixture, crAsync, lines, processState, startFixture, tracerOf, waitFor } from './helpers/processes.js';
import { childrenOf, startLogged } from './helpers/trees.js';

const BIN = join(REPO, 'cli', 'bin', 'run.js');
const FIXTURES = join(REPO, 'test', 'fixtures');

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

let bin: string;
beforeAll(() => {
  bin = tempDir('cr-target-refusals-bin-');
  compileFixture('tree', bin);
});
afterAll(() => cleanup.dir(bin) && cleanup.run());

function commOf(pid: number): string {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
}

/** Runs `command` (one that runs cr another way than crAsync does) to its end, with its output. */
function run(command: string, args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((ok, fail) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('error', fail);
    child.once('close', (status) => ok({ status, stdout, stderr }));
  });
}

const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** The phases a checkpoint logged to `log`: none past validate and collect when the target was refused before the freeze. */
function phasesLogged(log: string): string[] {
  return [...new Set(lines(log).flatMap((l) => (JSON.parse(l) as { phase?: string }).phase ?? []))];
}

/**
 * `cr checkpoint PID` refused, each way it can be asked (into an image, --no-tree unless the
 * process has children, which --no-tree refuses, --dry-run, --json), with exit `status` and the
 * one line `message`; no image is written and nothing is frozen or let go.
 */
async function expectRefused(pid: number, status: number, message: RegExp, noTree = true): Promise<void> {
  const dir = cleanup.dir(tempDir());
  const log = join(dir, 'cr.log');
  const ways = [['-D', join(dir, 'img')], ...(noTree ? [['-D', join(dir, 'img'), '--no-tree']] : []), ['--dry-run']];
  for (const extra of ways) {
    const r = await crAsync(['checkpoint', String(pid), ...extra, '--log-file', log]);
    expect(r.stderr).toMatch(new RegExp(`^cr: ${message.source}\\n$`));
    expect(r.status).toBe(status);
    expect(r.stdout).toBe('');
  }
  const json = await crAsync(['checkpoint', String(pid), '--dry-run', '--json']);
  expect(json.status).toBe(status);
  const { error } = JSON.parse(json.stdout) as { error: { message: string; exitCode: number } };
  expect(error.message).toMatch(new RegExp(`^${message.source}$`));
  expect(error.exitCode).toBe(status);
  expect(existsSync(join(dir, 'img'))).toBe(false);
  expect(phasesLogged(log)).not.toContain('freeze');
  expect(phasesLogged(log)).not.toContain('thaw');
}

describe('a target cr may not trace is refused before anything is frozen, in one line that says why and what to do', () => {
  it('PID 1: the init process, whose PID is never free and whose tree holds cr (exit 5)', async () => {
    const comm = escape(commOf(1));
    await expectRefused(
      1,
      5,
      new RegExp(
        `cannot checkpoint PID 1 \\(${comm}\\): it is (this system's init process|the init process of the PID namespace cr runs in), which holds PID 1 for as long as the system runs \\(a restore could never give it back\\) and whose tree holds every process, cr included; checkpoint a process tree below it`,
      ),
    );
    expect(tracerOf(1)).toBe(0);
  });

  it('a process cr runs below, here the test itself (exit 5)', async () => {
    await expectRefused(
      process.pid,
      5,
      new RegExp(`cannot checkpoint PID ${process.pid} \\(${escape(commOf(process.pid))}\\): cr \\(PID \\d+\\) runs below it, and cr cannot freeze a tree it runs in; run cr from outside that tree \\(from another terminal, say\\), or checkpoint a process beside cr`),
    );
  });

  it('cr itself: a shell that execs cr on its own PID (exit 5)', async () => {
    const dir = cleanup.dir(tempDir());
    const log = join(dir, 'cr.log');
    const r = await run('sh', ['-c', 'exec "$0" "$1" checkpoint $$ -D "$2" --log-file "$3"', process.execPath, BIN, join(dir, 'img'), log]);
    expect(r.stderr).toMatch(/^cr: cannot checkpoint PID \d+ \([^)]+\): it is the process cr itself runs in, which cr cannot freeze; checkpoint it from another process\n$/);
    expect(r.status).toBe(5);
    expect(existsSync(join(dir, 'img'))).toBe(false);
    expect(phasesLogged(log)).not.toContain('freeze');
  });

  it('a kernel thread (kthreadd): cr checkpoints user processes only (exit 7)', async () => {
    const kthreadd = 2;
    expect(commOf(kthreadd)).toBe('kthreadd');
    await expectRefused(kthreadd, 7, /PID 2 \(kthreadd\) is a kernel thread; cr checkpoints user processes only/);
  });

  it('a zombie: it has nothing left to checkpoint (exit 5)', async () => {
    const dir = cleanup.dir(tempDir());
    const root = await startLogged(cleanup, join(bin, 'tree'), ['zombies'], join(dir, 'out.txt'));
    const zombie = childrenOf(root.pid!)[0]!;
    expect(processState(zombie)).toBe('Z');
    await expectRefused(zombie, 5, new RegExp(`PID ${zombie} \\(tree\\) is a zombie: it has exited and has nothing left to checkpoint`));
    expect(processState(zombie)).toBe('Z');
  });

  it('a tree with a child another tracer holds: named with its tracer, and every process runs on as it was, that child still traced by it (exit 5)', async () => {
    const dir = cleanup.dir(tempDir());
    const out = join(dir, 'out.txt');
    const root = await startLogged(cleanup, join(bin, 'tree'), ['server', '2'], out);
    const [w0, w1] = childrenOf(root.pid!) as [number, number];
    // Registered before the root, so run after it: killed with it, the workers would be orphans.
    cleanup.orphan(w0);
    cleanup.orphan(w1);
    const tracer = await startFixture(cleanup, 'python3', [join(FIXTURES, 'tracer.py'), String(w1)], join(dir, 'tracer.txt'));
    expect(tracerOf(w1)).toBe(tracer.pid);
    const detach = 'and a process can have one tracer only; detach that debugger or tracer first';

    const countOf = (prefix: string) => Math.max(0, ...lines(out).filter((l) => l.startsWith(prefix)).map((l) => Number(l.split(' ').at(-1))));
    const prefixes = [`p ${root.pid} `, `w 0 ${w0} `, `w 1 ${w1} `];
    const before = prefixes.map(countOf);
    await expectRefused(root.pid!, 5, new RegExp(`cannot checkpoint PID ${root.pid} \\(tree\\): PID ${w1} \\(tree\\) is being traced by PID ${tracer.pid} \\(python3\\), ${detach}`), false);
    await expectRefused(w1, 5, new RegExp(`cannot checkpoint PID ${w1} \\(tree\\): it is being traced by PID ${tracer.pid} \\(python3\\), ${detach}`));

    for (const pid of [root.pid!, w0, w1]) expect(processState(pid)).toMatch(/^[RS]$/);
    expect([tracerOf(root.pid!), tracerOf(w0), tracerOf(w1)]).toEqual([0, 0, tracer.pid]);
    await waitFor('every process to count on', () => (prefixes.every((p, i) => countOf(p) > before[i]! + 2) ? true : undefined));

    // The tracer gone, the same tree is no longer refused.
    tracer.kill('SIGKILL');
    await waitFor(`PID ${w1} to be untraced`, () => (tracerOf(w1) === 0 ? true : undefined));
    const dry = await crAsync(['checkpoint', String(root.pid), '--dry-run']);
    expect(dry.stderr).toBe('');
    expect(dry.status).toBe(0);
    process.kill(root.pid!, 'SIGUSR1');
    await waitFor('the parent to reap its workers', () => (lines(out).filter((l) => /^(reaped|ERROR)/.test(l)).length === 2 ? true : undefined));
    expect(lines(out).filter((l) => /^(reaped|ERROR)/.test(l))).toEqual([`reaped ${w0} signal 15`, `reaped ${w1} signal 15`]);
  });

  it('a process outside the Landlock sandbox cr runs in: the kernel denies cr access, and cr says so (exit 5)', async (ctx) => {
    const dir = cleanup.dir(tempDir());
    const sleeper = cleanup.process(spawn('sleep', ['1000'], { stdio: 'ignore' }));
    const pid = sleeper.pid!;
    await waitFor('sleep to run', () => (commOf(pid) === 'sleep' ? true : undefined));
    const r = await run('python3', [join(FIXTURES, 'landlocked.py'), process.execPath, BIN, 'checkpoint', String(pid), '-D', join(dir, 'img')]);
    if (r.status === 3 && r.stdout === 'no landlock\n') ctx.skip();
    expect(r.stderr).toBe(
      `cr: cannot checkpoint PID ${pid} (sleep): the kernel does not let cr trace it (reading /proc/PID/exe fails with EACCES) although cr has CAP_SYS_PTRACE, so a security module or a sandbox cr runs in forbids it (Landlock, for one, lets a sandboxed process trace only processes of its own sandbox); run cr outside that sandbox\n`,
    );
    expect(r.status).toBe(5);
    expect(existsSync(join(dir, 'img'))).toBe(false);
    expect(processState(pid)).toBe('S');
    expect(tracerOf(pid)).toBe(0);
  });
});
