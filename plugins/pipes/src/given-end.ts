import { O_APPEND, O_CREAT, O_NONBLOCK, O_RDONLY, O_WRONLY } from 'node:constants';
import { fstatSync, openSync } from 'node:fs';
import { TargetError, type RestoreContext } from '@cr/core';
import type { PipeEnd } from './record.js';

/** Where the user gave an end of a pipe that leads outside the checkpoint: `--inherit-fd N=PATH` for one of its fds. */
export function givenPath(ends: readonly PipeEnd[], ctx: Pick<RestoreContext, 'options'>): { fd: number; path: string } | undefined {
  for (const { fd } of ends) {
    const path = ctx.options.inheritFds?.[fd];
    if (path !== undefined) return { fd, path };
  }
  return undefined;
}

/**
 * Opens what `--inherit-fd FD=PATH` names for a pipe end: the pipe or named pipe there (a
 * /proc/PID/fd/N of the process holding the other end), without waiting for the other side, or a
 * file, read-only for a read end and appended to (created 0644 if missing) for a write end.
 * Returns cr's descriptor and the status flags the program's own must be given there: its own,
 * and O_APPEND on a file, so that it does not write over what is there.
 */
export function openGivenEnd(end: PipeEnd['end'], fd: number, path: string, flags: number): { local: number; statusFlags: number } {
  const access = end === 'read' ? O_RDONLY : O_WRONLY | O_CREAT | O_APPEND;
  let local: number;
  try {
    local = openSync(path, access | O_NONBLOCK, 0o644);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENXIO' ? ': it is a pipe nobody reads from' : '';
    throw new TargetError(`--inherit-fd ${fd}=${path}: cannot open it for the ${end} end of a pipe (${code}${why})`);
  }
  const file = fstatSync(local).isFile();
  return { local, statusFlags: file ? flags | O_APPEND : flags };
}
