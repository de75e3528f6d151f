import { O_CREAT, O_EXCL, O_RDWR } from 'node:constants';
import { closeSync, existsSync, fchmodSync, fchownSync, mkdirSync, openSync, rmdirSync, unlinkSync } from 'node:fs';
import { dirname } from 'node:path';
import { KernelError } from '../kernel/kernel-error.js';
import { writeRegions } from './file-regions.js';

/** open(2)'s O_TMPFILE: an unnamed file in a directory, as a deleted file is. */
const O_TMPFILE = 0o20200000;

/** A file that was deleted while a program held it open or mapped: what it is made again from, beside its bytes. */
export interface DeletedFile {
  /** Where it was, as the kernel still names it (without " (deleted)"). */
  path: string;
  mode: number;
  uid?: number;
  gid?: number;
  size: number;
}

/**
 * Makes a deleted file again, with its `contents` (its bytes from the start, `size` of them),
 * owner and mode, and returns cr's descriptor of it, read-write: open it with the flags the
 * program had through /proc/self/fd/N. Where its name is free it is made at that name (and the
 * directories that were deleted with it, for a moment) and unlinked again, so that the program
 * sees the same "PATH (deleted)" as before; where another file took the name, it is made unnamed
 * (O_TMPFILE) in that directory.
 */
export async function makeDeletedFile(file: DeletedFile, contents: AsyncIterable<Uint8Array>, who: string): Promise<number> {
  const named = !existsSync(file.path);
  const made = named ? makeDirectories(dirname(file.path), who) : [];
  try {
    const fd = named ? createAt(file.path, who) : createUnnamed(dirname(file.path), who);
    try {
      if (named) unlinkSync(file.path);
      if (file.uid !== undefined && file.gid !== undefined) fchownSync(fd, file.uid, file.gid);
      // After the chown, which clears set-id bits, and never through cr's umask.
      fchmodSync(fd, file.mode);
      await writeRegions(fd, [{ position: 0, length: file.size }], contents, `the contents of ${file.path} (${who})`);
      return fd;
    } catch (err) {
      closeSync(fd);
      throw err;
    }
  } finally {
    removeDirectories(made);
  }
}

/** Removes the directories made for the moment, innermost first; one that something else filled meanwhile stays. */
function removeDirectories(made: readonly string[]): void {
  for (const dir of [...made].reverse()) {
    try {
      rmdirSync(dir);
    } catch {
      return;
    }
  }
}

function createAt(path: string, who: string): number {
  try {
    return openSync(path, O_CREAT | O_EXCL | O_RDWR, 0o600);
  } catch (err) {
    throw new KernelError('open(O_CREAT|O_EXCL)', -((err as NodeJS.ErrnoException).errno ?? 0), `${path}, for ${who}`);
  }
}

function createUnnamed(dir: string, who: string): number {
  try {
    return openSync(dir, O_TMPFILE | O_RDWR, 0o600);
  } catch (err) {
    throw new KernelError('open(O_TMPFILE)', -((err as NodeJS.ErrnoException).errno ?? 0), `${dir}, for ${who}`);
  }
}

/** Makes the missing directories down to `dir`, outermost first, and returns them. */
function makeDirectories(dir: string, who: string): string[] {
  const missing: string[] = [];
  for (let d = dir; !existsSync(d); d = dirname(d)) missing.unshift(d);
  for (const d of missing) {
    try {
      mkdirSync(d, { mode: 0o700 });
    } catch (err) {
      throw new KernelError('mkdir', -((err as NodeJS.ErrnoException).errno ?? 0), `${d}, for ${who}`);
    }
  }
  return missing;
}
