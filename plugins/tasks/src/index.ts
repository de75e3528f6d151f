import {
  Kernel,
  PLUGIN_API_VERSION,
  SharedDescriptions,
  PROCESS_TARGET,
  TARGET_PROCESS,
  ImageError,
  TargetError,
  blobProblems,
  inject,
  injectable,
  objectType,
  type RemoteTask,
  type CollectContext,
  type CollectedObject,
  type FdInfo,
  type RecordCheckContext,
  type ResourceNode,
  type ResourcePlugin,
  type RestoreContext,
  type RestoredProcess,
  type ThawContext,
} from '@cr/core';
import { isZombieRecord, tasksRecordSchema, type TasksRecord } from './record.js';
import { awaitFreePid, checkRlimits, checkDirectories, createTask, resumeTask } from './restore.js';
import { taskRefusals } from './refusals.js';
import { checkSeccompRestorable } from './seccomp.js';
import { readFrozenProcesses, type ProcessReadings } from './frozen-reads.js';
import { readTaskState, readZombie } from './save.js';
import { entryOf, type TreeLinks } from './sessions.js';
import { tableSharing, type TableSharing } from './sharing.js';
import { checkFrozenTask, exitedMeanwhile, listTree, refuseSharedMemoryChildren, type ListedTask } from './tree-collect.js';
import { RestoredTree } from './tree-restore.js';
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
  task: RemoteTask | undefined;
  /**
   * Its descriptors, identified (Procfs.fds), read once for all the plugins that look for theirs
   * among them: they are collected while the process is frozen, where every read counts.
   */
  fds(): readonly FdInfo[];
  /** The other threads, once frozen. */
  threads: RemoteTask[];
  /** It had exited, and its parent had not reaped it: a zombie, with no memory, files or namespaces. */
  zombie: boolean;
  /** What the processes of one checkpoint share. */
  readonly tree: TaskTree;
}

/** The processes of one checkpoint (the target and its descendants, or the target alone with --no-tree). */
export interface TaskTree {
  /** Parents before children. */
  readonly tasks: readonly TaskHandle[];
  /** The open file descriptions collected so far, so that one that several processes hold is saved once. */
  readonly descriptions: SharedDescriptions;
}

/** The handle the tasks plugin itself keeps: what was listed of the process, to check once it is frozen. */
interface TreeTaskHandle extends TaskHandle {
  readonly listed: ListedTask;
  readonly root: number;
  readonly whole: boolean;
}

/** A process being restored: the stopped seed that mm, files and resume turn into it. */
export interface RestoredTask extends RestoredProcess {
  /** Replaced when the process is made again by a later fork of its parent (RestoredTree.refork). */
  task: RemoteTask;
  /** The tree it belongs to, which lets all its processes run at once. */
  readonly tree: RestoredTree;
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
export class TasksPlugin implements ResourcePlugin<TasksRecord, TreeTaskHandle, RestoredTask> {
  readonly apiVersion = PLUGIN_API_VERSION;
  readonly type = TASKS.type;
  /** 2: process trees (parent links, groups, sessions, zombies); records of version 1 are single processes, read as before. */
  readonly version = 2;
  readonly description = 'Processes and their trees: PID, parent, session, group, credentials, registers, FPU state, signals, rlimits, rseq, prctl state, zombies';
  readonly collectsFrom = [TARGET_PROCESS];
  readonly holdsNamespaces = true;
  readonly recordSchema = tasksRecordSchema;
  /** `subtree=PID` selects that process and every one below it. */
  readonly selectableBy = { pid: 'uint', comm: 'string', subtree: 'lineage' } as const;

  private readonly treeLinks = new WeakMap<TaskTree, Map<number, TreeLinks>>();
  /** What syscalls inside each frozen process report, read for every process of its tree at once. */
  private readonly readings = new WeakMap<RemoteTask, ProcessReadings>();
  private readonly treeSharing = new WeakMap<TaskTree, TableSharing>();

  constructor(@inject(Kernel) private readonly kernel: Kernel) {}

  /**
   * The target and, unless --no-tree, every process below it, parents before children. Each
   * requires its parent and children in the tree: a tree is saved whole, or not at all.
   */
  collect(parent: ResourceNode, ctx: CollectContext): CollectedObject<TreeTaskHandle>[] {
    const { pid: root } = PROCESS_TARGET.handleOf(parent);
    const whole = ctx.target.kind !== 'process' || ctx.target.tree !== false;
    const listed = listTree(this.kernel, root, whole);
    const tasks: TaskHandle[] = [];
    const tree: TaskTree = { tasks, descriptions: new SharedDescriptions(this.kernel) };
    const inTree = new Map(listed.map((t) => [t.pid, t]));
    return listed.map((t) => {
      let fds: readonly FdInfo[] | undefined;
      const handle: TreeTaskHandle = {
        pid: t.pid,
        task: undefined,
        threads: [],
        fds: () => (fds ??= handle.zombie ? [] : this.kernel.procfs.fds(t.pid)),
        zombie: t.zombie,
        tree,
        listed: t,
        root,
        whole,
      };
      tasks.push(handle);
      const parentOf = t.pid !== root ? inTree.get(t.ppid) : undefined;
      const requires = [
        ...t.children.map((c) => ({
          key: TASKS.key(c),
          why: `is its parent: the restored PID ${t.pid} (${t.comm}) would miss its child PID ${c}; a tree is saved whole (to save only the subtree of PID ${c}, checkpoint PID ${c})`,
        })),
        ...(parentOf
          ? [{ key: TASKS.key(parentOf.pid), why: `is its child: restored without its parent PID ${parentOf.pid} (${parentOf.comm}) it would be an orphan; a tree is saved whole (to save only this subtree, checkpoint PID ${t.pid})` }]
          : []),
      ];
      return { id: String(t.pid), handle, attributes: { pid: t.pid, comm: t.comm, subtree: t.lineage }, requires };
    });
  }

  /**
   * Stops the process, parents before children: once a process is stopped its children can no
   * longer change but by exiting, so they are checked against what was listed, and the tree is
   * listed and frozen again when they differ. A child that exits meanwhile is a zombie, saved as one.
   */
  freeze(node: ResourceNode<TreeTaskHandle>): void {
    const handle = node.handle;
    const { pid, listed } = handle;
    if (listed.zombie) return;
    const isRoot = pid === handle.root;
    const status = isRoot ? this.kernel.procfs.status(pid) : statusOrUndefined(this.kernel, pid);
    if (!status) {
      handle.zombie = exitedMeanwhile(this.kernel, listed, new TargetError(`PID ${pid} is gone`)) === 'zombie';
      return;
    }
    if (status.tracerPid !== 0) {
      throw new TargetError(`PID ${pid} is being traced by PID ${status.tracerPid} (${this.kernel.procfs.stat(status.tracerPid).comm}); detach that debugger or tracer first`);
    }
    if (handle.whole) refuseSharedMemoryChildren(this.kernel, listed);
    try {
      [handle.task, ...handle.threads] = this.kernel.seizeThreads(pid);
    } catch (err) {
      if (isRoot) throw err;
      handle.zombie = exitedMeanwhile(this.kernel, listed, err) === 'zombie';
      return;
    }
    if (!handle.whole) return;
    try {
      checkFrozenTask(this.kernel, listed, isRoot);
    } catch (err) {
      releaseAll([...handle.threads, handle.task]);
      handle.task = undefined;
      handle.threads = [];
      throw err;
    }
  }

  thaw(node: ResourceNode<TaskHandle>, ctx: ThawContext): void {
    const { task, threads } = node.handle;
    node.handle.task = undefined;
    node.handle.threads = [];
    if (ctx.kill) task?.kill();
    else releaseAll([...threads, ...(task ? [task] : [])]);
  }

  refusals(node: ResourceNode<TreeTaskHandle>): string[] {
    const { pid, zombie, tree } = node.handle;
    if (zombie) return [];
    return [...taskRefusals(this.kernel, pid, !node.handle.whole), ...this.sharingOf(tree).refusals.filter((r) => r.startsWith(`PID ${pid} (`))];
  }

  save(node: ResourceNode<TreeTaskHandle>): TasksRecord {
    const handle = node.handle;
    const enterVia = this.treeEntry(handle);
    const task = handle.zombie ? undefined : frozenTask(node);
    if (!task) {
      const zombie = readZombie(this.kernel, handle.pid);
      return enterVia ? { ...zombie, enterVia } : zombie;
    }
    const shares = this.sharingOf(handle.tree).shares.get(handle.pid) ?? [];
    const readings = this.readingsOf(task, handle);
    const status = this.kernel.procfs.status(handle.pid);
    return {
      ...readTaskState(this.kernel, handle.pid, task, readings, status),
      ...readThreads(this.kernel, handle.pid, task, handle.threads, readings, status),
      ...(enterVia ? { enterVia } : {}),
      ...(shares.length > 0 ? { sharesWithParent: shares } : {}),
    };
  }

  /**
   * What syscalls inside the process report (frozen-reads.ts): read, the first time one process
   * asks, in every frozen process of the tree not read yet and all their threads, all at once.
   */
  private readingsOf(task: RemoteTask, handle: TaskHandle): ProcessReadings {
    let found = this.readings.get(task);
    if (!found) {
      const others = handle.tree.tasks.flatMap((t) => (t.task && t.task !== task && !this.readings.has(t.task) ? [{ task: t.task, threads: t.threads }] : []));
      const processes = [{ task, threads: handle.threads }, ...others];
      readFrozenProcesses(processes).forEach((r, i) => this.readings.set(processes[i]!.task, r));
      found = this.readings.get(task)!;
    }
    return found;
  }

  /**
   * How restore rebuilds the process's place in the tree, when its session or group leader had
   * exited (sessions.ts); refuses what it could not rebuild.
   */
  private treeEntry(handle: TreeTaskHandle): ReturnType<typeof entryOf> {
    if (!handle.whole) return undefined;
    const links = this.linksOf(handle.tree);
    return entryOf(links.get(handle.pid)!, links, links.get(handle.root)!);
  }

  /**
   * The tables each live process of a tree shares with its parent, and the refusals of what cannot
   * be restored shared (sharing.ts): found once per checkpoint, once the tree is frozen (or, for a
   * dry run, as it runs).
   */
  private sharingOf(tree: TaskTree): TableSharing {
    let sharing = this.treeSharing.get(tree);
    if (!sharing) {
      const live = tree.tasks.filter((t) => !t.zombie).map((t) => {
        const { ppid, comm } = this.kernel.procfs.stat(t.pid);
        return { pid: t.pid, ppid, comm };
      });
      sharing = tableSharing(this.kernel, live);
      this.treeSharing.set(tree, sharing);
    }
    return sharing;
  }

  /** Where each process of a frozen tree sits, read once per checkpoint. */
  private linksOf(tree: TaskTree): ReadonlyMap<number, TreeLinks> {
    let links = this.treeLinks.get(tree);
    if (!links) {
      links = new Map();
      for (const t of tree.tasks) {
        const stat = this.kernel.procfs.stat(t.pid);
        links.set(t.pid, { pid: t.pid, ppid: stat.ppid, pgid: stat.pgid, sid: stat.sid, comm: stat.comm });
      }
      this.treeLinks.set(tree, links);
    }
    return links;
  }

  /** The record is the process its object names; no soft limit is above its hard one; every queued signal has a whole siginfo_t. */
  checkRecord(record: TasksRecord, ctx: RecordCheckContext): string[] {
    const problems = String(record.pid) === ctx.id ? [] : [`it holds PID ${record.pid}, not ${ctx.id}`];
    if (isZombieRecord(record)) return [...problems, ...blobProblems(ctx, {})];
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
    if (!isZombieRecord(record)) {
      checkDirectories(record);
      checkRlimits(this.kernel, record);
      checkSeccompRestorable(this.kernel, record);
    }
    for (const id of [record.pid, ...(isZombieRecord(record) ? [] : (record.threads ?? []).map((t) => t.tid))]) await awaitFreePid(this.kernel, id);
    if (record.enterVia) await awaitFreePid(this.kernel, record.enterVia.pid);
  }

  /**
   * A process whose parent's record is in the image (restored before it: parents come first) is
   * made by fork inside its parent's seed; any other, the root, as a child of cr.
   */
  restore(record: TasksRecord, ctx: RestoreContext): RestoredTask {
    const parent = TASKS.restored(ctx, record.ppid);
    const tree = parent?.tree ?? new RestoredTree(this.kernel, record.pid);
    const make = parent ? () => tree.createChild(parent.task, record) : undefined;
    const create = () => createTask(this.kernel, record.pid, ctx.namespaces(), make);
    const task = create();
    try {
      tree.add(task, record, make ? create : undefined);
    } catch (err) {
      task.kill();
      throw err;
    }
    return { pid: record.pid, task, tree };
  }

  /** Everything but running: the tree's root, resumed last of its tree, lets every process of it run at once. */
  async resume(record: TasksRecord, restored: RestoredTask): Promise<void> {
    const { task, tree } = restored;
    if (isZombieRecord(record)) {
      task.setName(record.comm);
      tree.settle(record.pid);
      task.exitOnRelease(record.exited.waitStatus);
    } else {
      tree.addThreads(record.pid, resumeTask(this.kernel, task, record, () => tree.settle(record.pid)));
    }
    if (tree.root === record.pid) await tree.releaseAll();
  }

  /** Kills the seed; the root, rolled back last of its tree, then reaps the others (tree-restore.ts). */
  rollback(record: TasksRecord, restored: RestoredTask): void {
    restored.task.kill();
    if (restored.tree.root === record.pid) restored.tree.reapKilled();
  }
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

/** Releases every task, even when one fails; the first failure is thrown. */
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

function statusOrUndefined(kernel: Kernel, pid: number): ReturnType<Kernel['procfs']['status']> | undefined {
  try {
    return kernel.procfs.status(pid);
  } catch {
    return undefined;
  }
}

export { RLIMIT_NAMES, isZombieRecord, signalActionSchema, tasksRecordSchema, type LiveTaskRecord, type TasksRecord, type ZombieRecord } from './record.js';

export default TasksPlugin;
