import { Kernel, PLUGIN_API_VERSION, inject, injectable, type CollectedObject, type ResourceNode, type ResourcePlugin, type RestoreContext, type SaveContext } from '@cr/core';
import { frozenTask, restoredTaskOf, type TaskHandle } from '@cr/plugin-tasks';
import { mmRecordSchema, type MmRecord } from '@cr/schemas';
import { checkMappedFiles, restoreAddressSpace } from './restore.js';
import { saveAddressSpace } from './save.js';

/**
 * A process's address space: every mapping (anonymous, file, SysV shm, vdso/vvar) with its
 * protection and advice, the mm bounds (brk, arguments, environment, auxv, exe), and the pages
 * that exist nowhere else: present anonymous pages, and the pages of private file mappings the
 * program changed.
 */
@injectable()
export class MmPlugin implements ResourcePlugin<MmRecord, ResourceNode<TaskHandle>> {
  readonly apiVersion = PLUGIN_API_VERSION;
  readonly type = 'mm';
  readonly version = 1;
  readonly description = 'Address space: mappings, memory contents (present pages only), brk, auxv, exe';
  readonly collectsFrom = ['tasks'];
  readonly recordSchema = mmRecordSchema;

  constructor(@inject(Kernel) private readonly kernel: Kernel) {}

  collect(parent: ResourceNode): CollectedObject<ResourceNode<TaskHandle>>[] {
    const task = parent as ResourceNode<TaskHandle>;
    return [{ id: String(task.handle.pid), handle: task, attributes: { pid: task.handle.pid } }];
  }

  save(node: ResourceNode<ResourceNode<TaskHandle>>, ctx: SaveContext): Promise<MmRecord> {
    return saveAddressSpace(this.kernel, frozenTask(node.handle), ctx);
  }

  preflight(record: MmRecord, ctx: RestoreContext): void {
    checkMappedFiles(record, ctx.key);
  }

  async restore(record: MmRecord, ctx: RestoreContext): Promise<void> {
    await restoreAddressSpace(this.kernel, restoredTaskOf(ctx), record, ctx);
  }
}

export default MmPlugin;
