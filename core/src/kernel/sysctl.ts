import { readFileSync, writeFileSync } from 'node:fs';
import { KernelError } from './kernel-error.js';

/**
 * /proc/sys access. Reads and writes are synchronous on purpose: per-namespace sysctls (the IPC
 * limits, the hostname) resolve against the namespace of the *calling thread*, so they must run
 * on the thread that Namespaces.within() moved, never on libuv's pool.
 */
export class Sysctl {
  private path(name: string): string {
    return `/proc/sys/${name.replaceAll('.', '/')}`;
  }

  exists(name: string): boolean {
    try {
      readFileSync(this.path(name));
      return true;
    } catch {
      return false;
    }
  }

  read(name: string): string {
    try {
      return readFileSync(this.path(name), 'utf8').trim();
    } catch (err) {
      throw nodeFsError('read', this.path(name), err);
    }
  }

  write(name: string, value: string): void {
    try {
      writeFileSync(this.path(name), value);
    } catch (err) {
      throw nodeFsError('write', this.path(name), err);
    }
  }
}

export function nodeFsError(syscall: string, path: string, err: unknown): Error {
  const e = err as NodeJS.ErrnoException;
  if (typeof e?.errno === 'number') return new KernelError(syscall, -e.errno, path, e.message.replace(/^[A-Z]+: /, '').replace(/, \w+ '.*'$/, ''));
  return err as Error;
}
