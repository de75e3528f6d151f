import {
  Kernel,
  PLUGIN_API_VERSION,
  inject,
  injectable,
  type CollectedObject,
  type FdInfo,
  type ResourceNode,
  type ResourcePlugin,
  type RestoreContext,
  type SaveContext,
} from '@cr/core';
import type { TaskHandle } from '@cr/plugin-tasks';
import { restoredTaskOf } from '@cr/plugin-tasks';
import { filesRecordSchema, type FilesRecord } from '@cr/schemas';
import { restoreFd } from './restore.js';
import { saveFd } from './save.js';

/** A descriptor being checkpointed, with the lower descriptors of the same process (for dup detection). */
export interface FdHandle {
  pid: number;
  info: FdInfo;
  lower: readonly FdInfo[];
}

/**
 * A process's file descriptor table, one object per descriptor (select them by `fd` or `path`):
 * regular files with their flags and offset, files deleted while open (contents saved),
 * directories, devices such as /dev/null, descriptors sharing one open file (dup), and stdio that
 * points outside the checkpoint, given again at restore (cr's own, or --inherit-fd).
 */
@injectable()
export class FilesPlugin implements ResourcePlugin<FilesRecord, FdHandle> {
  readonly apiVersion = PLUGIN_API_VERSION;
  readonly type = 'files';
  readonly version = 1;
  readonly description = 'Open file descriptors: files and offsets, deleted files, directories, devices, dups, inherited stdio';
  readonly collectsFrom = ['tasks'];
  readonly recordSchema = filesRecordSchema;
  /** `path` is what /proc/PID/fd/N points to. */
  readonly selectableBy = { pid: 'uint', fd: 'uint', path: 'string' } as const;

  constructor(@inject(Kernel) private readonly kernel: Kernel) {}

  collect(parent: ResourceNode): CollectedObject<FdHandle>[] {
    const { pid } = (parent as ResourceNode<TaskHandle>).handle;
    const fds = this.kernel.procfs.fds(pid);
    return fds.map((info, i) => ({
      id: `${pid}:${info.fd}`,
      handle: { pid, info, lower: fds.slice(0, i) },
      attributes: { pid, fd: info.fd, path: info.link },
    }));
  }

  save(node: ResourceNode<FdHandle>, ctx: SaveContext): Promise<FilesRecord> {
    const { pid, info, lower } = node.handle;
    return saveFd(this.kernel, pid, info, lower, ctx);
  }

  restore(record: FilesRecord, ctx: RestoreContext): Promise<void> {
    return restoreFd(restoredTaskOf(ctx), record, ctx);
  }
}

export default FilesPlugin;
