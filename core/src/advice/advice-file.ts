import { closeSync, fstatSync, mkdirSync, readFileSync, writeFileSync, type Stats } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { adviceSchema, type Advice } from '@cr/schemas';
import { ConfigError, TargetError } from '../errors.js';
import type { Directory } from '../kernel/directory.js';
import type { Kernel } from '../kernel/kernel.js';
import { KernelError } from '../kernel/kernel-error.js';
import type { AppliedAdvice } from '../policy/from-config.js';
import { describeOwners, ownershipProblem } from '../trust/ownership.js';
import { describeZodError } from '../zod-issues.js';
import { ONE_SHOT } from '../one-shot-parse.js';

/** Where advice is kept, unless the environment variable ADVICE_DIR_ENV names another directory. */
export const DEFAULT_ADVICE_DIR = '/run/cr/advice';
export const ADVICE_DIR_ENV = 'CR_ADVICE_DIR';

const FILE_NAME = /^([0-9]+)-([0-9]+)\.json$/;
const UID_NAME = /^[0-9]+$/;
/** Advice is a few rules; anything this large is not advice. */
const MAX_ADVICE_BYTES = 1 << 20;

export function adviceDir(env: NodeJS.ProcessEnv = process.env): string {
  return env[ADVICE_DIR_ENV] || DEFAULT_ADVICE_DIR;
}

/**
 * The advice directory holds one subdirectory per user, `DIR/UID`, which only that user (and
 * root) can write: advice about a process lives in the one of its effective uid, the owner of
 * the files it creates. DIR itself is sticky and world-writable like /tmp, so that a program of
 * any user can make its own.
 */
function adviceUid(kernel: Kernel, pid: number): number {
  return kernel.procfs.status(pid).uids[1];
}

/**
 * Who may advise about a process: root, and its own user when it runs wholly as that user (real,
 * effective and saved uid alike), so that a setuid program's user cannot steer its checkpoints.
 */
export function advisersOf(kernel: Kernel, pid: number): number[] {
  const [real, effective, saved] = kernel.procfs.status(pid).uids;
  return real === effective && effective === saved && effective !== 0 ? [0, effective] : [0];
}

/** Refuses (exit 5) a `cr advise` by a user who may not advise about `pid`. */
export function assertMayAdvise(kernel: Kernel, pid: number, euid: number = process.geteuid!()): void {
  const advisers = advisersOf(kernel, pid);
  if (advisers.includes(euid)) return;
  const [real, effective, saved] = kernel.procfs.status(pid).uids;
  throw new TargetError(
    `PID ${pid} runs as uid ${real}/${effective}/${saved} (real/effective/saved); only ${describeOwners(advisers)} may advise about it, not uid ${euid}; run cr advise as ${describeOwners(advisers)}`,
  );
}

/**
 * The advice file of a running process: `DIR/UID/PID-STARTTIME.json`, STARTTIME being field 22 of
 * /proc/PID/stat (clock ticks after boot). A later process that gets the same PID has another
 * start time, so it never inherits the advice.
 */
export function adviceFileOf(dir: string, kernel: Kernel, pid: number): string {
  return join(dir, String(adviceUid(kernel, pid)), adviceNameOf(kernel, pid));
}

function adviceNameOf(kernel: Kernel, pid: number): string {
  return `${pid}-${kernel.procfs.stat(pid).startTime}.json`;
}

/** The advice a process has, and why a file that looked like its advice was passed over. */
export interface AdviceReading {
  advice?: AppliedAdvice;
  /** One line each: advice another user could have written is ignored, never obeyed nor fatal. */
  warnings: string[];
}

/**
 * The advice process `pid` was given, if any. Every step is taken relative to the directory
 * opened before it, never following a symlink; a file is used only if it is a regular file with
 * one link, owned by one of `advisersOf(pid)`, in directories no one else can write. A file that
 * fails those checks is ignored with a warning; one that passes them but is not valid advice is
 * an error naming it (exit 3), as its author is the process's own user.
 */
export function readAdvice(dir: string, kernel: Kernel, pid: number): AdviceReading {
  const file = adviceFileOf(dir, kernel, pid);
  const ignored = (why: string): AdviceReading => ({ warnings: [`advice ${file} ignored: ${why}`] });
  const opened: Directory[] = [];
  try {
    const top = openDirectory(() => kernel.openDirectory(dir));
    if (typeof top === 'string') return top === 'ENOENT' ? { warnings: [] } : ignored(`${dir} ${top}`);
    opened.push(top);
    const topProblem = ownershipProblem(top.stat(), [0, process.geteuid!()], { stickyAllowed: true });
    if (topProblem) return ignored(`${dir} ${topProblem}; remove it, and cr advise makes it again`);

    const uid = adviceUid(kernel, pid);
    const user = openDirectory(() => top.openDirectory(String(uid)));
    if (typeof user === 'string') return user === 'ENOENT' ? { warnings: [] } : ignored(`${top.pathOf(String(uid))} ${user}`);
    opened.push(user);
    const userProblem = ownershipProblem(user.stat(), [0, uid]);
    if (userProblem) return ignored(`${user.path} ${userProblem}; remove it`);

    let fd: number;
    try {
      fd = user.openForReading(adviceNameOf(kernel, pid));
    } catch (err) {
      if (err instanceof KernelError && err.code === 'ENOENT') return { warnings: [] };
      if (err instanceof KernelError && err.code === 'ELOOP') return ignored('it is a symlink; remove it');
      throw err;
    }
    try {
      const problem = adviceFileProblem(fstatSync(fd), advisersOf(kernel, pid));
      if (problem) return ignored(`it ${problem}; remove it`);
      return { advice: { file, advice: parseAdvice(file, readFileSync(fd, 'utf8')) }, warnings: [] };
    } finally {
      closeSync(fd);
    }
  } finally {
    for (const d of opened) d.close();
  }
}

/** Why an opened advice file is not to be trusted, or undefined. */
export function adviceFileProblem(st: Stats, advisers: readonly number[]): string | undefined {
  if (!st.isFile()) return 'is not a regular file';
  if (st.nlink !== 1) return `has ${st.nlink} hard links, so it may be another file's`;
  if (st.size > MAX_ADVICE_BYTES) return `is larger than ${MAX_ADVICE_BYTES} bytes`;
  return ownershipProblem(st, advisers);
}

/** Validates advice text, naming the file and every bad key path (exit 3, like a config file). */
export function parseAdvice(file: string, text: string): Advice {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`invalid advice in ${file}: not JSON (${(err as Error).message}); see docs/selecting.md for the format`);
  }
  const parsed = adviceSchema.safeParse(data, ONE_SHOT);
  if (!parsed.success) throw new ConfigError(`invalid advice in ${file}:\n  ${describeZodError(parsed.error, data).join('\n  ')}`);
  return parsed.data;
}

/**
 * Writes a process's advice atomically (a reader never sees half a file) into its user's
 * directory, creating the directories as needed. The file is created under a temporary name with
 * O_EXCL|O_NOFOLLOW relative to the opened directory and renamed into place there: whatever
 * another user planted at either name is replaced, never followed, never written through.
 */
export function writeAdvice(dir: string, kernel: Kernel, pid: number, advice: Advice): string {
  const name = adviceNameOf(kernel, pid);
  const user = openUserDirectory(dir, kernel, pid);
  try {
    const partial = `.${pid}.${process.pid}.partial`;
    const fd = createReplacing(user, partial);
    try {
      writeFileSync(fd, `${JSON.stringify(advice, null, 2)}\n`);
    } finally {
      closeSync(fd);
    }
    try {
      user.rename(partial, name);
    } catch (err) {
      removeQuietly(user, partial);
      throw err;
    }
    return user.pathOf(name);
  } finally {
    user.close();
  }
}

/** Removes a process's advice; true if it had any. */
export function removeAdvice(dir: string, kernel: Kernel, pid: number): boolean {
  const user = openDirectory(() => kernel.openDirectory(join(dir, String(adviceUid(kernel, pid)))));
  if (typeof user === 'string') return false;
  try {
    user.remove(adviceNameOf(kernel, pid));
    return true;
  } catch (err) {
    if (err instanceof KernelError && err.code === 'ENOENT') return false;
    throw err;
  } finally {
    user.close();
  }
}

/**
 * Removes the advice of processes that are gone (or whose PID now belongs to another process),
 * in every user's directory this user can write to.
 */
export function pruneAdvice(dir: string, kernel: Kernel): string[] {
  const removed: string[] = [];
  const top = openDirectory(() => kernel.openDirectory(dir));
  if (typeof top === 'string') return removed;
  try {
    for (const uid of top.names().filter((n) => UID_NAME.test(n))) {
      const user = openDirectory(() => top.openDirectory(uid));
      if (typeof user === 'string') continue;
      try {
        for (const name of safeNames(user)) {
          const m = FILE_NAME.exec(name);
          if (!m || startTimeOf(kernel, Number(m[1])) === BigInt(m[2]!)) continue;
          if (removeQuietly(user, name)) removed.push(user.pathOf(name));
        }
      } finally {
        user.close();
      }
    }
  } finally {
    top.close();
  }
  return removed;
}

/**
 * `DIR/UID` for process `pid`, opened. DIR is made (sticky, mode 1777) if missing; so is the
 * user's directory (mode 0700), given to that user when root makes it. Either one that another
 * user could have swapped is refused, naming it.
 */
function openUserDirectory(dir: string, kernel: Kernel, pid: number): Directory {
  const top = openOrMake(dir, () => makeAdviceRoot(kernel, dir), () => kernel.openDirectory(dir), `; root makes it with cr advise (or install -d -m 1777 ${dir}), or set ${ADVICE_DIR_ENV}`);
  try {
    const problem = ownershipProblem(top.stat(), [0, process.geteuid!()], { stickyAllowed: true });
    if (problem) throw new TargetError(`the advice directory ${dir} ${problem}; remove it, and cr makes it again (or set ${ADVICE_DIR_ENV})`);
    const { uids, gids } = kernel.procfs.status(pid);
    const uid = uids[1];
    const path = top.pathOf(String(uid));
    const user = openOrMake(
      path,
      () => {
        top.makeDirectory(String(uid), 0o700);
        const made = top.openDirectory(String(uid));
        try {
          if (made.stat().uid !== uid) made.chown(uid, gids[1]);
        } finally {
          made.close();
        }
      },
      () => top.openDirectory(String(uid)),
      '',
    );
    const userProblem = ownershipProblem(user.stat(), [0, uid]);
    if (userProblem) {
      user.close();
      throw new TargetError(`the advice directory ${path} ${userProblem}; remove it (rm -r ${path}), and cr makes it again`);
    }
    return user;
  } finally {
    top.close();
  }
}

/**
 * Makes DIR: private at first, made sticky and world-writable only once cr holds it open, so
 * that what it changes the mode of is what it made. Root's own directory is made first, when no
 * one else can take its name.
 */
function makeAdviceRoot(kernel: Kernel, dir: string): void {
  mkdirSync(dirname(dir), { recursive: true, mode: 0o755 });
  const parent = kernel.openDirectory(dirname(dir));
  try {
    parent.makeDirectory(basename(dir), 0o700);
    const made = parent.openDirectory(basename(dir));
    try {
      if (process.geteuid!() === 0) made.makeDirectory('0', 0o700);
      made.chmod(0o1777);
    } finally {
      made.close();
    }
  } finally {
    parent.close();
  }
}

/** Opens a directory with `open`, first making it with `make` if it does not exist; errors name it, and `hint` says what to do. */
function openOrMake(path: string, make: () => void, open: () => Directory, hint: string): Directory {
  for (let attempt = 0; ; attempt++) {
    try {
      return open();
    } catch (err) {
      if (!(err instanceof KernelError)) throw err;
      if (err.code === 'ELOOP' || err.code === 'ENOTDIR') throw new TargetError(`the advice directory ${path} is a symlink or not a directory; remove it, and cr makes it again`);
      if (err.code !== 'ENOENT' || attempt > 0) throw new TargetError(`cannot open the advice directory ${path}: ${err.message}`);
    }
    try {
      make();
    } catch (err) {
      if (err instanceof KernelError && err.code === 'EEXIST') continue;
      throw new TargetError(`cannot create the advice directory ${path}: ${(err as Error).message}${hint}`);
    }
  }
}

/** Creates `name`, first removing whatever another writer left or planted there (O_EXCL never follows it). */
function createReplacing(dir: Directory, name: string): number {
  try {
    return dir.createExclusive(name, 0o644);
  } catch (err) {
    if (!(err instanceof KernelError && err.code === 'EEXIST')) throw err;
    dir.remove(name);
    return dir.createExclusive(name, 0o644);
  }
}

function removeQuietly(dir: Directory, name: string): boolean {
  try {
    dir.remove(name);
    return true;
  } catch {
    return false;
  }
}

/** Opens a directory, or says why not: ENOENT, or a reason a user can act on. */
function openDirectory(open: () => Directory): Directory | string {
  try {
    return open();
  } catch (err) {
    if (!(err instanceof KernelError)) throw err;
    if (err.code === 'ENOENT') return 'ENOENT';
    if (err.code === 'ELOOP' || err.code === 'ENOTDIR') return 'is a symlink or not a directory';
    return `cannot be opened (${err.code})`;
  }
}

function safeNames(dir: Directory): string[] {
  try {
    return dir.names();
  } catch {
    return [];
  }
}

function startTimeOf(kernel: Kernel, pid: number): bigint | undefined {
  try {
    return kernel.procfs.stat(pid).startTime;
  } catch {
    return undefined;
  }
}
