import { Kernel, TargetError, inject, injectable, type CollectContext, type FdInfo, type RecordCheckContext, type ResourceNode, type RestoreContext } from '@cr/core';
import { DescriptionPlugin, type DescriptionHandle } from '@cr/descriptor-base';
import { TASKS, type TaskTree } from '@cr/plugin-tasks';
import { pidfdRecordSchema, type PidfdRecord } from './record.js';

export { pidfdRecordSchema, type PidfdRecord } from './record.js';

/** pidfd_open(2)'s PIDFD_THREAD: the pidfd of a thread, not of a process. */
const PIDFD_THREAD = 0o200;

interface PidfdHandle extends DescriptionHandle {
  readonly tree: TaskTree;
}

/** The PID a pidfd refers to, as its fdinfo says: -1 once that process has exited and been reaped. */
const pidOf = (fdinfo: Readonly<Record<string, string>>): number => Number(fdinfo['Pid']);

/**
 * pidfds (pidfd_open(2), clone(CLONE_PIDFD)) of the processes of the checkpoint, and of processes
 * that had exited and been reaped (a program keeps the pidfd of a child it has waited for). A
 * restored one refers to the restored process with that PID, or to a process of cr's that has
 * exited and been reaped. Restored after the processes' memory (`mm`), once every process of the
 * tree is the one that will run: a child is made again there when it shares its parent's memory.
 */
@injectable()
export class PidfdsPlugin extends DescriptionPlugin<PidfdRecord> {
  readonly type = 'pidfds';
  readonly version = 1;
  readonly description = 'pidfds: the process each refers to (of the checkpoint, or one that had exited), flags, every descriptor on each';
  readonly recordSchema = pidfdRecordSchema;
  // The mm plugin's type: a child sharing memory with its parent is forked again while it is restored.
  readonly dependsOn = ['mm'];

  constructor(@inject(Kernel) kernel: Kernel) {
    super(kernel);
  }

  override collect(parent: ResourceNode, ctx?: CollectContext<unknown>) {
    const { tree } = TASKS.handleOf(parent);
    return super.collect(parent, ctx).map((object) => ({ ...object, handle: { ...object.handle, tree } }));
  }

  protected owns(info: FdInfo): boolean {
    return info.kind.kind === 'pidfd';
  }

  refusals(node: ResourceNode<PidfdHandle>): string[] {
    const { pid, description, tree } = node.handle;
    const { fd } = description.info;
    const leaveOut = `leave it out with --exclude pidfds:fd=${fd}`;
    if (description.info.flags & PIDFD_THREAD) return [`PID ${pid}: fd ${fd} is the pidfd of a thread (PIDFD_THREAD), which cr cannot restore yet; ${leaveOut}`];
    const of = pidOf(this.kernel.procfs.fdinfo(pid, fd));
    if (of === -1 || tree.tasks.some((t) => t.pid === of)) return [];
    return [`PID ${pid}: fd ${fd} is a pidfd of PID ${of}, which is not checkpointed with it, so cr cannot make it refer to that process again; checkpoint a tree that holds PID ${of}, or ${leaveOut}`];
  }

  protected state(fdinfo: Readonly<Record<string, string>>): Pick<PidfdRecord, 'pid'> {
    const of = pidOf(fdinfo);
    return of === -1 ? {} : { pid: of };
  }

  override checkRecord(record: PidfdRecord, ctx: RecordCheckContext): string[] {
    const problems = super.checkRecord(record, ctx);
    if (record.pid !== undefined && !ctx.object(`tasks:${record.pid}`)) problems.push(`it refers to PID ${record.pid}, which has no tasks record in the image`);
    return problems;
  }

  protected create(record: PidfdRecord, target: string, ctx: RestoreContext): number {
    if (record.pid === undefined) return this.kernel.exitedPidfd(target);
    if (!TASKS.restored(ctx, record.pid)) throw new TargetError(`cannot restore ${target}: it refers to PID ${record.pid}, which this restore does not make`);
    return this.kernel.openPidfd(record.pid, target);
  }
}

export default PidfdsPlugin;
