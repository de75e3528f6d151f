import {
  Kernel,
  PLUGIN_API_VERSION,
  descriptionProblems,
  descriptionsOf,
  inject,
  injectable,
  installDescription,
  isAnonInode,
  type CollectedObject,
  type OpenDescription,
  type RecordCheckContext,
  type ResourceNode,
  type ResourcePlugin,
  type RestoreContext,
} from '@cr/core';
import { restoredTaskOf, type TaskHandle } from '@cr/plugin-tasks';
import { closeSync } from 'node:fs';
import { eventfdRecordSchema, type EventfdRecord } from './record.js';

export { eventfdRecordSchema, type EventfdRecord } from './record.js';

const EFD_SEMAPHORE = 1;

/** An eventfd being checkpointed: the process, and its description with every fd on it. */
export interface EventfdHandle {
  pid: number;
  description: OpenDescription;
}

/**
 * eventfds (eventfd(2)): the 64-bit counter and semaphore mode, read from /proc/PID/fdinfo without
 * touching the counter, and every descriptor the process has on one (dups share it again after
 * restore). Each claims its descriptors (`fd:PID:N`), which the files plugin leaves to it.
 */
@injectable()
export class EventfdPlugin implements ResourcePlugin<EventfdRecord, EventfdHandle> {
  readonly apiVersion = PLUGIN_API_VERSION;
  readonly type = 'eventfd';
  readonly version = 1;
  readonly description = 'eventfds: counter, semaphore mode, flags, every descriptor on each';
  readonly collectsFrom = ['tasks'];
  readonly recordSchema = eventfdRecordSchema;
  readonly selectableBy = { pid: 'uint', fd: 'uint' } as const;

  constructor(@inject(Kernel) private readonly kernel: Kernel) {}

  collect(parent: ResourceNode): CollectedObject<EventfdHandle>[] {
    const { pid } = (parent as ResourceNode<TaskHandle>).handle;
    return descriptionsOf(this.kernel, pid, (info) => isAnonInode(info, 'eventfd')).map((description) => ({
      id: `${pid}:${description.info.fd}`,
      handle: { pid, description },
      attributes: { pid, fd: description.info.fd },
      claims: description.fds.map((d) => `fd:${pid}:${d.fd}`),
    }));
  }

  save(node: ResourceNode<EventfdHandle>): EventfdRecord {
    const { pid, description } = node.handle;
    const info = this.kernel.procfs.fdinfo(pid, description.info.fd);
    return {
      // The kernel prints the counter in hex.
      count: String(BigInt(`0x${info['eventfd-count'] ?? '0'}`)),
      semaphore: info['eventfd-semaphore'] === '1',
      statusFlags: description.statusFlags,
      fds: description.fds,
    };
  }

  checkRecord(record: EventfdRecord, ctx: RecordCheckContext): string[] {
    return descriptionProblems(record.fds, ctx);
  }

  restore(record: EventfdRecord, ctx: RestoreContext): void {
    const task = restoredTaskOf(ctx);
    const local = this.kernel.eventFds.eventfd(BigInt(record.count), record.semaphore ? EFD_SEMAPHORE : 0, `an eventfd of PID ${task.pid}`);
    try {
      installDescription(task, local, record.fds, record.statusFlags);
    } finally {
      closeSync(local);
    }
  }
}

export default EventfdPlugin;
