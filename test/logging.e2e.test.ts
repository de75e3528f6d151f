import { once } from 'node:events';
import { spawn } from 'node:child_process';
import { readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Cleanup, REPO, tempDir, type CliResult } from './helpers/cli.js';
import { compileFixture, crAsync, startFixture, waitFor, waitForLine, waitGone } from './helpers/processes.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

let bin: string;
beforeAll(() => {
  bin = tempDir('cr-log-bin-');
  compileFixture('heap', bin);
});
afterAll(() => cleanup.dir(bin) && cleanup.run());

const CHECKPOINT_PHASES = ['validate', 'collect', 'freeze', 'decide', 'save', 'commit'];
const RESTORE_PHASES = ['check', 'preflight', 'recreate', 'resume'];

interface LogLine {
  level: string;
  time: string;
  pid: number;
  msg: string;
  phase?: string;
  ms?: number;
  object?: string;
  plugin?: string;
  exitCode?: number;
  err?: { type: string; message: string; exitCode?: number };
}

const logLines = (path: string): LogLine[] =>
  readFileSync(path, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as LogLine);

/** The phases the info lines of `lines` report, in order. */
const phasesOf = (lines: readonly LogLine[]) => lines.filter((l) => l.level === 'info' && l.phase !== undefined).map((l) => l.phase);

/** The heap fixture holding `mib` MiB of random data, and the sum it prints of them. */
async function heapProcess(dir: string, mib: number) {
  const out = join(dir, 'out.txt');
  const child = await startFixture(cleanup, join(bin, 'heap'), [String(mib)], out);
  const sum = (await waitForLine(out, /^ready/)).split(' ')[1];
  return { child, pid: child.pid!, out, sum };
}

/** Asks the (restored) heap fixture to sum its data again: the same sum as before the checkpoint. */
async function expectSameHeap(heap: { pid: number; out: string; sum: string | undefined }): Promise<void> {
  process.kill(heap.pid, 'SIGUSR1');
  expect(await waitForLine(heap.out, /^(same|DIFFERENT)/, 30_000)).toBe(`same ${heap.sum}`);
}

/** cr running on a pseudo-terminal (util-linux script): what the terminal shows so far (stdout and stderr together), and how it ends. */
function crOnTerminal(args: string[], env: Record<string, string> = {}): { screen: () => string; done: Promise<{ status: number; screen: string }> } {
  const command = [process.execPath, join(REPO, 'cli', 'bin', 'run.js'), ...args].map((a) => `'${a}'`).join(' ');
  const child = cleanup.process(spawn('script', ['-qfec', command, '/dev/null'], { cwd: REPO, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] }));
  let screen = '';
  child.stdout!.on('data', (d: Buffer) => (screen += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (screen += d.toString()));
  return { screen: () => screen, done: once(child, 'close').then(([code]) => ({ status: code as number, screen })) };
}

/** Runs cr and measures how long the whole command took, in milliseconds. */
async function timed(args: string[]): Promise<CliResult & { wallMs: number }> {
  const start = performance.now();
  const r = await crAsync(args);
  return { ...r, wallMs: performance.now() - start };
}

/** The restore leaves a process to clean up; it is the checkpointed one, with its PID. */
async function restore(img: string, pid: number, extra: string[]): Promise<CliResult> {
  const r = await crAsync(['restore', '-D', img, '--detach', ...extra]);
  cleanup.orphan(pid);
  expect(r.status, r.stderr).toBe(0);
  return r;
}

/** A phase line on stderr: `cr: info: phase save: 6 object(s), 8.0 MiB of blobs in 12.3 ms`. */
const PHASE_LINE = /^cr: info: phase ([a-z]+): .*in \d+\.\d ms$/;

describe('logging: -v, -vv and --log-file', () => {
  it('-v prints each phase with its time on stderr, -vv each object\'s steps too; stdout is unchanged', async () => {
    const dir = cleanup.dir(tempDir());
    const heap = await heapProcess(dir, 8);
    const exited = once(heap.child, 'exit');
    const saved = await crAsync(['checkpoint', String(heap.pid), '-D', join(dir, 'img'), '--kill', '-v']);
    expect(saved.status, saved.stderr).toBe(0);
    await exited;
    await waitGone(heap.pid);
    expect(saved.stdout).toContain(`checkpointed PID ${heap.pid}`);
    const lines = saved.stderr.trimEnd().split('\n');
    expect(lines.every((l) => l.startsWith('cr: info: '))).toBe(true);
    expect(lines.flatMap((l) => PHASE_LINE.exec(l)?.[1] ?? [])).toEqual([...CHECKPOINT_PHASES, 'kill']);
    expect(lines.at(-1)).toMatch(/^cr: info: checkpoint done: \d+ object\(s\), [\d.]+ MiB of blobs, frozen for [\d.]+ ms/);

    const restored = await restore(join(dir, 'img'), heap.pid, ['-vv']);
    const debug = restored.stderr.split('\n').filter((l) => l.startsWith('cr: debug: '));
    expect(restored.stderr.split('\n').flatMap((l) => PHASE_LINE.exec(l)?.[1] ?? [])).toEqual(RESTORE_PHASES);
    expect(debug).toContainEqual(expect.stringMatching(new RegExp(`^cr: debug: recreate mm:${heap.pid} in \\d+\\.\\d ms$`)));
    expect(debug).toContainEqual(expect.stringMatching(new RegExp(`^cr: debug: resume tasks:${heap.pid} in `)));
    expect(restored.stdout).toContain(`tasks:${heap.pid} running as PID ${heap.pid}`);
    await expectSameHeap(heap);
  });

  it('--log-file holds every detail as JSON lines, without -v: phases, each object\'s steps, decisions, plugin lines', async () => {
    const dir = cleanup.dir(tempDir());
    const log = join(dir, 'cr.log');
    const heap = await heapProcess(dir, 8);
    const exited = once(heap.child, 'exit');
    const saved = await crAsync(['checkpoint', String(heap.pid), '-D', join(dir, 'img'), '--kill', '--log-file', log]);
    expect(saved.stderr).toBe('');
    expect(saved.status).toBe(0);
    await exited;
    await waitGone(heap.pid);
    expect(statSync(log).mode & 0o777).toBe(0o600);
    const checkpointLines = logLines(log);
    expect(new Set(checkpointLines.map((l) => l.pid)).size).toBe(1);
    expect(phasesOf(checkpointLines)).toEqual([...CHECKPOINT_PHASES, 'kill']);
    for (const l of checkpointLines.filter((l) => l.phase !== undefined)) expect(l.ms).toBeGreaterThanOrEqual(0);
    const steps = (level: string, phase: string) => checkpointLines.filter((l) => l.level === level && l.phase === phase).map((l) => l.object);
    expect(steps('debug', 'freeze')).toEqual([`tasks:${heap.pid}`]);
    expect(steps('debug', 'collect')).toContain(`tasks:${heap.pid}`);
    expect(steps('debug', 'save')).toEqual(expect.arrayContaining([`tasks:${heap.pid}`, `mm:${heap.pid}`, `files:${heap.pid}:1`]));
    expect(steps('debug', 'kill')).toEqual([`tasks:${heap.pid}`]);
    expect(checkpointLines.map((l) => l.msg)).toContainEqual(`decide mm:${heap.pid}: include (default, from default)`);
    // A plugin's own line, bound to its object; and the finest detail (trace) is there too.
    expect(checkpointLines).toContainEqual(expect.objectContaining({ level: 'debug', plugin: 'mm', object: `mm:${heap.pid}`, msg: expect.stringMatching(/mapping\(s\), \d+ page\(s\) to read/) }));
    expect(checkpointLines.some((l) => l.level === 'trace' && l.msg.startsWith(`collected mm:${heap.pid} below tasks:${heap.pid}`))).toBe(true);
    expect(checkpointLines.some((l) => l.level === 'trace' && /^plugin mm \(record version \d+\) from @cr\/plugin-mm$/.test(l.msg))).toBe(true);

    // A second command appends to the same file.
    const restored = await restore(join(dir, 'img'), heap.pid, ['--log-file', log]);
    expect(restored.stderr).toBe('');
    const restoreLines = logLines(log).slice(checkpointLines.length);
    expect(restoreLines[0]!.pid).not.toBe(checkpointLines[0]!.pid);
    expect(phasesOf(restoreLines)).toEqual(RESTORE_PHASES);
    expect(restoreLines.filter((l) => l.level === 'debug' && l.phase === 'recreate').map((l) => l.object)).toContain(`mm:${heap.pid}`);
    await expectSameHeap(heap);
  });

  it('a failure is logged with its error, phase and exit code, before or inside the engines', async () => {
    const dir = cleanup.dir(tempDir());
    const log = join(dir, 'cr.log');
    const refused = await crAsync(['checkpoint', '2', '-D', join(dir, 'img'), '--log-file', log]);
    expect(refused.status).toBe(7);
    const [failure] = logLines(log).filter((l) => l.level === 'error');
    expect(failure).toMatchObject({ exitCode: 7, err: { type: 'UnsupportedError', exitCode: 7, message: expect.stringContaining('PID 2') } });
    expect(refused.stderr).toBe(`cr: ${failure!.err!.message}\n`);

    // Restoring a process whose PID is taken (it still runs) fails in preflight, naming the object.
    const heap = await heapProcess(dir, 1);
    const saved = await crAsync(['checkpoint', String(heap.pid), '-D', join(dir, 'img2')]);
    expect(saved.status, saved.stderr).toBe(0);
    const taken = await crAsync(['restore', '-D', join(dir, 'img2'), '--detach', '--log-file', log, '-v']);
    expect(taken.status).toBe(5);
    const errors = logLines(log).filter((l) => l.level === 'error').slice(1);
    expect(errors[0]).toMatchObject({ phase: 'preflight', object: `tasks:${heap.pid}`, err: { type: 'TargetError' } });
    expect(errors.at(-1)).toMatchObject({ exitCode: 5, err: { message: errors[0]!.err!.message } });
    // On stderr, -v shows the phases that ran; the error itself is cr's one line, not repeated.
    expect(taken.stderr.split('\n').filter((l) => l.includes(errors[0]!.err!.message))).toEqual([`cr: ${errors[0]!.err!.message}`]);
    expect(taken.stderr).toMatch(/^cr: info: phase check: /m);
  });

  it('--log-file refuses a path it cannot append to, and a symbolic link, before touching the target', async () => {
    const dir = cleanup.dir(tempDir());
    const heap = await heapProcess(dir, 1);
    const missing = await crAsync(['checkpoint', String(heap.pid), '-D', join(dir, 'img'), '--log-file', join(dir, 'no', 'cr.log')]);
    expect(missing).toMatchObject({ status: 2, stderr: expect.stringMatching(/^cr: --log-file .*: cannot append to it: ENOENT/) });
    const link = join(dir, 'link.log');
    writeFileSync(join(dir, 'real.log'), 'kept\n');
    symlinkSync(join(dir, 'real.log'), link);
    const linked = await crAsync(['checkpoint', String(heap.pid), '-D', join(dir, 'img'), '--log-file', link]);
    expect(linked).toMatchObject({ status: 2, stderr: `cr: --log-file ${link}: cannot append to it: it is a symbolic link\n` });
    expect(readFileSync(join(dir, 'real.log'), 'utf8')).toBe('kept\n');
    await expectSameHeap(heap);
  });
});

describe('--json phases', () => {
  it('dry run, checkpoint and restore give each phase in milliseconds, non-negative, adding up to at most the command\'s time', async () => {
    const dir = cleanup.dir(tempDir());
    const heap = await heapProcess(dir, 16);
    const check = (r: CliResult & { wallMs: number }, phases: string[]) => {
      expect(r.status, r.stderr).toBe(0);
      const timings = (JSON.parse(r.stdout) as { phases: Record<string, number> }).phases;
      expect(Object.keys(timings)).toEqual(phases);
      for (const ms of Object.values(timings)) expect(ms).toBeGreaterThanOrEqual(0);
      expect(Object.values(timings).reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(r.wallMs);
      return timings;
    };
    check(await timed(['checkpoint', String(heap.pid), '--dry-run', '--json']), ['collect', 'decide']);
    // Left running, the process is let go before the records are checked and the image committed.
    const saved = check(await timed(['checkpoint', String(heap.pid), '-D', join(dir, 'img'), '--json']), [...CHECKPOINT_PHASES.slice(0, -1), 'thaw', 'commit']);
    // 16 MiB of pages take longer to save than the image to commit.
    expect(saved.save).toBeGreaterThan(0);
    const exited = once(heap.child, 'exit');
    heap.child.kill('SIGKILL');
    await exited;
    await waitGone(heap.pid);
    const start = performance.now();
    const restored = await restore(join(dir, 'img'), heap.pid, ['--json']);
    check({ ...restored, wallMs: performance.now() - start }, RESTORE_PHASES);
    await expectSameHeap(heap);
  });
});

describe('progress bars', () => {
  // Bars appear for work that lasts over a second; 0 shows them at once, whatever this machine's speed.
  const now = { CR_PROGRESS_DELAY_MS: '0' };

  it('show on a terminal while a big process is saved and restored, never on a pipe or with --json', async () => {
    const dir = cleanup.dir(tempDir());
    const heap = await heapProcess(dir, 200);
    const bar = new RegExp(`mm:${heap.pid} pages \\|[^|]*\\| \\d+% [\\d.]+ [KMG]iB/[\\d.]+ MiB`);

    const onPipe = await crAsync(['checkpoint', String(heap.pid), '-D', join(dir, 'piped')], { env: now });
    expect(onPipe).toMatchObject({ status: 0, stderr: '' });
    const withJson = await crOnTerminal(['checkpoint', String(heap.pid), '-D', join(dir, 'json'), '--json'], now).done;
    expect(withJson.status).toBe(0);
    expect(withJson.screen).not.toMatch(/\|/);
    expect(JSON.parse(withJson.screen)).toMatchObject({ imageDir: join(dir, 'json') });

    const exited = once(heap.child, 'exit');
    const saved = await crOnTerminal(['checkpoint', String(heap.pid), '-D', join(dir, 'img'), '--kill'], now).done;
    expect(saved.status, saved.screen).toBe(0);
    expect(saved.screen).toMatch(bar);
    expect(saved.screen).toContain(`checkpointed PID ${heap.pid}`);
    await exited;
    await waitGone(heap.pid);

    // Restored in the foreground, as a shell job: the terminal's hangup when cr ends would end it if detached.
    const restoring = crOnTerminal(['restore', '-D', join(dir, 'img')], now);
    cleanup.orphan(heap.pid);
    await waitFor('the restored process to run', () => (restoring.screen().includes(`running as PID ${heap.pid}`) ? true : undefined), 30_000);
    expect(restoring.screen()).toMatch(bar);
    await expectSameHeap(heap);
    expect((await restoring.done).status).toBe(0);
  });
});
