import { O_NONBLOCK } from 'node:constants';
import { closeSync, fstatSync, openSync } from 'node:fs';
import { KernelError, O_CLOEXEC, TargetError, type RemoteTask, type RestoreContext } from '@cr/core';
import { openInherited } from '@cr/descriptor-base';
import { recreateDeleted } from './deleted-file.js';
import type { FilesRecord } from './record.js';

const O_ACCMODE = 3;
/** The open-file status flags fcntl(F_SETFL) can change: O_APPEND, O_ASYNC, O_DIRECT, O_NOATIME, O_NONBLOCK. */
const STATUS_FLAGS = 0o2000 | 0o20000 | 0o40000 | 0o1000000 | 0o4000;

/** Another restored process that holds the same open file, on descriptor `fd`. */
export interface RestoredHolder {
  task: RemoteTask;
  fd: number;
  closeOnExec: boolean;
}

/** Puts descriptor `record.fd` back into the task being restored, and the same open file into every other holder. */
export async function restoreFd(task: RemoteTask, record: FilesRecord, ctx: RestoreContext, holders: readonly RestoredHolder[]): Promise<void> {
  const who = `fd ${record.fd} of PID ${task.pid}`;
  if (record.kind === 'duplicate') {
    try {
      task.dup3(record.of, record.fd, record.closeOnExec ? O_CLOEXEC : 0);
    } catch (err) {
      // Asked only when dup3 failed: a round trip less for every duplicate that comes back.
      if (err instanceof KernelError && err.code === 'EBADF' && !task.hasFd(record.of)) {
        throw new TargetError(`cannot restore ${who}: it shares its open file with fd ${record.of}, which is not in the image; include files:fd=${record.of}`);
      }
      throw err;
    }
    return;
  }
  if (record.kind === 'inherited') return restoreInherited(task, record, ctx, who, holders);
  const local = await openLocally(record, ctx, who);
  try {
    task.installFd(local, record.fd, record.closeOnExec);
    for (const h of holders) h.task.installFd(local, h.fd, h.closeOnExec);
  } finally {
    closeSync(local);
  }
  if (record.offset !== '0') task.lseek(record.fd, BigInt(record.offset));
}

async function openLocally(record: Exclude<FilesRecord, { kind: 'duplicate' | 'inherited' }>, ctx: RestoreContext, who: string): Promise<number> {
  switch (record.kind) {
    case 'file':
    case 'directory':
      return openExisting(record.path, record.flags, who);
    case 'device': {
      const fd = openExisting(record.path, record.flags, who);
      if (Number(fstatSync(fd).rdev) !== record.rdev) {
        closeSync(fd);
        throw new TargetError(`cannot restore ${who}: ${record.path} is another device now than at the checkpoint`);
      }
      return fd;
    }
    case 'deleted':
      return recreateDeleted(record, ctx, who);
  }
}

function openExisting(path: string, flags: number, who: string): number {
  try {
    return openSync(path, flags);
  } catch (err) {
    throw new TargetError(`cannot restore ${who}: ${path} cannot be opened again (${(err as NodeJS.ErrnoException).code}); it must exist as it did at the checkpoint`);
  }
}

/**
 * Stdio that pointed outside the checkpoint: what --inherit-fd names for it, or else cr's own
 * descriptor (a terminal) shared with the task, as after fork(); either way with the program's
 * status flags again (Node may have made cr's stdio non-blocking). A pipe of cr's is opened anew
 * instead, when it can be, for Node puts back the flags of its stdio as cr exits.
 */
function restoreInherited(task: RemoteTask, record: Extract<FilesRecord, { kind: 'inherited' }>, ctx: RestoreContext, who: string, holders: readonly RestoredHolder[]): void {
  const given = ctx.options.inheritFds?.[record.fd];
  let local = record.fd;
  let statusFlags = record.flags;
  if (given !== undefined) ({ local, statusFlags } = openInherited(record.fd, given, record.flags));
  else {
    assertOwnFdOpen(record, who);
    local = reopenedPipe(record) ?? record.fd;
  }
  try {
    task.installFd(local, record.fd, record.closeOnExec);
    for (const h of holders) h.task.installFd(local, h.fd, h.closeOnExec);
  } finally {
    if (local !== record.fd) closeSync(local);
  }
  task.setStatusFlags(record.fd, statusFlags & STATUS_FLAGS);
}

/** cr's own fd `record.fd` opened again when it is a pipe or named pipe with someone at the other end, with the program's access mode. */
function reopenedPipe(record: Extract<FilesRecord, { kind: 'inherited' }>): number | undefined {
  if (!fstatSync(record.fd).isFIFO()) return undefined;
  try {
    return openSync(`/proc/self/fd/${record.fd}`, (record.flags & O_ACCMODE) | O_NONBLOCK);
  } catch {
    // Nobody reads from it (ENXIO): the program finds it as cr had it.
    return undefined;
  }
}

function assertOwnFdOpen(record: Extract<FilesRecord, { kind: 'inherited' }>, who: string): void {
  try {
    fstatSync(record.fd);
  } catch {
    throw new TargetError(
      `cannot restore ${who}: it was ${record.description} at the checkpoint and cr restore's own fd ${record.fd} is closed; ` +
        `run cr restore with fd ${record.fd} open, or name a file with --inherit-fd ${record.fd}=PATH`,
    );
  }
}
