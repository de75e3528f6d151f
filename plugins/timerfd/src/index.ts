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
import { timerfdRecordSchema, type TimerfdRecord } from './record.js';

export { timerfdRecordSchema, type TimerfdRecord } from './record.js';

/** "(seconds, nanoseconds)", as fdinfo shows it_value and it_interval. */
const TIMESPEC = /^\((\d+), (\d+)\)$/;
const nanoseconds = (text: string | undefined) => {
  const m = TIMESPEC.exec(text ?? '');
  return m ? BigInt(m[1]!) * 1_000_000_000n + BigInt(m[2]!) : 0n;
};

/** A timerfd being checkpointed: the process, and its description with every fd on it. */
export interface TimerfdHandle {
  pid: number;
  description: OpenDescription;
}

/**
 * timerfds (timerfd_create(2)): the clock, the time to the next expiry and the interval, and the
 * expirations not read yet, from /proc/PID/fdinfo, and every descriptor the process has on one.
 * Restored relative: a timer set with TFD_TIMER_ABSTIME expires after the same time left (so at
 * its absolute time unless the clock was set meanwhile). Each claims its descriptors (`fd:PID:N`),
 * which the files plugin leaves to it.
 */
@injectable()
export class TimerfdPlugin implements ResourcePlugin<TimerfdRecord, TimerfdHandle> {
  readonly apiVersion = PLUGIN_API_VERSION;
  readonly type = 'timerfd';
  readonly version = 1;
  readonly description = 'timerfds: clock, time left, interval, unread expirations, flags, every descriptor on each';
  readonly collectsFrom = ['tasks'];
  readonly recordSchema = timerfdRecordSchema;
  readonly selectableBy = { pid: 'uint', fd: 'uint' } as const;

  constructor(@inject(Kernel) private readonly kernel: Kernel) {}

  collect(parent: ResourceNode): CollectedObject<TimerfdHandle>[] {
    const { pid } = (parent as ResourceNode<TaskHandle>).handle;
    return descriptionsOf(this.kernel, pid, (info) => isAnonInode(info, 'timerfd')).map((description) => ({
      id: `${pid}:${description.info.fd}`,
      handle: { pid, description },
      attributes: { pid, fd: description.info.fd },
      claims: description.fds.map((d) => `fd:${pid}:${d.fd}`),
    }));
  }

  save(node: ResourceNode<TimerfdHandle>): TimerfdRecord {
    const { pid, description } = node.handle;
    const info = this.kernel.procfs.fdinfo(pid, description.info.fd);
    const intervalNs = nanoseconds(info.it_interval);
    // A periodic timer that expired and was not read since shows 0 left: the kernel re-arms it
    // when its expirations are read. Restored with 0 it would be disarmed; it runs on instead.
    const valueNs = nanoseconds(info.it_value) || intervalNs;
    return {
      clockId: Number(info.clockid ?? 0),
      valueNs: String(valueNs),
      intervalNs: String(intervalNs),
      ticks: String(BigInt(info.ticks ?? '0')),
      statusFlags: description.statusFlags,
      fds: description.fds,
    };
  }

  checkRecord(record: TimerfdRecord, ctx: RecordCheckContext): string[] {
    return descriptionProblems(record.fds, ctx);
  }

  restore(record: TimerfdRecord, ctx: RestoreContext): void {
    const task = restoredTaskOf(ctx);
    const state = { clockId: record.clockId, valueNs: BigInt(record.valueNs), intervalNs: BigInt(record.intervalNs), ticks: BigInt(record.ticks) };
    const local = this.kernel.eventFds.timerfd(state, 0, `a timerfd of PID ${task.pid}`);
    try {
      installDescription(task, local, record.fds, record.statusFlags);
    } finally {
      closeSync(local);
    }
  }
}

export default TimerfdPlugin;
