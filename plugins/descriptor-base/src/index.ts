import {
  PLUGIN_API_VERSION,
  descriptionProblems,
  descriptionsOf,
  installDescription,
  type CollectContext,
  type CollectedObject,
  type DescriptionHolder,
  type DescriptorNumber,
  type FdInfo,
  type Kernel,
  type OpenDescription,
  type RecordCheckContext,
  type ResourceNode,
  type ResourcePlugin,
  type RestoreContext,
  type SaveContext,
} from '@cr/core';
import { TASKS, restoredTaskOf } from '@cr/plugin-tasks';
import { descriptionHoldersSchema } from '@cr/schemas';
import { closeSync } from 'node:fs';
import type { ZodType } from 'zod';

/** What every descriptor-owning plugin records of an open file description, beside its own state. */
export interface DescriptionRecord {
  /** The file status flags of the description (O_NONBLOCK …). */
  statusFlags: number;
  fds: DescriptorNumber[];
  /** Other processes holding it (after fork). */
  holders?: DescriptionHolder[];
}

/** Where a description's state is read: its process and lowest descriptor, and the checkpoint's warnings. */
export interface DescriptionSite {
  pid: number;
  fd: number;
  info: FdInfo;
  warn(message: string): void;
}

/** The `holders` field of a description record (see DescriptionRecord). */
export const holdersField = { holders: descriptionHoldersSchema };

/** A description being checkpointed: the process, the description with every fd on it, and the other processes holding it. */
export interface DescriptionHandle {
  pid: number;
  description: OpenDescription;
  holders: readonly DescriptionHolder[];
}

/**
 * The shared part of the plugins that own one kind of descriptor and can make one again in cr
 * (eventfd, signalfd, timerfd): one object per open file description (`PID:FD`, its lowest fd),
 * claiming every descriptor on it, so that the files plugin leaves them alone; its state read
 * from /proc/PID/fdinfo without touching it; restored by making a new one in cr and giving it to
 * the task on the same numbers, dups shared, with the same flags. A subclass says which
 * descriptors are its own, what their state is, and how to make one.
 */
export abstract class DescriptionPlugin<R extends DescriptionRecord> implements ResourcePlugin<R, DescriptionHandle> {
  readonly apiVersion = PLUGIN_API_VERSION;
  readonly collectsFrom = [TASKS.type];
  readonly selectableBy = { pid: 'uint', fd: 'uint' } as const;
  abstract readonly type: string;
  abstract readonly version: number;
  abstract readonly description: string;
  abstract readonly recordSchema: ZodType<R>;

  constructor(protected readonly kernel: Kernel) {}

  /** Whether descriptor `info` of process `pid` is of this plugin's kind. */
  protected abstract owns(info: FdInfo, pid: number): boolean;
  /** The state of a description, from the fdinfo of its descriptor `at.fd` (whose lines are in `fdinfo`). */
  protected abstract state(fdinfo: Readonly<Record<string, string>>, at: DescriptionSite): Omit<R, keyof DescriptionRecord>;
  /** A new description in the saved state, as a descriptor of cr's; `target` names it in errors, `ctx` has the record's blobs. */
  protected abstract create(record: R, target: string, ctx: RestoreContext): number | Promise<number>;

  collect(parent: ResourceNode, _ctx?: CollectContext<unknown>): CollectedObject<DescriptionHandle>[] {
    const task = TASKS.handleOf(parent);
    const { pid } = task;
    return descriptionsOf(this.kernel, pid, task.fds(), (info) => this.owns(info, pid)).map((description) => {
      // One another process of the tree holds too (inherited across fork) is one object, saved with the first.
      const shared = task.tree.descriptions.holderOf(this.type, pid, description.info, description.fds, `${pid}:${description.info.fd}`);
      return {
        id: shared.id,
        handle: { pid, description, holders: shared.holders },
        attributes: { pid, fd: description.info.fd },
        claims: description.fds.map((d) => `fd:${pid}:${d.fd}`),
      };
    });
  }

  save(node: ResourceNode<DescriptionHandle>, ctx: SaveContext): R | Promise<R> {
    const { pid, description, holders } = node.handle;
    const { info } = description;
    const at = { pid, fd: info.fd, info, warn: (message: string) => ctx.warn(message) };
    const shared = holders.length > 0 ? { holders: holders.map((h) => ({ pid: h.pid, fds: [...h.fds] })) } : {};
    return { ...this.state(this.kernel.procfs.fdinfo(pid, info.fd), at), statusFlags: description.statusFlags, fds: description.fds, ...shared } as R;
  }

  checkRecord(record: R, ctx: RecordCheckContext): string[] {
    return descriptionProblems(record.fds, ctx, record.holders);
  }

  /** One new description, given to the process and to every other holder that was restored. */
  async restore(record: R, ctx: RestoreContext): Promise<void> {
    const task = restoredTaskOf(ctx);
    const local = await this.create(record, `a ${this.type} of PID ${task.pid}`, ctx);
    try {
      installDescription(task, local, record.fds, record.statusFlags);
      for (const { pid, fds } of record.holders ?? []) {
        const holder = TASKS.restored(ctx, pid)?.task;
        if (holder) installDescription(holder, local, fds, record.statusFlags);
      }
    } finally {
      closeSync(local);
    }
  }
}

export { inheritedPath, openInherited } from './inherited.js';
