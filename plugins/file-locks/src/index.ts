import {
  Kernel,
  PLUGIN_API_VERSION,
  TargetError,
  UnsupportedError,
  KernelError,
  blobProblems,
  inject,
  injectable,
  type CollectedObject,
  type LockRequest,
  type RecordCheckContext,
  type ResourceNode,
  type ResourcePlugin,
  type RestoreContext,
} from '@cr/core';
import { TASKS, restoredTaskOf } from '@cr/plugin-tasks';
import { heldLocks, type HeldLock } from './held-locks.js';
import { fileLocksRecordSchema, type FileLockRecord, type FileLocksRecord } from './record.js';

export { fileLocksRecordSchema, type FileLocksRecord } from './record.js';

/** A process's locks being checkpointed, each on the lowest descriptor that holds it. */
export interface FileLocksHandle {
  pid: number;
  locks: HeldLock[];
}

/**
 * The file locks a process holds (one object per process that holds any): flock(2) locks, fcntl
 * record locks, open file description (OFD) locks and leases, as /proc/PID/fdinfo lists them.
 * They are taken again, without waiting, once every descriptor of the restored process exists,
 * just before it runs: a conflicting lock someone else took meanwhile fails the restore by name.
 */
@injectable()
export class FileLocksPlugin implements ResourcePlugin<FileLocksRecord, FileLocksHandle> {
  readonly apiVersion = PLUGIN_API_VERSION;
  readonly type = 'file-locks';
  readonly version = 1;
  readonly description = 'File locks: flock, fcntl record locks, OFD locks and leases, taken again at restore';
  readonly collectsFrom = [TASKS.type];
  readonly recordSchema = fileLocksRecordSchema;
  readonly selectableBy = { pid: 'uint' } as const;

  constructor(@inject(Kernel) private readonly kernel: Kernel) {}

  collect(parent: ResourceNode): CollectedObject<FileLocksHandle>[] {
    const task = TASKS.handleOf(parent);
    const { pid } = task;
    const locks = heldLocks(task.fds(), (a, b) => this.kernel.sameOpenFile(pid, a, pid, b));
    if (locks.length === 0) return [];
    return [{ id: String(pid), handle: { pid, locks }, attributes: { pid } }];
  }

  save(node: ResourceNode<FileLocksHandle>): FileLocksRecord {
    const { pid, locks } = node.handle;
    const breaking = locks.find(({ lock }) => lock.transient);
    if (breaking) {
      throw new UnsupportedError(`PID ${pid} holds a lease on fd ${breaking.fd} that the kernel is breaking (another open of the file waits for it); checkpoint again once it is released`);
    }
    return {
      locks: locks.map(({ fd, lock }) => ({ fd, kind: lock.kind, type: lock.type, start: String(lock.start), ...(lock.end === undefined ? {} : { end: String(lock.end) }) })),
    };
  }

  /** The object is PID's, below tasks:PID; a lock is listed once. */
  checkRecord(record: FileLocksRecord, ctx: RecordCheckContext): string[] {
    const problems = TASKS.isAmong(ctx.parents, ctx.id) ? [] : [`it holds the locks of PID ${ctx.id} but does not hang below ${TASKS.key(ctx.id)}`];
    const seen = new Set<string>();
    for (const lock of record.locks) {
      const key = JSON.stringify(lock);
      if (seen.has(key)) problems.push(`it lists the ${describeLock(lock)} twice`);
      seen.add(key);
    }
    return [...problems, ...blobProblems(ctx, {})];
  }

  /** Nothing to make yet: the descriptors the locks are on may belong to plugins restored after this one. */
  restore(): void {}

  /** Every descriptor of the process exists now: the locks are taken again before it runs. */
  resume(record: FileLocksRecord, _restored: void, ctx: RestoreContext): void {
    const task = restoredTaskOf(ctx);
    for (const lock of record.locks) {
      try {
        this.kernel.fileLocks.take(task, lock.fd, toFileLock(lock));
      } catch (err) {
        if (err instanceof KernelError && (err.code === 'EAGAIN' || err.code === 'EACCES')) {
          throw new TargetError(
            `cannot take back the ${describeLock(lock)} of PID ${task.pid}: another process holds a conflicting lock on that file ` +
              '(is the checkpointed process still running?); stop it, or restore where the file is not locked',
            { cause: err },
          );
        }
        throw err;
      }
    }
  }
}

function toFileLock(lock: FileLockRecord): LockRequest {
  return { kind: lock.kind, type: lock.type, start: BigInt(lock.start), end: lock.end === undefined ? undefined : BigInt(lock.end) };
}

function describeLock(lock: FileLockRecord): string {
  const range = lock.kind === 'posix' || lock.kind === 'ofd' ? ` on bytes ${lock.start}–${lock.end ?? 'EOF'}` : '';
  return `${lock.type} ${lock.kind} lock on fd ${lock.fd}${range}`;
}

export default FileLocksPlugin;
