import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pinnedNamespacePaths } from '@cr/core/engine';

export const REPO = resolve(import.meta.dirname, '..', '..');
const BIN = join(REPO, 'cli', 'bin', 'run.js');

export interface CliResult {
  status: number;
  stdout: string;
  stderr: string;
}

/** Runs the real cr command line. */
export function cr(args: string[], cwd = REPO, env: Record<string, string> = {}): CliResult {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd, encoding: 'utf8', env: { ...process.env, ...env } });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

export function crJson<T = Record<string, unknown>>(args: string[], cwd = REPO, env: Record<string, string> = {}): T {
  const r = cr([...args, '--json'], cwd, env);
  if (r.status !== 0) throw new Error(`cr ${args.join(' ')} failed (${r.status}): ${r.stderr}${r.stdout}`);
  return JSON.parse(r.stdout) as T;
}

export function tempDir(prefix = 'cr-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** Things a test created, undone in reverse order by `cleanup()` (call it in afterEach). */
export class Cleanup {
  private readonly steps: (() => void | Promise<void>)[] = [];

  add(step: () => void | Promise<void>): void {
    this.steps.push(step);
  }

  dir(path: string): string {
    this.add(() => rmSync(path, { recursive: true, force: true }));
    return path;
  }

  /** Unpins every namespace cr pinned in `dir`, if any are left; unmounts by hand if cr unpin fails. */
  pins(dir: string): string {
    this.add(() => {
      if (existsSync(dir)) cr(['unpin', dir]);
      for (const path of pinnedNamespacePaths(dir)) spawnSync('umount', ['-l', path]);
    });
    return dir;
  }

  /**
   * Kills a process that is not our child and waits until it is gone: PID 1 of this machine
   * reaps orphans slowly, and a test must not leave even a zombie behind.
   */
  orphan(pid: number): number {
    this.add(() => {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        return;
      }
      for (let i = 0; i < 500 && existsSync(`/proc/${pid}`); i++) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
    });
    return pid;
  }

  /** Kills a child process and waits until it has exited and been reaped. */
  process(child: ChildProcess): ChildProcess {
    this.add(async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((ok) => child.once('exit', ok));
      child.kill('SIGKILL');
      await exited;
    });
    return child;
  }

  async run(): Promise<void> {
    for (const step of this.steps.splice(0).reverse()) {
      try {
        await step();
      } catch {
        // Keep undoing the rest.
      }
    }
  }
}

/** Starts a fixture process and resolves once it printed "ready"; it is killed by `cleanup`. */
export async function startUntilReady(command: string, args: string[], cleanup: Cleanup): Promise<ChildProcess> {
  const child = cleanup.process(spawn(command, args, { stdio: ['ignore', 'pipe', 'inherit'] }));
  await new Promise<void>((ok, fail) => {
    child.once('exit', (code) => fail(new Error(`fixture ${command} ${args.join(' ')} exited early (${code})`)));
    child.stdout!.on('data', (d: Buffer) => {
      if (d.toString().includes('ready')) ok();
    });
  });
  return child;
}

/** Runs `script` under `sh` in new UTS and IPC namespaces, then keeps a process in them. */
export function startInNewNamespaces(script: string, cleanup: Cleanup): Promise<ChildProcess> {
  return startUntilReady('unshare', ['--uts', '--ipc', 'sh', '-c', `${script}; echo ready; exec sleep 1000`], cleanup);
}

export function nsenter(args: string[]): string {
  const r = spawnSync('nsenter', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`nsenter ${args.join(' ')}: ${r.stderr}`);
  return r.stdout.trim();
}
