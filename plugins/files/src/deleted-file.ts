import { O_CREAT, O_EXCL, O_RDWR } from 'node:constants';
import { closeSync, existsSync, fchmodSync, fchownSync, mkdirSync, openSync, rmdirSync, unlinkSync } from 'node:fs';
import { dirname } from 'node:path';
import { KernelError, writeRegions, type RestoreContext } from '@cr/core';
import type { FilesRecord } from './record.js';

/** open(2)'s O_TMPFILE: an unnamed file in a directory, as a deleted file is. */
const O_TMPFILE = 0o20200000;

type DeletedRecord = Extract<FilesRecord, { kind: 'deleted' }>;

/**
 * A file that was deleted while open comes back deleted, with its saved contents, owner and mode,
 * opened with the saved flags. Where its name is free it is made at that name (and the
 * directories that were deleted with it, for a moment) and unlinked again, so that the program
 * sees the same "PATH (deleted)" as before; where another file took the name, it is made unnamed
 * (O_TMPFILE) in that directory.
 */
export async function recreateDeleted(record: DeletedRecord, ctx: RestoreContext, who: string): Promise<number> {
  const named = !existsSync(record.path);
  const made = named ? makeDirectories(dirname(record.path), who) : [];
  try {
    const tmp = named ? createAt(record.path, who) : createUnnamed(dirname(record.path), who);
    try {
      if (named) unlinkSync(record.path);
      if (record.uid !== undefined && record.gid !== undefined) fchownSync(tmp, record.uid, record.gid);
      // After the chown, which clears set-id bits, and never through cr's umask.
      fchmodSync(tmp, record.mode);
      await writeRegions(tmp, [{ position: 0, length: record.size }], ctx.readBlob('contents'), `the contents of ${record.path} (${who})`);
      return openSync(`/proc/self/fd/${tmp}`, record.flags);
    } finally {
      closeSync(tmp);
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
