import {
  Kernel,
  PLUGIN_API_VERSION,
  PROCESS_TARGET,
  TARGET_PROCESS,
  ImageError,
  TargetError,
  blobProblems,
  inject,
  injectable,
  objectType,
  type CollectedObject,
  type FdInfo,
  type RecordCheckContext,
  type RemoteTask,
  type ResourceNode,
  type ResourcePlugin,
  type RestoreContext,
  type RestoredProcess,
  type ThawContext,
} from '@cr/core';
import { tasksRecordSchema, type TasksRecord } from './record.js';
import { awaitFreePid, checkRlimits, checkWorkingDirectory, createTask, resumeTask } from './restore.js';
import { taskRefusals } from './refusals.js';
import { readTaskState } from './save.js';
import { threadProblems } from './threads-check.js';
import { readThreads } from './threads-save.js';

/** sizeof(siginfo_t). */
const SIGINFO_SIZE = 128;

/**
 * A process being checkpointed: its PID, and once frozen, the stopped task. The plugins of the
 * types below a process (mm, files, pipes …) get this as their parent's handle.
 */
export interface TaskHandle {
  readonly pid: number;
  /** The main thread, once frozen. */
  task: RemoteTask | undefined;
  /** The other threads, once frozen. */
  threads: RemoteTask[];
  /**
   * Its descriptors, identified (Procfs.fds), read once for all the plugins that look for theirs
   * among them: they are collected while the process is frozen, where every read counts.
   */
  fds(): readonly FdInfo[];
}

/** A process being restored: the stopped seed that mm, files and resume turn into it. */
export interface RestoredTask extends RestoredProcess {
  readonly task: RemoteTask;
}

/** The processes, for the plugins below them: keys `tasks:PID`, handles TaskHandle, restored as RestoredTask. */
export const TASKS = objectType<TaskHandle, RestoredTask>('tasks');

/**
 * Processes: PID, credentials, registers and FPU state, signal handlers, masks and queues, the
 * alternate signal stack, rlimits, personality, umask, working directory, session, rseq and the
 * prctl settings a program can see. Freezing stops the process under ptrace; restoring starts a
 * seed with the same PID inside the restored namespaces, which mm and files fill and `resume`
 * finishes and lets run.
 */
@injectable()
export class TasksPlugin implements ResourcePlugin<TasksRecord, TaskHandle, RestoredTask> {
  readonly apiVersion = PLUGIN_API_VERSION;
  readonly type = TASKS.type;
  readonly version = 1;
  readonly description = 'Processes: PID, credentials, registers, FPU state, signals, rlimits, session, rseq, prctl state';
  readonly collectsFrom = [TARGET_PROCESS];
  readonly holdsNamespaces = true;
  readonly recordSchema = tasksRecordSchema;
  readonly selectableBy = { pid: 'uint', comm: 'string' } as const;

  constructor(@inject(Kernel) private readonly kernel: Kernel) {}

  collect(parent: ResourceNode): CollectedObject<TaskHandle>[] {
    const { pid } = PROCESS_TARGET.handleOf(parent);
    const { comm } = this.kernel.procfs.stat(pid);
    let fds: readonly FdInfo[] | undefined;
    const handle: TaskHandle = { pid, task: undefined, threads: [], fds: () => (fds ??= this.kernel.procfs.fds(pid)) };
    return [{ id: String(pid), handle, attributes: { pid, comm } }];
  }

  freeze(node: ResourceNode<TaskHandle>): void {
    const { pid } = node.handle;
    const { tracerPid } = this.kernel.procfs.status(pid);
    if (tracerPid !== 0) {
      throw new TargetError(`PID ${pid} is being traced by PID ${tracerPid} (${this.kernel.procfs.stat(tracerPid).comm}); detach that debugger or tracer first`);
    }
    [node.handle.task, ...node.handle.threads] = this.kernel.seizeThreads(pid);
  }

  thaw(node: ResourceNode<TaskHandle>, ctx: ThawContext): void {
    const { task, threads } = node.handle;
    node.handle.task = undefined;
    node.handle.threads = [];
    if (ctx.kill) task?.kill();
    else releaseAll([...threads, ...(task ? [task] : [])]);
  }

  refusals(node: ResourceNode<TaskHandle>): string[] {
    return taskRefusals(this.kernel, node.handle.pid);
  }

  save(node: ResourceNode<TaskHandle>): TasksRecord {
    const task = frozenTask(node);
    return { ...readTaskState(this.kernel, task), ...readThreads(this.kernel, task, node.handle.threads) };
  }

  /** The record is the process its object names; no soft limit is above its hard one; every queued signal has a whole siginfo_t. */
  checkRecord(record: TasksRecord, ctx: RecordCheckContext): string[] {
    const problems = String(record.pid) === ctx.id ? [] : [`it holds PID ${record.pid}, not ${ctx.id}`];
    for (const { resource, soft, hard } of record.rlimits) {
      if (BigInt(soft) > BigInt(hard)) problems.push(`its RLIMIT_${resource.toUpperCase()} has a soft limit ${soft} above its hard limit ${hard}`);
    }
    record.signals.pending.forEach(({ siginfo }, i) => {
      const size = Buffer.from(siginfo, 'base64').length;
      if (size !== SIGINFO_SIZE) problems.push(`its pending signal ${i} has a siginfo of ${size} bytes, not ${SIGINFO_SIZE}`);
    });
    return [...problems, ...threadProblems(record, SIGINFO_SIZE), ...blobProblems(ctx, {})];
  }

  async preflight(record: TasksRecord): Promise<void> {
    checkWorkingDirectory(record);
    checkRlimits(this.kernel, record);
    for (const id of [record.pid, ...(record.threads ?? []).map((t) => t.tid)]) await awaitFreePid(this.kernel, id);
  }

  restore(record: TasksRecord, ctx: RestoreContext): RestoredTask {
    const task = createTask(this.kernel, record, ctx.namespaces());
    return { pid: record.pid, task };
  }

  resume(record: TasksRecord, restored: RestoredTask): void {
    resumeTask(this.kernel, restored.task, record);
  }

  rollback(_record: TasksRecord, restored: RestoredTask): void {
    restored.task.kill();
  }
}

/** Lets every task go, even when letting one go fails; the first failure is thrown after. */
function releaseAll(tasks: readonly RemoteTask[]): void {
  const failures = tasks.flatMap((task) => {
    try {
      task.release();
      return [];
    } catch (err) {
      return [err];
    }
  });
  if (failures.length > 0) throw failures[0];
}

/** The stopped task of a process node; save runs only after freeze. */
export function frozenTask(node: ResourceNode<TaskHandle>): RemoteTask {
  const { task } = node.handle;
  if (!task) throw new Error(`internal error: ${node.key} is not frozen`);
  return task;
}

/** The seed of the process an object below a task is restored into. */
export function restoredTaskOf(ctx: RestoreContext): RemoteTask {
  const restored = TASKS.restoredParent(ctx);
  if (restored) return restored.task;
  throw new ImageError(`${ctx.key} belongs to a process whose tasks record is not in the image (it was left out at checkpoint); it cannot be restored on its own`);
}

export { RLIMIT_NAMES, signalActionSchema, tasksRecordSchema, type TasksRecord } from './record.js';

export default TasksPlugin;
