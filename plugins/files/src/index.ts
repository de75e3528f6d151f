import {
  Kernel,
  PLUGIN_API_VERSION,
  O_CLOEXEC,
  blobProblems,
  holderProblems,
  inject,
  injectable,
  type CollectedObject,
  type DescriptionHolder,
  type FdInfo,
  type RecordCheckContext,
  type ResourceNode,
  type ResourcePlugin,
  type RestoreContext,
  type SaveContext,
} from '@cr/core';
import { TASKS, restoredTaskOf } from '@cr/plugin-tasks';
import { filesRecordSchema, type FilesRecord } from './record.js';
import { ownership } from './ownership.js';
import { restoreFd } from './restore.js';
import { saveFd } from './save.js';

/**
 * Open flags the kernel acts on at open and then drops from the open file (do_dentry_open), so
 * no saved fd has them: restoring one that had would create or truncate its file.
 */
const OPEN_TIME_FLAGS = [
  ['O_CREAT', 0o100],
  ['O_EXCL', 0o200],
  ['O_NOCTTY', 0o400],
  ['O_TRUNC', 0o1000],
] as const;

/**
 * A descriptor being checkpointed, and the lower descriptor it shares its open file with (dup), if
 * any; or the other processes that hold its open file too (after fork).
 */
export interface FdHandle {
  pid: number;
  info: FdInfo;
  twin?: FdInfo;
  holders: readonly DescriptionHolder[];
}

/**
 * A process's file descriptor table, one object per descriptor (select them by `fd` or `path`):
 * regular files with their flags and offset, files deleted while open (contents saved),
 * directories, devices such as /dev/null, descriptors sharing one open file (dup), and stdio that
 * points outside the checkpoint, given again at restore (cr's own, or --inherit-fd). Every other
 * descriptor (a message queue, an eventfd, a socket above stdio …) is left to a plugin that claims
 * `fd:PID:N`, and refused by name when none does.
 */
@injectable()
export class FilesPlugin implements ResourcePlugin<FilesRecord, FdHandle> {
  readonly apiVersion = PLUGIN_API_VERSION;
  readonly type = 'files';
  readonly version = 1;
  readonly description = 'Open file descriptors: files and offsets, deleted files, directories, devices, dups, inherited stdio';
  readonly collectsFrom = [TASKS.type];
  readonly recordSchema = filesRecordSchema;
  /** `path` is what /proc/PID/fd/N points to. */
  readonly selectableBy = { pid: 'uint', fd: 'uint', path: 'string' } as const;

  constructor(@inject(Kernel) private readonly kernel: Kernel) {}

  collect(parent: ResourceNode): CollectedObject<FdHandle>[] {
    const task = TASKS.handleOf(parent);
    const { pid } = task;
    const fds = task.fds();
    return fds.map((info, i) => {
      const twin = fds.slice(0, i).find((l) => l.link === info.link && this.kernel.sameOpenFile(pid, l.fd, pid, info.fd));
      // An open file another process of the tree holds too is one object, saved with the first.
      const shared = twin ? undefined : task.tree.descriptions.holderOf(this.type, pid, info, [{ fd: info.fd, closeOnExec: (info.flags & O_CLOEXEC) !== 0 }], `${pid}:${info.fd}`);
      return {
        id: shared?.id ?? `${pid}:${info.fd}`,
        handle: { pid, info, ...(twin ? { twin } : {}), holders: shared?.holders ?? [] },
        attributes: { pid, fd: info.fd, path: info.link },
        ...ownership(pid, info, twin),
      };
    });
  }

  save(node: ResourceNode<FdHandle>, ctx: SaveContext): Promise<FilesRecord> {
    const { pid, info, twin, holders } = node.handle;
    return saveFd(pid, info, twin, holders, ctx);
  }

  inheritableFds(record: FilesRecord): number[] {
    return record.kind === 'inherited' ? [record.fd] : [];
  }

  /**
   * The record is fd N of the process its object (`PID:N`) and parent (`tasks:PID`) name; a dup
   * refers to a lower fd, restored before it; a deleted file's contents blob has its size.
   */
  checkRecord(record: FilesRecord, ctx: RecordCheckContext): string[] {
    const problems: string[] = [];
    const [pid, fd] = ctx.id.split(':');
    if (String(record.fd) !== fd) problems.push(`it holds fd ${record.fd}, not ${fd}`);
    if (!TASKS.isAmong(ctx.parents, pid!)) problems.push(`it is an fd of PID ${pid} but does not hang below ${TASKS.key(pid!)}`);
    if (record.kind === 'duplicate' && record.of >= record.fd) problems.push(`it duplicates fd ${record.of}, which is not a lower fd`);
    if (record.kind !== 'duplicate') problems.push(...holderProblems(record.holders ?? [], pid!, ctx.parents));
    if (record.kind !== 'duplicate') {
      const held = OPEN_TIME_FLAGS.filter(([, bit]) => (record.flags & bit) !== 0).map(([name]) => name);
      if (held.length > 0) problems.push(`its flags hold ${held.join(', ')}, which an open file never keeps`);
    }
    return [...problems, ...blobProblems(ctx, record.kind === 'deleted' ? { contents: record.size } : {})];
  }

  /** Into the process, and into every other holder that was restored (a process left out has none to give it to). */
  restore(record: FilesRecord, ctx: RestoreContext): Promise<void> {
    const holders = record.kind === 'duplicate' ? [] : (record.holders ?? []).flatMap(({ pid, fds }) => {
      const task = TASKS.restored(ctx, pid)?.task;
      return task ? fds.map((d) => ({ task, ...d })) : [];
    });
    return restoreFd(restoredTaskOf(ctx), record, ctx, holders);
  }
}

export { filesRecordSchema, type FilesRecord } from './record.js';

export default FilesPlugin;
