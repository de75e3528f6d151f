import { closeSync, constants, openSync } from 'node:fs';
import { isatty, WriteStream } from 'node:tty';
import type { Kernel } from '@cr/core';

const NAMESPACES = ['cgroup', 'ipc', 'mnt', 'net', 'pid', 'time', 'user', 'uts'] as const;
const STDIO = [0, 1, 2] as const;

/** What of a process decides whether the service may run a command for it (callerRefusal). */
export interface Standing {
  capEffective: bigint;
  seccomp: number;
  noNewPrivs: boolean;
  /** Its LSM label (AppArmor profile, SELinux context), or '' where there is none. */
  label: string;
  /** Its namespaces, by kind, as /proc/PID/ns/KIND reads. */
  namespaces: Record<(typeof NAMESPACES)[number], string>;
  root: string;
}

export function standingOf(kernel: Kernel, pid: number): Standing {
  const { capEffective, seccomp, noNewPrivs } = kernel.procfs.status(pid);
  const namespaces = Object.fromEntries(NAMESPACES.map((kind) => [kind, kernel.procfs.link(pid, `ns/${kind}`)])) as Standing['namespaces'];
  return { capEffective, seccomp, noNewPrivs, label: label(kernel, pid), namespaces, root: kernel.procfs.link(pid, 'root') };
}

/**
 * Why the cr service (whose standing is `own`) must not run a command for its caller, or
 * undefined when it may: the service runs commands only for a caller that could have run them
 * itself, with the same rights, and sees what the caller sees. So: root with at least the
 * service's capabilities, under no seccomp filter the service is not under, with the same
 * security label, in the service's namespaces and root directory.
 */
export function callerRefusal(uid: number, caller: Standing, own: Standing): string | undefined {
  if (uid !== 0) return `the caller runs as uid ${uid}, and the service as root`;
  if ((own.capEffective & ~caller.capEffective) !== 0n) return 'the caller lacks capabilities the service has';
  if (caller.seccomp !== own.seccomp || caller.noNewPrivs !== own.noNewPrivs) return 'the caller is under seccomp or no_new_privs restrictions the service is not';
  if (caller.label !== own.label) return 'the caller has another security label';
  const kind = NAMESPACES.find((k) => caller.namespaces[k] !== own.namespaces[k]);
  if (kind) return `the caller is in another ${kind} namespace`;
  if (caller.root !== own.root) return 'the caller has another root directory';
  return undefined;
}

/**
 * Puts the service in its caller's place for one command: the caller's stdin, stdout and stderr
 * as its own descriptors 0 to 2 (so that output, and the stdio a restored process inherits, are
 * the caller's), its working directory, umask, environment and cgroup (so that what a restore
 * creates is accounted where the caller is, as if the caller had run cr), and its terminal, if
 * stdout or stderr is one (terminalStreams). Returns what puts the service back. Throws, having
 * changed nothing, when one of these cannot be taken: a closed or non-blocking stdio descriptor
 * (the service writes with blocking writes), a cgroup it cannot join.
 */
export function enterCaller(kernel: Kernel, pid: number, env: Record<string, string>): () => void {
  const taken: number[] = [];
  const undo: (() => void)[] = [];
  const leave = () => {
    for (const step of undo.reverse()) step();
  };
  try {
    for (const fd of STDIO) {
      const copy = kernel.takeFd(pid, fd);
      taken.push(copy);
      if ((kernel.fdStatusFlags(copy) & constants.O_NONBLOCK) !== 0) throw new Error(`fd ${fd} of the caller is non-blocking`);
    }
    const cgroups = kernel.cgroups.membership(pid);
    const ownCgroups = kernel.cgroups.membership(process.pid);
    if (cgroups !== ownCgroups) {
      if (!kernel.cgroups.unifiedOnly()) throw new Error('the caller is in other cgroups than the service, and the service joins cgroups only where cgroup v2 runs alone');
      kernel.cgroups.move(process.pid, cgroups);
      undo.push(() => kernel.cgroups.move(process.pid, ownCgroups));
    }
    const ownCwd = process.cwd();
    process.chdir(`/proc/${pid}/cwd`);
    undo.push(() => process.chdir(ownCwd));
    const ownUmask = process.umask(kernel.procfs.status(pid).umask);
    undo.push(() => process.umask(ownUmask));
    const ownEnv = { ...process.env };
    replaceEnv(env);
    undo.push(() => replaceEnv(ownEnv));
    const devNull = openSync('/dev/null', 'r+');
    undo.push(() => {
      for (const fd of STDIO) kernel.replaceFd(devNull, fd);
      closeSync(devNull);
    });
    for (const fd of STDIO) kernel.replaceFd(taken[fd]!, fd);
    undo.push(...terminalStreams());
  } catch (err) {
    leave();
    throw err;
  } finally {
    for (const fd of taken) closeSync(fd);
  }
  return leave;
}

/**
 * process.stdout and process.stderr as cr has them when they are a terminal: node made the
 * service's for /dev/null, which have no colours, width or cursor (progress bars need them).
 * Returns what puts the service's back. Writes to a terminal stream are synchronous, as they are
 * to the service's own.
 */
function terminalStreams(): (() => void)[] {
  const undo: (() => void)[] = [];
  for (const [fd, name] of [
    [1, 'stdout'],
    [2, 'stderr'],
  ] as const) {
    if (!isatty(fd)) continue;
    const stream = new WriteStream(fd);
    const own = Object.getOwnPropertyDescriptor(process, name)!;
    Object.defineProperty(process, name, { configurable: true, enumerable: true, get: () => stream });
    undo.push(() => {
      Object.defineProperty(process, name, own);
      // Closes node's handle, not descriptor 1 or 2 (libuv never closes those).
      stream.destroy();
    });
  }
  return undo;
}

function replaceEnv(env: NodeJS.ProcessEnv): void {
  for (const name of Object.keys(process.env)) if (!(name in env)) delete process.env[name];
  Object.assign(process.env, env);
}

function label(kernel: Kernel, pid: number): string {
  try {
    return kernel.procfs.read(pid, 'attr/current').replace(/\0/g, '').trim();
  } catch {
    return '';
  }
}
