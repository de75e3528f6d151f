import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Cleanup, REPO, tempDir, type CliResult } from './helpers/cli.js';
import { compileFixture, processState, sleep, tracerOf, waitFor, waitForLine } from './helpers/processes.js';

const BIN = join(REPO, 'cli', 'bin', 'run.js');
const BUNDLE = join(REPO, 'cli', 'dist', 'bundle', 'cr.cjs');

let dir: string;
let socket: string;
let heap: string;
let proof: string;
let servicePid: number;
const cleanup = new Cleanup();

/** cr's environment: every command handed to the test's service, or (alone) never to one. */
const viaService = (): NodeJS.ProcessEnv => {
  const env: NodeJS.ProcessEnv = { ...process.env, CR_SERVICE_SOCKET: socket };
  delete env.CR_NO_SERVICE;
  return env;
};
const ALONE = { ...process.env, CR_NO_SERVICE: '1' };

/** Runs the real cr command line in `env`, its stdio as given, and resolves once it has exited. */
function run(args: string[], env: NodeJS.ProcessEnv, stdio: ('ignore' | 'pipe' | number)[] = ['ignore', 'pipe', 'pipe'], cwd = dir): Promise<CliResult> {
  return new Promise((ok, fail) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd, env, stdio: stdio as ('ignore' | 'pipe')[] });
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('error', fail);
    child.once('close', (code, signal) => ok({ status: code ?? (signal ? 128 : -1), stdout, stderr }));
  });
}

function control(args: string[]): CliResult {
  const r = spawnSync(process.execPath, [BIN, 'service', ...args, '--socket', socket], { encoding: 'utf8', env: ALONE });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** How many commands the service has run so far. */
function served(): number {
  return (JSON.parse(control(['status', '--json']).stdout) as { served: number }).served;
}

beforeAll(() => {
  dir = tempDir('cr-service-');
  heap = compileFixture('heap', dir);
  proof = compileFixture('proof', dir);
  const socketDir = join(dir, 'run');
  mkdirSync(socketDir, { mode: 0o700 });
  socket = join(socketDir, 'cr.sock');
  const started = control(['start', '--json']);
  expect(started.stderr).toBe('');
  expect(started.status).toBe(0);
  servicePid = (JSON.parse(started.stdout) as { pid: number }).pid;
  return () => {
    control(['stop']);
    rmSync(dir, { recursive: true, force: true });
  };
});
afterEach(() => cleanup.run());
afterAll(() => expect(existsSync(`/proc/${servicePid}`) && processState(servicePid) !== 'Z').toBe(true));

/** `cr types --json` worked, and ran in its caller: the service ran no command since `before`. */
function expectTypesRanInCaller(r: CliResult, before: number): void {
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  expect(JSON.parse(r.stdout)).toHaveProperty('plugins');
  expect(served()).toBe(before);
}

/** Starts heap.c with 4 MiB, its stdout a pipe this test holds: outside any checkpoint. */
async function startHeap(): Promise<{ child: ChildProcess; sum: string }> {
  const child = cleanup.process(spawn(heap, ['4'], { stdio: ['ignore', 'pipe', 'inherit'] }));
  const ready = await new Promise<string>((ok) => child.stdout!.once('data', (d: Buffer) => ok(d.toString())));
  return { child, sum: /^ready (\d+)/.exec(ready)![1]! };
}

describe('the cr service runs commands for their callers', () => {
  it('gives the same output and exit code as cr run alone, for commands that work and commands that fail', async () => {
    const before = served();
    const lines = [['types', '--json'], ['types'], ['checkpoint', '999999', '-D', 'img'], ['checkpoint', '999999', '-D', 'img', '--json'], ['checkpoint', '--bogus'], ['config']];
    for (const args of lines) {
      const alone = await run(args, ALONE);
      const handed = await run(args, viaService());
      expect({ args, ...handed }).toEqual({ args, ...alone });
    }
    expect(served() - before).toBe(lines.length);
  });

  it('checkpoints and restores a process: same PID and memory, and its stdio from outside is the caller’s', async () => {
    const { child, sum } = await startHeap();
    const pid = child.pid!;
    const img = join(dir, 'heap-img');
    const before = served();
    const exited = once(child, 'exit');
    const saved = await run(['checkpoint', String(pid), '-D', img, '--kill'], viaService());
    expect(saved.stderr).toBe('');
    expect(saved.status).toBe(0);
    expect(saved.stdout).toContain(`checkpointed PID ${pid} into ${img}`);
    await exited;
    await waitFor(`PID ${pid} to be free`, () => (existsSync(`/proc/${pid}`) ? undefined : true), 30_000);

    // The restore's caller has a file as stdout and stderr: the restored process's stdout, which
    // pointed outside the checkpoint, must be that file, which only the caller had open.
    const out = join(dir, 'restore.out');
    const fd = openSync(out, 'a');
    cleanup.orphan(pid);
    let restored: CliResult;
    try {
      restored = await run(['restore', '-D', img, '--detach'], viaService(), ['ignore', fd, fd]);
    } finally {
      closeSync(fd);
    }
    expect(restored.status).toBe(0);
    expect(readFileSync(out, 'utf8')).not.toContain('cr:');
    expect(readFileSync(out, 'utf8')).toContain(`tasks:${pid} running as PID ${pid}`);
    expect(served() - before).toBe(2);
    // The service made it: its child, as a process cr restores is cr's.
    expect(Number(readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[1])).toBe(servicePid);
    process.kill(pid, 'SIGUSR1');
    expect(await waitForLine(out, /^(same|DIFFERENT) /, 20_000)).toBe(`same ${sum}`);
    // It exited once it had summed; the service reaps it.
    await waitFor(`PID ${pid} to be reaped`, () => (existsSync(`/proc/${pid}`) ? undefined : true), 30_000);
  });

  it('hands back what must run in the caller: a restore that waits, a document on stdin, a config file that is a module or names a plugin; it runs there and works', async () => {
    const { child, sum } = await startHeap();
    const pid = child.pid!;
    const img = join(dir, 'waited-img');
    const exited = once(child, 'exit');
    expect((await run(['checkpoint', String(pid), '-D', img, '--kill'], viaService())).status).toBe(0);
    await exited;
    await waitFor(`PID ${pid} to be free`, () => (existsSync(`/proc/${pid}`) ? undefined : true), 30_000);
    const before = served();
    const out = join(dir, 'waited.out');
    const fd = openSync(out, 'a');
    cleanup.orphan(pid);
    const waiting = run(['restore', '-D', img], viaService(), ['ignore', fd, fd]);
    closeSync(fd);
    await waitFor(`PID ${pid} to run`, () => (existsSync(`/proc/${pid}`) && tracerOf(pid) === 0 ? true : undefined), 30_000);
    // cr itself is its parent: it waits for it and exits with its status.
    const parent = Number(readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[1]);
    expect(parent).not.toBe(servicePid);
    process.kill(pid, 'SIGUSR1');
    expect((await waiting).status).toBe(0);
    expect(readFileSync(out, 'utf8')).not.toContain('cr:');
    expect(readFileSync(out, 'utf8')).toContain(`tasks:${pid} running as PID ${pid}`);
    expect(readFileSync(out, 'utf8')).toContain(`same ${sum}`);

    const document = join(dir, 'doc.json');
    writeFileSync(document, JSON.stringify({ kind: 'tasks', version: 2, record: {} }));
    const encode = async (env: NodeJS.ProcessEnv, name: string) => {
      const stdin = openSync(document, 'r');
      try {
        const r = await run(['inspect', 'encode', '-', '-D', join(dir, name)], env, [stdin, 'pipe', 'pipe']);
        return { ...r, stdout: r.stdout.replaceAll(name, 'IMG'), stderr: r.stderr.replaceAll(name, 'IMG') };
      } finally {
        closeSync(stdin);
      }
    };
    expect(await encode(viaService(), 'encoded-by-caller')).toEqual(await encode(ALONE, 'encoded-alone'));

    // A config file that is a module runs once per process: the service would never read it again.
    const project = join(dir, 'module-config');
    mkdirSync(project);
    writeFileSync(join(project, 'cr.config.cjs'), "module.exports = { plugins: [] };\n");
    const shown = await run(['config', '--json'], viaService(), ['ignore', 'pipe', 'pipe'], project);
    expect(shown).toEqual(await run(['config', '--json'], ALONE, ['ignore', 'pipe', 'pipe'], project));
    expect(shown.status).toBe(0);
    expect(shown.stdout).toContain(join(project, 'cr.config.cjs'));

    // So does a plugin from outside.
    const withPlugin = join(dir, 'plugin-config');
    mkdirSync(withPlugin);
    writeFileSync(join(withPlugin, '.crrc.json'), JSON.stringify({ plugins: [join(REPO, 'test/fixtures/hello-plugin/index.js')] }));
    const types = await run(['types', '--json'], viaService(), ['ignore', 'pipe', 'pipe'], withPlugin);
    expect(types).toEqual(await run(['types', '--json'], ALONE, ['ignore', 'pipe', 'pipe'], withPlugin));
    expect(types.stdout).toContain('"type": "hello"');
    expect(served()).toBe(before);
  });

  it('refuses to checkpoint a tree its caller runs in, as cr refuses one it runs in', () => {
    const before = served();
    const r = spawnSync('sh', ['-c', `${process.execPath} ${BIN} checkpoint $$ -D ${join(dir, 'own-img')}; echo "sh went on"`], { encoding: 'utf8', env: viaService() });
    expect(r.stderr).toMatch(/^cr: cannot checkpoint PID (\d+) \(sh\): the cr command \(PID (\d+), run by the cr service\) runs below it, and cr cannot freeze a tree it runs in; run cr from outside that tree \(from another terminal, say\), or checkpoint a process beside cr\n$/);
    expect(r.stdout).toBe('sh went on\n');
    expect(existsSync(join(dir, 'own-img'))).toBe(false);
    expect(served()).toBe(before + 1);
  });

  it('runs the command of a caller in other namespaces in the caller itself', async () => {
    const before = served();
    const r = spawnSync('unshare', ['--uts', process.execPath, BIN, 'types', '--json'], { encoding: 'utf8', env: viaService() });
    expectTypesRanInCaller({ status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr }, before);
  });

  it('a caller runs its command itself when the service does not answer at once, and the service never runs it later', async () => {
    const before = served();
    process.kill(servicePid, 'SIGSTOP');
    let r: CliResult;
    try {
      r = await run(['types', '--json'], viaService());
    } finally {
      process.kill(servicePid, 'SIGCONT');
    }
    expectTypesRanInCaller(r, before);
  });

  it('hands every command back once cr is rebuilt, until it is restarted', async () => {
    const before = served();
    // The bundle's time of writing moves a second on, and back to the nanosecond after.
    const { mtimeNs } = statSync(BUNDLE, { bigint: true });
    const touch = (ns: bigint) => expect(spawnSync('touch', ['-m', '-d', `@${ns / 1_000_000_000n}.${String(ns % 1_000_000_000n).padStart(9, '0')}`, BUNDLE]).status).toBe(0);
    touch(mtimeNs + 1_000_000_000n);
    try {
      expect((await run(['types', '--json'], viaService())).status).toBe(0);
      const status = JSON.parse(control(['status', '--json']).stdout) as { currentBuild: boolean };
      expect(status.currentBuild).toBe(false);
    } finally {
      touch(mtimeNs);
    }
    expect(statSync(BUNDLE, { bigint: true }).mtimeNs).toBe(mtimeNs);
    expect(served()).toBe(before);
  });
});

describe('the target comes first through the service too', () => {
  async function startProof(name: string): Promise<{ child: ChildProcess; out: string; sum: string }> {
    const out = join(dir, `${name}.out`);
    const fd = openSync(out, 'a');
    try {
      const child = cleanup.process(spawn(proof, [], { stdio: ['pipe', fd, fd] }));
      const ready = await waitForLine(out, /^ready/);
      return { child, out, sum: ready.split('=')[1]! };
    } finally {
      closeSync(fd);
    }
  }

  it.each(['SIGINT', 'SIGKILL'] as const)('%s to the caller while the target is frozen: the service lets it go and writes no image', async (name) => {
    const target = await startProof(`caller-${name}`);
    const pid = target.child.pid!;
    const img = join(dir, `caller-${name}-img`);
    const before = served();
    const caller = spawn(process.execPath, [BIN, 'checkpoint', String(pid), '-D', img], { cwd: dir, env: viaService(), stdio: ['ignore', 'pipe', 'pipe'] });
    cleanup.process(caller);
    let stderr = '';
    caller.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = once(caller, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
    // Polled fast: the target is frozen for a moment only.
    let traced = false;
    for (let i = 0; i < 30_000 && !traced && caller.exitCode === null; i++) {
      traced = tracerOf(pid) === servicePid;
      if (!traced) await sleep(1);
    }
    expect({ traced, stderr }).toEqual({ traced: true, stderr: '' });
    caller.kill(name);
    const [code] = await exited;
    // The service is done with the command once it has counted it.
    await waitFor('the service to finish the command', () => (served() > before ? true : undefined), 30_000);
    await waitFor(`PID ${pid} to run untraced`, () => (tracerOf(pid) === 0 && !/[tT]/.test(processState(pid) ?? 'gone') ? true : undefined), 15_000);
    target.child.stdin!.write('after\n');
    expect(await waitForLine(target.out, /^after /, 20_000)).toMatch(new RegExp(`^after mask=\\S+ sum=${target.sum} broken=0 iterations=\\d+$`));
    // A signal can come too late to stop a checkpoint that was about to finish.
    if (code === 0) return;
    if (name === 'SIGINT') {
      expect(code).toBe(130);
      expect(stderr).toBe('cr: checkpoint interrupted by SIGINT; the target was let go and no image was written\n');
    }
    expect(existsSync(img)).toBe(false);
    expect(readdirSync(dir).filter((n) => n.includes('.cr-partial-'))).toEqual([]);
  });
});

describe('cr service start, status and stop', () => {
  it('refuses a second service on the same socket, and a socket directory others can write to', () => {
    const second = control(['start']);
    expect(second.status).toBe(2);
    expect(second.stderr).toBe(`cr: a cr service already runs at ${socket} (PID ${servicePid}); stop it with cr service stop\n`);
    const open = join(dir, 'open');
    mkdirSync(open, { mode: 0o777 });
    cleanup.add(() => rmdirSync(open));
    spawnSync('chmod', ['0777', open]);
    const r = spawnSync(process.execPath, [BIN, 'service', 'start', '--socket', join(open, 'cr.sock')], { encoding: 'utf8', env: ALONE });
    expect(r.stderr).toBe(`cr: --socket ${join(open, 'cr.sock')}: its directory ${open} must belong to root and be writable by no one else; choose another place\n`);
    expect(r.status).toBe(2);
  });

  it('status exits 5 where no service answers; a command there runs alone', async () => {
    const none = join(dir, 'run', 'none.sock');
    const r = spawnSync(process.execPath, [BIN, 'service', 'status', '--socket', none], { encoding: 'utf8', env: ALONE });
    expect(r.stderr).toBe(`cr: no cr service answers at ${none}; start one with cr service start\n`);
    expect(r.status).toBe(5);
    const alone = await run(['types', '--json'], { ...viaService(), CR_SERVICE_SOCKET: none });
    expect(alone.status).toBe(0);
  });

  it('logs each command it runs; stop waits until the service has exited; commands then run alone', async () => {
    const other = join(dir, 'run', 'other.sock');
    // Paths relative to where cr service start runs, not to the service's own directory.
    const start = spawnSync(process.execPath, [BIN, 'service', 'start', '--socket', 'run/other.sock', '--log-file', 'other.log', '--json'], { cwd: dir, encoding: 'utf8', env: ALONE });
    expect(start.stderr).toBe('');
    expect(start.status).toBe(0);
    expect(JSON.parse(start.stdout)).toMatchObject({ socket: other });
    const { pid } = JSON.parse(start.stdout) as { pid: number };
    cleanup.orphan(pid);
    const env = { ...viaService(), CR_SERVICE_SOCKET: other };
    expect((await run(['types', '--json'], env)).status).toBe(0);
    const stop = spawnSync(process.execPath, [BIN, 'service', 'stop', '--socket', other], { encoding: 'utf8', env: ALONE });
    expect(stop.stderr).toBe('');
    expect(stop.status).toBe(0);
    expect(stop.stdout).toBe(`cr service (PID ${pid}) stopped\n`);
    expect(processState(pid) ?? 'gone').toMatch(/^(Z|gone)$/);
    expect(existsSync(other)).toBe(false);
    const logged = readFileSync(join(dir, 'other.log'), 'utf8').split('\n').filter(Boolean).map((line) => JSON.parse(line) as { msg: string; argv?: string[]; outcome?: unknown });
    expect(logged.find((l) => l.outcome)).toMatchObject({ argv: ['types', '--json'], outcome: { type: 'exit', code: 0 } });
    expect(logged.at(-1)!.msg).toBe('cr service stopped after 1 command(s)');
    expect((await run(['types', '--json'], env)).status).toBe(0);
  });
});
