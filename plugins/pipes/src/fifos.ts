import { O_NOFOLLOW, O_NONBLOCK, O_RDONLY, O_RDWR, O_WRONLY } from 'node:constants';
import { closeSync, fchmodSync, fchownSync, fstatSync, lstatSync, openSync, rmSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import {
  Kernel,
  PLUGIN_API_VERSION,
  TargetError,
  blobProblems,
  descriptionsOf,
  inject,
  injectable,
  installDescription,
  type CollectedObject,
  type OpenDescription,
  type RecordCheckContext,
  type ResourceNode,
  type ResourcePlugin,
  type RestoreContext,
  type SaveContext,
  procDir,
} from '@cr/core';
import { TASKS, restoredTaskOf } from '@cr/plugin-tasks';
import { fifoRecordSchema, type FifoDescription, type FifoRecord } from './record.js';
import { readAll } from './read-all.js';

const O_ACCMODE = 3;
const ACCESS: Record<number, FifoDescription['access']> = { [O_RDONLY]: 'read', [O_WRONLY]: 'write', [O_RDWR]: 'read-write' };
const OPEN_FLAGS: Record<FifoDescription['access'], number> = { read: O_RDONLY, write: O_WRONLY, 'read-write': O_RDWR };

/** What restoring a named pipe did: whether cr made it (and removes it if the restore fails). */
export interface RestoredFifo {
  made: boolean;
}

/** A named pipe being checkpointed: the process, its path, and its descriptions of it. */
export interface FifoHandle {
  pid: number;
  path: string;
  descriptions: OpenDescription[];
}

/**
 * Named pipes a process opened by path (above stdio: a named pipe at fd 0-2 is the shell's, and
 * inherited by the files plugin), one object per named pipe: its path, mode and owner, capacity,
 * the bytes queued in it (read without taking them out), and each open file description on it
 * (read end, write end or both) with its flags. Restored by path, made again (mkfifo) if it is
 * gone; the bytes are written back when nobody else has it open, for otherwise they are still in it.
 */
@injectable()
export class FifosPlugin implements ResourcePlugin<FifoRecord, FifoHandle, RestoredFifo> {
  readonly apiVersion = PLUGIN_API_VERSION;
  readonly type = 'fifos';
  readonly version = 1;
  readonly description = 'Named pipes opened by path, with the bytes queued in them; made again if gone';
  readonly collectsFrom = [TASKS.type];
  readonly recordSchema = fifoRecordSchema;
  readonly selectableBy = { pid: 'uint', path: 'string' } as const;

  constructor(@inject(Kernel) private readonly kernel: Kernel) {}

  collect(parent: ResourceNode): CollectedObject<FifoHandle>[] {
    const task = TASKS.handleOf(parent);
    const { pid } = task;
    const descriptions = descriptionsOf(this.kernel, pid, task.fds(), (info) => info.fd > 2 && 'what' in info.kind && info.kind.kind === 'fifo');
    const byInode = new Map<string, FifoHandle>();
    for (const description of descriptions) {
      const st = statSync(`${procDir(pid)}/fd/${description.info.fd}`, { bigint: true });
      const inode = `${st.dev}:${st.ino}`;
      const held = byInode.get(inode) ?? { pid, path: description.info.link, descriptions: [] };
      held.descriptions.push(description);
      byInode.set(inode, held);
    }
    return [...byInode.values()].map((handle) => ({
      id: `${pid}:${handle.descriptions[0]!.info.fd}`,
      handle,
      attributes: { pid, path: handle.path },
      claims: handle.descriptions.flatMap((d) => d.fds.map((n) => `fd:${pid}:${n.fd}`)),
    }));
  }

  async save(node: ResourceNode<FifoHandle>, ctx: SaveContext): Promise<FifoRecord> {
    const { pid, path, descriptions } = node.handle;
    const first = descriptions[0]!.info.fd;
    const st = statSync(`${procDir(pid)}/fd/${first}`);
    const { data, capacity } = this.kernel.pipes.peek(pid, first);
    if (data.length > 0) await ctx.writeBlob('data', data);
    return {
      path,
      mode: st.mode & 0o7777,
      uid: st.uid,
      gid: st.gid,
      capacity,
      queued: data.length,
      descriptions: descriptions.map((d) => ({ access: ACCESS[d.info.flags & O_ACCMODE] ?? 'read', statusFlags: d.statusFlags, fds: d.fds })),
    };
  }

  /** Below `tasks:PID`, each fd once, the first being the object's, the blob what was queued. */
  checkRecord(record: FifoRecord, ctx: RecordCheckContext): string[] {
    const problems: string[] = [];
    const [pid, fd] = ctx.id.split(':');
    const fds = record.descriptions.flatMap((d) => d.fds.map((n) => n.fd));
    if (!ctx.parents.includes(`tasks:${pid}`)) problems.push(`it is a named pipe of PID ${pid} but does not hang below tasks:${pid}`);
    if (String(fds[0]) !== fd) problems.push(`its first descriptor is ${fds[0]}, not ${fd}`);
    if (new Set(fds).size !== fds.length) problems.push('it names one fd twice');
    if (record.queued > record.capacity) problems.push(`${record.queued} bytes are queued in a pipe of ${record.capacity}`);
    return [...problems, ...blobProblems(ctx, record.queued > 0 ? { data: record.queued } : {})];
  }

  /** Something other than a named pipe at the path, or no directory to make it in, is refused before anything is changed. */
  preflight(record: FifoRecord, ctx: RestoreContext): void {
    const st = lstatOrUndefined(record.path);
    if (st && !st.isFIFO()) {
      throw new TargetError(`cannot restore ${ctx.key}: ${record.path} was a named pipe at the checkpoint, and is another kind of file now; remove it, or move it away`);
    }
    if (!st && !lstatOrUndefined(dirname(record.path))?.isDirectory()) {
      throw new TargetError(`cannot restore ${ctx.key}: the named pipe ${record.path} is gone, and so is its directory; make the directory again`);
    }
  }

  async restore(record: FifoRecord, ctx: RestoreContext): Promise<RestoredFifo> {
    const task = restoredTaskOf(ctx);
    const who = `the named pipe ${record.path} of PID ${task.pid}`;
    const made = !lstatOrUndefined(record.path);
    try {
      // The saved bytes go back when nobody else holds the named pipe: it has no reader, and
      // nothing in it (a writer that kept it open would have kept the bytes in it too).
      const unused = made || !hasReader(record.path);
      // Holding both sides, so that opening either end does not wait for the other.
      const anchor = made ? this.makeFifo(record, who) : openOrThrow(record.path, O_RDWR | O_NONBLOCK, who);
      try {
        if (unused && this.kernel.pipes.peek(process.pid, anchor).data.length === 0) {
          const data = record.queued > 0 ? await readAll(ctx.readBlob('data')) : Buffer.alloc(0);
          this.kernel.pipes.fill(anchor, { data, capacity: record.capacity }, who);
        }
        for (const description of record.descriptions) {
          const local = openOrThrow(record.path, OPEN_FLAGS[description.access] | O_NONBLOCK, who);
          try {
            installDescription(task, local, description.fds, description.statusFlags);
          } finally {
            closeSync(local);
          }
        }
      } finally {
        closeSync(anchor);
      }
    } catch (err) {
      if (made) rmSync(record.path, { force: true });
      throw err;
    }
    return { made };
  }

  /** A named pipe cr made is removed again. */
  rollback(record: FifoRecord, restored: RestoredFifo): void {
    if (restored.made) rmSync(record.path, { force: true });
  }

  /**
   * Makes the named pipe again, with its owner and mode, and returns a descriptor holding both of
   * its sides (O_RDWR does not wait for a peer). Owner and mode go through that descriptor
   * (O_NOFOLLOW), so that a symbolic link put at the path meanwhile is not followed.
   */
  private makeFifo(record: FifoRecord, who: string): number {
    try {
      this.kernel.pipes.makeFifo(record.path, 0o600);
      const fd = openSync(record.path, O_RDWR | O_NONBLOCK | O_NOFOLLOW);
      try {
        if (!fstatSync(fd).isFIFO()) throw new TargetError(`cannot restore ${who}: something else took its path while cr made it`);
        fchownSync(fd, record.uid, record.gid);
        // After the chown, which clears set-id bits, and never through cr's umask.
        fchmodSync(fd, record.mode);
        return fd;
      } catch (err) {
        closeSync(fd);
        throw err;
      }
    } catch (err) {
      if (err instanceof TargetError) throw err;
      throw new TargetError(`cannot restore ${who}: it is gone and cannot be made again (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
  }
}

function lstatOrUndefined(path: string) {
  try {
    return lstatSync(path);
  } catch {
    return undefined;
  }
}

/** Whether some process has the named pipe open for reading: opening it write-only without waiting then succeeds. */
function hasReader(path: string): boolean {
  try {
    closeSync(openSync(path, O_WRONLY | O_NONBLOCK));
    return true;
  } catch {
    return false;
  }
}

function openOrThrow(path: string, flags: number, who: string): number {
  try {
    return openSync(path, flags);
  } catch (err) {
    throw new TargetError(`cannot restore ${who}: it cannot be opened (${(err as NodeJS.ErrnoException).code})`);
  }
}
