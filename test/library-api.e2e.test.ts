import { execFile } from 'node:child_process';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { Cleanup, REPO, tempDir } from './helpers/cli.js';
import { compileFixture, lines, startFixture, waitFor, waitGone } from './helpers/processes.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());
const run = promisify(execFile);

/** A project of its own, outside the clone, that depends on @cr/api as `npm link` would link it. */
function project(): string {
  const dir = cleanup.dir(tempDir('cr-lib-'));
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'uses-cr-api', version: '1.0.0', private: true, type: 'module' }));
  mkdirSync(join(dir, 'node_modules', '@cr'), { recursive: true });
  symlinkSync(join(REPO, 'api'), join(dir, 'node_modules', '@cr', 'api'));
  writeFileSync(
    join(dir, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, skipLibCheck: true, typeRoots: [join(REPO, 'node_modules', '@types')], types: ['node'] },
      include: ['*.ts'],
    }),
  );
  return dir;
}

/** The example of docs/library.md, with what the test checks printed as JSON. */
const MAIN = `
import { existsSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { ExitCode, TargetError, checkpoint, inspect, restore, type Logger, type ProgressReporter } from '@cr/api';

const [pid, imageDir] = [Number(process.argv[2]), process.argv[3]!];
const plan = await checkpoint({ pid, dryRun: true, exclude: ['files:fd=1'] });
const progress: { phase: string; unit: string; total?: number; done: number }[] = [];
const reporter: ProgressReporter = {
  start: ({ phase, unit, total }) => {
    const work = { phase, unit, ...(total === undefined ? {} : { total }), done: 0 };
    progress.push(work);
    return { advance: (n) => { work.done += n; }, end: () => {} };
  },
};
const logs: string[] = [];
const line = (level: string) => (a: object | string, b?: string) => logs.push(\`\${level} \${typeof a === 'string' ? a : b}\`);
const logger: Logger = { error: line('error'), warn: line('warn'), info: line('info'), debug: line('debug'), trace: line('trace'), child: () => logger };
const saved = await checkpoint({ pid, imageDir, kill: true, progress: reporter, logger });
while (existsSync(\`/proc/\${pid}\`)) await sleep(20); // killed, it is reaped by PID 1
const restored = await restore({ imageDir, progress: reporter });
const image = await inspect(imageDir);
let refusal: unknown;
try {
  await checkpoint({ pid: 4194305, dryRun: true });
} catch (err) {
  refusal = err instanceof TargetError && err.exitCode === ExitCode.Target ? err.message : err;
}
console.log(JSON.stringify({
  planned: plan.objects.map((o) => [o.key, o.policy.decision]),
  saved: saved.objects.filter((o) => o.record).map((o) => o.key),
  frozenMs: saved.frozenMs,
  progress,
  logs,
  pids: restored.pids,
  target: image.manifest.target,
  problems: image.problems,
  refusal,
}));
`;

/** Imports @cr/api and prints what of the process changed. */
const IMPORT_ONLY = `
const signals = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGCHLD', 'exit', 'uncaughtException', 'unhandledRejection'];
const state = () => JSON.stringify({ listeners: signals.map((s) => process.listenerCount(s)), env: process.env, cwd: process.cwd(), umask: process.umask(), exitCode: process.exitCode });
const before = state();
await import('@cr/api');
console.log(JSON.stringify({ same: state() === before }));
`;

describe('the library API, @cr/api, from a project of its own', () => {
  it('checkpoints a running C program, restores it and inspects the image, with progress, logs and typed errors', async () => {
    const dir = project();
    writeFileSync(join(dir, 'main.ts'), MAIN);
    await run(process.execPath, [join(REPO, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', dir]);
    const counter = compileFixture('counter', dir);
    const out = join(dir, 'counter.out');
    const child = await startFixture(cleanup, counter, [], out);
    const pid = child.pid!;
    const { stdout, stderr } = await run(process.execPath, [join(dir, 'main.js'), String(pid), join(dir, 'img')], { cwd: dir });
    cleanup.orphan(pid);
    expect(stderr).toBe('');
    const result = JSON.parse(stdout);
    expect(result.planned).toEqual(expect.arrayContaining([[`tasks:${pid}`, 'include'], [`files:${pid}:1`, 'exclude'], [`mm:${pid}`, 'include']]));
    expect(result.saved).toEqual(expect.arrayContaining([`tasks:${pid}`, `files:${pid}:1`, `mm:${pid}`]));
    expect(result.frozenMs).toBeGreaterThan(0);
    // One piece of work for the saved objects, one for the restored ones, each advanced to its end.
    const objects = (phase: string) => result.progress.filter((p: { phase: string; unit: string }) => p.phase === phase && p.unit === 'objects');
    expect(objects('save')).toEqual([{ phase: 'save', unit: 'objects', total: result.saved.length, done: result.saved.length }]);
    expect(objects('recreate')).toEqual([{ phase: 'recreate', unit: 'objects', total: result.saved.length, done: result.saved.length }]);
    expect(result.logs).toEqual(expect.arrayContaining([expect.stringMatching(/^info phase save: /), expect.stringMatching(new RegExp(`^debug save mm:${pid}: `))]));
    expect(result.pids).toEqual([pid]);
    expect(result.target).toEqual({ kind: 'process', pid });
    expect(result.problems).toEqual([]);
    expect(result.refusal).toMatch(/no process with PID 4194305/);
    // The restored program carries on counting from where it was, in the same file.
    const before = lines(out).filter((l) => /^\d+$/.test(l)).length;
    await waitFor('the restored counter to count on', () => (lines(out).filter((l) => /^\d+$/.test(l)).length > before + 3 ? true : undefined));
    const counted = lines(out).filter((l) => /^\d+$/.test(l)).map(Number);
    expect(counted).toEqual(counted.map((_, i) => i + 1));
    process.kill(pid, 'SIGKILL');
    await waitGone(pid);
  });

  it('importing it changes nothing in the process: no signal handlers, environment, working directory or umask', async () => {
    const dir = project();
    writeFileSync(join(dir, 'import-only.mjs'), IMPORT_ONLY);
    const { stdout, stderr } = await run(process.execPath, [join(dir, 'import-only.mjs')], { cwd: dir });
    expect(stderr).toBe('');
    expect(JSON.parse(stdout)).toEqual({ same: true });
  });
});
