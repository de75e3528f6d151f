import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, existsSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import { REPO, type Cleanup, type CliResult } from './cli.js';

const BIN = join(REPO, 'cli', 'bin', 'run.js');

/** Compiles test/fixtures/NAME.c into `dir`, linked with `libs` (`-lrt`), and returns the binary's path. */
export function compileFixture(name: string, dir: string, libs: readonly string[] = []): string {
  const out = join(dir, name);
  const built = spawnSync('cc', ['-O2', '-Wall', '-o', out, join(REPO, 'test/fixtures', `${name}.c`), ...libs], { encoding: 'utf8' });
  if (built.status !== 0) throw new Error(`cc ${name}.c failed: ${built.stderr}`);
  return out;
}

/** Runs cr without blocking the event loop, so that this process can reap its own children meanwhile. */
export function crAsync(args: string[], options: { cwd?: string; stdin?: 'ignore' | number; env?: Record<string, string> } = {}): Promise<CliResult> {
  return new Promise((ok, fail) => {
    const env = { ...process.env, ...options.env };
    const child = spawn(process.execPath, [BIN, ...args], { cwd: options.cwd ?? REPO, env, stdio: [options.stdin ?? 'ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('error', fail);
    child.once('close', (code, signal) => ok({ status: code ?? (signal ? 128 : -1), stdout, stderr }));
  });
}

export const sleep = (ms: number) => new Promise((ok) => setTimeout(ok, ms));

/** Polls until `check` returns something other than undefined, or fails after `ms`. */
export async function waitFor<T>(what: string, check: () => T | undefined, ms = 10_000): Promise<T> {
  for (let waited = 0; ; waited += 20) {
    const value = check();
    if (value !== undefined) return value;
    if (waited >= ms) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(20);
  }
}

export function lines(path: string): string[] {
  return existsSync(path) ? readFileSync(path, 'utf8').split('\n').filter(Boolean) : [];
}

/** Waits until the file holds a line matching `pattern`, and returns that line. */
export function waitForLine(path: string, pattern: RegExp, ms?: number): Promise<string> {
  return waitFor(`a line matching ${pattern} in ${path}`, () => lines(path).find((l) => pattern.test(l)), ms);
}

/**
 * Starts a fixture as a child of this process, its stdout and stderr appended to `out` (a
 * regular file opened O_APPEND), and waits for its "ready" line. It is killed by `cleanup`.
 */
export async function startFixture(cleanup: Cleanup, command: string, args: string[], out: string, stdin: 'ignore' | number = 'ignore'): Promise<ChildProcess> {
  const fd = openSync(out, 'a');
  try {
    const child = cleanup.process(spawn(command, args, { stdio: [stdin, fd, fd] }));
    await waitForLine(out, /^ready/);
    return child;
  } finally {
    closeSync(fd);
  }
}

/**
 * A named pipe opened read-write, so that opening it does not wait for the other side: a stdin
 * that outlives the process it was given to, for a restored program to read from.
 */
export function fifo(path: string, cleanup: Cleanup): number {
  execFileSync('mkfifo', [path]);
  const fd = openSync(path, 'r+');
  cleanup.add(() => closeSync(fd));
  return fd;
}

/** The state letter of a process (R, S, t …), or undefined once it is gone. */
export function processState(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
  } catch {
    return undefined;
  }
}

/** The PID of the process tracing `pid` (ptrace), 0 when none is. */
export function tracerOf(pid: number): number {
  return Number(/^TracerPid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);
}

/** Waits until no process has `pid` (a killed orphan is reaped by PID 1, which can take seconds). */
export function waitGone(pid: number): Promise<true> {
  return waitFor(`PID ${pid} to be gone`, () => (existsSync(`/proc/${pid}`) ? undefined : true), 15_000);
}

/** Checkpoints `child` with --kill and waits until it is gone, so that its PID is free again; returns cr's output. */
export async function checkpointAndKill(child: ChildProcess, img: string, extra: string[] = []): Promise<string> {
  const exited = once(child, 'exit');
  const r = await crAsync(['checkpoint', String(child.pid), '-D', img, '--kill', ...extra]);
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  await exited;
  return r.stdout;
}

/**
 * `cr restore -D img --detach extra…`. A restored pty gets its saved index back, and indexes are
 * handed out lowest-free across the machine: another test file's terminal (logging.e2e runs cr
 * under `script`) may hold the index a killed process freed, for as long as that command runs. A
 * restore refused for that alone (it leaves nothing behind) waits for the index to be free and is
 * made again.
 */
export async function restoreImage(img: string, extra: readonly string[] = []): Promise<CliResult> {
  for (let attempt = 1; ; attempt++) {
    const r = await crAsync(['restore', '-D', img, '--detach', ...extra]);
    // The plugin says "in use" when it finds the index held before it starts; the kernel layer
    // "taken" when another terminal gets it between that check and the pty being made.
    const taken = /\/dev\/pts\/(\d+) is (?:in use|taken) by another terminal/.exec(r.stderr);
    if (r.status !== 5 || !taken || attempt === 5) return r;
    await waitFor(`/dev/pts/${taken[1]} to be free`, () => (existsSync(`/dev/pts/${taken[1]}`) ? undefined : true), 30_000);
  }
}

/** Restores a process image detached and registers the restored process for cleanup. */
export async function restoreDetached(cleanup: Cleanup, img: string, pid: number, extra: string[] = []): Promise<void> {
  // Registered first: a restore that fails or never returns may have left the process running.
  cleanup.orphan(pid);
  const r = await restoreImage(img, extra);
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  expect(r.stdout).toContain(`tasks:${pid} running as PID ${pid}`);
}

/** PIDs of the `sleep 86400` processes cr restore launches its seeds from: none may be left behind. */
export function seedLaunchers(): string[] {
  return readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        return readFileSync(`/proc/${p}/cmdline`, 'utf8') === 'sleep\u000086400\u0000';
      } catch {
        return false;
      }
    });
}
