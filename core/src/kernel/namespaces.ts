import { closeSync, fstatSync, openSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { procDir } from './proc-dir.js';
import { CrError, TargetError } from '../errors.js';
import { KernelError } from './kernel-error.js';
import {
  CLONE_NEWCGROUP,
  CLONE_NEWIPC,
  CLONE_NEWNET,
  CLONE_NEWNS,
  CLONE_NEWPID,
  CLONE_NEWUSER,
  CLONE_NEWUTS,
  Libc,
  MNT_DETACH,
} from './libc.js';

export type NamespaceKind = 'uts' | 'ipc' | 'mnt' | 'net' | 'pid' | 'user' | 'cgroup';

export const NAMESPACE_FLAGS: Record<NamespaceKind, number> = {
  uts: CLONE_NEWUTS,
  ipc: CLONE_NEWIPC,
  mnt: CLONE_NEWNS,
  net: CLONE_NEWNET,
  pid: CLONE_NEWPID,
  user: CLONE_NEWUSER,
  cgroup: CLONE_NEWCGROUP,
};

/**
 * An open nsfs file. Holding it keeps the namespace alive; its inode number is the namespace's
 * identity, the same number `readlink /proc/PID/ns/KIND` shows.
 */
export class NamespaceHandle {
  private open = true;
  constructor(
    readonly kind: NamespaceKind,
    readonly fd: number,
    readonly inode: number,
    readonly origin: string,
  ) {}

  close(): void {
    if (this.open) {
      this.open = false;
      closeSync(this.fd);
    }
  }
}

/**
 * Namespaces as cr uses them: open one of a process or from a path, create a new one, run code
 * inside one, pin one on a path so it outlives cr.
 *
 * Namespace membership is per thread. Every method here runs on the JS thread and enters a
 * namespace only for the duration of a *synchronous* callback, so that neither libuv's thread
 * pool nor another piece of async code can run inside a namespace by accident.
 */
export class Namespaces {
  constructor(private readonly libc: Libc) {}

  /** The namespace of kind `kind` that process `pid` is in. */
  ofProcess(pid: number, kind: NamespaceKind): NamespaceHandle {
    return this.openFile(`${procDir(pid)}/ns/${kind}`, kind, () => new TargetError(`no process with PID ${pid}: /proc/${pid} does not exist; check the PID with ps`));
  }

  /** A namespace from an nsfs path: /proc/PID/ns/KIND or a file it was bind-mounted on. */
  fromPath(path: string, kind: NamespaceKind): NamespaceHandle {
    return this.openFile(path, kind, () => new TargetError(`${path} does not exist: give /proc/PID/ns/${kind} or a file a namespace is pinned on`));
  }

  /** The namespace the calling thread is in now. */
  current(kind: NamespaceKind): NamespaceHandle {
    return this.openFile(`/proc/thread-self/ns/${kind}`, kind);
  }

  /** Whether `ns` is the namespace cr itself runs in (the host's, usually). */
  isOwn(ns: NamespaceHandle): boolean {
    const own = this.current(ns.kind);
    try {
      return own.inode === ns.inode;
    } finally {
      own.close();
    }
  }

  /** A new, empty namespace of `kind`; the calling thread stays where it was. */
  create(kind: NamespaceKind): NamespaceHandle {
    const home = this.current(kind);
    try {
      this.libc.unshare(NAMESPACE_FLAGS[kind]);
      try {
        return this.current(kind);
      } finally {
        this.returnTo(home);
      }
    } finally {
      home.close();
    }
  }

  /** Runs `fn` with the calling thread inside `ns`, and brings it back even if `fn` throws. */
  within<T>(ns: NamespaceHandle, fn: () => T): T {
    const home = this.current(ns.kind);
    try {
      this.libc.setns(ns.fd, NAMESPACE_FLAGS[ns.kind], ns.origin);
      try {
        const result = fn();
        if (result instanceof Promise) {
          throw new CrError('internal error: Namespaces.within() was given an async callback; namespace work must be synchronous');
        }
        return result;
      } finally {
        this.returnTo(home);
      }
    } finally {
      home.close();
    }
  }

  /** Keeps `ns` alive after cr exits by bind-mounting it on `path` (a new file), as `ip netns add` does. */
  pin(ns: NamespaceHandle, path: string): void {
    try {
      writeFileSync(path, '', { flag: 'wx', mode: 0o600 });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
        throw new TargetError(`cannot pin the ${ns.kind} namespace on ${path}: the file exists; unpin it (cr unpin) or choose another directory`);
      }
      throw err;
    }
    try {
      this.libc.bindMount(`/proc/self/fd/${ns.fd}`, path);
    } catch (err) {
      unlinkSync(path);
      throw err;
    }
  }

  /** Releases a namespace pinned on `path` and removes the file. */
  unpin(path: string): void {
    this.libc.umount2(path, MNT_DETACH);
    unlinkSync(path);
  }

  private returnTo(home: NamespaceHandle): void {
    try {
      this.libc.setns(home.fd, NAMESPACE_FLAGS[home.kind], home.origin);
    } catch (err) {
      // Carrying on in a foreign namespace would make every later step act on the wrong objects.
      process.stderr.write(`cr: fatal: cannot return to the original ${home.kind} namespace: ${(err as Error).message}\n`);
      process.exit(70);
    }
  }

  private openFile(path: string, kind: NamespaceKind, missing?: () => Error): NamespaceHandle {
    let fd: number;
    try {
      fd = openSync(path, 'r');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' && missing) throw missing();
      throw new KernelError('open', -((err as NodeJS.ErrnoException).errno ?? 0), path, (err as Error).message);
    }
    try {
      const type = this.libc.nsType(fd, path);
      if (type !== NAMESPACE_FLAGS[kind]) {
        throw new TargetError(`${path} is not a ${kind} namespace; give a /proc/PID/ns/${kind} file or a pinned ${kind} namespace`);
      }
      return new NamespaceHandle(kind, fd, Number(fstatSync(fd).ino), path);
    } catch (err) {
      closeSync(fd);
      if (err instanceof KernelError && (err.code === 'ENOTTY' || err.code === 'EINVAL')) {
        throw new TargetError(`${path} is not a namespace file; give a /proc/PID/ns/${kind} file or a pinned ${kind} namespace`);
      }
      throw err;
    }
  }
}

/** Unescapes a path field of /proc/self/mountinfo (spaces and the like are written as \\040). */
function unescapeMountPath(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(Number.parseInt(octal, 8)));
}

/** Paths directly inside `dir` on which a namespace (an nsfs file) is mounted. */
export function pinnedNamespacePaths(dir: string): string[] {
  const prefix = dir.endsWith('/') ? dir : `${dir}/`;
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [left, right = ''] = line.split(' - ');
      return { mountPoint: unescapeMountPath(left!.split(' ')[4] ?? ''), fsType: right.split(' ')[0] };
    })
    .filter((m) => m.fsType === 'nsfs' && m.mountPoint.startsWith(prefix) && !m.mountPoint.slice(prefix.length).includes('/'))
    .map((m) => m.mountPoint);
}
