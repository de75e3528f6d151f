import { chmodSync, lstatSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { adviceSchema, type Advice } from '@cr/schemas';
import { ConfigError, TargetError } from '../errors.js';
import type { Procfs } from '../kernel/procfs.js';
import type { AppliedAdvice } from '../policy/from-config.js';
import { describeZodError } from '../zod-issues.js';

/** Where advice is kept, unless the environment variable ADVICE_DIR_ENV names another directory. */
export const DEFAULT_ADVICE_DIR = '/run/cr/advice';
export const ADVICE_DIR_ENV = 'CR_ADVICE_DIR';

const FILE_NAME = /^([0-9]+)-([0-9]+)\.json$/;

export function adviceDir(env: NodeJS.ProcessEnv = process.env): string {
  return env[ADVICE_DIR_ENV] || DEFAULT_ADVICE_DIR;
}

/**
 * The advice file of a running process: `DIR/PID-STARTTIME.json`, STARTTIME being field 22 of
 * /proc/PID/stat (clock ticks after boot). A later process that gets the same PID has another
 * start time, so it never inherits the advice.
 */
export function adviceFileOf(dir: string, procfs: Procfs, pid: number): string {
  return join(dir, `${pid}-${procfs.stat(pid).startTime}.json`);
}

/**
 * The advice process `pid` was given, if any. The file must be a regular file owned by root or
 * by the process's own user, and valid: otherwise the checkpoint stops here, naming the file.
 */
export function readAdvice(dir: string, procfs: Procfs, pid: number): AppliedAdvice | undefined {
  const file = adviceFileOf(dir, procfs, pid);
  const st = lstatOrUndefined(file);
  if (!st) return undefined;
  if (!st.isFile()) throw new ConfigError(`advice ${file} is not a regular file; remove it, or write the advice as a plain file`);
  const uid = procfs.status(pid).uids[0];
  if (st.uid !== 0 && st.uid !== uid) {
    throw new ConfigError(`advice ${file} belongs to uid ${st.uid}, but PID ${pid} runs as uid ${uid}: only root or the process's own user may advise about it; remove the file`);
  }
  return { file, advice: parseAdvice(file, readFileSync(file, 'utf8')) };
}

/** Validates advice text, naming the file and every bad key path (exit 3, like a config file). */
export function parseAdvice(file: string, text: string): Advice {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`invalid advice in ${file}: not JSON (${(err as Error).message}); see docs/selecting.md for the format`);
  }
  const parsed = adviceSchema.safeParse(data);
  if (!parsed.success) throw new ConfigError(`invalid advice in ${file}:\n  ${describeZodError(parsed.error, data).join('\n  ')}`);
  return parsed.data;
}

/**
 * Writes a process's advice atomically (a reader never sees half a file). The directory is
 * created world-writable and sticky, like /tmp, so that programs of any user can advise about
 * themselves.
 */
export function writeAdvice(dir: string, procfs: Procfs, pid: number, advice: Advice): string {
  ensureAdviceDir(dir);
  const file = adviceFileOf(dir, procfs, pid);
  const partial = join(dir, `.${pid}.${process.pid}.partial`);
  writeFileSync(partial, `${JSON.stringify(advice, null, 2)}\n`, { mode: 0o644 });
  renameSync(partial, file);
  return file;
}

/** Removes a process's advice; true if it had any. */
export function removeAdvice(dir: string, procfs: Procfs, pid: number): boolean {
  const file = adviceFileOf(dir, procfs, pid);
  if (!lstatOrUndefined(file)) return false;
  rmSync(file);
  return true;
}

/** Removes the advice of processes that are gone (or whose PID now belongs to another process). */
export function pruneAdvice(dir: string, procfs: Procfs): string[] {
  const removed: string[] = [];
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return removed;
  }
  for (const name of names) {
    const m = FILE_NAME.exec(name);
    if (!m || startTimeOf(procfs, Number(m[1])) === BigInt(m[2]!)) continue;
    rmSync(join(dir, name), { force: true });
    removed.push(join(dir, name));
  }
  return removed;
}

function ensureAdviceDir(dir: string): void {
  if (lstatOrUndefined(dir)) return;
  try {
    mkdirSync(dir, { recursive: true });
    chmodSync(dir, 0o1777);
  } catch (err) {
    throw new TargetError(`cannot create the advice directory ${dir}: ${(err as Error).message}; create it (mode 1777) or set ${ADVICE_DIR_ENV}`);
  }
}

function startTimeOf(procfs: Procfs, pid: number): bigint | undefined {
  try {
    return procfs.stat(pid).startTime;
  } catch {
    return undefined;
  }
}

function lstatOrUndefined(path: string) {
  try {
    return lstatSync(path);
  } catch {
    return undefined;
  }
}
