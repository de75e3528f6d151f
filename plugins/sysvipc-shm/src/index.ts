import {
  Kernel,
  SHM_DEST,
  SHM_LOCKED,
  TargetError,
  inject,
  injectable,
  type ResourceNode,
  type ResourcePlugin,
  type RestoreContext,
  type SaveContext,
  type Attributes,
  type ShmInfo,
} from '@cr/core';
import { IPC_OBJECT_SELECTABLE, SHM_SEGMENTS, SysvIpcObjectPlugin, createWithSavedId, recreateIpcObject, withinIntoNamespace, type IpcObjectHandle, type StandIn } from '@cr/sysvipc-base';
import { shmRecordSchema, type ShmRecord } from './record.js';

/**
 * SysV shared memory segments. Contents go to the image straight from the attached segment
 * (a zero-copy view), and come back straight into the new segment.
 */
@injectable()
export class SysvShmPlugin extends SysvIpcObjectPlugin<ShmRecord, 'shm'> implements ResourcePlugin<ShmRecord, IpcObjectHandle<ShmInfo>, number> {
  readonly type = SHM_SEGMENTS.type;
  readonly description = 'SysV shared memory segments: contents, key, id, owners, mode, SHM_LOCKED, SHM_DEST';
  readonly recordSchema = shmRecordSchema;
  override readonly selectableBy = { ...IPC_OBJECT_SELECTABLE, size: 'uint' } as const;
  /** A process's attachment is remade by cr at the id it finds, so another id will do; never another size. */
  protected readonly standIn: StandIn = { shape: ['size'], otherId: true };

  constructor(@inject(Kernel) kernel: Kernel) {
    super(kernel, 'shm');
  }

  protected blobsOf(record: ShmRecord): Record<string, number> {
    return { contents: record.size };
  }

  protected override attributesOf(info: ShmInfo): Attributes {
    return { ...super.attributesOf(info), size: info.size };
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
      ...this.identityOf(info),
      size: info.size,
      locked: (info.mode & SHM_LOCKED) !== 0,
      markedForDestruction: (info.mode & SHM_DEST) !== 0,
    };
  }

  /**
   * Besides a free id and key: the segment must fit the target namespace's kernel.shmmax. Only an
   * existing namespace (`--into-ipc-ns`) can be checked; a new one gets the saved limits first.
   */
  override preflight(record: ShmRecord, ctx: RestoreContext): void {
    super.preflight(record, ctx);
    const found = withinIntoNamespace(this.kernel, ctx, () => this.kernel.sysctl.read('kernel.shmmax'));
    if (!found) return;
    const shmmax = BigInt(found.value.trim());
    if (BigInt(record.size) > shmmax) {
      throw new TargetError(
        `cannot restore ${ctx.key} (shm id ${record.id}, ${record.size} bytes) into ${found.into}: that is above the namespace's ` +
          `kernel.shmmax ${shmmax}; raise it first: nsenter --ipc=${found.into} sysctl kernel.shmmax=${record.size}`,
      );
    }
  }

  restore(record: ShmRecord, ctx: RestoreContext): Promise<number> {
    const ipc = this.kernel.sysvipc;
    return recreateIpcObject(this.kernel, ctx, 'shm', record.id, async (ns) => {
      const mapping = this.kernel.namespaces.within(ns, () => {
        createWithSavedId(this.kernel, 'shm', record.id, () => ipc.asCreator(record, () => ipc.shmCreate(record.key, record.size, 0o600)));
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

  /**
   * A segment removed while attached (SHM_DEST) is removed again once every restored process has
   * attached it: it then lives as long as they keep it, as it did.
   */
  resume(record: ShmRecord, id: number, ctx: RestoreContext): void {
    if (record.markedForDestruction) this.removeRestored(id, ctx);
  }
}

export { shmRecordSchema, type ShmRecord } from './record.js';

export default SysvShmPlugin;
