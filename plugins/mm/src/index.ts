import { Kernel, PLUGIN_API_VERSION, inject, injectable, type CollectedObject, type PreCopy, type PreCopyContext, type RecordCheckContext, type ResourceNode, type ResourcePlugin, type RestoreContext, type SaveContext } from '@cr/core';
import { TASKS, frozenTask, restoredTaskOf, type TaskHandle } from '@cr/plugin-tasks';
import { SHM_SEGMENTS } from '@cr/sysvipc-base';
import { SHMEM } from '@cr/plugin-shmem';
import { mmRecordSchema, type MmRecord } from './record.js';
import { mmRecordProblems } from './check.js';
import { classify } from './classify.js';
import { checkMappedFiles, restoreAddressSpace } from './restore.js';
import { inheritsFrom, restoreOverInherited } from './inherit.js';
import { mappingRefusals, saveAddressSpace } from './save.js';
import { MemoryPreCopy } from './pre-copy.js';

/**
 * A process's address space: every mapping (anonymous, file, SysV shm, memfd and shared
 * anonymous memory, vdso/vvar) with its protection and advice, the mm bounds (brk, arguments,
 * environment, auxv, exe), and the pages that exist nowhere else: present private anonymous
 * pages, and the pages of private file and memfd mappings the program changed. Shared memory is
 * the shmem plugin's objects, saved once for every mapping and descriptor on them.
 */
@injectable()
export class MmPlugin implements ResourcePlugin<MmRecord, ResourceNode<TaskHandle>> {
  readonly apiVersion = PLUGIN_API_VERSION;
  readonly type = 'mm';
  readonly version = 1;
  readonly description = 'Address space: mappings, private memory contents (present pages that are not all zeros), brk, auxv, exe';
  readonly collectsFrom = [TASKS.type];
  readonly dependsOn = [SHMEM.type];
  readonly recordSchema = mmRecordSchema;
  readonly selectableBy = { pid: 'uint' } as const;

  /** The address spaces restored so far, by tree and PID: what a child's is restored on top of. */
  private readonly restoredSpaces = new WeakMap<object, Map<number, MmRecord>>();

  constructor(@inject(Kernel) private readonly kernel: Kernel) {}

  collect(parent: ResourceNode): CollectedObject<ResourceNode<TaskHandle>>[] {
    const task = TASKS.node(parent);
    if (task.handle.zombie) return [];
    const { pid } = task.handle;
    return [{ id: String(pid), handle: task, attributes: { pid }, uses: this.sharedMemory(pid) }];
  }

  /**
   * The SysV segments the process has attached and the shared memory objects it maps (memfds,
   * shared anonymous memory): a memory image needs them, so a segment that is not saved with it
   * becomes an external reference, which restore must find (or fail up front).
   */
  private sharedMemory(pid: number): string[] {
    const keys = this.kernel.mappings(pid).flatMap((vma) => {
      const kind = classify(vma, pid);
      return kind === 'sysv-shm' ? [SHM_SEGMENTS.key(vma.inode)] : kind === 'shmem' ? [SHMEM.key(vma.inode)] : [];
    });
    return [...new Set(keys)];
  }

  refusals(node: ResourceNode<ResourceNode<TaskHandle>>): string[] {
    return mappingRefusals(this.kernel, TASKS.handleOf(node.handle).pid);
  }

  /** Copies the process's private memory while it runs, tracking what it writes since (see MemoryPreCopy). */
  preCopy(node: ResourceNode<ResourceNode<TaskHandle>>, ctx: PreCopyContext): PreCopy {
    return new MemoryPreCopy(this.kernel, TASKS.handleOf(node.handle).pid, ctx);
  }

  save(node: ResourceNode<ResourceNode<TaskHandle>>, ctx: SaveContext): Promise<MmRecord> {
    return saveAddressSpace(this.kernel, frozenTask(node.handle), ctx);
  }

  checkRecord(record: MmRecord, ctx: RecordCheckContext): string[] {
    return mmRecordProblems(record, ctx);
  }

  preflight(record: MmRecord, ctx: RestoreContext): void {
    checkMappedFiles(record, ctx.key);
  }

  /**
   * A child whose parent's memory is back is made again by a new fork of the parent (see
   * RestoredTree.refork), and its memory restored on top of what it inherits, so that private
   * memory parent and child still shared copy-on-write stays shared (inherit.ts); any other
   * address space is made from nothing. Parents come before their children.
   */
  async restore(record: MmRecord, ctx: RestoreContext): Promise<void> {
    const task = restoredTaskOf(ctx);
    const restored = TASKS.restoredParent(ctx)!;
    let spaces = this.restoredSpaces.get(restored.tree);
    if (!spaces) this.restoredSpaces.set(restored.tree, (spaces = new Map()));
    const ppid = restored.tree.parentOf(restored.pid);
    const parent = ppid === undefined ? undefined : spaces.get(ppid);
    if (parent && inheritsFrom(record, parent) && restored.tree.refork(restored)) await restoreOverInherited(this.kernel, restored.task, record, ctx);
    else await restoreAddressSpace(this.kernel, task, record, ctx);
    spaces.set(restored.pid, record);
  }
}

export { mmRecordSchema, type MmRecord, type VmaRecord } from './record.js';

export default MmPlugin;
