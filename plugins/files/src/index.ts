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
import { ownership } from './ownership.js';
import { restoreFd } from './restore.js';
import { saveFd } from './save.js';

/** A descriptor being checkpointed, and the lower descriptor it shares its open file with (dup), if any. */
export interface FdHandle {
  pid: number;
  info: FdInfo;
  twin?: FdInfo;
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
  readonly collectsFrom = ['tasks'];
  readonly recordSchema = filesRecordSchema;
  /** `path` is what /proc/PID/fd/N points to. */
  readonly selectableBy = { pid: 'uint', fd: 'uint', path: 'string' } as const;

  constructor(@inject(Kernel) private readonly kernel: Kernel) {}

  collect(parent: ResourceNode): CollectedObject<FdHandle>[] {
    const { pid } = (parent as ResourceNode<TaskHandle>).handle;
    const fds = this.kernel.procfs.fds(pid);
    return fds.map((info, i) => {
      const twin = fds.slice(0, i).find((l) => l.link === info.link && this.kernel.libc.kcmpFiles(pid, l.fd, pid, info.fd) === 0);
      return {
        id: `${pid}:${info.fd}`,
        handle: { pid, info, ...(twin ? { twin } : {}) },
        attributes: { pid, fd: info.fd, path: info.link },
        ...ownership(pid, info, twin),
      };
    });
  }

  save(node: ResourceNode<FdHandle>, ctx: SaveContext): Promise<FilesRecord> {
    const { pid, info, twin } = node.handle;
    return saveFd(pid, info, twin, ctx);
  }

  restore(record: FilesRecord, ctx: RestoreContext): Promise<void> {
    return restoreFd(restoredTaskOf(ctx), record, ctx);
  }
}

export default FilesPlugin;
