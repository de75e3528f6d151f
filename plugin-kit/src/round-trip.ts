import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { checkpoint, inspect, restore, waitForExit, type CheckpointOptions, type Inspection, type RestoredObject } from '@cr/api';

/**
 * Starts the program in the background of a shell that then exits, so that it is not a child of
 * this process (Node's own child bookkeeping and cr's ptrace would both reap it), with stdin from
 * /dev/null, stdout and stderr to the file $1, and no other descriptors: a test runner leaves some
 * of its own open across exec, which are not the program's state and which cr would refuse to
 * checkpoint. Prints the program's PID.
 */
const LAUNCH = 'out=$1; shift; for fd in /proc/self/fd/*; do fd=${fd##*/}; [ "$fd" -gt 2 ] && eval "exec $fd>&-"; done; "$@" </dev/null >"$out" 2>&1 & echo $!';

export interface RoundTripOptions {
  /** The plugin under test, as a config's `plugins` entry: a package name, or the path of its built module. */
  plugin: string;
  /** Its options, as `.crrc` would give them under `pluginOptions[type]`, by type. */
  pluginOptions?: Readonly<Record<string, unknown>>;
  /** The program to run and checkpoint; its stdout and stderr go to a file (see `output`). */
  command: string;
  args?: readonly string[];
  /** Wait until the program's output matches this before anything else (it has set up its state). */
  readyWhen?: RegExp;
  /** Called with the running program's PID before the checkpoint, to give it the state the plugin saves. */
  prepare?: (pid: number) => void | Promise<void>;
  /** What to save, as `cr checkpoint`'s --only, --include, --exclude, --external. */
  select?: Pick<CheckpointOptions, 'only' | 'include' | 'exclude' | 'external'>;
  /** How long to wait for the program to be ready, and for its PID to be free after the kill. Default 30 s. */
  timeoutMs?: number;
}

export interface RoundTrip {
  /** The PID the program had, and has again once restored. */
  pid: number;
  /** The image written, with its manifest and records, as `cr inspect --json` shows them. */
  image: Inspection;
  /** The saved records of `type`, in manifest order. */
  records<R = unknown>(type: string): R[];
  /** Every object restored. */
  restored: RestoredObject[];
  /** What the program has written to stdout and stderr so far, before and after the restore. */
  output(): string;
  /** Waits until the output matches `pattern` (the restored program carries on writing). */
  waitForOutput(pattern: RegExp): Promise<string>;
  /** Kills and reaps the restored program and removes the scratch directory; call it in `finally`. */
  dispose(): void;
}

/**
 * Runs `command` (not as a child of this process), checkpoints it with the plugin loaded and
 * `kill`, restores the image (the program is then a child of this process, with the same PID), and
 * returns what a test checks. Runs as root, as cr does. Whatever fails, nothing is left running.
 */
export async function checkpointAndRestore(options: RoundTripOptions): Promise<RoundTrip> {
  const timeoutMs = options.timeoutMs ?? 30_000;
  const dir = mkdtempSync(join(tmpdir(), 'cr-kit-'));
  const outputFile = join(dir, 'output.log');
  const launched = spawnSync('bash', ['-c', LAUNCH, 'cr-kit', outputFile, options.command, ...(options.args ?? [])], { encoding: 'utf8' });
  const pid = Number(launched.stdout.trim());
  const output = () => readFileSync(outputFile, 'utf8');
  const waitForOutput = async (pattern: RegExp) => {
    for (const deadline = Date.now() + timeoutMs; !pattern.test(output()); await sleep(20)) {
      if (Date.now() > deadline) throw new Error(`the program's output never matched ${pattern} within ${timeoutMs} ms; it was: ${output()}`);
    }
    return output();
  };
  const plugins = { plugins: [options.plugin], ...(options.pluginOptions ? { pluginOptions: options.pluginOptions } : {}) };
  let restoredPids: number[] = [];
  const dispose = () => {
    for (const restored of restoredPids) stop(restored);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    if (!Number.isInteger(pid) || pid <= 0) throw new Error(`${options.command} could not be started: ${launched.stderr}`);
    if (options.readyWhen) await waitForOutput(options.readyWhen);
    await options.prepare?.(pid);
    const imageDir = join(dir, 'img');
    await checkpoint({ pid, imageDir, kill: true, ...plugins, ...options.select });
    // Killed, it is reaped by PID 1, which can take a moment; restore needs its PID free.
    await waitGone(pid, timeoutMs);
    const { restored, pids } = await restore({ imageDir, ...plugins });
    restoredPids = pids;
    const image = await inspect(imageDir, plugins);
    const records = <R>(type: string) => image.manifest.objects.filter((o) => o.type === type && o.record).map((o) => image.records[o.key] as R);
    return { pid, image, records, restored, output, waitForOutput, dispose };
  } catch (err) {
    if (Number.isInteger(pid) && pid > 0 && !restoredPids.includes(pid)) await killOrphan(pid, timeoutMs);
    dispose();
    throw err;
  }
}

async function waitGone(pid: number, timeoutMs: number): Promise<void> {
  for (const deadline = Date.now() + timeoutMs; existsSync(`/proc/${pid}`); await sleep(20)) {
    if (Date.now() > deadline) throw new Error(`PID ${pid} is still taken ${timeoutMs} ms after it was killed`);
  }
}

/** Kills the program as started (not a child of this process) and waits until PID 1 has reaped it. */
async function killOrphan(pid: number, timeoutMs: number): Promise<void> {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    return;
  }
  await waitGone(pid, timeoutMs);
}

/** Kills a restored program, a child of this process, and reaps it. */
function stop(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    return;
  }
  waitForExit(pid);
}
