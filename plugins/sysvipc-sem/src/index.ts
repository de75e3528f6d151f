import {
  Kernel,
  PLUGIN_API_VERSION,
  inject,
  injectable,
  type CollectedObject,
  type ResourceNode,
  type ResourcePlugin,
  type RestoreContext,
  type SemInfo,
} from '@cr/core';
import { assertIpcSlotFree, collectIpcObjects, createWithSavedId, recreateIpcObject, removeRestoredIpcObject, type IpcObjectHandle } from '@cr/plugin-ipc-ns';
import { semRecordSchema, type SemRecord } from '@cr/schemas';

/** SysV semaphore sets: every semaphore's value. */
@injectable()
export class SysvSemPlugin implements ResourcePlugin<SemRecord, IpcObjectHandle<SemInfo>, number> {
  readonly apiVersion = PLUGIN_API_VERSION;
  readonly type = 'sysvipc-sem';
  readonly version = 1;
  readonly description = 'SysV semaphore sets: every value, key, id, owners, mode';
  readonly collectsFrom = ['ipc-ns'];
  readonly recordSchema = semRecordSchema;

  constructor(@inject(Kernel) private readonly kernel: Kernel) {}

  collect(parent: ResourceNode): CollectedObject<IpcObjectHandle<SemInfo>>[] {
    return collectIpcObjects<SemInfo>(this.kernel, parent, 'sem');
  }

  save(node: ResourceNode<IpcObjectHandle<SemInfo>>): SemRecord {
    const { ns, info } = node.handle;
    const values = this.kernel.namespaces.within(ns, () => this.kernel.sysvipc.semGetAll(info.id, info.nsems));
    return { key: info.key, id: info.id, mode: info.mode & 0o777, uid: info.uid, gid: info.gid, cuid: info.cuid, cgid: info.cgid, values };
  }

  preflight(record: SemRecord, ctx: RestoreContext): void {
    assertIpcSlotFree(this.kernel, ctx, 'sem', record);
  }

  restore(record: SemRecord, ctx: RestoreContext): Promise<number> {
    const ipc = this.kernel.sysvipc;
    return recreateIpcObject(this.kernel, ctx, 'sem', record.id, (ns) =>
      this.kernel.namespaces.within(ns, () => {
        createWithSavedId(this.kernel, 'sem', record.id, () => ipc.semCreate(record.key, record.values.length, 0o600));
        ipc.semSetAll(record.id, record.values);
        ipc.setOwnership('sem', record.id, record);
      }),
    );
  }

  rollback(_record: SemRecord, id: number, ctx: RestoreContext): void {
    removeRestoredIpcObject(this.kernel, ctx, 'sem', id);
  }
}

export default SysvSemPlugin;
