import { closeSync, constants, fchmodSync, fchownSync, fstatSync, readdirSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import { AT_FDCWD, type Libc } from './libc.js';

const { O_CREAT, O_DIRECTORY, O_EXCL, O_NOFOLLOW, O_NONBLOCK, O_RDONLY, O_WRONLY } = constants;

/**
 * An open directory and the *at calls relative to it. A name is looked up in this very
 * directory, whatever is renamed along its path meanwhile, and is never followed if it is a
 * symlink: what cr needs to read and write in a directory other users can write to.
 */
export class Directory {
  private constructor(
    private readonly libc: Libc,
    private readonly fd: number,
    /** The path it was opened by, for messages. */
    readonly path: string,
  ) {}

  /** Opens `path`, refusing a symlink as its last component (ELOOP) and anything not a directory (ENOTDIR). */
  static open(libc: Libc, path: string): Directory {
    return new Directory(libc, libc.openat(AT_FDCWD, path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW, 0, path), path);
  }

  stat(): Stats {
    return fstatSync(this.fd);
  }

  chmod(mode: number): void {
    fchmodSync(this.fd, mode);
  }

  chown(uid: number, gid: number): void {
    fchownSync(this.fd, uid, gid);
  }

  /** The directory `name` in this one, opened like `Directory.open`. */
  openDirectory(name: string): Directory {
    const path = this.pathOf(name);
    return new Directory(this.libc, this.libc.openat(this.fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW, 0, path), path);
  }

  makeDirectory(name: string, mode: number): void {
    this.libc.mkdirat(this.fd, name, mode, this.pathOf(name));
  }

  /** Opens the file `name` for reading; a symlink fails with ELOOP, and a FIFO does not block. */
  openForReading(name: string): number {
    return this.libc.openat(this.fd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK, 0, this.pathOf(name));
  }

  /** Creates the file `name`, which must not exist, not even as a symlink or a link (EEXIST). */
  createExclusive(name: string, mode: number): number {
    return this.libc.openat(this.fd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, mode, this.pathOf(name));
  }

  /** Renames `from` onto `to` within this directory; what was at `to` (a symlink too) is replaced, never followed. */
  rename(from: string, to: string): void {
    this.libc.renameat(this.fd, from, to, `${this.pathOf(from)} -> ${to}`);
  }

  /** Removes the entry `name` (a symlink itself, not what it points to). */
  remove(name: string): void {
    this.libc.unlinkat(this.fd, name, this.pathOf(name));
  }

  names(): string[] {
    return readdirSync(`/proc/self/fd/${this.fd}`);
  }

  close(): void {
    closeSync(this.fd);
  }

  pathOf(name: string): string {
    if (name.includes('/') || name === '.' || name === '..' || name === '') throw new Error(`internal error: "${name}" is not a name within ${this.path}`);
    return join(this.path, name);
  }
}
