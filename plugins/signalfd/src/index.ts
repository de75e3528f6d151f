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
import { signalfdRecordSchema, type SignalfdRecord } from './record.js';

export { signalfdRecordSchema, type SignalfdRecord } from './record.js';

/** A signalfd being checkpointed: the process, and its description with every fd on it. */
export interface SignalfdHandle {
  pid: number;
  description: OpenDescription;
}

/**
 * signalfds (signalfd(2)): the signals each reads, from /proc/PID/fdinfo, and every descriptor the
 * process has on one. The signals themselves are the process's (pending, blocked): the tasks
 * plugin saves those. Each claims its descriptors (`fd:PID:N`), which the files plugin leaves to it.
 */
@injectable()
export class SignalfdPlugin implements ResourcePlugin<SignalfdRecord, SignalfdHandle> {
  readonly apiVersion = PLUGIN_API_VERSION;
  readonly type = 'signalfd';
  readonly version = 1;
  readonly description = 'signalfds: signal mask, flags, every descriptor on each';
  readonly collectsFrom = ['tasks'];
  readonly recordSchema = signalfdRecordSchema;
  readonly selectableBy = { pid: 'uint', fd: 'uint' } as const;

  constructor(@inject(Kernel) private readonly kernel: Kernel) {}

  collect(parent: ResourceNode): CollectedObject<SignalfdHandle>[] {
    const { pid } = (parent as ResourceNode<TaskHandle>).handle;
    return descriptionsOf(this.kernel, pid, (info) => isAnonInode(info, 'signalfd')).map((description) => ({
      id: `${pid}:${description.info.fd}`,
      handle: { pid, description },
      attributes: { pid, fd: description.info.fd },
      claims: description.fds.map((d) => `fd:${pid}:${d.fd}`),
    }));
  }

  save(node: ResourceNode<SignalfdHandle>): SignalfdRecord {
    const { pid, description } = node.handle;
    const info = this.kernel.procfs.fdinfo(pid, description.info.fd);
    return { mask: `0x${BigInt(`0x${info.sigmask ?? '0'}`).toString(16)}`, statusFlags: description.statusFlags, fds: description.fds };
  }

  checkRecord(record: SignalfdRecord, ctx: RecordCheckContext): string[] {
    return descriptionProblems(record.fds, ctx);
  }

  restore(record: SignalfdRecord, ctx: RestoreContext): void {
    const task = restoredTaskOf(ctx);
    const local = this.kernel.eventFds.signalfd(BigInt(record.mask), 0, `a signalfd of PID ${task.pid}`);
    try {
      installDescription(task, local, record.fds, record.statusFlags);
    } finally {
      closeSync(local);
    }
  }
}

export default SignalfdPlugin;
