import {
  Kernel,
  PLUGIN_API_VERSION,
  SHM_DEST,
  SHM_LOCKED,
  inject,
  injectable,
  type CollectedObject,
  type ResourceNode,
  type ResourcePlugin,
  type RestoreContext,
  type SaveContext,
  type ShmInfo,
} from '@cr/core';
import { assertIpcSlotFree, collectIpcObjects, createWithSavedId, recreateIpcObject, removeRestoredIpcObject, type IpcObjectHandle } from '@cr/plugin-ipc-ns';
import { shmRecordSchema, type ShmRecord } from '@cr/schemas';

/**
 * SysV shared memory segments. Contents go to the image straight from the attached segment
 * (a zero-copy view), and come back straight into the new segment.
 */
@injectable()
export class SysvShmPlugin implements ResourcePlugin<ShmRecord, IpcObjectHandle<ShmInfo>, number> {
  readonly apiVersion = PLUGIN_API_VERSION;
  readonly type = 'sysvipc-shm';
  readonly version = 1;
  readonly description = 'SysV shared memory segments: contents, key, id, owners, mode, SHM_LOCKED, SHM_DEST';
  readonly collectsFrom = ['ipc-ns'];
  readonly recordSchema = shmRecordSchema;

  constructor(@inject(Kernel) private readonly kernel: Kernel) {}

  collect(parent: ResourceNode): CollectedObject<IpcObjectHandle<ShmInfo>>[] {
    return collectIpcObjects<ShmInfo>(this.kernel, parent, 'shm');
  }

  async save(node: ResourceNode<IpcObjectHandle<ShmInfo>>, ctx: SaveContext): Promise<ShmRecord> {
    const { ns, info } = node.handle;
    const mapping = this.kernel.namespaces.within(ns, () => this.kernel.sysvipc.shmAttach(info.id, info.size, true));
    try {
      await ctx.writeBlob('contents', mapping.view());
    } finally {
      mapping.detach();
    }
    return {
      key: info.key,
      id: info.id,
      mode: info.mode & 0o777,
      uid: info.uid,
      gid: info.gid,
      cuid: info.cuid,
      cgid: info.cgid,
      size: info.size,
      locked: (info.mode & SHM_LOCKED) !== 0,
      markedForDestruction: (info.mode & SHM_DEST) !== 0,
    };
  }

  preflight(record: ShmRecord, ctx: RestoreContext): void {
    assertIpcSlotFree(this.kernel, ctx, 'shm', record);
  }

  restore(record: ShmRecord, ctx: RestoreContext): Promise<number> {
    const ipc = this.kernel.sysvipc;
    return recreateIpcObject(this.kernel, ctx, 'shm', record.id, async (ns) => {
      const mapping = this.kernel.namespaces.within(ns, () => {
        createWithSavedId(this.kernel, 'shm', record.id, () => ipc.shmCreate(record.key, record.size, 0o600));
        return ipc.shmAttach(record.id, record.size, false);
      });
      try {
        await ctx.readBlobInto('contents', mapping.view());
      } finally {
        mapping.detach();
      }
      this.kernel.namespaces.within(ns, () => {
        ipc.setOwnership('shm', record.id, record);
        if (record.locked) ipc.shmLock(record.id);
      });
    });
  }

  rollback(_record: ShmRecord, id: number, ctx: RestoreContext): void {
    removeRestoredIpcObject(this.kernel, ctx, 'shm', id);
  }
}

export default SysvShmPlugin;
