import { O_APPEND, O_CREAT, O_NONBLOCK, O_RDONLY } from 'node:constants';
import { closeSync, fstatSync, openSync } from 'node:fs';
import { TargetError, type RestoreContext } from '@cr/core';

const O_ACCMODE = 3;

/** The path `--inherit-fd N=PATH` gives for the first of `fds` it names, with that N. */
export function inheritedPath(fds: readonly { fd: number }[], ctx: Pick<RestoreContext, 'options'>): { fd: number; path: string } | undefined {
  for (const { fd } of fds) {
    const path = ctx.options.inheritFds?.[fd];
    if (path !== undefined) return { fd, path };
  }
  return undefined;
}

/**
 * Opens what `--inherit-fd FD=PATH` names for a descriptor that pointed outside the checkpoint,
 * with its access mode `flags & O_ACCMODE`: read-only as it is; writable for appending, created
 * (0644) if missing (a log file). A pipe or named pipe is opened without waiting for its other
 * side, and refused when nobody reads from it. Returns cr's descriptor and the status flags the
 * program's must be given (`flags` without the access mode, and O_APPEND on a regular file, so
 * that it does not write over what is there).
 */
export function openInherited(fd: number, path: string, flags: number): { local: number; statusFlags: number } {
  const access = flags & O_ACCMODE;
  let local: number;
  try {
    local = openSync(path, (access === O_RDONLY ? O_RDONLY : access | O_CREAT | O_APPEND) | O_NONBLOCK, 0o644);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new TargetError(`--inherit-fd ${fd}=${path}: cannot open it (${code}${code === 'ENXIO' ? ': a pipe nobody reads from' : ''})`);
  }
  try {
    const statusFlags = flags & ~O_ACCMODE;
    return { local, statusFlags: fstatSync(local).isFile() ? statusFlags | O_APPEND : statusFlags };
  } catch (err) {
    closeSync(local);
    throw err;
  }
}
