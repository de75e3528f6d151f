import { O_APPEND, O_CREAT, O_RDONLY } from 'node:constants';

const O_ACCMODE = 3;
/** The open-file status flags fcntl(F_SETFL) can change: O_APPEND, O_ASYNC, O_DIRECT, O_NOATIME, O_NONBLOCK. */
const STATUS_FLAGS = 0o2000 | 0o20000 | 0o40000 | 0o1000000 | 0o4000;
import { closeSync, fstatSync, openSync } from 'node:fs';
import { F_SETFL, O_CLOEXEC, TargetError, type RemoteTask, type RestoreContext } from '@cr/core';
import { recreateDeleted } from './deleted-file.js';
import type { FilesRecord } from './record.js';


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
    if (!task.hasFd(record.of)) {
      throw new TargetError(`cannot restore ${who}: it shares its open file with fd ${record.of}, which is not in the image; include files:fd=${record.of}`);
    }
    task.dup3(record.of, record.fd, record.closeOnExec ? O_CLOEXEC : 0);
    return;
  }
  if (record.kind === 'inherited' && ctx.options.inheritFds?.[record.fd] === undefined) {
    assertOwnFdOpen(record, who);
    // cr's own descriptor (a terminal, a pipe) is shared with the task, as after fork(); its
    // status flags are the program's again (Node may have made cr's stdio non-blocking).
    task.installFd(record.fd, record.fd, record.closeOnExec);
    for (const h of holders) h.task.installFd(record.fd, h.fd, h.closeOnExec);
    task.fcntl(record.fd, F_SETFL, record.flags & STATUS_FLAGS);
    return;
  }
  const local = await openLocally(record, ctx, who);
  try {
    task.installFd(local, record.fd, record.closeOnExec);
    for (const h of holders) h.task.installFd(local, h.fd, h.closeOnExec);
  } finally {
    closeSync(local);
  }
  if (record.kind !== 'inherited' && record.offset !== '0') task.lseek(record.fd, BigInt(record.offset));
}

async function openLocally(record: Exclude<FilesRecord, { kind: 'duplicate' }>, ctx: RestoreContext, who: string): Promise<number> {
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
    case 'inherited':
      return inherited(record, ctx);
  }
}

function openExisting(path: string, flags: number, who: string): number {
  try {
    return openSync(path, flags);
  } catch (err) {
    throw new TargetError(`cannot restore ${who}: ${path} cannot be opened again (${(err as NodeJS.ErrnoException).code}); it must exist as it did at the checkpoint`);
  }
}

/** Stdio that pointed outside the checkpoint, given with --inherit-fd N=PATH. */
function inherited(record: Extract<FilesRecord, { kind: 'inherited' }>, ctx: RestoreContext): number {
  const path = ctx.options.inheritFds![record.fd]!;
  const access = record.flags & O_ACCMODE;
  const flags = access === O_RDONLY ? O_RDONLY : access | O_CREAT | O_APPEND;
  try {
    return openSync(path, flags, 0o644);
  } catch (err) {
    throw new TargetError(`--inherit-fd ${record.fd}=${path}: cannot open it (${(err as NodeJS.ErrnoException).code})`);
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
