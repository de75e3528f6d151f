import { closeSync, openSync, statSync } from 'node:fs';
import {
  Kernel,
  PLUGIN_API_VERSION,
  TargetError,
  descriptionProblems,
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
  procDir,
} from '@cr/core';
import { TASKS, restoredTaskOf } from '@cr/plugin-tasks';
import { onHugePages, shmemOfFd } from './collect.js';
import { memfdRecordSchema, type MemfdRecord } from './record.js';
import { SHMEM, missingShmem } from './shmem-plugin.js';

const O_ACCMODE = 3;

/** A memfd description being checkpointed: the process, the description, and the shmem object it is open on. */
export interface MemfdHandle {
  pid: number;
  description: OpenDescription;
  inode: number;
}

/**
 * Descriptors on memfds: one object per open file description (`PID:FD`, its lowest fd), with its
 * access mode, status flags and offset, claiming every descriptor on it. The memfd itself, its
 * contents and seals, is the `shmem` object it uses, saved once for all its descriptors and
 * mappings; restored by opening that object again, so that they all share it as before.
 */
@injectable()
export class MemfdPlugin implements ResourcePlugin<MemfdRecord, MemfdHandle> {
  readonly apiVersion = PLUGIN_API_VERSION;
  readonly type = 'memfd';
  readonly version = 1;
  readonly description = 'Descriptors on memfds: access mode, flags and offset (the memfd is a shmem object)';
  readonly collectsFrom = [TASKS.type];
  readonly dependsOn = [SHMEM.type];
  readonly recordSchema = memfdRecordSchema;
  readonly selectableBy = { pid: 'uint', fd: 'uint' } as const;

  constructor(@inject(Kernel) private readonly kernel: Kernel) {}

  collect(parent: ResourceNode): CollectedObject<MemfdHandle>[] {
    const task = TASKS.handleOf(parent);
    const { pid } = task;
    return descriptionsOf(this.kernel, pid, task.fds(), (info) => shmemOfFd(info) !== undefined && !onHugePages(`${procDir(pid)}/fd/${info.fd}`)).map((description) => {
      const inode = Number(statSync(`${procDir(pid)}/fd/${description.info.fd}`).ino);
      return {
        id: `${pid}:${description.info.fd}`,
        handle: { pid, description, inode },
        attributes: { pid, fd: description.info.fd },
        claims: description.fds.map((d) => `fd:${pid}:${d.fd}`),
        uses: [SHMEM.key(inode)],
      };
    });
  }

  save(node: ResourceNode<MemfdHandle>): MemfdRecord {
    const { description, inode } = node.handle;
    return {
      shmem: inode,
      access: description.info.flags & O_ACCMODE,
      statusFlags: description.statusFlags,
      offset: String(description.info.pos),
      fds: description.fds,
    };
  }

  checkRecord(record: MemfdRecord, ctx: RecordCheckContext): string[] {
    const problems = descriptionProblems(record.fds, ctx);
    if (!SHMEM.inImage(ctx, record.shmem)?.saved) problems.push(`it is open on ${missingShmem(record.shmem)}`);
    return problems;
  }

  restore(record: MemfdRecord, ctx: RestoreContext): void {
    const task = restoredTaskOf(ctx);
    const shmem = SHMEM.restored(ctx, record.shmem);
    if (!shmem) throw new TargetError(`cannot restore ${ctx.key}: ${SHMEM.key(record.shmem)}, the memfd it is open on, was not restored`);
    const local = openSync(shmem.path, record.access);
    try {
      installDescription(task, local, record.fds, record.statusFlags);
    } finally {
      closeSync(local);
    }
    if (record.offset !== '0') task.lseek(record.fds[0]!.fd, BigInt(record.offset));
  }
}
