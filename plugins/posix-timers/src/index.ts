import {
  Kernel,
  PLUGIN_API_VERSION,
  PR_TIMER_CREATE_RESTORE_IDS,
  UnsupportedError,
  KernelError,
  inject,
  injectable,
  type CollectedObject,
  type RecordCheckContext,
  type ResourceNode,
  type ResourcePlugin,
  type RestoreContext,
} from '@cr/core';
import { TASKS, frozenTask, restoredTaskOf, type TaskHandle } from '@cr/plugin-tasks';
import { listedTimers, type ListedTimer } from './proc-timers.js';
import { posixTimersRecordSchema, type PosixTimersRecord } from './record.js';

export { posixTimersRecordSchema, type PosixTimersRecord } from './record.js';

const SIGEV = { signal: 0, none: 1, thread: 4 } as const;
const RESTORE_IDS_OFF = 0;
const RESTORE_IDS_ON = 1;

/**
 * The POSIX timers of a process (timer_create(2)), one object per process: each timer's id,
 * clock, notification (signal and sigev_value, SIGEV_THREAD_ID, none) from /proc/PID/timers, and
 * its time left and interval from timer_gettime(2) in the frozen process. Restored with the same
 * ids, through PR_TIMER_CREATE_RESTORE_IDS (Linux 6.15+), armed relative to the restore, in
 * `resume`, just before the process runs. A timer's overrun count is saved, not restored.
 */
@injectable()
export class PosixTimersPlugin implements ResourcePlugin<PosixTimersRecord, ResourceNode<TaskHandle>> {
  readonly apiVersion = PLUGIN_API_VERSION;
  readonly type = 'posix-timers';
  readonly version = 1;
  readonly description = 'POSIX timers: ids, clocks, signals and values, time left and interval';
  readonly collectsFrom = [TASKS.type];
  readonly selectableBy = { pid: 'uint' } as const;
  readonly recordSchema = posixTimersRecordSchema;

  constructor(@inject(Kernel) private readonly kernel: Kernel) {}

  collect(parent: ResourceNode): CollectedObject<ResourceNode<TaskHandle>>[] {
    const { pid } = TASKS.handleOf(parent);
    return this.kernel.procfs.read(pid, 'timers').trim() === '' ? [] : [{ id: String(pid), handle: parent as ResourceNode<TaskHandle>, attributes: { pid } }];
  }

  refusals(node: ResourceNode<ResourceNode<TaskHandle>>): string[] {
    const { pid } = TASKS.handleOf(node.handle);
    return listedTimers(this.kernel.procfs.read(pid, 'timers')).flatMap((t) =>
      'unknown' in t ? [`PID ${pid}: POSIX timer ${t.id} notifies as "${t.unknown}", which cr cannot restore; leave the timers out with --exclude posix-timers`] : [],
    );
  }

  save(node: ResourceNode<ResourceNode<TaskHandle>>): PosixTimersRecord {
    const task = frozenTask(node.handle);
    try {
      const listed = listedTimers(this.kernel.procfs.read(task.pid, 'timers')).filter((t): t is ListedTimer => !('unknown' in t));
      return {
        timers: listed.map((t) => {
          const { valueNs, intervalNs } = task.timerGettime(t.id);
          // A periodic timer whose signal is still pending reads 0 until the signal is taken,
          // when the kernel re-arms it; restored with 0, it would be disarmed.
          const next = valueNs === 0n ? intervalNs : valueNs;
          return { ...t, valueNs: String(next), intervalNs: String(intervalNs), overrun: task.timerGetoverrun(t.id) };
        }),
      };
    } finally {
      task.dropScratch();
    }
  }

  checkRecord(record: PosixTimersRecord, ctx: RecordCheckContext): string[] {
    const problems = TASKS.isAmong(ctx.parents, ctx.id) ? [] : [`it belongs to PID ${ctx.id} but does not hang below ${TASKS.key(ctx.id)}`];
    if (new Set(record.timers.map((t) => t.id)).size !== record.timers.length) problems.push('it names one timer id twice');
    return problems;
  }

  /** The timers are made in `resume`, so that none expires while the rest of the process is restored. */
  restore(): void {}

  resume(record: PosixTimersRecord, _restored: void, ctx: RestoreContext): void {
    const task = restoredTaskOf(ctx);
    try {
      task.prctl('prctl(PR_TIMER_CREATE_RESTORE_IDS)', PR_TIMER_CREATE_RESTORE_IDS, RESTORE_IDS_ON);
    } catch (err) {
      if (err instanceof KernelError && err.code === 'EINVAL') {
        throw new UnsupportedError(`cannot restore the POSIX timers of PID ${task.pid}: this kernel cannot give a new timer a chosen id (PR_TIMER_CREATE_RESTORE_IDS, Linux 6.15 and later)`);
      }
      throw err;
    }
    try {
      for (const t of record.timers) {
        task.timerCreate(t.id, t.clockId, { notify: SIGEV[t.notify], signal: t.signal, value: BigInt(t.value), tid: t.tid });
        if (BigInt(t.valueNs) > 0n) task.timerSettime(t.id, { valueNs: BigInt(t.valueNs), intervalNs: BigInt(t.intervalNs) });
      }
    } finally {
      task.prctl('prctl(PR_TIMER_CREATE_RESTORE_IDS)', PR_TIMER_CREATE_RESTORE_IDS, RESTORE_IDS_OFF);
    }
  }
}

export default PosixTimersPlugin;
